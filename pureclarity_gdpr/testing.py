"""A stand-in for PureClarity's forget endpoint, served over HTTP on loopback.

``LocalPureClarity`` is a real HTTP/1.1 server with keep-alive that answers
``POST /api/user/forget`` the way PureClarity does, records every request it gets
and can be told to answer otherwise: errors, slow answers, redirects, dropped
connections, requests held open until released. Use it in tests and benchmarks::

    with LocalPureClarity() as server:
        server.reply(503, "busy", times=1)
        ...  # point the client at server.url
        assert server.identifiers == ["ana@example.test"]

It needs nothing but the standard library, and no Django settings. Run as
``python -m pureclarity_gdpr.testing`` it serves until stopped and prints one line
per request, with the identifier masked and never the secret key.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json as jsonlib
import logging
import math
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import FrameType, TracebackType
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

SUCCESS_BODY = "The request was submitted successfully"
FORGET_PATH = "/api/user/forget"
REQUIRED_FIELDS = ("AccessKey", "SecretKey", "Identifier")
TEXT_PLAIN = "text/plain; charset=utf-8"
# Statuses whose answers carry no body by HTTP's rules: sending one anyway would
# desynchronise a keep-alive connection.
BODILESS_STATUSES = frozenset({204, 304})
# How long stop() waits for request threads to notice the sockets closing.
STOP_GRACE = 2.0
# How often the accept loop checks for stop(): it bounds how long stop() takes.
POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server received it, in full.

    Header names are lower-cased (repeated headers joined with ``, ``); ``json``
    is the body parsed, when it is a JSON object; ``connection`` numbers the TCP
    connections from 1; ``received_at`` is ``time.monotonic()`` once the body
    was read. ``body`` and ``json`` stay out of the repr, so a failing assertion
    never prints the secret key a client sent.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    json: dict[str, object] | None = field(repr=False)
    connection: int
    received_at: float

    @property
    def identifier(self) -> str | None:
        """The ``Identifier`` field of the JSON body, if it is text."""
        return self._text_field("Identifier")

    @property
    def access_key(self) -> str | None:
        """The ``AccessKey`` field of the JSON body, if it is text."""
        return self._text_field("AccessKey")

    @property
    def secret_key(self) -> str | None:
        """The ``SecretKey`` field of the JSON body, if it is text."""
        return self._text_field("SecretKey")

    def _text_field(self, name: str) -> str | None:
        value = self.json.get(name) if self.json is not None else None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str = TEXT_PLAIN
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False
    hold: bool = False


@dataclass
class _Rule:
    answer: _Answer
    identifier: str | None
    access_key: str | None
    remaining: int | None

    def matches(self, request: ReceivedRequest) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.identifier is not None and request.identifier != self.identifier:
            return False
        return self.access_key is None or request.access_key == self.access_key


def _text_answer(status: int, text: str, **headers: str) -> _Answer:
    return _Answer(status, text.encode(), headers=tuple(headers.items()))


def _missing_field(payload: dict[str, object] | None) -> str | None:
    """Why a forget body is not acceptable, or None when it is."""
    if payload is None:
        return "Invalid request: the body must be a JSON object"

    for name in REQUIRED_FIELDS:
        value = payload.get(name)
        if value is None or value == "":
            return f"Invalid request: {name} is missing"
        if not isinstance(value, str):
            return f"Invalid request: {name} must be a string"
    return None


def _check_seconds(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0")
    return float(value)


def _check_loopback(host: str) -> None:
    """Refuse any address other machines could reach: this server is for tests."""
    if host.lower() == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"LocalPureClarity binds only to loopback (localhost, 127.0.0.0/8, ::1), "
            f"not {host!r}"
        )


def _parse_json(body: bytes) -> dict[str, object] | None:
    try:
        payload = jsonlib.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _mask(identifier: str | None) -> str:
    """The first character and ``***``: enough to tell requests apart in a log."""
    if not identifier:
        return "-"
    first = identifier[0]
    shown = first.isascii() and first.isprintable() and not first.isspace()
    return (first if shown else "?") + "***"


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threading TCP server that knows its LocalPureClarity."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], owner: LocalPureClarity, family: int
    ) -> None:
        # Set before binding: TCPServer creates its socket from this attribute.
        self.address_family = family
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients hang up mid-answer on purpose in tests: not worth stderr noise.
        logger.debug("Connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Reads each request, records it and answers as the owner decides."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, a keep-alive client
    # can wait for a delayed ACK on every request.
    disable_nagle_algorithm = True
    connection_number = 0

    @property
    def owner(self) -> LocalPureClarity:
        assert isinstance(self.server, _Server)
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.connection_number = self.owner._connection_opened(self.connection)
        if self.owner._is_stopping():
            # Accepted just as stop() closed the others: close this one too.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self.owner._connection_closed(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def version_string(self) -> str:
        return "LocalPureClarity"

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        body = self._read_body()
        request = self.owner._record(self._received(body or b""))
        if body is None:
            # The rest of the connection cannot be read as requests any more.
            self.close_connection = True
            self._send(_text_answer(400, "Invalid request: bad body framing"))
            return

        # Done counting before the first byte goes out: otherwise a serial client
        # could send its next request while this one still counts as in progress.
        with self.owner._answering():
            answer = self.owner._wait_for_answer(request)

        if answer.drop:
            self._reset_connection()
        else:
            self._send(answer)
        if self.owner._is_stopping():
            self.close_connection = True

    def _received(self, body: bytes) -> ReceivedRequest:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return ReceivedRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            body=body,
            json=_parse_json(body),
            connection=self.connection_number,
            received_at=time.monotonic(),
        )

    def _read_body(self) -> bytes | None:
        """The request body, or None when its length cannot be known."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunks()

        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if length < 0:
            return None
        return self.rfile.read(length)

    def _read_chunks(self) -> bytes | None:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                return None
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

        # Trailer lines end at the first empty line.
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def _send(self, answer: _Answer) -> None:
        body = b"" if answer.status in BODILESS_STATUSES else answer.body
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        if answer.status not in BODILESS_STATUSES:
            self.send_header("Content-Length", str(len(body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()

        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _reset_connection(self) -> None:
        # Linger on with a zero timeout makes close() send RST instead of FIN, so
        # the client sees "connection reset" rather than a clean hang-up.
        linger = struct.pack("ii", 1, 0)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.close_connection = True
        # The socket is really closed only once its file objects are closed too.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()


class LocalPureClarity:
    """PureClarity's forget endpoint, served on loopback for tests and benchmarks.

    Unless told otherwise with :meth:`reply`, a valid ``POST /api/user/forget``
    gets 200 and :data:`SUCCESS_BODY`; a wrong path gets 404, a wrong method 405,
    a body without non-empty string ``AccessKey``, ``SecretKey`` and
    ``Identifier`` gets 400, and, once :meth:`expect_keys` was called, unknown
    keys get 403 ``Account not found``. Every request is recorded, whatever it
    was answered.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0
    ) -> None:
        """Prepare a server for ``host:port`` (0: any free port); call start()."""
        _check_loopback(host)
        self.host = host
        self.port = port
        self.latency = latency
        self._lock = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._release_generation = 0
        self._sockets: set[socket.socket] = set()
        self._active_connections = 0
        self._answering_now = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._rules: list[_Rule] = []
        self._received: list[ReceivedRequest] = []
        self._keys: set[tuple[str, str]] = set()
        self._redirect_paths: set[str] = set()
        self._connections = 0
        self._max_concurrent = self._answering_now

    @property
    def latency(self) -> float:
        """Seconds added before every answer, default ones included."""
        return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._latency = _check_seconds("latency", seconds)

    def start(self) -> LocalPureClarity:
        """Start serving in a daemon thread; return self."""
        if self._server is not None:
            raise RuntimeError("LocalPureClarity is already running")

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._stopping = threading.Event()
        self._server = _Server((self.host, self.port), self, family)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name=f"LocalPureClarity {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release held requests, cut delays short, close sockets.

        Calling it again, or before start(), does nothing.
        """
        server, self._server = self._server, None
        if server is None:
            return

        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        server.shutdown()
        server.server_close()
        self._close_connections()

        with self._lock:
            self._lock.wait_for(lambda: self._active_connections == 0, STOP_GRACE)
        if self._thread is not None:
            self._thread.join(STOP_GRACE)

    def _close_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        # shutdown() wakes a thread blocked reading a keep-alive connection, which
        # then closes its socket itself; close() from here would not wake it.
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> LocalPureClarity:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    @property
    def url(self) -> str:
        """The server's base URL, such as ``http://127.0.0.1:43121``."""
        if self._server is None:
            raise RuntimeError("LocalPureClarity is not running: call start() first")

        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):  # pragma: no cover - only for AF_UNIX
            host = host.decode()
        host_part = f"[{host}]" if ":" in host else host
        return f"http://{host_part}:{port}"

    @property
    def received(self) -> list[ReceivedRequest]:
        """Every request received, in arrival order, however it was answered."""
        with self._lock:
            return list(self._received)

    @property
    def identifiers(self) -> list[str]:
        """The Identifier of every forget POST received, in arrival order."""
        return [
            request.identifier
            for request in self.received
            if request.method == "POST"
            and urlsplit(request.path).path == FORGET_PATH
            and request.identifier is not None
        ]

    @property
    def connections(self) -> int:
        """How many TCP connections were accepted since start() or reset()."""
        with self._lock:
            return self._connections

    @property
    def max_concurrent(self) -> int:
        """The most requests that were being answered at the same time."""
        with self._lock:
            return self._max_concurrent

    def reply(
        self,
        status: int = 200,
        body: str | bytes = SUCCESS_BODY,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        redirect_to: str | None = None,
        drop: bool = False,
        hold: bool = False,
        times: int | None = None,
        identifier: str | None = None,
        access_key: str | None = None,
        content_type: str = TEXT_PLAIN,
    ) -> None:
        """Answer matching requests as told, instead of the default answer.

        Rules are tried in the order added; the first that matches answers,
        whatever the path, method and body. ``identifier`` and ``access_key``
        restrict a rule to requests carrying them; ``times`` makes it expire
        after that many requests (None: never). ``delay`` sleeps before the
        answer; ``redirect_to`` adds a Location header (with a 3xx ``status``)
        and makes the server answer 200 ``OK`` on that path, so a test can see
        whether a client followed it; ``drop`` resets the connection without an
        answer; ``hold`` keeps the request waiting until :meth:`release`.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status must be from 200 to 599, not {status}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 or None, not {times}")

        extra = dict(headers or {})
        if redirect_to is not None:
            extra["Location"] = self._add_redirect(status, redirect_to)
        answer = _Answer(
            status=status,
            body=body.encode() if isinstance(body, str) else bytes(body),
            content_type=content_type,
            headers=tuple(extra.items()),
            delay=_check_seconds("delay", delay),
            drop=drop,
            hold=hold,
        )
        with self._lock:
            self._rules.append(_Rule(answer, identifier, access_key, times))

    def _add_redirect(self, status: int, target: str) -> str:
        if not 300 <= status <= 399:
            raise ValueError(
                f"redirect_to needs a redirect status such as 302 or 307, not {status}"
            )

        path = urlsplit(target).path
        if path and path != FORGET_PATH:
            with self._lock:
                self._redirect_paths.add(path)
        return target

    def release(self) -> None:
        """Let every request held so far (``hold=True``) get its answer.

        Requests that arrive later are held again, until the next release().
        """
        with self._lock:
            self._release_generation += 1
            self._lock.notify_all()

    def expect_keys(self, access_key: str, secret_key: str) -> None:
        """Accept these keys; once any are registered, forget POSTs with others
        get 403 ``Account not found``. Call again to accept more store views.
        """
        with self._lock:
            self._keys.add((access_key, secret_key))

    def reset(self) -> None:
        """Forget rules, received requests, keys and counters; release held ones.

        Latency is kept: it belongs to the server, not to one test.
        """
        with self._lock:
            self._reset_state()
        self.release()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._received) >= count, timeout)

    def _received_since(self, start: int) -> list[ReceivedRequest]:
        with self._lock:
            return self._received[start:]

    def _is_stopping(self) -> bool:
        return self._stopping.is_set()

    def _connection_opened(self, sock: socket.socket) -> int:
        with self._lock:
            self._sockets.add(sock)
            self._active_connections += 1
            self._connections += 1
            return self._connections

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
            self._active_connections -= 1
            self._lock.notify_all()

    def _record(self, request: ReceivedRequest) -> ReceivedRequest:
        with self._lock:
            self._received.append(request)
            self._lock.notify_all()
        return request

    @contextlib.contextmanager
    def _answering(self) -> Iterator[None]:
        with self._lock:
            self._answering_now += 1
            self._max_concurrent = max(self._max_concurrent, self._answering_now)
        try:
            yield
        finally:
            with self._lock:
                self._answering_now -= 1

    def _wait_for_answer(self, request: ReceivedRequest) -> _Answer:
        """Decide the answer, then wait as long as it says before it is sent."""
        answer = self._answer_for(request)
        if answer.hold:
            self._wait_for_release()

        self._stopping.wait(self.latency + answer.delay)
        return answer

    def _wait_for_release(self) -> None:
        with self._lock:
            generation = self._release_generation
            self._lock.wait_for(
                lambda: (
                    self._release_generation != generation or self._stopping.is_set()
                )
            )

    def _answer_for(self, request: ReceivedRequest) -> _Answer:
        with self._lock:
            if self._is_redirect_target(request):
                return _text_answer(200, "OK")
            for rule in self._rules:
                if rule.matches(request):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule.answer
            return self._default_answer(request)

    def _is_redirect_target(self, request: ReceivedRequest) -> bool:
        return urlsplit(request.path).path in self._redirect_paths

    def _default_answer(self, request: ReceivedRequest) -> _Answer:
        if urlsplit(request.path).path != FORGET_PATH:
            return _text_answer(404, "Not found")
        if request.method != "POST":
            return _text_answer(405, "Method not allowed", Allow="POST")

        problem = _missing_field(request.json)
        if problem is not None:
            return _text_answer(400, problem)
        keys = (request.access_key or "", request.secret_key or "")
        if self._keys and keys not in self._keys:
            return _text_answer(403, "Account not found")
        return _text_answer(200, SUCCESS_BODY)


def _describe(request: ReceivedRequest) -> str:
    """One line for the console: never the secret key, the identifier masked."""
    line = (
        f"{time.strftime('%H:%M:%S')} {request.method} {request.path} "
        f"identifier={_mask(request.identifier)} "
        f"access_key={request.access_key or '-'} (connection {request.connection})"
    )
    # Whatever a client sent must not be able to forge lines or move the cursor.
    return "".join(char if char.isprintable() else "?" for char in line)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pureclarity_gdpr.testing",
        description="Serve a local stand-in for PureClarity's forget endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, default=8765, help="0: any free port")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before every answer"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM, printing a line per request received."""
    args = _parse_args(argv)
    try:
        server = LocalPureClarity(args.host, args.port, args.latency)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
    except OSError as err:
        print(f"Cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1

    try:
        print(f"LocalPureClarity serving on {server.url}", flush=True)
        _print_requests(server, stop)
    finally:
        server.stop()
    return 0


def _print_requests(server: LocalPureClarity, stop: threading.Event) -> None:
    printed = 0
    while True:
        server.wait_for(printed + 1, timeout=0.2)
        # Read once more after a stop, so no request received goes unprinted.
        stopping = stop.is_set()
        for request in server._received_since(printed):
            print(_describe(request), flush=True)
            printed += 1
        if stopping:
            return


if __name__ == "__main__":
    sys.exit(main())
