"""The record remembers that someone was forgotten, not who they were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import override_settings

from pureclarity_gdpr import api, delivery
from pureclarity_gdpr.identifiers import identifier_hash, mask
from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, Status
from pureclarity_gdpr.retention import purge
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import gdpr_settings

pytestmark = pytest.mark.django_db

OLD_KEY = "old-hash-key-that-is-at-least-32-characters"
NEW_KEY = "new-hash-key-that-is-at-least-32-characters"


@pytest.mark.parametrize(
    ("identifier", "hint"),
    [
        ("ana@example.test", "a***@e***.test"),
        ("42", "4*"),
        ("7", "*"),
        ("customer-12345", "c***"),
        ("ana@localhost", "a***@l***"),
        ("@handle", "@***"),
    ],
)
def test_hints_do_not_give_identifiers_away(identifier: str, hint: str) -> None:
    assert mask(identifier) == hint


def test_hash_is_keyed(pureclarity: LocalPureClarity) -> None:
    first = identifier_hash("ana@example.test", OLD_KEY.encode())
    second = identifier_hash("ana@example.test", NEW_KEY.encode())

    assert first != second
    assert len(first) == 64


def test_is_forgotten_after_the_identifier_was_wiped(
    pureclarity: LocalPureClarity,
) -> None:
    api.forget(["ana@example.test"], wait=True)

    assert ForgetRequest.objects.get().identifier == ""
    assert api.is_forgotten("ana@example.test")
    assert api.is_forgotten(" ana@example.test ")
    assert api.is_forgotten("ana@example.test", store_view="default")
    assert not api.is_forgotten("ana@example.test", store_view="uk")
    assert not api.is_forgotten("ben@example.test")
    assert not api.is_forgotten("")


def test_is_forgotten_is_false_while_pending_or_failing(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=503)

    api.forget(["ana@example.test"], wait=True)

    assert not api.is_forgotten("ana@example.test")


def test_is_forgotten_survives_key_rotation(pureclarity: LocalPureClarity) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, HASH_KEY=OLD_KEY)
    ):
        api.forget(["ana@example.test"], wait=True)

    rotated = gdpr_settings(pureclarity, HASH_KEY=NEW_KEY, HASH_KEY_FALLBACKS=[OLD_KEY])
    forgotten_key = gdpr_settings(pureclarity, HASH_KEY=NEW_KEY)
    with override_settings(PURECLARITY_GDPR=rotated):
        assert api.is_forgotten("ana@example.test")
        again = api.forget(["ana@example.test"])
    with override_settings(PURECLARITY_GDPR=forgotten_key):
        assert not api.is_forgotten("ana@example.test")

    assert again.to_deliver == []  # type: ignore[union-attr]


def test_default_key_follows_secret_key_fallbacks(
    pureclarity: LocalPureClarity,
) -> None:
    with override_settings(SECRET_KEY="the-old-django-secret-key"):
        api.forget(["ana@example.test"], wait=True)

    with override_settings(
        SECRET_KEY="the-new-django-secret-key",
        SECRET_KEY_FALLBACKS=["the-old-django-secret-key"],
    ):
        assert api.is_forgotten("ana@example.test")
    with override_settings(SECRET_KEY="the-new-django-secret-key"):
        assert not api.is_forgotten("ana@example.test")


def test_is_forgotten_is_one_query(
    pureclarity: LocalPureClarity, django_assert_num_queries: object
) -> None:
    api.forget(["ana@example.test"], wait=True)

    with django_assert_num_queries(1):  # type: ignore[operator]
        api.is_forgotten("ana@example.test")


def test_template_filter(pureclarity: LocalPureClarity) -> None:
    api.forget(["ana@example.test"], wait=True)
    template = Template(
        "{% load pureclarity_gdpr %}"
        "{% if email|pureclarity_forgotten %}skip{% else %}track{% endif %}"
    )

    assert template.render(Context({"email": "ana@example.test"})) == "skip"
    assert template.render(Context({"email": "ben@example.test"})) == "track"
    assert template.render(Context({"email": None})) == "track"


def test_keep_identifiers_keeps_them(pureclarity: LocalPureClarity) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, KEEP_IDENTIFIERS=True)
    ):
        api.forget(["ana@example.test"], wait=True)

    assert ForgetRequest.objects.get().identifier == "ana@example.test"


def test_failed_requests_keep_the_identifier_to_retry(
    pureclarity: LocalPureClarity,
) -> None:
    pureclarity.reply(status=400)

    api.forget(["ana@example.test"], wait=True)

    assert ForgetRequest.objects.get().identifier == "ana@example.test"


def test_purge_keeps_only_the_proof(
    pureclarity: LocalPureClarity, django_user_model: type
) -> None:
    staff = django_user_model.objects.create(username="staff")
    pureclarity.reply(status=503, times=1, body="busy")
    api.forget(["ana@example.test"], requested_by=staff, wait=True)
    request = ForgetRequest.objects.get()
    delivery.deliver(delivery.retry([request.pk]))
    request.refresh_from_db()
    assert request.status == Status.SUCCEEDED

    kept = purge(timedelta(days=30))
    purged = purge(timedelta(days=30), now=request.created_at + timedelta(days=31))

    assert (kept.requests, kept.attempts) == (0, 0)
    assert (purged.requests, purged.attempts) == (1, 2)
    request.refresh_from_db()
    assert request.identifier_hint == ""
    assert request.requested_by == ""
    assert request.identifier_hash
    assert request.acknowledged_at is not None
    assert set(ForgetAttempt.objects.values_list("excerpt", flat=True)) == {""}
    assert api.is_forgotten("ana@example.test")


def test_a_long_top_level_domain_still_fits_the_hint() -> None:
    assert mask("x@y." + "z" * 100) == "x***@y***.z***"


@pytest.mark.parametrize("identifier", ["\ufeffana@example.test", "ana\u200b@ex.test"])
def test_invisible_characters_are_refused(identifier: str) -> None:
    from pureclarity_gdpr.exceptions import InvalidIdentifier
    from pureclarity_gdpr.identifiers import clean

    with pytest.raises(InvalidIdentifier, match="invisible"):
        clean(identifier)


def test_a_single_string_is_not_split_into_characters(
    pureclarity: LocalPureClarity,
) -> None:
    from pureclarity_gdpr.exceptions import InvalidIdentifier

    with pytest.raises(InvalidIdentifier, match="not a single string"):
        api.forget("guest7@example.test")  # type: ignore[arg-type]

    assert ForgetRequest.objects.count() == 0


def test_another_store_views_secret_echoed_in_an_answer_is_not_kept(
    pureclarity: LocalPureClarity,
) -> None:
    views = {
        name: {
            "ACCESS_KEY": f"AK-{name.upper()}",
            "SECRET_KEY": f"SK-{name.upper()}-kept-out-of-every-row",
            "BASE_URL": pureclarity.url,
        }
        for name in ("uk", "us")
    }
    # A misrouted endpoint that answers with the wrong store view's keys.
    pureclarity.reply(status=500, body="bad keys SK-US-kept-out-of-every-row here")
    with override_settings(PURECLARITY_GDPR={"STORE_VIEWS": views}):
        api.forget(["ana@example.test"], store_views=["uk"], wait=True)

    excerpts = list(ForgetAttempt.objects.values_list("excerpt", flat=True))
    assert excerpts
    assert not [e for e in excerpts if "SK-US" in e]
