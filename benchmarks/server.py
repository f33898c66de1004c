"""The local PureClarity in a process of its own, driven through a pipe.

PureClarity's servers do not share a CPU, let alone a GIL, with the shop that calls
them. Run in the benchmark's own process, LocalPureClarity's threads would compete
with the delivery threads for the interpreter and bill the shop for the server's
work; in a process of its own they only cost what a real server costs: time on the
wire.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from pureclarity_gdpr.testing import LocalPureClarity

# How often a trimming server forgets what it received, so that a run of 100,000
# requests does not grow the server's memory without end.
TRIM_INTERVAL = 1.0


def _rate(server: LocalPureClarity) -> float:
    """Requests per second between the first and the last one received."""
    times = sorted(request.received_at for request in server.received)
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


class _Trimmer:
    """Forgets what the server received, every second, while switched on."""

    def __init__(self, server: LocalPureClarity) -> None:
        self.server = server
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def switch(self, on: bool) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join()
            self.thread = None
        if on:
            self.stop.clear()
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(TRIM_INTERVAL):
            self.server.reset()


def _set_latency(server: LocalPureClarity, seconds: float) -> None:
    server.latency = seconds


def _answer(server: LocalPureClarity, trimmer: _Trimmer, command: str, arg: Any) -> Any:
    if command == "latency":
        return _set_latency(server, arg)
    if command == "reset":
        return server.reset()
    if command == "trim":
        return trimmer.switch(arg)
    if command == "connections":
        return server.connections
    if command == "count":
        return len(server.received)
    if command == "rate":
        return _rate(server)
    raise ValueError(f"unknown command {command!r}")


def _serve(conn: Connection) -> None:
    """The server process: answer commands until told to stop."""
    with LocalPureClarity() as server:
        trimmer = _Trimmer(server)
        conn.send(server.url)
        while (message := conn.recv())[0] != "stop":
            conn.send(_answer(server, trimmer, *message))
        trimmer.switch(False)
    conn.send(None)


class ServerProcess:
    """A LocalPureClarity on 127.0.0.1, served by a child process."""

    def __init__(self) -> None:
        # Spawned, not forked: the child must not inherit Django, open database
        # connections or the parent's threads.
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child_conn,), name="LocalPureClarity", daemon=True
        )
        self.url = ""

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.url = self._conn.recv()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._call("stop")
        self._process.join(10)

    def _call(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def set_latency(self, seconds: float) -> None:
        """Seconds the server waits before every answer."""
        self._call("latency", seconds)

    def reset(self) -> None:
        """Forget the requests and connections seen so far."""
        self._call("reset")

    @property
    def connections(self) -> int:
        """TCP connections accepted since the last reset."""
        count: int = self._call("connections")
        return count

    @property
    def received(self) -> int:
        """Requests received since the last reset."""
        count: int = self._call("count")
        return count

    @property
    def rate(self) -> float:
        """Requests per second between the first and last received since reset."""
        rate: float = self._call("rate")
        return rate

    def trim(self, on: bool) -> None:
        """While on, forget received requests every second (for long runs)."""
        self._call("trim", on)
