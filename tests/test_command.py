"""The pureclarity_forget management command, against the local PureClarity."""

from __future__ import annotations

import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status, StoreViewPause
from pureclarity_gdpr.testing import LocalPureClarity
from tests.conftest import SECRET_KEY, gdpr_settings

REPO = Path(__file__).resolve().parent.parent
NON_ASCII = "zoë@exämple.test"
# Masked, this keeps its first character: output must cope with it on ASCII.
NON_ASCII_FIRST = "ëve@exämple.test"


@dataclass
class Result:
    """What a run of the command printed, and the CommandError it ended with."""

    stdout: str
    stderr: str
    error: str | None

    @property
    def output(self) -> str:
        return f"{self.stdout}{self.stderr}{self.error or ''}"


def forget(*args: str, **options: Any) -> Result:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(
            "pureclarity_forget", *args, stdout=stdout, stderr=stderr, **options
        )
    except CommandError as err:
        return Result(stdout.getvalue(), stderr.getvalue(), str(err))
    return Result(stdout.getvalue(), stderr.getvalue(), None)


def statuses() -> list[str]:
    return sorted(ForgetRequest.objects.values_list("status", flat=True))


def closed_port() -> int:
    """A loopback port nothing listens on, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_lines(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


pytestmark = pytest.mark.django_db


def test_forgets_identifiers_given_as_arguments(pureclarity: LocalPureClarity) -> None:
    result = forget("ana@example.test", "42")

    assert result.error is None
    assert result.stdout == (
        "2 forget requests: 2 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert sorted(pureclarity.identifiers) == ["42", "ana@example.test"]
    assert statuses() == [Status.SUCCEEDED, Status.SUCCEEDED]
    assert set(ForgetRequest.objects.values_list("source", flat=True)) == {
        Source.COMMAND
    }


def test_a_failure_goes_to_stderr_and_exits_non_zero(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=500, identifier="bad@example.test")

    result = forget(NON_ASCII, "bad@example.test")

    waiting = ForgetRequest.objects.get(status=Status.PENDING)
    assert result.error is not None
    assert result.error.startswith("1 forget request not delivered; see above.")
    assert "--retry-failed" in result.error
    assert result.stderr.startswith(
        f"b***@e***.test in store view 'default' (request {waiting.pk}): not "
        "delivered, to be tried again at "
    )
    assert result.stderr.endswith(f": {waiting.last_error}\n")
    assert "500" in result.stderr
    assert "2 forget requests: 1 succeeded, 1 failed, 0 already forgotten." in (
        result.stdout
    )
    assert sorted(pureclarity.identifiers) == ["bad@example.test", NON_ASCII]


def test_non_ascii_identifiers_are_sent_as_given(pureclarity: LocalPureClarity) -> None:
    result = forget(NON_ASCII, NON_ASCII_FIRST, verbosity=2)

    assert result.error is None
    assert sorted(pureclarity.identifiers) == sorted([NON_ASCII, NON_ASCII_FIRST])
    assert "ë***@e***.test in store view 'default'" in result.stdout
    assert NON_ASCII not in result.stdout
    assert NON_ASCII_FIRST not in result.stdout


def test_verbosity_2_prints_a_line_per_request(pureclarity: LocalPureClarity) -> None:
    result = forget("ana@example.test", verbosity=2)

    request = ForgetRequest.objects.get()
    assert result.stdout == (
        f"a***@e***.test in store view 'default' (request {request.pk}): "
        "succeeded.\n"
        "1 forget request: 1 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert "ana@example.test" not in result.output


def test_verbosity_0_prints_nothing_on_success(pureclarity: LocalPureClarity) -> None:
    result = forget("ana@example.test", verbosity=0)

    assert result == Result("", "", None)
    assert pureclarity.identifiers == ["ana@example.test"]


def test_verbosity_0_still_reports_failures(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=503)

    result = forget("ana@example.test", verbosity=0)

    assert result.stdout == ""
    assert "a***@e***.test in store view 'default'" in result.stderr
    assert "503" in result.stderr
    assert result.error is not None


def test_file_skips_blank_lines_and_repeats(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "ids.txt",
        b"ana@example.test\n\n   \n  ana@example.test  \r\n42\n42\n\n",
    )

    result = forget("--file", path)

    assert result.error is None
    assert sorted(pureclarity.identifiers) == ["42", "ana@example.test"]
    assert "2 forget requests: 2 succeeded" in result.stdout


def test_file_and_arguments_combine(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "ids.txt", b"ana@example.test\n42\n")

    result = forget("42", "bo@example.test", "--file", path)

    assert result.error is None
    assert sorted(pureclarity.identifiers) == [
        "42",
        "ana@example.test",
        "bo@example.test",
    ]


def test_file_is_read_as_utf8_without_its_byte_order_mark(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "ids.txt", b"\xef\xbb\xbf" + f"{NON_ASCII}\n".encode()
    )

    result = forget("--file", path)

    assert result.error is None
    assert pureclarity.identifiers == [NON_ASCII]


@pytest.mark.parametrize("stream", [io.BytesIO, io.StringIO])
def test_stdin_with_a_dash(pureclarity: LocalPureClarity, stream: Any) -> None:
    text = f"ana@example.test\n\n{NON_ASCII}\nana@example.test\n"
    stdin = stream(text.encode()) if stream is io.BytesIO else stream(text)

    result = forget("--file", "-", stdin=stdin)

    assert result.error is None
    assert sorted(pureclarity.identifiers) == ["ana@example.test", NON_ASCII]


def test_bad_lines_are_all_reported_and_nothing_is_written(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    path = write_lines(
        tmp_path / "ids.txt",
        b"ana@example.test\nbad\x00one@example.test\n\n"
        + b"x" * 256
        + b"\nlatin-\xe9@example.test\n",
    )

    result = forget("--file", path)

    assert result.stderr.splitlines() == [
        f"{path}, line 2: The identifier 'b***@e***.test' holds control or "
        "invisible characters (such as a byte order mark or a zero-width space); "
        "remove them.",
        f"{path}, line 4: The identifier is 256 characters long; the most is 255.",
        f"{path}, line 5: This line is not valid UTF-8; save the file as UTF-8.",
    ]
    assert result.error == (
        "3 identifiers cannot be sent (see above); nothing was recorded or sent."
    )
    assert ForgetRequest.objects.count() == 0
    assert pureclarity.received == []


def test_a_bad_argument_stops_the_good_ones_too(pureclarity: LocalPureClarity) -> None:
    result = forget("ana@example.test", "")

    assert result.stderr == "argument 2: The identifier is empty.\n"
    assert result.error is not None
    assert ForgetRequest.objects.count() == 0
    assert pureclarity.received == []


def test_a_missing_file_is_an_error(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    result = forget("ana@example.test", "--file", str(tmp_path / "missing.txt"))

    assert result.error is not None
    assert result.error.startswith(f"Cannot read {tmp_path / 'missing.txt'}:")
    assert ForgetRequest.objects.count() == 0


def test_an_empty_file_forgets_nobody(
    pureclarity: LocalPureClarity, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "ids.txt", b"\n  \n")

    result = forget("--file", path)

    assert result == Result("No forget requests to send.\n", "", None)


def test_without_identifiers_or_mode_it_says_what_to_give(
    pureclarity: LocalPureClarity,
) -> None:
    result = forget()

    assert result.error is not None
    assert "--file" in result.error
    assert "--retry-failed" in result.error
    assert "--deliver" in result.error


def test_dry_run_writes_and_sends_nothing(pureclarity: LocalPureClarity) -> None:
    result = forget("ana@example.test", NON_ASCII, "--dry-run")

    assert result.error is None
    assert result.stdout.splitlines() == [
        "Would forget a***@e***.test in store view 'default'.",
        "Would forget z***@e***.test in store view 'default'.",
        "Dry run: nothing was recorded or sent.",
    ]
    assert ForgetRequest.objects.count() == 0
    assert pureclarity.received == []


def test_dry_run_says_what_would_be_skipped_retried_and_delivered(
    pureclarity: LocalPureClarity,
) -> None:
    forget("done@example.test")
    pureclarity.reply(status=400)
    forget("failed@example.test")
    delivery.record(["pending@example.test"], source=Source.API)
    pureclarity.reset()
    before = statuses()

    result = forget(
        "done@example.test", "--dry-run", "--retry-failed", "--deliver", verbosity=2
    )

    failed = ForgetRequest.objects.get(status=Status.FAILED)
    pending = ForgetRequest.objects.get(status=Status.PENDING)
    assert result.error is None
    assert result.stdout.splitlines() == [
        "Would skip d***@e***.test in store view 'default': already forgotten "
        "(--force sends it again).",
        f"Would retry f***@e***.test in store view 'default' (request {failed.pk}).",
        "Would retry 1 failed request.",
        f"Would deliver p***@e***.test in store view 'default' (request {pending.pk}).",
        "Would deliver 1 pending request.",
        "Dry run: nothing was recorded or sent.",
    ]
    assert statuses() == before
    assert pureclarity.received == []


@pytest.mark.parametrize("status", [400, 503])
def test_retry_failed_sends_failed_requests_again(
    pureclarity: LocalPureClarity, status: int
) -> None:
    pureclarity.reply(status=status, times=1)
    first = forget("ana@example.test")

    result = forget("--retry-failed")

    assert first.error is not None
    assert result.error is None
    assert "1 forget request: 1 succeeded, 0 failed" in result.stdout
    assert pureclarity.identifiers == ["ana@example.test", "ana@example.test"]
    assert statuses() == [Status.SUCCEEDED]


def test_retry_failed_leaves_requests_never_tried(
    pureclarity: LocalPureClarity,
) -> None:
    delivery.record(["later@example.test"], source=Source.API)
    later = timezone.now() + timedelta(hours=1)
    ForgetRequest.objects.update(next_attempt_at=later)

    result = forget("--retry-failed")

    assert result == Result("No forget requests to send.\n", "", None)
    assert ForgetRequest.objects.get().next_attempt_at == later
    assert pureclarity.received == []


def test_deliver_sends_pending_requests(pureclarity: LocalPureClarity) -> None:
    delivery.record(["ana@example.test", "42"], source=Source.API)

    result = forget("--deliver")

    assert result.error is None
    assert "2 forget requests: 2 succeeded, 0 failed" in result.stdout
    assert sorted(pureclarity.identifiers) == ["42", "ana@example.test"]
    assert statuses() == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_deliver_with_nothing_pending(pureclarity: LocalPureClarity) -> None:
    result = forget("--deliver")

    assert result == Result("No forget requests to send.\n", "", None)
    assert pureclarity.received == []


def test_deliver_leaves_requests_waiting_out_their_backoff(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=503, times=1)
    forget("ana@example.test")

    result = forget("--deliver")

    assert result == Result("No forget requests to send.\n", "", None)
    assert pureclarity.identifiers == ["ana@example.test"]


def test_asking_again_sends_at_once_despite_the_backoff(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=503, times=1)
    forget("ana@example.test")

    result = forget("ana@example.test")

    assert result.error is None
    assert pureclarity.identifiers == ["ana@example.test", "ana@example.test"]
    assert statuses() == [Status.SUCCEEDED]


def test_already_forgotten_is_skipped_unless_forced(
    pureclarity: LocalPureClarity,
) -> None:
    forget("ana@example.test")

    skipped = forget("ana@example.test")
    forced = forget("ana@example.test", "--force")

    assert skipped.stdout == (
        "1 forget request: 0 succeeded, 0 failed, 1 already forgotten.\n"
    )
    assert forced.stdout == (
        "1 forget request: 1 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert pureclarity.identifiers == ["ana@example.test", "ana@example.test"]


def test_a_request_being_sent_elsewhere_is_left_to_that_process(
    pureclarity: LocalPureClarity,
) -> None:
    delivery.record(["ana@example.test"], source=Source.API)
    lease = timezone.now() + timedelta(minutes=5)
    ForgetRequest.objects.update(status=Status.SENDING, lease_expires_at=lease)

    result = forget("ana@example.test", verbosity=2)

    request = ForgetRequest.objects.get()
    assert result == Result(
        f"a***@e***.test in store view 'default' (request {request.pk}): still "
        "pending (not due yet, or being sent elsewhere).\n"
        "1 forget request: 0 succeeded, 0 failed, 0 already forgotten, "
        "1 still pending.\n",
        "",
        None,
    )
    assert pureclarity.received == []


def test_store_view_limits_where_identifiers_are_forgotten(
    two_store_views: LocalPureClarity,
) -> None:
    result = forget("ana@example.test", "--store-view", "us")

    assert result.error is None
    assert [r.access_key for r in two_store_views.received] == ["AK-US"]
    assert list(ForgetRequest.objects.values_list("store_view", flat=True)) == ["us"]


def test_every_store_view_by_default(two_store_views: LocalPureClarity) -> None:
    result = forget("ana@example.test")

    assert "2 forget requests: 2 succeeded" in result.stdout
    assert sorted(r.access_key or "" for r in two_store_views.received) == [
        "AK-UK",
        "AK-US",
    ]


def test_store_view_limits_deliver(two_store_views: LocalPureClarity) -> None:
    delivery.record(["ana@example.test"], source=Source.API)

    result = forget("--deliver", "--store-view", "uk")

    assert result.error is None
    assert [r.access_key for r in two_store_views.received] == ["AK-UK"]
    assert sorted(ForgetRequest.objects.values_list("store_view", "status")) == [
        ("uk", Status.SUCCEEDED),
        ("us", Status.PENDING),
    ]


def test_an_unknown_store_view_lists_the_configured_ones(
    two_store_views: LocalPureClarity,
) -> None:
    result = forget("ana@example.test", "--store-view", "fr")

    assert result.error == (
        "Unknown store view 'fr'. The configured store views are: uk, us."
    )
    assert ForgetRequest.objects.count() == 0


def test_secret_key_is_never_shown_on_401(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=401, body=f"bad key {SECRET_KEY}")

    result = forget("ana@example.test", verbosity=3)

    assert result.error is not None
    assert "check the access key and secret key" in result.stderr
    assert SECRET_KEY not in result.output


def test_a_paused_store_view_is_reported_and_not_sent_to(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=403)
    forget("ana@example.test")

    result = forget("bo@example.test")

    assert result.error is not None
    assert "b***@e***.test in store view 'default' (request" in result.stderr
    assert "deliveries to this store view are paused until" in result.stderr
    assert "check the access key and secret key" in result.stderr
    assert pureclarity.identifiers == ["ana@example.test"]


def test_secret_key_is_never_shown_when_the_connection_is_refused(
    pureclarity: LocalPureClarity,
) -> None:
    config = gdpr_settings(pureclarity, BASE_URL=f"http://127.0.0.1:{closed_port()}")

    with override_settings(PURECLARITY_GDPR=config):
        result = forget("ana@example.test", verbosity=3)

    assert result.error is not None
    assert "connection to PureClarity failed" in result.stderr
    assert SECRET_KEY not in result.output
    assert "ana@example.test" not in result.output


def test_unusable_settings_stop_before_anything_is_written(
    pureclarity: LocalPureClarity,
) -> None:
    config = gdpr_settings(pureclarity, SECRET_KEY="")

    with override_settings(PURECLARITY_GDPR=config):
        result = forget("ana@example.test")

    assert result.error is not None
    assert "SECRET_KEY" in result.error
    assert ForgetRequest.objects.count() == 0


def test_a_mode_that_runs_alone_refuses_company(
    pureclarity: LocalPureClarity,
) -> None:
    results = [
        forget("--list", "--deliver"),
        forget("--worker", "ana@example.test"),
        forget("--purge", "--worker"),
        forget("--deliver", "--status", "failed"),
        forget("--deliver", "--older-than-days", "3"),
        forget("--deliver", "--poll-interval", "1"),
        forget("--worker", "--dry-run"),
        forget("--purge", "--store-view", "default", "--older-than-days", "3"),
    ]

    assert [result.error for result in results] == [
        "--list cannot be combined with --deliver.",
        "--worker cannot be combined with identifiers.",
        "--worker cannot be combined with --purge.",
        "--status applies only to --list.",
        "--older-than-days applies only to --purge.",
        "--poll-interval applies only to --worker.",
        "--worker cannot be combined with --dry-run.",
        "--purge works on every store view; drop --store-view.",
    ]
    assert pureclarity.received == []


@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch-size", "0"), ("--older-than-days", "-1"), ("--poll-interval", "0")],
)
def test_sizes_and_intervals_must_be_positive(option: str, value: str) -> None:
    with pytest.raises(CommandError, match=f"'{value}' is not a"):
        call_command("pureclarity_forget", "--purge", option, value)


# --deliver: batch after batch until nothing is due.


def test_deliver_goes_through_every_due_request_in_batches(
    pureclarity: LocalPureClarity,
) -> None:
    delivery.record([f"user{n}@example.test" for n in range(7)], source=Source.API)
    ids = sorted(ForgetRequest.objects.values_list("pk", flat=True))

    result = forget("--deliver", "--batch-size", "3", verbosity=2)

    assert result.error is None
    assert result.stdout.splitlines() == [
        *(
            f"u***@e***.test in store view 'default' (request {pk}): succeeded."
            for pk in ids
        ),
        "7 forget requests: 7 succeeded, 0 failed, 0 already forgotten.",
    ]
    assert sorted(pureclarity.identifiers) == sorted(
        f"user{n}@example.test" for n in range(7)
    )
    assert pureclarity.max_concurrent <= 3
    assert statuses() == [Status.SUCCEEDED] * 7


def test_deliver_reports_failures_of_any_batch_and_exits_non_zero(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=400, identifier="bad@example.test")
    delivery.record(
        ["a@example.test", "bad@example.test", "c@example.test"], source=Source.API
    )
    bad = ForgetRequest.objects.get(identifier="bad@example.test")

    result = forget("--deliver", "--batch-size", "1")

    assert result.stderr == (
        f"b***@e***.test in store view 'default' (request {bad.pk}): failed: "
        "PureClarity answered 400 (Bad Request): the request was not accepted.\n"
    )
    assert result.stdout == (
        "3 forget requests: 2 succeeded, 1 failed, 0 already forgotten.\n"
    )
    assert result.error is not None
    assert result.error.startswith("1 forget request not delivered; see above.")
    assert statuses() == [Status.FAILED, Status.SUCCEEDED, Status.SUCCEEDED]


def test_deliver_in_batches_keeps_to_its_store_view(
    two_store_views: LocalPureClarity,
) -> None:
    delivery.record(
        ["a@example.test", "b@example.test", "c@example.test"], source=Source.API
    )

    result = forget("--deliver", "--store-view", "us", "--batch-size", "1")

    assert result.stdout == (
        "3 forget requests: 3 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert {r.access_key for r in two_store_views.received} == {"AK-US"}
    assert sorted(ForgetRequest.objects.values_list("store_view", "status")) == [
        *[("uk", Status.PENDING)] * 3,
        *[("us", Status.SUCCEEDED)] * 3,
    ]


def test_recorded_and_due_requests_are_each_sent_once(
    pureclarity: LocalPureClarity,
) -> None:
    delivery.record(["due@example.test"], source=Source.API)

    result = forget("new@example.test", "--deliver", "--batch-size", "1")

    assert result.stdout == (
        "2 forget requests: 2 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert sorted(pureclarity.identifiers) == ["due@example.test", "new@example.test"]


# --worker: in this process, stopped by a SIGTERM it sends itself.


@contextmanager
def sigterm_once(ready: Callable[[], bool]) -> Iterator[None]:
    """Send this process SIGTERM once the worker handles it and ``ready()`` holds.

    Without the worker's handler in place, SIGTERM would end the test run, so it
    is sent only while that handler is installed; after 10 s it is sent anyway,
    so a worker that never gets ready fails the test instead of hanging it.
    """
    original = signal.getsignal(signal.SIGTERM)

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline + 5:
            handled = signal.getsignal(signal.SIGTERM) is not original
            if handled and (ready() or time.monotonic() > deadline):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    yield
    watcher.join()


def sqlite_warning() -> str:
    if connection.vendor != "sqlite":
        return ""
    return (
        "Warning: the database is SQLite; run only one worker. Several would wait "
        "on each other's writes and fail with 'database is locked'.\n"
    )


WORKER_STARTED = (
    "Worker started: delivering due forget requests in batches of 1, looking "
    "every 0.05 s. SIGTERM or Ctrl-C stops it once the requests in flight are done."
)


@pytest.mark.django_db(transaction=True)
def test_worker_prints_each_batch_and_a_summary_when_stopped(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=400, identifier="bad@example.test")
    delivery.record(
        ["a@example.test", "bad@example.test", "c@example.test"], source=Source.API
    )
    original = signal.getsignal(signal.SIGTERM)

    with sigterm_once(lambda: len(pureclarity.received) >= 3):
        result = forget(
            "--worker", "--poll-interval", "0.05", "--batch-size", "1", verbosity=2
        )

    assert result.error is None
    assert result.stderr == sqlite_warning()
    assert result.stdout.splitlines() == [
        WORKER_STARTED,
        "Delivered a batch of 1 forget request: 1 succeeded, 0 failed, 0 to try again.",
        "Delivered a batch of 1 forget request: 0 succeeded, 1 failed, 0 to try again.",
        "Delivered a batch of 1 forget request: 1 succeeded, 0 failed, 0 to try again.",
        "Worker stopped: 3 forget requests: 2 succeeded, 1 failed, 0 to try again.",
    ]
    assert statuses() == [Status.FAILED, Status.SUCCEEDED, Status.SUCCEEDED]
    assert signal.getsignal(signal.SIGTERM) is original


@pytest.mark.django_db(transaction=True)
def test_worker_finishes_the_request_in_flight_when_stopped(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(hold=True, times=1)
    delivery.record(["a@example.test", "b@example.test"], source=Source.API)

    def held_then_released() -> bool:
        if not pureclarity.received:
            return False
        threading.Timer(0.3, pureclarity.release).start()
        return True

    with (
        override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_IN_FLIGHT=1)),
        sigterm_once(held_then_released),
    ):
        result = forget("--worker", "--poll-interval", "0.05", verbosity=1)

    assert result.error is None
    assert result.stdout.splitlines()[-1] == (
        "Worker stopped: 2 forget requests: 1 succeeded, 0 failed, 1 to try again."
    )
    assert statuses() == [Status.PENDING, Status.SUCCEEDED]
    assert len(pureclarity.identifiers) == 1


def test_sigterm_stops_deliver_after_the_request_in_flight(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(hold=True, times=1)
    delivery.record(["a@example.test", "b@example.test"], source=Source.API)

    def held_then_released() -> bool:
        if not pureclarity.received:
            return False
        threading.Timer(0.3, pureclarity.release).start()
        return True

    with (
        override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_IN_FLIGHT=1)),
        sigterm_once(held_then_released),
    ):
        result = forget("--deliver")

    assert result.stdout == (
        "2 forget requests: 1 succeeded, 0 failed, 0 already forgotten, "
        "1 still pending.\n"
    )
    assert result.error == (
        "Stopped by a signal before the run was complete; requests not sent stay "
        "pending for the next run."
    )
    assert statuses() == [Status.PENDING, Status.SUCCEEDED]
    assert len(pureclarity.identifiers) == 1


@pytest.mark.django_db(transaction=True)
def test_deliver_runs_in_a_thread_that_cannot_handle_signals(
    pureclarity: LocalPureClarity,
) -> None:
    delivery.record(["ana@example.test"], source=Source.API)
    results: list[Result] = []

    def deliver_in_thread() -> None:
        results.append(forget("--deliver"))
        # Its own connection, which must not outlive the test database.
        connections.close_all()

    thread = threading.Thread(target=deliver_in_thread)
    thread.start()
    thread.join(timeout=30)

    assert results == [
        Result(
            "1 forget request: 1 succeeded, 0 failed, 0 already forgotten.\n",
            "",
            None,
        )
    ]


# --list


def row(
    pk: int | None,
    hint: str,
    store_view: str,
    status: str,
    attempts: int,
    next_attempt: str,
    error: str,
) -> str:
    """A --list row, its cells padded as the header lays them out."""
    return (
        f"{pk:>7}  {hint:<20}  {store_view:<12}  {status:<15}  {attempts:>8}  "
        f"{next_attempt:<25}  {error}"
    )


LIST_HEADER = (
    "     ID  IDENTIFIER            STORE VIEW    STATUS           ATTEMPTS  "
    "NEXT ATTEMPT               LAST ERROR"
)


def test_list_shows_open_requests_and_counts(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=400, identifier="failed@example.test")
    forget("failed@example.test", "done@example.test")
    delivery.record(["pending@example.test", "sending@example.test"], source=Source.API)
    ForgetRequest.objects.filter(identifier="sending@example.test").update(
        status=Status.SENDING
    )
    delivery.record_needs_attention(
        store_views=None, source=Source.USER_DELETION, reason="No identifier. " * 8
    )
    failed, pending, sending, attention = ForgetRequest.objects.exclude(
        status=Status.SUCCEEDED
    ).order_by("created_at", "id")

    result = forget("--list")

    error = "PureClarity answered 400 (Bad Request): the request was n..."
    reason = "No identifier. No identifier. No identifier. No identifie..."
    assert result.stdout.splitlines() == [
        LIST_HEADER,
        row(failed.pk, "f***@e***.test", "default", "failed", 1, "-", error),
        row(pending.pk, "p***@e***.test", "default", "pending", 0, "due", "-"),
        row(sending.pk, "s***@e***.test", "default", "sending", 0, "-", "-"),
        row(attention.pk, "-", "default", "needs_attention", 0, "-", reason),
        "4 forget requests: 1 pending, 1 sending, 1 failed, 1 needs attention.",
    ]
    assert result.stderr == ""


def test_list_status_filters(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=400, identifier="failed@example.test")
    forget("failed@example.test")
    delivery.record(["pending@example.test"], source=Source.API)

    result = forget("--list", "--status", "failed")

    lines = result.stdout.splitlines()
    assert lines[0] == LIST_HEADER
    assert [line.split()[1:3] for line in lines[1:-1]] == [
        ["f***@e***.test", "default"]
    ]
    assert lines[-1] == "1 forget request: 1 failed."


def test_list_with_nothing_open(pureclarity: LocalPureClarity) -> None:
    forget("done@example.test")

    result = forget("--list")

    assert result == Result(
        "0 forget requests: 0 pending, 0 sending, 0 failed, 0 needs attention.\n",
        "",
        None,
    )


def test_list_shows_paused_store_views(two_store_views: LocalPureClarity) -> None:
    two_store_views.reply(status=403, access_key="AK-UK")
    forget("ana@example.test")
    until = StoreViewPause.objects.get().paused_until.isoformat("T", "seconds")

    everything = forget("--list", "--status", "failed")
    us_only = forget("--list", "--status", "failed", "--store-view", "us")

    assert everything.stdout.splitlines() == [
        "0 forget requests: 0 failed.",
        f"Store view 'uk' is paused until {until}: "
        "PureClarity answered 403 (Forbidden): check the access key and secret key "
        "of store view 'uk'. Lift the pause with --resume uk once the cause is "
        "fixed.",
    ]
    assert us_only.stdout == "0 forget requests: 0 failed.\n"


# --resume and pauses


def pause_default_store_view(pureclarity: LocalPureClarity) -> None:
    """PureClarity refuses the keys once; the store view is paused."""
    pureclarity.reply(status=403, times=1)
    forget("refused@example.test")
    delivery.record(["waiting@example.test"], source=Source.API)
    assert StoreViewPause.objects.filter(store_view="default").exists()


def test_resume_lifts_the_pause_and_says_what_is_due(
    pureclarity: LocalPureClarity,
) -> None:
    pause_default_store_view(pureclarity)

    result = forget("--resume", "default")
    delivered = forget("--deliver")

    assert result == Result(
        "Resumed store view 'default': 2 pending requests are due again.\n", "", None
    )
    assert not StoreViewPause.objects.exists()
    assert delivered.stdout == (
        "2 forget requests: 2 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert sorted(pureclarity.identifiers) == [
        "refused@example.test",
        "refused@example.test",
        "waiting@example.test",
    ]


def test_resume_and_deliver_in_one_run(two_store_views: LocalPureClarity) -> None:
    two_store_views.reply(status=403, access_key="AK-UK", times=1)
    forget("ana@example.test")

    result = forget("--resume", "uk", "--resume", "uk", "--deliver")

    assert result.stdout == (
        "Resumed store view 'uk': 1 pending request is due again.\n"
        "1 forget request: 1 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert statuses() == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_resume_of_a_store_view_that_is_not_paused(
    pureclarity: LocalPureClarity,
) -> None:
    result = forget("--resume", "default")

    assert result == Result(
        "Store view 'default' was not paused; 0 pending requests are due now.\n",
        "",
        None,
    )


def test_resume_of_an_unknown_store_view(pureclarity: LocalPureClarity) -> None:
    result = forget("--resume", "fr")

    assert result.error == (
        "Store view 'fr' is neither configured nor paused. The configured store "
        "views are: default."
    )


def test_resume_dry_run_changes_nothing(pureclarity: LocalPureClarity) -> None:
    pause_default_store_view(pureclarity)
    pause = StoreViewPause.objects.get()

    result = forget("--resume", "default", "--dry-run")

    assert result.stdout.splitlines() == [
        "Would resume store view 'default' (paused until "
        f"{pause.paused_until.isoformat('T', 'seconds')}): 2 pending requests would "
        "be due again.",
        "Dry run: nothing was recorded or sent.",
    ]
    assert StoreViewPause.objects.get() == pause
    assert len(pureclarity.identifiers) == 1


def test_retry_failed_lifts_the_pause_of_the_store_views_it_retries(
    pureclarity: LocalPureClarity,
) -> None:
    pause_default_store_view(pureclarity)

    result = forget("--retry-failed")

    assert result.error is None
    assert result.stdout == (
        "Resumed store view 'default': 2 pending requests are due again.\n"
        "2 forget requests: 2 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert not StoreViewPause.objects.exists()
    assert statuses() == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_retry_failed_leaves_other_store_views_paused(
    two_store_views: LocalPureClarity,
) -> None:
    two_store_views.reply(status=403, access_key="AK-UK")
    two_store_views.reply(status=400, access_key="AK-US", times=1)
    forget("ana@example.test")

    result = forget("--retry-failed", "--store-view", "us")

    assert result.stdout == (
        "1 forget request: 1 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert list(StoreViewPause.objects.values_list("store_view", flat=True)) == ["uk"]


def test_retry_failed_dry_run_says_which_pause_it_would_lift(
    pureclarity: LocalPureClarity,
) -> None:
    pause_default_store_view(pureclarity)
    pause = StoreViewPause.objects.get()
    before = statuses()

    result = forget("--retry-failed", "--dry-run")

    assert result.stdout.splitlines() == [
        "Would resume store view 'default' (paused until "
        f"{pause.paused_until.isoformat('T', 'seconds')}) to retry its requests.",
        "Would retry 2 failed requests.",
        "Dry run: nothing was recorded or sent.",
    ]
    assert StoreViewPause.objects.get() == pause
    assert statuses() == before
    assert len(pureclarity.identifiers) == 1


# --purge


def finished_request(identifier: str, days_old: int) -> ForgetRequest:
    """A request delivered at the first attempt, created ``days_old`` days ago."""
    forget(identifier)
    request = ForgetRequest.objects.latest("id")
    created = timezone.now() - timedelta(days=days_old)
    ForgetRequest.objects.filter(pk=request.pk).update(created_at=created)
    return request


def test_purge_strips_old_finished_requests(pureclarity: LocalPureClarity) -> None:
    old = finished_request("old@example.test", days_old=31)
    recent = finished_request("new@example.test", days_old=29)

    result = forget("--purge", "--older-than-days", "30")

    assert result.error is None
    assert result.stdout.startswith(
        "Purged the details of 1 finished forget request and 1 attempt older than "
        "30 days (created before "
    )
    assert result.stdout.endswith("); the proof of each erasure is kept.\n")
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.identifier_hint == ""
    assert old.identifier_hash
    assert recent.identifier_hint == "n***@e***.test"


def test_purge_dry_run_counts_what_a_purge_then_does(
    pureclarity: LocalPureClarity,
) -> None:
    finished_request("old@example.test", days_old=31)
    finished_request("older@example.test", days_old=40)

    preview = forget("--purge", "--older-than-days", "30", "--dry-run")
    hints = sorted(ForgetRequest.objects.values_list("identifier_hint", flat=True))
    purged = forget("--purge", "--older-than-days", "30")

    assert preview.stdout.startswith(
        "Would purge the details of 2 finished forget requests and 2 attempts older "
        "than 30 days (created before "
    )
    assert preview.stdout.endswith(").\nDry run: nothing was changed.\n")
    assert hints == ["o***@e***.test", "o***@e***.test"]
    assert purged.stdout.startswith(
        "Purged the details of 2 finished forget requests and 2 attempts older "
    )


def test_purge_reads_retention_days(pureclarity: LocalPureClarity) -> None:
    finished_request("old@example.test", days_old=8)
    config = gdpr_settings(pureclarity, RETENTION_DAYS=7)

    with override_settings(PURECLARITY_GDPR=config):
        result = forget("--purge")

    assert result.stdout.startswith(
        "Purged the details of 1 finished forget request and 1 attempt older than "
        "7 days"
    )


def test_purge_without_an_age_says_what_to_set(pureclarity: LocalPureClarity) -> None:
    result = forget("--purge")

    assert result.error == (
        "--purge needs an age: pass --older-than-days N, or set "
        "PURECLARITY_GDPR['RETENTION_DAYS'] to how many days finished requests keep "
        "their details, such as 365."
    )


# Real processes: the command as a shell runs it, on a terminal set to ASCII.


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, copied by each test."""
    database = tmp_path_factory.mktemp("migrated") / "db.sqlite3"
    env = subprocess_env(database, "http://127.0.0.1:9")

    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return database


