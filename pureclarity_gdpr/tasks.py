"""Delivery as a task of Django's Tasks framework (DELIVERY = "tasks").

Django 6 ships the framework as ``django.tasks``; on Django 5.2 the ``django-tasks``
backport provides it. The task takes plain request ids, never model instances, so
any backend can serialise it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .exceptions import ConfigurationError


def _task_decorator() -> Any:
    for module in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(module).task
        except ImportError:
            continue
    return None


_task = _task_decorator()
TASKS_AVAILABLE = _task is not None


def deliver_forget_requests(request_ids: list[int]) -> dict[str, int]:
    """Deliver these forget requests; the counts are the task's result."""
    from .delivery import deliver

    delivered = deliver(request_ids)
    return {
        "succeeded": len(delivered.succeeded),
        "failed": len(delivered.failed),
        "deferred": len(delivered.deferred),
    }


if _task is not None:
    # The task must stand under the function's own name: task workers find it by
    # its module path.
    deliver_forget_requests = _task()(deliver_forget_requests)


def enqueue(request_ids: list[int]) -> None:
    """Enqueue the delivery of these requests on the default task backend."""
    if not TASKS_AVAILABLE:
        raise ConfigurationError(
            "DELIVERY is 'tasks' but neither django.tasks (Django 6) nor the "
            "django-tasks package is available (pureclarity_gdpr.E012)."
        )
    task: Any = deliver_forget_requests
    task.enqueue(request_ids)
