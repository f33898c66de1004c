"""Shared fixtures: a local PureClarity on loopback, and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from pureclarity_gdpr import delivery, ratelimit
from pureclarity_gdpr.testing import LocalPureClarity

ACCESS_KEY = "AK-TEST"
SECRET_KEY = "SK-FAKE-0000"


def gdpr_settings(server: LocalPureClarity, **extra: Any) -> dict[str, Any]:
    """A PURECLARITY_GDPR dict with one store view served by ``server``."""
    return {
        "ACCESS_KEY": ACCESS_KEY,
        "SECRET_KEY": SECRET_KEY,
        "BASE_URL": server.url,
        "CONNECT_TIMEOUT": 1.0,
        "READ_TIMEOUT": 1.0,
        **extra,
    }


@pytest.fixture(scope="session")
def _server() -> Iterator[LocalPureClarity]:
    with LocalPureClarity() as server:
        yield server


@pytest.fixture
def pureclarity(_server: LocalPureClarity) -> Iterator[LocalPureClarity]:
    """The local PureClarity, reset, with PURECLARITY_GDPR pointing at it."""
    _server.reset()
    _server.latency = 0.0
    ratelimit.reset()
    with override_settings(PURECLARITY_GDPR=gdpr_settings(_server)):
        yield _server
    _server.release()


@pytest.fixture
def two_store_views(pureclarity: LocalPureClarity) -> Iterator[LocalPureClarity]:
    """Store views 'uk' and 'us', both served by the local PureClarity."""
    views = {
        name: {
            "ACCESS_KEY": f"AK-{name.upper()}",
            "SECRET_KEY": SECRET_KEY,
            "BASE_URL": pureclarity.url,
        }
        for name in ("uk", "us")
    }
    config = {"STORE_VIEWS": views, "CONNECT_TIMEOUT": 1.0, "READ_TIMEOUT": 1.0}
    with override_settings(PURECLARITY_GDPR=config):
        yield pureclarity


class Clock:
    """A clock for delivery that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Delivery's clock, frozen at the real time until advanced."""
    fake = Clock(timezone.now())
    monkeypatch.setattr(delivery, "clock", fake)
    return fake


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The test database, freed of sessions left by killed worker processes.

    The fault tests SIGKILL workers; PostgreSQL may not have reaped such a
    session by the time the test database is dropped, which it then refuses.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
