"""Deleting a user forgets them in PureClarity, once, after commit."""

from __future__ import annotations

import os

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import gdpr_settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("PURECLARITY_TEST_USER_MODEL") == "custom",
        reason="written for django.contrib.auth's User",
    ),
]

User = get_user_model()


def make_user(username: str, email: str = "", **fields: object) -> object:
    return User.objects.create(username=username, email=email, **fields)


def test_deleting_a_user_forgets_pk_and_email(pureclarity: LocalPureClarity) -> None:
    user = User.objects.create(pk=42, username="ben", email="ben@example.test")

    user.delete()

    assert sorted(pureclarity.identifiers) == ["42", "ben@example.test"]
    requests = ForgetRequest.objects.all()
    assert {r.status for r in requests} == {Status.SUCCEEDED}
    assert {r.source for r in requests} == {Source.USER_DELETION}
    assert {r.identifier_hint for r in requests} == {"4*", "b***@e***.test"}


def test_plain_identifier_is_wiped_after_success(pureclarity: LocalPureClarity) -> None:
    make_user("ben", "ben@example.test").delete()

    assert set(ForgetRequest.objects.values_list("identifier", flat=True)) == {""}
    assert all(len(r.identifier_hash) == 64 for r in ForgetRequest.objects.all())


def test_rolled_back_deletion_sends_nothing(pureclarity: LocalPureClarity) -> None:
    user = make_user("ana", "ana@example.test")

    with pytest.raises(RuntimeError), transaction.atomic():
        user.delete()
        raise RuntimeError("the view failed after deleting")

    assert pureclarity.received == []
    assert ForgetRequest.objects.count() == 0
    assert User.objects.filter(username="ana").exists()


def test_requests_are_sent_only_after_commit(pureclarity: LocalPureClarity) -> None:
    user = make_user("ana", "ana@example.test")
    pk = str(user.pk)

    with transaction.atomic():
        user.delete()
        assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 2
        assert pureclarity.received == []

    assert sorted(pureclarity.identifiers) == sorted([pk, "ana@example.test"])


def test_ready_twice_still_sends_once(pureclarity: LocalPureClarity) -> None:
    config = apps.get_app_config("pureclarity_gdpr")
    config.ready()
    config.ready()

    make_user("ana", "ana@example.test").delete()

    assert len(pureclarity.received) == 2
    assert ForgetRequest.objects.count() == 2


def test_queryset_delete_forgets_every_user(pureclarity: LocalPureClarity) -> None:
    for n in range(5):
        make_user(f"user{n}", f"user{n}@example.test")

    User.objects.filter(username__startswith="user").delete()

    assert len(pureclarity.identifiers) == 10
    assert ForgetRequest.objects.filter(status=Status.SUCCEEDED).count() == 10


def test_user_in_every_store_view(two_store_views: LocalPureClarity) -> None:
    make_user("ana", "ana@example.test").delete()

    keys = sorted((r.access_key, r.identifier) for r in two_store_views.received)
    assert [k for k, _ in keys] == ["AK-UK", "AK-UK", "AK-US", "AK-US"]
    assert set(ForgetRequest.objects.values_list("store_view", flat=True)) == {
        "uk",
        "us",
    }


def test_user_without_email_is_forgotten_by_pk(pureclarity: LocalPureClarity) -> None:
    user = make_user("carl")
    pk = str(user.pk)

    user.delete()

    assert pureclarity.identifiers == [pk]


def test_user_without_identifier_needs_attention(pureclarity: LocalPureClarity) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, IDENTIFIERS=["email"])
    ):
        make_user("dora").delete()

    request = ForgetRequest.objects.get()
    assert request.status == Status.NEEDS_ATTENTION
    assert "has no identifier" in request.last_error
    assert pureclarity.received == []


def test_bad_identifier_value_is_not_silently_dropped(
    pureclarity: LocalPureClarity,
) -> None:
    user = make_user("eve", "eve\x1b@example.test")
    pk = str(user.pk)

    user.delete()

    assert pureclarity.identifiers == [pk]
    attention = ForgetRequest.objects.get(status=Status.NEEDS_ATTENTION)
    assert "control or invisible characters" in attention.last_error


def test_identifiers_from_a_callable(pureclarity: LocalPureClarity) -> None:
    path = "tests.identifier_functions.username_only"
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, IDENTIFIERS=path)
    ):
        make_user("fred", "fred@example.test").delete()

    assert pureclarity.identifiers == ["fred"]


def test_forget_on_delete_off(pureclarity: LocalPureClarity) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, FORGET_ON_DELETE=False)
    ):
        make_user("gina", "gina@example.test").delete()

    assert pureclarity.received == []
    assert ForgetRequest.objects.count() == 0


def test_worker_mode_records_without_sending(pureclarity: LocalPureClarity) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, DELIVERY="worker")
    ):
        make_user("hal", "hal@example.test").delete()

    assert pureclarity.received == []
    assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 2


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 503},
        {"drop": True},
        {"delay": 2.0},
    ],
    ids=["503", "connection-reset", "read-timeout"],
)
def test_failed_call_never_breaks_the_deletion(
    pureclarity: LocalPureClarity, answer: dict[str, object]
) -> None:
    pureclarity.reply(**answer)  # type: ignore[arg-type]
    user = make_user("ivy", "ivy@example.test")

    user.delete()

    assert not User.objects.filter(username="ivy").exists()
    requests = ForgetRequest.objects.all()
    assert {r.status for r in requests} == {Status.PENDING}
    assert all(r.next_attempt_at is not None for r in requests)
    assert all(
        r.last_error.startswith(("PureClarity", "The connection")) for r in requests
    )

    pureclarity.reset()
    delivery.deliver(delivery.retry(r.pk for r in requests))

    assert {r.status for r in ForgetRequest.objects.all()} == {Status.SUCCEEDED}
    assert len(pureclarity.received) == 2


def test_other_models_keep_fast_deletes() -> None:
    from django.contrib.sessions.models import Session
    from django.db.models.deletion import Collector

    assert Collector(using="default").can_fast_delete(Session.objects.all())


def test_a_proxy_of_the_user_model_is_covered(pureclarity: LocalPureClarity) -> None:
    from .proxyapp.models import StaffProxy

    user = make_user("jo", "jo@example.test")

    StaffProxy.objects.get(pk=user.pk).delete()

    assert "jo@example.test" in pureclarity.identifiers


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("email_as_a_string", "returned a single string"),
        ("broken", "raised RuntimeError"),
        ("a_number", "returned a value of type int"),
        ("a_mapping", "returned a value of type dict"),
    ],
)
def test_a_bad_identifier_function_does_not_stop_deletion(
    pureclarity: LocalPureClarity, function: str, reason: str
) -> None:
    path = f"tests.identifier_functions.{function}"
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, IDENTIFIERS=path)
    ):
        make_user("kim", "kim@example.test").delete()

    assert not User.objects.filter(username="kim").exists()
    assert pureclarity.received == []
    attention = ForgetRequest.objects.get(status=Status.NEEDS_ATTENTION)
    assert reason in attention.last_error


def test_values_that_are_not_identifiers_are_reported(
    pureclarity: LocalPureClarity,
) -> None:
    path = "tests.identifier_functions.odd_values"
    user = make_user("lee", "lee@example.test")
    pk = str(user.pk)
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, IDENTIFIERS=path)
    ):
        user.delete()

    assert pureclarity.identifiers == [pk]
    reasons = ForgetRequest.objects.filter(status=Status.NEEDS_ATTENTION)
    assert reasons.count() == 4
