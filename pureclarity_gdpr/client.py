"""The one place where PureClarity's forget endpoint is called."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import requests
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import __version__
from .conf import StoreView
from .identifiers import mask

logger = logging.getLogger(__name__)

USER_AGENT = f"pureclarity-gdpr/{__version__} python-requests/{requests.__version__}"
SUCCESS_STATUS = 200
# Answers are read only this far: enough to show a person what went wrong, never
# enough for a huge answer to fill the worker's memory.
MAX_BODY_BYTES = 16 * 1024
EXCERPT_LENGTH = 200
TRANSIENT_STATUSES = {408, 425, 429}
EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")

_local = threading.local()


@dataclass(frozen=True)
class Answer:
    """What became of one call: PureClarity's answer, or why there was none."""

    succeeded: bool
    status_code: int | None
    error: str
    excerpt: str
    transient: bool
    duration: float
    retry_after: float | None = None


class _Body(bytes):
    """The request body, which holds the secret key: its repr never shows it.

    Debug pages and error reporters print the local variables of every frame,
    those inside requests and urllib3 included, where no sensitive_variables
    marker reaches; the body travels through them as this object.
    """

    def __repr__(self) -> str:
        return "<forget request body, not shown>"

    __str__ = __repr__


def session() -> requests.Session:
    """This thread's session, so connections are kept alive and reused."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        # Environment proxies and .netrc must not decide where the secret key goes.
        current.trust_env = False
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


def _read_body(response: requests.Response, seconds: float) -> str:
    """The answer's first 16 KiB, read within ``seconds`` however slowly it comes."""
    deadline = time.monotonic() + seconds
    read_some = getattr(response.raw, "read1", response.raw.read)
    raw = b""
    while len(raw) < MAX_BODY_BYTES:
        if time.monotonic() > deadline:
            # A body trickled byte by byte would otherwise outlive the lease.
            raise requests.ReadTimeout("the answer's body came too slowly")
        chunk = read_some(MAX_BODY_BYTES - len(raw), decode_content=True)
        if not chunk:
            break
        raw += chunk
    raw = raw[:MAX_BODY_BYTES]
    encoding = response.encoding or "utf-8"
    try:
        return raw.decode(encoding, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def scrub(text: str, *secrets: str) -> str:
    """A short, single-line excerpt of an answer, with anything we sent removed."""
    for secret in secrets:
        if secret:
            # As sent, and as an echo of our JSON would escape it.
            for form in {secret, json.dumps(secret)[1:-1]}:
                text = text.replace(form, "[redacted]")
    # Any other address in an answer is someone's personal data too.
    text = EMAIL.sub("[email]", text)
    text = re.sub(r"<[^>]{0,200}>", " ", text)
    text = re.sub(r"\s+", " ", "".join(c if c.isprintable() else " " for c in text))
    text = text.strip()
    if len(text) > EXCERPT_LENGTH:
        text = text[: EXCERPT_LENGTH - 1] + "…"
    return text


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for, or None if it cannot be read.

    Anything PureClarity (or a proxy in front of it) sends is accepted without
    crashing; how long is actually waited is capped by the caller.
    """
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,10}", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, (when - timezone.now()).total_seconds())
    except (TypeError, ValueError, IndexError, OverflowError):
        # Unreadable, or a date without a time zone (Python cannot compare it).
        return None


def _status_phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown status"


def _failure_text(code: int, store_view: StoreView) -> str:
    text = f"PureClarity answered {code} ({_status_phrase(code)})"
    if code in (401, 403):
        return (
            f"{text}: check the access key and secret key of store view "
            f"'{store_view.name}'."
        )
    if 300 <= code < 400:
        return (
            f"{text}, a redirect, which is never followed so the keys stay with "
            f"{store_view.host}: check BASE_URL of store view '{store_view.name}'."
        )
    if code == 429:
        return f"{text}: too many requests; it will be tried again later."
    if code >= 500:
        return f"{text}: PureClarity had a problem; it will be tried again later."
    return f"{text}: the request was not accepted."


def _network_failure(
    err: requests.RequestException, timeout: tuple[float, float]
) -> str:
    if isinstance(err, requests.ConnectTimeout):
        return f"No connection to PureClarity within {timeout[0]:g} s."
    if isinstance(err, requests.ReadTimeout):
        return f"PureClarity did not answer within {timeout[1]:g} s."
    if isinstance(err, requests.exceptions.SSLError):
        return "The TLS certificate of the PureClarity host could not be verified."
    if isinstance(err, requests.ConnectionError):
        return "The connection to PureClarity failed (refused, reset or dropped)."
    return f"The request to PureClarity failed ({type(err).__name__})."


@sensitive_variables("store_view", "request_body")
def send_forget(
    store_view: StoreView,
    identifier: str,
    timeout: tuple[float, float],
    other_secrets: Sequence[str] = (),
) -> Answer:
    """POST one identifier to the store view's forget endpoint; never raises.

    ``other_secrets`` (the other store views' secret keys) are scrubbed from the
    answer's excerpt too, should a misconfigured endpoint echo one.
    """
    # No local variable holds the secret in plain form: with DEBUG on, Django's
    # error page ignores sensitive_variables and shows every frame's locals.
    request_body = _Body(
        json.dumps(
            {
                "AccessKey": store_view.access_key,
                "SecretKey": store_view.secret_key,
                "Identifier": identifier,
            }
        ).encode()
    )
    started = time.monotonic()
    logger.debug(
        "Sending forget request for %s to store view %r at %s",
        mask(identifier),
        store_view.name,
        store_view.host,
    )

    try:
        response = session().post(
            store_view.forget_url,
            data=request_body,
            headers={"Content-Type": "application/json"},
            timeout=timeout,
            allow_redirects=False,
            verify=True,
            stream=True,
        )
        with response:
            body = _read_body(response, timeout[1])
    except requests.RequestException as err:
        return Answer(
            succeeded=False,
            status_code=None,
            error=_network_failure(err, timeout),
            excerpt="",
            transient=True,
            duration=time.monotonic() - started,
        )

    duration = time.monotonic() - started
    code = response.status_code
    excerpt = scrub(
        body, store_view.secret_key, store_view.access_key, identifier, *other_secrets
    )
    if code == SUCCESS_STATUS:
        return Answer(True, code, "", excerpt, transient=False, duration=duration)

    return Answer(
        succeeded=False,
        status_code=code,
        error=_failure_text(code, store_view),
        excerpt=excerpt,
        transient=code in TRANSIENT_STATUSES or code >= 500,
        duration=duration,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )
