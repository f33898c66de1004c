"""The admin tests' fixtures, loaded with ``pytest_plugins`` by each admin test.

A plugin rather than imports: a fixture imported by name would be shadowed by
the test argument that asks for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from pureclarity_gdpr.models import ForgetRequest

from .admin_support import grant, make_user


@pytest.fixture
def boss() -> Any:
    return make_user("boss", is_staff=True, is_superuser=True)


@pytest.fixture
def boss_client(client: Client, boss: Any) -> Client:
    client.force_login(boss)
    return client


@pytest.fixture
def viewer() -> Any:
    """Staff who may look at users and forget requests, but forget nobody."""
    user = make_user("viewer", is_staff=True)
    grant(user, get_user_model(), "view")
    grant(user, ForgetRequest, "view")
    return user


@pytest.fixture
def viewer_client(client: Client, viewer: Any) -> Client:
    client.force_login(viewer)
    return client


@pytest.fixture
def ana() -> Any:
    return make_user("ana", pk=4242, email="ana@example.test")
