"""The request list's header: counts at a glance, paused store views, resuming."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status, StoreViewPause
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    ESCAPED_TAG,
    HOSTILE,
    RAW_TAG,
    failed_requests,
    message_levels,
    messages_of,
    page,
    pause,
    pending_requests,
    requested_days_ago,
    requests_url,
    resume_url,
    succeeded_requests,
    text,
)
from .conftest import gdpr_settings

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


def test_the_header_counts_what_needs_watching(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (old,) = pending_requests("a@example.test")
    pending_requests("b@example.test", "c@example.test")
    failed_requests(pureclarity, "d@example.test")
    delivery.record_needs_attention(
        store_views=None, source=Source.API, reason="No identifier."
    )
    succeeded_requests("e@example.test")
    requested_days_ago(31, old)

    response = boss_client.get(requests_url())

    header = text(response)
    assert "3 pending requests" in header
    assert "⚠ 1 failed request" in header
    assert "1 request needs attention" in header
    assert "⚠ 1 request not acknowledged within 30 days" in header
    assert 'href="?status__exact=failed"' in page(response)
    assert 'href="?gdpr_deadline=overdue"' in page(response)


def test_with_nothing_wrong_nothing_is_flagged(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    succeeded_requests("a@example.test")

    response = boss_client.get(requests_url())

    assert "0 pending requests" in text(response)
    assert "0 failed requests" in text(response)
    assert "⚠" not in text(response)
    assert "Paused store views" not in text(response)


def paused_by_pureclarity(server: LocalPureClarity) -> int:
    """A request PureClarity refused with 401, which paused its store view."""
    server.reply(status=401, times=1)
    (pk,) = succeeded_requests("ana@example.test")
    return pk


def test_a_paused_store_view_is_shown_and_can_be_resumed(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pk = paused_by_pureclarity(pureclarity)
    listing = boss_client.get(requests_url())

    response = boss_client.post(resume_url(), {"store_view": "default"})

    assert "Paused store views" in text(listing)
    assert "PureClarity answered 401" in text(listing)
    assert f'action="{resume_url()}"' in page(listing)
    assert response.status_code == 302
    assert response["Location"] == requests_url()
    assert messages_of(response) == [
        "Deliveries to store view default were resumed; 1 pending request is due "
        "again.",
        "1 request was delivered to PureClarity.",
    ]
    assert not StoreViewPause.objects.exists()
    assert ForgetRequest.objects.get(pk=pk).status == Status.SUCCEEDED
    assert pureclarity.identifiers == ["ana@example.test", "ana@example.test"]


def test_resuming_with_keys_still_refused_pauses_again_and_says_so(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pk = paused_by_pureclarity(pureclarity)
    pureclarity.reply(status=403, times=1)

    response = boss_client.post(resume_url(), {"store_view": "default"})

    assert message_levels(response)[1] == (
        "warning",
        "1 request could not be delivered yet; it will be tried again "
        "automatically. See the forget requests list.",
    )
    assert StoreViewPause.objects.filter(store_view="default").exists()
    assert ForgetRequest.objects.get(pk=pk).status == Status.PENDING


def test_resuming_sends_only_the_resumed_store_views_requests(
    two_store_views: LocalPureClarity, boss_client: Client
) -> None:
    two_store_views.reply(status=401, access_key="AK-UK", times=1)
    succeeded_requests("ana@example.test")
    delivery.record(["ben@example.test"], source=Source.API, store_views=["us"])

    response = boss_client.post(resume_url(), {"store_view": "uk"})

    assert messages_of(response)[1] == "1 request was delivered to PureClarity."
    assert sorted((r.identifier, r.access_key) for r in two_store_views.received) == [
        ("ana@example.test", "AK-UK"),
        ("ana@example.test", "AK-UK"),
        ("ana@example.test", "AK-US"),
    ]
    pending = ForgetRequest.objects.get(status=Status.PENDING)
    assert pending.store_view == "us"


@pytest.mark.parametrize("mode", ["worker", "tasks"])
def test_resuming_leaves_the_sending_to_the_worker_or_tasks(
    pureclarity: LocalPureClarity, boss_client: Client, mode: str
) -> None:
    pk = paused_by_pureclarity(pureclarity)

    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, DELIVERY=mode)):
        response = boss_client.post(resume_url(), {"store_view": "default"})

    assert messages_of(response) == [
        "Deliveries to store view default were resumed; 1 pending request is due again."
    ]
    assert ForgetRequest.objects.get(pk=pk).status == Status.PENDING
    assert pureclarity.identifiers == ["ana@example.test"]


def test_staff_without_the_permission_see_the_pause_but_cannot_resume(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    paused_by_pureclarity(pureclarity)

    listing = viewer_client.get(requests_url())
    response = viewer_client.post(resume_url(), {"store_view": "default"})

    assert "Paused store views" in text(listing)
    assert resume_url() not in page(listing)
    assert response.status_code == 403
    assert StoreViewPause.objects.filter(store_view="default").exists()


def test_resuming_is_a_post_only(boss_client: Client) -> None:
    pause()

    response = boss_client.get(resume_url(), {"store_view": "default"})

    assert response.status_code == 405
    assert StoreViewPause.objects.exists()


def test_resuming_is_csrf_protected(boss: Any) -> None:
    pause()
    client = Client(enforce_csrf_checks=True)
    client.force_login(boss)

    response = client.post(resume_url(), {"store_view": "default"})

    assert response.status_code == 403
    assert StoreViewPause.objects.exists()


def test_resuming_a_store_view_that_is_not_paused_says_so_escaped(
    boss_client: Client,
) -> None:
    response = boss_client.post(resume_url(), {"store_view": HOSTILE}, follow=True)

    assert f"Store view {ESCAPED_TAG}@example.test was not paused." in page(response)
    assert RAW_TAG not in page(response)


def test_a_hostile_pause_reason_is_escaped(boss_client: Client) -> None:
    pause(reason=HOSTILE)

    response = boss_client.get(requests_url())

    assert ESCAPED_TAG in page(response)
    assert RAW_TAG not in page(response)