def subprocess_env(database: Path, base_url: str) -> dict[str, str]:
    # The C locale without Python's UTF-8 coercion: arguments arrive undecodable
    # and every stream is ASCII, the worst a terminal can do.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"sqlite:///{database}",
        "PURECLARITY_TEST_BASE_URL": base_url,
        "PYTHONIOENCODING": "ascii",
        "LC_ALL": "C",
        "PYTHONUTF8": "0",
        "PYTHONCOERCECLOCALE": "0",
    }


@dataclass
class Process:
    run: subprocess.CompletedProcess[bytes]
    database: Path

    @property
    def stdout(self) -> str:
        return self.run.stdout.decode("ascii")

    @property
    def stderr(self) -> str:
        return self.run.stderr.decode("ascii")

    def statuses(self) -> list[str]:
        with closing(sqlite3.connect(self.database)) as db:
            rows = db.execute("SELECT status FROM pureclarity_gdpr_forgetrequest")
            return sorted(status for (status,) in rows)


@pytest.fixture
def run_command(
    migrated_database: Path, tmp_path: Path, pureclarity: LocalPureClarity
) -> Iterator[Any]:
    """Run pureclarity_forget in a process of its own, against the local server."""
    database = tmp_path / "db.sqlite3"
    database.write_bytes(migrated_database.read_bytes())
    base_url = pureclarity.url

    def run(*args: str, stdin: bytes = b"", base_url: str = base_url) -> Process:
        env = subprocess_env(database, base_url)
        completed = subprocess.run(  # noqa: S603  (arguments come from the tests)
            [sys.executable, "-m", "django", "pureclarity_forget", *args],
            env=env,
            input=stdin,
            capture_output=True,
            timeout=60,
        )
        return Process(completed, database)

    yield run


