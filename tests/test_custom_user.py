"""A swapped user model with a UUID key and no email field.

These tests run when the suite is started with PURECLARITY_TEST_USER_MODEL=custom,
which swaps in ``testapp.Customer``; CI runs them that way.
"""

from __future__ import annotations

import os
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from pureclarity_gdpr.models import ForgetRequest, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import gdpr_settings

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("PURECLARITY_TEST_USER_MODEL") != "custom",
        reason="needs PURECLARITY_TEST_USER_MODEL=custom",
    ),
]


def test_uuid_user_is_forgotten_by_its_key(pureclarity: LocalPureClarity) -> None:
    user = get_user_model().objects.create(username="ana")
    key = str(user.pk)

    user.delete()

    assert pureclarity.identifiers == [key]
    assert ForgetRequest.objects.get().status == Status.SUCCEEDED


def test_fields_of_the_custom_model(pureclarity: LocalPureClarity) -> None:
    setting = gdpr_settings(pureclarity, IDENTIFIERS=["pk", "loyalty_number"])
    user = get_user_model().objects.create(username="ben", loyalty_number="L-77")
    key = str(user.pk)

    with override_settings(PURECLARITY_GDPR=setting):
        user.delete()

    assert sorted(pureclarity.identifiers) == sorted([key, "L-77"])


def test_no_missing_migrations_with_a_swapped_user_model() -> None:
    out = StringIO()

    call_command("makemigrations", "--check", "--dry-run", stdout=out)

    assert "No changes detected" in out.getvalue()
