"""DELIVERY = "tasks" with real task backends and real worker processes.

A user deletion commits in one process and enqueues the delivery as a task of
Django's Tasks framework; a separate worker process, the backend's own command,
then runs it against the local PureClarity:

- django-tasks-db: tasks are rows in the shared database, run by
  ``db_worker --batch``;
- django-tasks-rq: tasks are RQ jobs in Redis (PURECLARITY_TEST_REDIS_URL, by
  default database 7 on 127.0.0.1:6379), run by ``rqworker --burst``.

Every process uses ``tests.settings_tasks`` (the suite's settings plus the
backend). As in test_faults.py, the processes share a database the test process
prepares but never touches itself: a migrated SQLite file, or the test database
pytest-django created on PostgreSQL or MariaDB. A backend whose package is not
installed, or a Redis that does not answer, skips its test; with
PURECLARITY_TEST_TASK_BACKENDS=required (as in CI) it fails it instead.

With rq 3.0, redis 8.2.0 makes ``rqworker --burst`` wait up to a minute before
it exits (its pubsub thread is now joined without a timeout), which is why the
tasks-rq extra asks for redis<8.2.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest
from django.db import connection

from pureclarity_gdpr.tasks import TASKS_AVAILABLE
from pureclarity_gdpr.testing import LocalPureClarity

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TASKS_AVAILABLE, reason="needs Django's Tasks framework"),
]

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("PURECLARITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
WAIT = 30.0
TASK_PATH = "pureclarity_gdpr.tasks.deliver_forget_requests"

SETUP = """\
import importlib, json, sys
import django
django.setup()
from pureclarity_gdpr.models import ForgetRequest
"""

# Two users deleted in one transaction: every task the Tasks framework enqueues
# is noted, and when, through its task_enqueued signal. Django 6 with the RQ
# backend, which is built on the backport, sends the backport's signal.
ENQUEUE = (
    SETUP
    + """\
from django.contrib.auth import get_user_model
from django.db import transaction
from pureclarity_gdpr.identifiers import identifiers_of

enqueued = []

def note(sender, task_result, **kwargs):
    enqueued.append(task_result.id)

for module in ("django.tasks.signals", "django_tasks.signals"):
    try:
        importlib.import_module(module).task_enqueued.connect(note)
    except ImportError:
        pass

User = get_user_model()
has_email = any(field.name == "email" for field in User._meta.get_fields())

def user(name):
    fields = {"username": name}
    if has_email:
        fields["email"] = f"{name}@example.test"
    return User.objects.create(**fields)

users = [user("ana"), user("bob")]
identifiers = [i for u in users for i in identifiers_of(u)[0]]
with transaction.atomic():
    User.objects.filter(pk__in=[u.pk for u in users]).delete()
    before_commit = len(enqueued)

print(json.dumps({
    "identifiers": identifiers,
    "enqueued_before_commit": before_commit,
    "task_ids": enqueued,
}))
"""
)

# The requests, and each task as its backend stored it, read back by id. The
# arguments go out as JSON, which they must survive unchanged.
STATE = (
    SETUP
    + """\
from pureclarity_gdpr.tasks import deliver_forget_requests

backend = deliver_forget_requests.get_backend()
tasks = []
for task_id in json.loads(sys.argv[1]):
    result = backend.get_result(task_id)
    tasks.append({
        "path": result.task.module_path,
        "args": result.args,
        "kwargs": result.kwargs,
        "status": str(result.status),
        "return_value": result.return_value if result.is_finished else None,
    })
rows = ForgetRequest.objects.order_by("id").values_list("id", "status", "attempts")
print(json.dumps({"requests": list(rows), "tasks": tasks}))
"""
)

CLEAR_TASK_ROWS = (
    SETUP
    + """\