@pytest.mark.slow
def test_process_reports_a_failure_on_an_ascii_terminal(
    run_command: Any, pureclarity: LocalPureClarity
) -> None:
    pureclarity.reply(status=500, identifier="bad@example.test")

    process = run_command(NON_ASCII, "bad@example.test")

    assert process.run.returncode == 1
    assert "UnicodeEncodeError" not in process.stderr
    assert "Traceback" not in process.stderr
    assert "b***@e***.test in store view 'default' (request" in process.stderr
    assert "PureClarity answered 500" in process.stderr
    assert "CommandError: 1 forget request not delivered;" in process.stderr
    assert "2 forget requests: 1 succeeded, 1 failed, 0 already forgotten." in (
        process.stdout
    )
    assert sorted(pureclarity.identifiers) == ["bad@example.test", NON_ASCII]
    assert process.statuses() == [Status.PENDING, Status.SUCCEEDED]


@pytest.mark.slow
def test_process_reads_stdin_and_escapes_what_ascii_cannot_show(
    run_command: Any, pureclarity: LocalPureClarity
) -> None:
    stdin = f"{NON_ASCII_FIRST}\n\n{NON_ASCII_FIRST}\n42\n".encode()

    process = run_command("--file", "-", "-v2", stdin=stdin)

    assert process.run.returncode == 0, process.stderr
    assert "\\xeb***@e***.test in store view 'default'" in process.stdout
    assert "2 forget requests: 2 succeeded, 0 failed" in process.stdout
    assert sorted(pureclarity.identifiers) == ["42", NON_ASCII_FIRST]


@pytest.mark.slow
def test_process_keeps_the_secret_when_the_connection_is_refused(
    run_command: Any, pureclarity: LocalPureClarity
) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"

    process = run_command("ana@example.test", "-v3", base_url=base_url)

    assert process.run.returncode == 1
    assert "connection to PureClarity failed" in process.stderr
    assert SECRET_KEY not in process.stdout + process.stderr
    assert process.statuses() == [Status.PENDING]


def test_the_worker_survives_a_database_failure(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from django.db import OperationalError

    from pureclarity_gdpr import worker

    calls = []

    def failing_drain(*args: object, **kwargs: object) -> worker.Counts:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        stop.set()
        return worker.Counts()

    stop = threading.Event()
    # A dropped connection cannot be caused on demand; stand one in for drain().
    monkeypatch.setattr(worker, "drain", failing_drain)

    worker.run(stop, poll_interval=0.01)

    assert len(calls) == 2
