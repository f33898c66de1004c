"""System checks name every unusable setting with an id and a hint."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from pureclarity_gdpr.conf import conf
from pureclarity_gdpr.exceptions import ConfigurationError

GOOD = {"ACCESS_KEY": "AK", "SECRET_KEY": "SK-FAKE-0000", "REGION": "eu"}


def check_ids(setting: Any) -> list[str]:
    with override_settings(PURECLARITY_GDPR=setting):
        # No databases: Django 6.1 would otherwise run the database checks too.
        messages = checks.run_checks(tags=["pureclarity_gdpr"], databases=[])
    return sorted(m.id for m in messages if m.id)


def test_good_settings_pass() -> None:
    assert check_ids(GOOD) == []


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({}, ["pureclarity_gdpr.E001"]),
        ({"STORE_VIEWS": {}}, ["pureclarity_gdpr.E001"]),
        ({**GOOD, "SECRET_KEY": ""}, ["pureclarity_gdpr.E002"]),
        ({"ACCESS_KEY": "AK", "REGION": "eu"}, ["pureclarity_gdpr.E002"]),
        ({**GOOD, "REGION": "mars-1"}, ["pureclarity_gdpr.E003"]),
        ({**GOOD, "BASE_URL": "http://pureclarity.example"}, ["pureclarity_gdpr.E004"]),
        ({**GOOD, "BASE_URL": "ftp://127.0.0.1"}, ["pureclarity_gdpr.E004"]),
        ({**GOOD, "BASE_URL": "https://h.example/?a=1"}, ["pureclarity_gdpr.E004"]),
        ({**GOOD, "STORE_VIEWS": {"uk": GOOD}}, ["pureclarity_gdpr.E006"]),
        ({"STORE_VIEWS": {"bad name": GOOD}}, ["pureclarity_gdpr.E007"]),
        ({"STORE_VIEWS": {"uk": "keys"}}, ["pureclarity_gdpr.E002"]),
        ({**GOOD, "READ_TIMEOUT": 0}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "MAX_IN_FLIGHT": "8"}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "DELIVERY": "later"}, ["pureclarity_gdpr.E008"]),
        ({"STORE_VIEWS": {"uk": {**GOOD, "TOKEN": "x"}}}, ["pureclarity_gdpr.E009"]),
        ({**GOOD, "SECRET": "x"}, ["pureclarity_gdpr.W001"]),
        ({**GOOD, "IDENTIFIERS": ["pk", "shoe_size"]}, ["pureclarity_gdpr.E005"]),
        ({**GOOD, "IDENTIFIERS": []}, ["pureclarity_gdpr.E005"]),
        ({**GOOD, "IDENTIFIERS": "no.such.function"}, ["pureclarity_gdpr.E005"]),
        ({**GOOD, "IDENTIFIERS": 7}, ["pureclarity_gdpr.E005"]),
        ({**GOOD, "READ_TIMEOUT": float("nan")}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "CONNECT_TIMEOUT": float("inf")}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "DELAY": 1e12}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "MAX_ATTEMPTS": 5000}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "FORGET_ON_DELETE": "false"}, ["pureclarity_gdpr.E008"]),
        ({**GOOD, "HASH_KEY_FALLBACKS": 5}, ["pureclarity_gdpr.E011"]),
        ({**GOOD, "HASH_KEY_FALLBACKS": "one-key"}, ["pureclarity_gdpr.E011"]),
        ({**GOOD, "BASE_URL": "https://h.example?"}, ["pureclarity_gdpr.E004"]),
        ({**GOOD, "BASE_URL": "http://[::1"}, ["pureclarity_gdpr.E004"]),
        (
            {**GOOD, "BASE_URL": "https://h.example/api/user/forget"},
            ["pureclarity_gdpr.E004"],
        ),
    ],
)
def test_bad_settings_are_reported(setting: Any, expected: list[str]) -> None:
    assert check_ids(setting) == expected


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:2"]
)
def test_plain_http_is_allowed_on_loopback(base_url: str) -> None:
    assert check_ids({**GOOD, "BASE_URL": base_url}) == []


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu", "https://api-eu-w-1.pureclarity.net"),
        ("us", "https://api-us-e-1.pureclarity.net"),
        ("AP-SE-2", "https://api-ap-se-2.pureclarity.net"),
    ],
)
def test_regions_pick_the_host(region: str, host: str) -> None:
    with override_settings(PURECLARITY_GDPR={**GOOD, "REGION": region}):
        view = conf.store_view("default")

    assert view.base_url == host
    assert view.forget_url == host + "/api/user/forget"


def test_hints_say_what_to_set() -> None:
    with override_settings(PURECLARITY_GDPR={**GOOD, "REGION": "mars-1"}):
        (message,) = checks.run_checks(tags=["pureclarity_gdpr"], databases=[])

    assert "'eu', 'us'" in (message.hint or "")
    assert "eu-w-1" in (message.hint or "")


def test_a_bad_setting_fails_at_use_without_the_secret() -> None:
    setting = {**GOOD, "REGION": "mars-1", "SECRET_KEY": "SK-FAKE-0000"}
    with (
        override_settings(PURECLARITY_GDPR=setting),
        pytest.raises(ConfigurationError, match="E003") as err,
    ):
        conf.store_views  # noqa: B018

    assert "SK-FAKE-0000" not in str(err.value)


def test_the_secret_is_not_in_repr() -> None:
    with override_settings(PURECLARITY_GDPR=GOOD):
        view = conf.store_view("default")

    assert "SK-FAKE-0000" not in repr(view)


@pytest.mark.django_db
def test_requests_failing_for_a_day_are_reported() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from pureclarity_gdpr.models import ForgetRequest, Source, Status

    old = timezone.now() - timedelta(days=2)
    ForgetRequest.objects.create(
        store_view="default",
        source=Source.API,
        status=Status.FAILED,
        attempts=3,
        created_at=old,
    )
    ForgetRequest.objects.create(
        store_view="default",
        source=Source.API,
        status=Status.PENDING,
        attempts=0,
        created_at=old,
    )
    ForgetRequest.objects.create(
        store_view="default",
        source=Source.API,
        status=Status.SUCCEEDED,
        attempts=1,
        created_at=old,
    )

    messages = checks.run_checks(tags=["database"], databases=["default"])

    (warning,) = [m for m in messages if m.id == "pureclarity_gdpr.W003"]
    assert warning.msg.startswith("2 forget request(s)")