from django_tasks_db.models import DBTaskResult
DBTaskResult.objects.all().delete()
"""
)


@dataclass(frozen=True)
class Backend:
    """A task backend: its packages and its worker command, run once through."""

    name: str
    modules: tuple[str, ...]
    extra: str
    worker: tuple[str, ...]


BACKENDS = [
    Backend(
        name="db",
        modules=("django_tasks_db",),
        extra="tasks-db",
        worker=("db_worker", "--batch", "--no-startup-delay"),
    ),
    Backend(
        name="rq",
        modules=("django_tasks_rq", "django_rq"),
        extra="tasks-rq",
        worker=("rqworker", "--burst", "--job-class", "django_tasks_rq.Job", "default"),
    ),
]


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


class Processes:
    """Runs processes with the backend's settings, the shared database and server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, *args: str) -> Finished:
        try:
            done = subprocess.run(  # noqa: S603  (arguments come from the tests)
                [sys.executable, *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=WAIT,
                check=False,
                # RQ signals its work horse's process group; should it ever
                # signal before the horse has a group of its own, that must
                # not be the group of pytest and of whatever runs pytest.
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as err:
            pytest.fail(
                f"{' '.join(args[:3])} did not finish within {WAIT:.0f} s and was "
                f"killed; it wrote:\n{as_text(err.stdout)}\n{as_text(err.stderr)}"
            )
        return Finished(done.returncode, done.stdout, done.stderr)

    def django(self, *args: str) -> Finished:
        return self.run("-m", "django", *args)

    def python(self, code: str, *args: str) -> Any:
        """Run a few lines of Python; returns what they printed, as JSON."""
        finished = self.run("-c", code, *args)
        assert finished.returncode == 0, finished.stderr
        return json.loads(finished.stdout) if finished.stdout else None

    def state(self, task_ids: list[str]) -> Any:
        return self.python(STATE, json.dumps(task_ids))


def as_text(output: str | bytes | None) -> str:
    # What a timed-out process wrote comes back as bytes, even in text mode.
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose backend cannot run here, unless CI requires it to run."""
    if os.environ.get("PURECLARITY_TEST_TASK_BACKENDS") == "required":
        pytest.fail(f"PURECLARITY_TEST_TASK_BACKENDS is 'required', but {reason}")
    pytest.skip(reason)


def on_sqlite() -> bool:
    return connection.vendor == "sqlite"


def redis_location() -> str:
    """Where the tests look for Redis, without any credentials in the URL."""
    parts = urlsplit(REDIS_URL)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}"


@pytest.fixture
def redis_queue() -> Iterator[None]:
    """Redis, answering, with no RQ keys left in the tests' database."""
    # Installed with django-rq, which the backend fixture found before asking.
    redis: Any = importlib.import_module("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as err:
        client.close()
        unavailable(f"Redis does not answer at {redis_location()}: {err}")

    clear_rq_keys(client)
    try:
        yield
    finally:
        clear_rq_keys(client)
        client.close()


def clear_rq_keys(client: Any) -> None:
    # Only RQ's own keys, in the database the tests were given.
    keys = list(client.scan_iter("rq:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(params=BACKENDS, ids=lambda backend: backend.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    missing = [m for m in chosen.modules if importlib.util.find_spec(m) is None]
    if missing:
        unavailable(f"needs {', '.join(missing)}: pip install -e '.[{chosen.extra}]'")
    if chosen.name == "rq":
        request.getfixturevalue("redis_queue")
    return chosen


@pytest.fixture
def database_url(tmp_path: Path, transactional_db: None) -> str:
    """A database URL every process of the test can open."""
    if on_sqlite():
        return f"sqlite:///{tmp_path / 'db.sqlite3'}"

    suite = urlsplit(os.environ["DATABASE_URL"])
    return suite._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@pytest.fixture
def processes(
    backend: Backend, database_url: str, pureclarity: LocalPureClarity
) -> Iterator[Processes]:
    """Processes sharing a database migrated for the backend's apps too."""
    started = Processes(
        {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_tasks",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": database_url,
            "PURECLARITY_TEST_TASKS": backend.name,
            "PURECLARITY_TEST_REDIS_URL": REDIS_URL,
            "PURECLARITY_TEST_BASE_URL": pureclarity.url,
            "PURECLARITY_TEST_GDPR_JSON": json.dumps({"DELIVERY": "tasks"}),
        }
    )
    migrated = started.django("migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr

    yield started

    # The suite empties only the tables of its own apps after each test.
    if backend.name == "db" and not on_sqlite():
        started.python(CLEAR_TASK_ROWS)


def test_a_worker_process_of_the_backend_delivers_the_enqueued_ids(
    backend: Backend, processes: Processes, pureclarity: LocalPureClarity
) -> None:
    enqueued = processes.python(ENQUEUE)
    before = processes.state(enqueued["task_ids"])
    sent_before_the_worker = len(pureclarity.received)
    worker = processes.django(*backend.worker)
    after = processes.state(enqueued["task_ids"])

    identifiers = enqueued["identifiers"]
    request_ids = [pk for pk, _, _ in before["requests"]]
    (stored,) = before["tasks"]
    assert enqueued["enqueued_before_commit"] == 0
    assert sent_before_the_worker == 0
    assert len(request_ids) == len(identifiers)
    assert before["requests"] == [[pk, "pending", 0] for pk in request_ids]
    # One task for the whole transaction, holding nothing but the request ids.
    assert stored["path"] == TASK_PATH
    assert stored["status"] == "READY"
    assert stored["kwargs"] == {}
    assert len(stored["args"]) == 1
    assert sorted(stored["args"][0]) == request_ids
    assert all(type(pk) is int for pk in stored["args"][0])

    assert worker.returncode == 0, worker.stderr
    assert sorted(pureclarity.identifiers) == sorted(identifiers)
    assert after["requests"] == [[pk, "succeeded", 1] for pk in request_ids]
    (ran,) = after["tasks"]
    assert ran["status"] == "SUCCESSFUL"
    assert ran["return_value"] == {
        "succeeded": len(identifiers),
        "failed": 0,
        "deferred": 0,
    }
