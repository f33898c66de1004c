"""The forget request admin: the read-only audit, Retry, Cancel and the filter."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory, override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.admin.request_actions import cancel
from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    NOT_CALLED_BACK,
    SELECTED,
    failed_requests,
    hidden_fields,
    messages_of,
    page,
    pending_requests,
    request_action,
    requested_days_ago,
    requests_url,
    retry,
    status_of,
    succeeded_requests,
    text,
    url,
)
from .conftest import Clock, gdpr_settings

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

CANCELLED_ONE = (
    "1 forget request was cancelled: it will not be sent, and its identifier was "
    "deleted."
)
FAILED_FOR_GOOD = "It failed for good and is not sent again unless someone retries it."


def test_forget_requests_cannot_be_added_changed_or_deleted(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (pk,) = failed_requests(pureclarity, "ana@example.test")

    add = boss_client.get(url(ForgetRequest, "add"))
    delete = boss_client.post(url(ForgetRequest, "delete", pk), {"post": "yes"})
    change = boss_client.post(url(ForgetRequest, "change", pk), {"status": "pending"})
    listing = boss_client.get(requests_url())

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code == 403
    assert url(ForgetRequest, "add") not in page(listing)
    assert 'value="delete_selected"' not in page(listing)
    assert ForgetRequest.objects.get().status == Status.FAILED


def test_change_page_is_read_only_and_shows_the_attempts(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (pk,) = failed_requests(pureclarity, "ana@example.test")

    response = boss_client.get(url(ForgetRequest, "change", pk))

    html = page(response)
    assert response.status_code == 200
    assert "a***@e***.test" in html
    assert "ana@example.test" not in html
    assert 'name="store_view"' not in html
    assert 'name="_save"' not in html
    assert "PureClarity answered 400 (Bad Request)" in html
    assert "Attempts" in html
    assert ForgetAttempt.objects.get().status_code == 400


def test_staff_who_may_view_requests_see_their_attempts(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    (pk,) = failed_requests(pureclarity, "ana@example.test")

    response = viewer_client.get(url(ForgetRequest, "change", pk))

    assert response.status_code == 200
    assert "PureClarity answered 400" in page(response)


def test_failed_requests_are_marked_in_the_list(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    failed_requests(pureclarity, "ana@example.test")

    response = boss_client.get(requests_url())

    assert "⚠ Failed" in page(response)
    assert "a***@e***.test" in page(response)


def test_retry_delivers_failed_requests_once_the_server_answers(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    ids = failed_requests(pureclarity, "ana@example.test", "ben@example.test")

    response = retry(boss_client, *ids)

    assert messages_of(response) == ["2 requests were delivered to PureClarity."]
    assert {r.status for r in ForgetRequest.objects.all()} == {Status.SUCCEEDED}
    assert sorted(pureclarity.identifiers[2:]) == [
        "ana@example.test",
        "ben@example.test",
    ]
    assert LogEntry.objects.filter(user=boss, action_flag=CHANGE).count() == 2


def test_retry_that_fails_again_says_so(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    ids = failed_requests(pureclarity, "ana@example.test")
    pureclarity.reply(status=400)

    response = retry(boss_client, *ids)

    assert messages_of(response) == ["1 request failed; see the forget requests list."]
    assert ForgetRequest.objects.get().attempts == 2


def test_retry_also_sends_requests_waiting_for_their_next_attempt(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pureclarity.reply(status=503, times=1)
    recorded = delivery.record(["ana@example.test"], source=Source.API)
    delivery.deliver(recorded.to_deliver)
    listing = boss_client.get(requests_url())

    response = retry(boss_client, *recorded.to_deliver)

    assert "retry scheduled" in page(listing)
    assert messages_of(response) == ["1 request was delivered to PureClarity."]
    assert ForgetRequest.objects.get().status == Status.SUCCEEDED


def test_retry_skips_requests_that_had_not_failed(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (failed,) = failed_requests(pureclarity, "ana@example.test")
    (done,) = failed_requests(pureclarity, "ben@example.test")
    retry(boss_client, done)
    boss_client.get(requests_url())

    response = retry(boss_client, failed, done)

    assert messages_of(response) == [
        "1 request was delivered to PureClarity.",
        "1 selected request had not failed and was skipped.",
    ]
    assert pureclarity.identifiers.count("ben@example.test") == 2


def test_retry_needs_the_permission(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    ids = failed_requests(pureclarity, "ana@example.test")

    listing = viewer_client.get(requests_url())
    response = retry(viewer_client, *ids)

    assert 'value="retry"' not in page(listing)
    assert response.status_code in (200, 302)
    assert ForgetRequest.objects.get().status == Status.FAILED
    assert len(pureclarity.received) == 1


# Cancel


def test_cancel_asks_for_confirmation_first(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (pk,) = pending_requests("ana@example.test")

    response = request_action(boss_client, "cancel", pk)

    assert response.status_code == 200
    assert "Cancel this pending forget request?" in text(response)
    assert "its identifier will be deleted" in text(response)
    assert "a***@e***.test" in page(response)
    assert "ana@example.test" not in page(response)
    assert status_of(pk) == Status.PENDING


def test_confirming_cancels_and_deletes_the_identifier(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, clock: Clock
) -> None:
    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, DELAY=600)):
        (pk,) = pending_requests("ana@example.test")
    confirmation = request_action(boss_client, "cancel", pk)

    response = boss_client.post(requests_url(), hidden_fields(confirmation))
    clock.advance(600)
    delivery.deliver()

    assert response.status_code == 302
    assert response["Location"] == requests_url()
    assert messages_of(response) == [CANCELLED_ONE]
    request = ForgetRequest.objects.get(pk=pk)
    assert (request.status, request.identifier, request.open_key) == (
        Status.CANCELLED,
        "",
        None,
    )
    assert len(request.identifier_hash) == 64
    assert pureclarity.received == []
    entry = LogEntry.objects.get(object_id=str(pk))
    assert (entry.user, entry.action_flag) == (boss, CHANGE)
    assert entry.get_change_message() == (
        "Cancelled from the admin; the identifier was deleted."
    )


def test_a_request_waiting_for_a_retry_can_be_cancelled(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pureclarity.reply(status=503, times=1)
    (pk,) = succeeded_requests("ana@example.test")

    response = request_action(boss_client, "cancel", pk, confirm=True)

    assert messages_of(response) == [CANCELLED_ONE]
    assert status_of(pk) == Status.CANCELLED


def test_only_pending_requests_are_cancelled_and_the_page_says_why(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (done,) = succeeded_requests("ben@example.test")
    (waiting,) = pending_requests("ana@example.test")
    (failed,) = failed_requests(pureclarity, "carl@example.test")
    chosen = (done, waiting, failed)

    confirmation = request_action(boss_client, "cancel", *chosen)
    response = request_action(boss_client, "cancel", *chosen, confirm=True)

    assert f"1 request: {NOT_CALLED_BACK}" in text(confirmation)
    assert f"1 request: {FAILED_FOR_GOOD}" in text(confirmation)
    assert hidden_fields(confirmation)[SELECTED] == [str(waiting)]
    assert messages_of(response) == [
        CANCELLED_ONE,
        f"1 selected request was not cancelled. {NOT_CALLED_BACK}",
        f"1 selected request was not cancelled. {FAILED_FOR_GOOD}",
    ]
    assert [status_of(pk) for pk in chosen] == [
        Status.SUCCEEDED,
        Status.CANCELLED,
        Status.FAILED,
    ]


def test_when_nothing_can_be_cancelled_the_page_offers_only_the_way_back(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    done = succeeded_requests("ana@example.test", "ben@example.test")

    response = request_action(boss_client, "cancel", *done)

    assert "None of the selected requests can be cancelled" in text(response)
    assert f"2 requests: {NOT_CALLED_BACK}" in text(response)
    assert 'name="post"' not in page(response)


def test_cancel_needs_the_permission(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    (pk,) = pending_requests("ana@example.test")

    listing = viewer_client.get(requests_url())
    response = request_action(viewer_client, "cancel", pk, confirm=True)

    assert 'value="cancel"' not in page(listing)
    assert response.status_code in (200, 302)
    assert "cancelled" not in " ".join(messages_of(response))
    assert status_of(pk) == Status.PENDING


def test_the_cancel_action_itself_checks_the_permission_on_confirming(
    pureclarity: LocalPureClarity, viewer: Any
) -> None:
    (pk,) = pending_requests("ana@example.test")
    request = RequestFactory().post(requests_url(), {"post": "yes"})
    request.user = viewer
    model_admin = admin.site.get_model_admin(ForgetRequest)

    with pytest.raises(PermissionDenied):
        cancel(model_admin, request, ForgetRequest.objects.filter(pk=pk))

    assert status_of(pk) == Status.PENDING


def test_cancel_is_csrf_protected(pureclarity: LocalPureClarity, boss: Any) -> None:
    (pk,) = pending_requests("ana@example.test")
    client = Client(enforce_csrf_checks=True)
    client.force_login(boss)
    listing = client.get(requests_url())

    forged = request_action(client, "cancel", pk, confirm=True)
    token = hidden_fields(listing, csrf=True)["csrfmiddlewaretoken"]
    confirmation = client.post(
        requests_url(),
        {
            "action": "cancel",
            SELECTED: [pk],
            "index": "0",
            "csrfmiddlewaretoken": token,
        },
    )
    after_forgery = status_of(pk)
    confirmed = client.post(requests_url(), hidden_fields(confirmation, csrf=True))

    assert forged.status_code == 403
    assert after_forgery == Status.PENDING
    assert confirmation.status_code == 200
    assert confirmed.status_code == 302
    assert status_of(pk) == Status.CANCELLED


# The GDPR deadline filter


def listed(client: Client, query: str) -> set[int]:
    response = client.get(requests_url() + query)
    return {request.pk for request in response.context["cl"].result_list}


def test_the_deadline_filter_finds_requests_not_acknowledged_in_time(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    late, just_late, soon, just_soon, fresh = pending_requests(
        "a@example.test",
        "b@example.test",
        "c@example.test",
        "d@example.test",
        "e@example.test",
    )
    (late_failed,) = failed_requests(pureclarity, "f@example.test")
    (done,) = succeeded_requests("g@example.test")
    (called_off,) = pending_requests("h@example.test")
    delivery.cancel([called_off])
    (attention,) = delivery.record_needs_attention(
        store_views=None, source=Source.API, reason="No identifier."
    )
    requested_days_ago(45, late, late_failed, done, called_off, attention.pk)
    requested_days_ago(30.01, just_late)
    requested_days_ago(29.99, soon)
    requested_days_ago(23.01, just_soon)
    requested_days_ago(22.99, fresh)

    overdue = listed(boss_client, "?gdpr_deadline=overdue")
    due_soon = listed(boss_client, "?gdpr_deadline=due_soon")
    everything = listed(boss_client, "")

    assert overdue == {late, just_late, late_failed}
    assert due_soon == {soon, just_soon}
    assert len(everything) == 9


def test_the_deadline_filter_is_offered_by_name(boss_client: Client) -> None:
    response = boss_client.get(requests_url())

    assert "GDPR deadline" in text(response)
    assert "Overdue: not acknowledged within 30 days" in text(response)
    assert "Due soon: not acknowledged after 23 days" in text(response)


def test_the_request_page_shows_its_deadline(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (pk,) = pending_requests("ana@example.test")
    requested_days_ago(31, pk)

    response = boss_client.get(url(ForgetRequest, "change", pk))

    assert "GDPR deadline" in text(response)
    assert "(overdue)" in text(response)


def test_a_request_in_its_cool_off_says_until_when_it_waits(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, DELAY=600)):
        pending_requests("ana@example.test")

    response = boss_client.get(requests_url())

    assert "Pending <small>(waits until" in text(response)


def test_the_attempts_stay_on_a_cancelled_request(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pureclarity.reply(status=503, times=1)
    (pk,) = succeeded_requests("ana@example.test")
    request_action(boss_client, "cancel", pk, confirm=True)

    response = boss_client.get(url(ForgetRequest, "change", pk))

    assert "Cancelled" in text(response)
    assert "PureClarity answered 503" in text(response)
    assert ForgetAttempt.objects.filter(request_id=pk).count() == 1
