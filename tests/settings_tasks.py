"""Settings for processes that run a real task backend (tests/test_task_backends.py).

The suite's settings plus one backend, picked by PURECLARITY_TEST_TASKS:

- ``db``: django-tasks-db, tasks stored as rows in the suite's database and run by
  its ``db_worker`` command;
- ``rq``: django-tasks-rq, tasks stored in Redis (PURECLARITY_TEST_REDIS_URL, by
  default database 7 of the server on 127.0.0.1:6379) and run by django-rq's
  ``rqworker`` command.

Only the processes those tests start use this module; the suite's own process
keeps ``tests.settings``, so a machine without these packages runs the suite.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

BACKEND = os.environ.get("PURECLARITY_TEST_TASKS", "db")
REDIS_URL = os.environ.get("PURECLARITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")

if BACKEND == "db":
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif BACKEND == "rq":
    INSTALLED_APPS = [*INSTALLED_APPS, "django_rq", "django_tasks_rq"]
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend"}}
    RQ_QUEUES = {"default": {"URL": REDIS_URL}}
else:
    raise ValueError(f"PURECLARITY_TEST_TASKS is {BACKEND!r}; use 'db' or 'rq'.")
