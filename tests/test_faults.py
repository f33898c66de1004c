"""Faults in real processes: workers killed or stopped mid-request, several workers
draining one queue, a process dying between commit and delivery.

Every process here is ``python -m django pureclarity_forget ...`` (or a few lines
of Python for setting up and reading rows) with the suite's settings,
``tests.settings``, pointed at the local PureClarity through
PURECLARITY_TEST_BASE_URL and given extra settings through
PURECLARITY_TEST_GDPR_JSON.

One approach serves every database: the processes share a database the test
process prepares but never touches itself; rows are written and read by helper
processes with the same settings as the workers, so what a test sees is what any
process sees after commit.

- SQLite: a file, migrated once per module by ``migrate`` in a subprocess and
  copied for each test (the suite's own SQLite database lives in memory, which
  no other process can open).
- PostgreSQL and MariaDB (the suite's DATABASE_URL starts with postgres or
  mysql): the test database pytest-django created, ``transactional_db`` making
  it exist and emptying it after each test; the processes get the suite's URL
  with that database's name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection

from pureclarity_gdpr.testing import LocalPureClarity

REPO = Path(__file__).resolve().parent.parent
# Short timeouts keep the lease short: it is max(LEASE, 2 * (connect + read)),
# so a request claimed by a process that died is claimable again after 3 s.
FAST = {"CONNECT_TIMEOUT": 0.5, "READ_TIMEOUT": 1.0, "LEASE": 1, "RETRY_DELAY": 1}
LEASE_SECONDS = 3.0
WAIT = 30.0

SETUP = """\
import json, sys
import django
django.setup()
from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status
"""

RECORD = SETUP + "delivery.record(json.loads(sys.argv[1]), source=Source.API)\n"

STATE = (
    SETUP
    + """\
rows = ForgetRequest.objects.order_by("id").values_list("status", "attempts")
print(json.dumps(list(rows)))
"""
)

# Rows a crashed run left behind: one recorded and never sent, and one claimed by
# a process that died, its lease long over.
STUCK = (
    SETUP
    + """\
from datetime import timedelta
from django.utils import timezone
from pureclarity_gdpr.identifiers import identifier_hash, mask

an_hour_ago = timezone.now() - timedelta(hours=1)

def stuck(identifier, **fields):
    digest = identifier_hash(identifier)
    ForgetRequest.objects.create(
        identifier=identifier,
        identifier_hash=digest,
        identifier_hint=mask(identifier),
        store_view="default",
        source=Source.API,
        open_key=ForgetRequest.make_open_key("default", digest),
        created_at=an_hour_ago,
        **fields,
    )

stuck("pending@example.test", status=Status.PENDING)
stuck(
    "sending@example.test",
    status=Status.SENDING,
    claim_token="0" * 32,
    lease_expires_at=an_hour_ago + timedelta(minutes=5),
)
"""
)

# A user deleted in immediate mode by a process that dies as soon as the deletion
# commits: its own on_commit callback, registered first, runs before ours.
DELETE_AND_DIE = (
    SETUP
    + """\
import os
from django.contrib.auth import get_user_model
from django.db import transaction
from pureclarity_gdpr.identifiers import identifiers_of

User = get_user_model()
fields = {"username": "ana"}
if any(field.name == "email" for field in User._meta.get_fields()):
    fields["email"] = "ana@example.test"
user = User.objects.create(**fields)
print(json.dumps(identifiers_of(user)[0]), flush=True)

with transaction.atomic():
    transaction.on_commit(lambda: os._exit(3))
    user.delete()
