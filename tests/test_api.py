"""The Python API and the app's own signals."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from pureclarity_gdpr import api
from pureclarity_gdpr.exceptions import InvalidIdentifier
from pureclarity_gdpr.models import ForgetRequest, Source, Status
from pureclarity_gdpr.signals import forget_acknowledged, forget_failed
from pureclarity_gdpr.testing import LocalPureClarity


class Heard:
    def __init__(self) -> None:
        self.requests: list[ForgetRequest] = []

    def __call__(self, sender: type, request: ForgetRequest, **kwargs: Any) -> None:
        self.requests.append(request)


@pytest.mark.django_db(transaction=True)
def test_forget_delivers_after_commit(pureclarity: LocalPureClarity) -> None:
    with transaction.atomic():
        recorded = api.forget(["guest@example.test"])
        assert pureclarity.received == []

    assert pureclarity.identifiers == ["guest@example.test"]
    assert recorded.created[0].source == Source.API  # type: ignore[union-attr]


@pytest.mark.django_db
def test_forget_raises_on_bad_input_and_writes_nothing(
    pureclarity: LocalPureClarity,
) -> None:
    with pytest.raises(InvalidIdentifier):
        api.forget(["good@example.test", "bad\x00"])

    assert ForgetRequest.objects.count() == 0


@pytest.mark.django_db
def test_forget_user_without_deleting(
    pureclarity: LocalPureClarity,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = django_user_model.objects.create(username="ana")

    with django_capture_on_commit_callbacks(execute=True):
        api.forget_user(user)

    assert django_user_model.objects.filter(pk=user.pk).exists()
    assert str(user.pk) in pureclarity.identifiers


@pytest.mark.django_db
def test_acknowledged_signal(pureclarity: LocalPureClarity) -> None:
    heard = Heard()
    forget_acknowledged.connect(heard)
    try:
        api.forget(["ana@example.test"], wait=True)
    finally:
        forget_acknowledged.disconnect(heard)

    (request,) = heard.requests
    assert request.status == Status.SUCCEEDED
    assert request.identifier == ""
    assert request.acknowledged_at is not None


@pytest.mark.django_db
def test_failed_for_good_signal(pureclarity: LocalPureClarity) -> None:
    pureclarity.reply(status=400)
    heard = Heard()
    forget_failed.connect(heard)
    try:
        api.forget(["ana@example.test"], wait=True)
    finally:
        forget_failed.disconnect(heard)

    (request,) = heard.requests
    assert request.status == Status.FAILED


@pytest.mark.django_db
def test_a_failing_receiver_does_not_stop_delivery(
    pureclarity: LocalPureClarity, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the shop's receiver broke")

    forget_acknowledged.connect(broken)
    try:
        _, delivered = api.forget(["a@example.test", "b@example.test"], wait=True)  # type: ignore[misc]
    finally:
        forget_acknowledged.disconnect(broken)

    assert len(delivered.succeeded) == 2
    assert "Receiver" in caplog.text
