"""Deletions of many users at once: every user recorded, in a few statements.

The receivers gather the users of a deletion before Django deletes them and record
them all at the first user's post_delete. These tests check what that must never
get wrong: a user recorded twice, a user deleted and not recorded, a user recorded
though a rolled back deletion left them in place.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.signals import post_delete, pre_delete
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from pureclarity_gdpr.models import ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import gdpr_settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("PURECLARITY_TEST_USER_MODEL") == "custom",
        reason="written for django.contrib.auth's User and its subclasses",
    ),
]

User = get_user_model()


def make_users(count: int, prefix: str = "user") -> list[str]:
    User.objects.bulk_create(
        User(username=f"{prefix}{n}", email=f"{prefix}{n}@example.test")
        for n in range(count)
    )
    return [f"{prefix}{n}@example.test" for n in range(count)]


def recorded() -> Counter[str]:
    """The identifiers of pending requests, each with how often it was recorded."""
    return Counter(
        ForgetRequest.objects.filter(status=Status.PENDING).values_list(
            "identifier", flat=True
        )
    )


def worker_mode(pureclarity: LocalPureClarity, **extra: object) -> override_settings:
    return override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, DELIVERY="worker", **extra)
    )


def test_a_queryset_delete_records_every_user_in_a_few_inserts(
    pureclarity: LocalPureClarity,
) -> None:
    emails = make_users(300)
    pks = list(User.objects.values_list("pk", flat=True))

    with worker_mode(pureclarity), CaptureQueriesContext(connection) as queries:
        User.objects.filter(username__startswith="user").delete()

    identifiers = set(
        ForgetRequest.objects.values_list("identifier", flat=True).distinct()
    )
    assert identifiers == {*emails, *map(str, pks)}
    assert ForgetRequest.objects.count() == 600
    assert set(ForgetRequest.objects.values_list("source", flat=True)) == {
        Source.USER_DELETION
    }
    inserts = [q for q in queries.captured_queries if "INSERT" in q["sql"].upper()]
    # Whatever the number of users: a statement per chunk of 500 requests at most.
    assert len(inserts) <= 2
    assert pureclarity.received == []


def test_a_deletion_rolled_back_to_a_savepoint_records_nobody(
    pureclarity: LocalPureClarity,
) -> None:
    make_users(3)
    pks = dict(User.objects.values_list("username", "pk"))
    users = User.objects.filter(username__startswith="user")

    def refuse_user2(instance: object, **kwargs: object) -> None:
        if getattr(instance, "username", "") == "user2":
            raise RuntimeError("user2 may not be deleted yet")

    pre_delete.connect(refuse_user2, sender=User, dispatch_uid="refuse-user2")
    try:
        with worker_mode(pureclarity), transaction.atomic():
            with pytest.raises(RuntimeError), transaction.atomic():
                users.delete()
            User.objects.filter(username="user2").update(username="kept2")
            # The same queryset object again: now it matches user0 and user1 only.
            users.delete()
    finally:
        pre_delete.disconnect(sender=User, dispatch_uid="refuse-user2")

    assert list(User.objects.values_list("username", flat=True)) == ["kept2"]
    assert recorded() == {
        "user0@example.test": 1,
        "user1@example.test": 1,
        str(pks["user0"]): 1,
        str(pks["user1"]): 1,
    }


def test_a_failure_after_some_users_were_recorded_rolls_them_back(
    pureclarity: LocalPureClarity,
) -> None:
    make_users(3)

    def fail_at_user1(instance: object, **kwargs: object) -> None:
        if getattr(instance, "username", "") == "user1":
            raise RuntimeError("a receiver of the shop failed")

    post_delete.connect(fail_at_user1, sender=User, dispatch_uid="fail-at-user1")
    try:
        with worker_mode(pureclarity), pytest.raises(RuntimeError):
            User.objects.all().delete()
    finally:
        post_delete.disconnect(sender=User, dispatch_uid="fail-at-user1")

    assert User.objects.count() == 3
    assert ForgetRequest.objects.count() == 0

    with worker_mode(pureclarity):
        User.objects.all().delete()

    assert ForgetRequest.objects.count() == 6


def test_a_subclass_row_and_its_parent_row_are_one_user(
    pureclarity: LocalPureClarity,
) -> None:
    from .proxyapp.models import Member

    Member.objects.create(username="mo", email="mo@example.test", loyalty_number="7")
    Member.objects.create(username="max", email="max@example.test")
    User.objects.create(username="una", email="una@example.test")

    with worker_mode(pureclarity):
        Member.objects.all().delete()

    assert not Member.objects.exists()
    assert list(User.objects.values_list("username", flat=True)) == ["una"]
    identifiers = ForgetRequest.objects.values_list("identifier", flat=True)
    assert sorted(i for i in identifiers if "@" in i) == [
        "max@example.test",
        "mo@example.test",
    ]
    assert ForgetRequest.objects.count() == 4


def test_deleting_a_subclass_instance_forgets_it_once(
    pureclarity: LocalPureClarity,
) -> None:
    from .proxyapp.models import Member

    member = Member.objects.create(username="mo", email="mo@example.test")
    pk = member.pk

    member.delete()

    assert sorted(pureclarity.identifiers) == sorted([str(pk), "mo@example.test"])
    assert ForgetRequest.objects.filter(status=Status.SUCCEEDED).count() == 2


def test_an_open_request_for_an_identifier_stands_for_the_deletion(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr import delivery

    make_users(2)
    with worker_mode(pureclarity):
        delivery.record(["user0@example.test"], source=Source.ADMIN)
        User.objects.all().delete()

    by_source = Counter(ForgetRequest.objects.values_list("source", flat=True))
    assert by_source == {Source.ADMIN: 1, Source.USER_DELETION: 3}
    assert ForgetRequest.objects.filter(open_key__isnull=False).count() == 4


def test_a_user_forgotten_before_is_forgotten_again_when_deleted(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr import api

    user = User.objects.create(username="ana", email="ana@example.test")
    pk = user.pk
    api.forget(["ana@example.test"], wait=True)
    pureclarity.reset()

    user.delete()

    # The account may have gathered data since the first forget.
    assert sorted(pureclarity.identifiers) == sorted([str(pk), "ana@example.test"])
    assert ForgetRequest.objects.filter(status=Status.SUCCEEDED).count() == 3


def test_a_signal_sent_by_hand_is_recorded_on_its_own(
    pureclarity: LocalPureClarity,
) -> None:
    user = User(pk=77, username="ghost", email="ghost@example.test")

    with worker_mode(pureclarity), transaction.atomic():
        post_delete.send(sender=User, instance=user, using="default")

    assert recorded() == {"77": 1, "ghost@example.test": 1}


def test_delivery_after_commit_gets_every_request_of_a_queryset_delete(
    pureclarity: LocalPureClarity,
) -> None:
    emails = make_users(40)

    User.objects.all().delete()

    assert sorted(i for i in pureclarity.identifiers if "@" in i) == sorted(emails)
    assert len(pureclarity.identifiers) == 80
    assert ForgetRequest.objects.filter(status=Status.SUCCEEDED).count() == 80


def test_who_asked_is_still_named_once_their_account_is_deleted(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr import delivery

    staff = User.objects.create(username="sam.staff", email="sam@shop.test")
    delivery.record(["guest@example.test"], source=Source.ADMIN, requested_by=staff)

    with worker_mode(pureclarity), CaptureQueriesContext(connection) as queries:
        staff.delete()

    asked = ForgetRequest.objects.get(source=Source.ADMIN)
    assert asked.requested_by == "sam.staff"
    # Nothing points at the user table: no UPDATE clears who asked.
    assert not [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("UPDATE") and "requested_by" in q["sql"]
    ]


def test_a_failed_request_for_a_deleted_users_identifier_is_tried_again(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr import api

    pureclarity.reply(status=400, body="Invalid request", times=1)
    api.forget(["ana@example.test"], wait=True)
    assert ForgetRequest.objects.get().status == Status.FAILED
    user = User.objects.create(username="ana", email="ana@example.test")
    pk = user.pk

    user.delete()

    assert sorted(pureclarity.identifiers) == sorted(
        ["ana@example.test", str(pk), "ana@example.test"]
    )
    assert set(ForgetRequest.objects.values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }


def test_identifiers_are_read_before_a_cascade_deletes_what_they_come_from(
    pureclarity: LocalPureClarity,
) -> None:
    from .proxyapp.models import LoyaltyCard

    for n in range(3):
        user = User.objects.create(username=f"card{n}")
        LoyaltyCard.objects.create(user=user, number=f"LC-{n}")

    with worker_mode(
        pureclarity, IDENTIFIERS="tests.identifier_functions.from_a_profile"
    ):
        User.objects.all().delete()

    assert not LoyaltyCard.objects.exists()
    assert recorded() == {"LC-0": 1, "LC-1": 1, "LC-2": 1}
    assert not ForgetRequest.objects.filter(status=Status.NEEDS_ATTENTION).exists()


def test_users_loaded_without_their_email_are_still_forgotten_by_it(
    pureclarity: LocalPureClarity,
) -> None:
    emails = make_users(2)

    with worker_mode(pureclarity):
        User.objects.only("pk").delete()

    assert {i for i in recorded() if "@" in i} == set(emails)


def test_databases_without_a_known_upsert_record_and_reopen_through_the_orm(
    pureclarity: LocalPureClarity, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pureclarity_gdpr import bulk, delivery

    monkeypatch.setattr(bulk, "_statement", lambda using: None)
    with worker_mode(pureclarity):
        failed = delivery.record(["user0@example.test"], source=Source.ADMIN)
        ForgetRequest.objects.filter(pk__in=failed.to_deliver).update(
            status=Status.FAILED
        )
        emails = make_users(3)
        User.objects.all().delete()

    assert {i for i in recorded() if "@" in i} == set(emails)
    assert ForgetRequest.objects.get(source=Source.ADMIN).status == Status.PENDING
    assert ForgetRequest.objects.count() == 6


def test_a_subclass_deleted_with_keep_parents_keeps_its_account_unforgotten(
    pureclarity: LocalPureClarity,
) -> None:
    from .proxyapp.models import Member

    member = Member.objects.create(username="mo", email="mo@example.test")

    member.delete(keep_parents=True)

    assert User.objects.filter(username="mo").exists()
    assert pureclarity.received == []
    assert not ForgetRequest.objects.exists()


def test_a_script_acting_under_a_name_is_named_as_who_asked(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr.signals import acting_as

    make_users(2)

    with worker_mode(pureclarity), acting_as("nightly-cleanup"):
        User.objects.all().delete()

    assert set(ForgetRequest.objects.values_list("requested_by", flat=True)) == {
        "nightly-cleanup"
    }


def test_a_deletion_inserts_its_requests_in_open_key_order(
    pureclarity: LocalPureClarity,
) -> None:
    make_users(20)

    with worker_mode(pureclarity):
        User.objects.all().delete()

    # Ids follow insertion: the rows were written, and their keys locked, in the
    # order delivery writes outcomes in, so the two cannot deadlock.
    keys = list(ForgetRequest.objects.order_by("id").values_list("open_key", flat=True))
    assert len(keys) == 40
    assert keys == sorted(keys)
