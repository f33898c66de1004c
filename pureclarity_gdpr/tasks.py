"""Delivery as a task of Django's Tasks framework (DELIVERY = "tasks").

Django 6 ships the framework as ``django.tasks``; on Django 5.2 the ``django-tasks``
backport provides it. The task takes plain request ids, never model instances, so
any backend can serialise it.
"""

from __future__ import annotations

from typing import Any

try:
    from django.tasks import task  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # Django 5.2
    try:
        from django_tasks import task  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        task = None

TASKS_AVAILABLE = task is not None


def _deliver(request_ids: list[int]) -> dict[str, int]:
    from .delivery import deliver

    delivered = deliver(request_ids)
    return {
        "succeeded": len(delivered.succeeded),
        "failed": len(delivered.failed),
        "deferred": len(delivered.deferred),
    }


deliver_forget_requests: Any = task()(_deliver) if task is not None else None