"""
)


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Processes:
    """Starts processes with the shared database and the local PureClarity."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[subprocess.Popen[str]] = []

    def start(
        self, *args: str, settings: dict[str, Any] | None = None
    ) -> subprocess.Popen[str]:
        env = {**self.env, "PURECLARITY_TEST_GDPR_JSON": json.dumps(settings or FAST)}
        process = subprocess.Popen(  # noqa: S603  (arguments come from the tests)
            [sys.executable, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def command(
        self, *args: str, settings: dict[str, Any] | None = None
    ) -> subprocess.Popen[str]:
        return self.start(
            "-m", "django", "pureclarity_forget", *args, settings=settings
        )

    def run(self, *args: str, settings: dict[str, Any] | None = None) -> Finished:
        return finish(self.command(*args, settings=settings))

    def python(self, code: str, *args: str) -> Finished:
        finished = finish(self.start("-c", code, *args))
        assert finished.returncode == 0, finished.stderr
        return finished

    def record(self, identifiers: list[str]) -> None:
        self.python(RECORD, json.dumps(identifiers))

    def rows(self) -> list[tuple[str, int]]:
        """Status and attempts of every forget request, in the order recorded."""
        return [tuple(row) for row in json.loads(self.python(STATE).stdout)]

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate()


def finish(process: subprocess.Popen[str], timeout: float = WAIT) -> Finished:
    stdout, stderr = process.communicate(timeout=timeout)
    return Finished(process.returncode, stdout, stderr)


def base_env(database_url: str, base_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database_url,
        "PURECLARITY_TEST_BASE_URL": base_url,
    }


def on_sqlite() -> bool:
    return connection.vendor == "sqlite"


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, copied by each test."""
    database = tmp_path_factory.mktemp("faults") / "db.sqlite3"
    env = base_env(f"sqlite:///{database}", "http://127.0.0.1:9")

    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v0"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return database


@pytest.fixture
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, transactional_db: None
) -> str:
    """A database URL every process of the test can open."""
    if on_sqlite():
        database = tmp_path / "db.sqlite3"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), database)
        return f"sqlite:///{database}"

    suite = urlsplit(os.environ["DATABASE_URL"])
    return suite._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@pytest.fixture
def processes(database_url: str, pureclarity: LocalPureClarity) -> Iterator[Processes]:
    started = Processes(base_env(database_url, pureclarity.url))
    try:
        yield started
    finally:
        pureclarity.release()
        started.stop_all()


def stop(process: subprocess.Popen[str]) -> Finished:
    process.send_signal(signal.SIGTERM)
    return finish(process)


def test_a_request_of_a_killed_worker_is_sent_again_once_its_lease_ends(
    processes: Processes, pureclarity: LocalPureClarity
) -> None:
    processes.record(["ana@example.test"])
    pureclarity.reply(hold=True, times=1)
    first = processes.command("--deliver")
    assert pureclarity.wait_for(1, timeout=WAIT)
    first.kill()
    killed_at = time.monotonic()
    second = processes.command("--worker", "--poll-interval", "0.2")

    assert pureclarity.wait_for(2, timeout=WAIT)
    resent_after = time.monotonic() - killed_at
    stopped = stop(second)

    assert finish(first).returncode == -signal.SIGKILL
    assert stopped.returncode == 0, stopped.stderr
    assert processes.rows() == [("succeeded", 1)]
    # Once to the worker that died waiting for the answer, once to the next one.
    assert pureclarity.identifiers == ["ana@example.test"] * 2
    assert resent_after >= LEASE_SECONDS - 0.5


@pytest.mark.parametrize("workers", [1, 4])
def test_workers_draining_together_send_each_request_once(
    processes: Processes, pureclarity: LocalPureClarity, workers: int
) -> None:
    if workers > 1 and on_sqlite():
        pytest.skip(
            "SQLite has one writer and no row locks: workers there wait on each "
            "other ('database is locked'), so the command tells to run only one"
        )
    identifiers = [f"user{n:03}@example.test" for n in range(500)]
    processes.record(identifiers)
    in_flight = 2
    # Each worker sends with keys of its own, so the server tells them apart, and
    # its first calls are held until every worker has some in flight: none can
    # drain the queue alone while the others are still starting.
    keys = [f"AK-WORKER-{n}" for n in range(workers)]
    for key in keys:
        pureclarity.reply(hold=True, times=in_flight, access_key=key)
    pureclarity.latency = 0.01

    started = [
        processes.command(
            "--deliver",
            "--batch-size",
            "25",
            settings={
                **FAST,
                "ACCESS_KEY": key,
                "READ_TIMEOUT": WAIT,
                "MAX_IN_FLIGHT": in_flight,
            },
        )
        for key in keys
    ]
    # Released once every held call has arrived, so none is held after it.
    all_sending = wait_until(
        lambda: sent(pureclarity) == dict.fromkeys(keys, in_flight)
    )
    pureclarity.release()
    finished = [finish(process) for process in started]

    assert all_sending, (sent(pureclarity), finished)
    assert [f.returncode for f in finished] == [0] * workers, finished
    assert sorted(pureclarity.identifiers) == identifiers
    assert Counter(status for status, _ in processes.rows()) == {"succeeded": 500}
    assert sum(sent_by(f) for f in finished) == 500
    # Each worker had a share, so they really did drain the queue together.
    assert all(sent_by(f) for f in finished)


def sent(pureclarity: LocalPureClarity) -> Counter[str | None]:
    """How many calls the server received with each access key."""
    return Counter(request.access_key for request in pureclarity.received)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sent_by(finished: Finished) -> int:
    """How many requests a --deliver run reported, from its summary line."""
    summary = finished.stdout.splitlines()[-1]
    if summary == "No forget requests to send.":
        return 0
    return int(summary.split()[0])


def test_requests_of_a_process_that_died_after_commit_are_delivered_once(
    processes: Processes, pureclarity: LocalPureClarity
) -> None:
    died = finish(processes.start("-c", DELETE_AND_DIE))
    identifiers = json.loads(died.stdout)
    rows_left = processes.rows()

    delivered = processes.run("--deliver")

    assert died.returncode == 3, died.stderr
    assert rows_left == [("pending", 0)] * len(identifiers)
    assert delivered.returncode == 0, delivered.stderr
    assert sorted(pureclarity.identifiers) == sorted(identifiers)
    assert processes.rows() == [("succeeded", 1)] * len(identifiers)


def test_rows_stuck_from_an_earlier_run_are_sent_once(
    processes: Processes, pureclarity: LocalPureClarity
) -> None:
    processes.python(STUCK)

    first = processes.run("--deliver")
    second = processes.run("--deliver")

    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        "2 forget requests: 2 succeeded, 0 failed, 0 already forgotten.\n"
    )
    assert second.stdout == "No forget requests to send.\n"
    assert sorted(pureclarity.identifiers) == [
        "pending@example.test",
        "sending@example.test",
    ]
    assert processes.rows() == [("succeeded", 1), ("succeeded", 1)]


def test_sigterm_lets_the_worker_finish_the_request_in_flight(
    processes: Processes, pureclarity: LocalPureClarity
) -> None:
    processes.record(["a@example.test", "b@example.test"])
    pureclarity.reply(hold=True, times=1)
    settings = {**FAST, "READ_TIMEOUT": 10.0, "MAX_IN_FLIGHT": 1}
    worker = processes.command("--worker", "--poll-interval", "0.2", settings=settings)
    assert pureclarity.wait_for(1, timeout=WAIT)

    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    running_after_sigterm = worker.poll() is None
    pureclarity.release()
    stopped = finish(worker)

    assert running_after_sigterm
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines()[-1] == (
        "Worker stopped: 2 forget requests: 1 succeeded, 0 failed, 1 to try again."
    )
    assert sorted(processes.rows()) == [("pending", 0), ("succeeded", 1)]
    assert len(pureclarity.identifiers) == 1
