"""DELIVERY = "tasks": requests are enqueued after commit as plain ids."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from pureclarity_gdpr import api
from pureclarity_gdpr.models import ForgetRequest, Status
from pureclarity_gdpr.tasks import TASKS_AVAILABLE
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import gdpr_settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not TASKS_AVAILABLE, reason="needs Django's Tasks framework"),
]

IMMEDIATE = "django_tasks.backends.immediate.ImmediateBackend"
DUMMY = "django_tasks.backends.dummy.DummyBackend"


def tasks_setting(backend: str) -> dict[str, Any]:
    try:
        import django.tasks  # noqa: F401
    except ImportError:
        return {"default": {"BACKEND": backend}}
    return {"default": {"BACKEND": backend.replace("django_tasks.", "django.tasks.")}}


def test_tasks_mode_enqueues_ids_after_commit(pureclarity: LocalPureClarity) -> None:
    from pureclarity_gdpr.tasks import deliver_forget_requests

    settings = gdpr_settings(pureclarity, DELIVERY="tasks")
    with override_settings(PURECLARITY_GDPR=settings, TASKS=tasks_setting(DUMMY)):
        backend = deliver_forget_requests.get_backend()
        backend.clear()
        with transaction.atomic():
            recorded = api.forget(["a@example.test", "b@example.test"])
            assert backend.results == []

        (result,) = backend.results

    assert result.args == [recorded.to_deliver]  # type: ignore[union-attr]
    assert pureclarity.received == []
    assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 2


def test_tasks_mode_delivers_with_a_backend(pureclarity: LocalPureClarity) -> None:
    settings = gdpr_settings(pureclarity, DELIVERY="tasks")
    with (
        override_settings(PURECLARITY_GDPR=settings, TASKS=tasks_setting(IMMEDIATE)),
        transaction.atomic(),
    ):
        api.forget(["a@example.test", "b@example.test"])

    assert sorted(pureclarity.identifiers) == ["a@example.test", "b@example.test"]
    assert ForgetRequest.objects.filter(status=Status.SUCCEEDED).count() == 2
