"""The user admin: "Forget in PureClarity" on the project's own user admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core import checks
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from pureclarity_gdpr.admin import (
    extend_user_admin_when_urls_are_built,
    forget_in_pureclarity,
)
from pureclarity_gdpr.models import ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    ACTION,
    ESCAPED_HINT,
    HOSTILE,
    NEVER_AGAIN,
    RAW_TAG,
    SELECTED,
    WARNING,
    choose_action,
    confirm_action,
    grant_forget,
    hidden_fields,
    make_user,
    message_levels,
    messages_of,
    needs_auth_user,
    page,
    submit_identifiers,
    text,
    url,
    users_url,
)
from .conftest import ACCESS_KEY, Clock, gdpr_settings

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


@needs_auth_user
def test_superuser_sees_the_action_next_to_the_others(boss_client: Client) -> None:
    response = boss_client.get(users_url())

    assert response.status_code == 200
    assert f'value="{ACTION}"' in page(response)
    assert 'value="delete_selected"' in page(response)
    assert "Forget in PureClarity" in page(response)


@needs_auth_user
def test_user_admin_is_extended_not_replaced(boss_client: Client) -> None:
    boss_client.get(users_url())

    model_admin = admin.site.get_model_admin(get_user_model())
    assert type(model_admin) is UserAdmin
    untouched = UserAdmin(get_user_model(), admin.AdminSite())
    assert model_admin.list_display == untouched.list_display


@needs_auth_user
def test_the_extended_user_admin_passes_the_admin_checks() -> None:
    reverse("admin:index")

    errors = checks.run_checks(tags=[checks.Tags.admin])

    assert errors == []
    actions = admin.site.get_model_admin(get_user_model()).actions
    assert forget_in_pureclarity in (actions or ())


@needs_auth_user
def test_staff_without_permission_is_not_offered_the_action(
    viewer_client: Client, ana: Any
) -> None:
    response = viewer_client.get(users_url())

    assert response.status_code == 200
    assert "ana" in page(response)
    assert f'value="{ACTION}"' not in page(response)


@needs_auth_user
@pytest.mark.parametrize("post", [choose_action, confirm_action])
def test_staff_without_permission_cannot_post_the_action(
    pureclarity: LocalPureClarity, viewer_client: Client, ana: Any, post: Any
) -> None:
    response = post(viewer_client, ana)

    assert response.status_code in (200, 302)
    assert WARNING not in page(response)
    assert not ForgetRequest.objects.exists()
    assert pureclarity.received == []


@needs_auth_user
def test_the_action_itself_checks_the_permission_on_confirming(
    pureclarity: LocalPureClarity, viewer: Any, ana: Any
) -> None:
    # An admin that hands out the action without Django's permission filter
    # still cannot send anything for someone who lacks the permission.
    request = RequestFactory().post(users_url(), {"post": "yes"})
    request.user = viewer
    model_admin = admin.site.get_model_admin(get_user_model())
    users = get_user_model().objects.filter(pk=ana.pk)

    with pytest.raises(PermissionDenied):
        forget_in_pureclarity(model_admin, request, users)

    assert not ForgetRequest.objects.exists()
    assert pureclarity.received == []


@needs_auth_user
def test_the_permission_alone_is_enough(
    pureclarity: LocalPureClarity, client: Client, viewer: Any, ana: Any
) -> None:
    grant_forget(viewer)
    client.force_login(viewer)

    response = confirm_action(client, ana)

    assert response.status_code == 302
    assert sorted(pureclarity.identifiers) == ["4242", "ana@example.test"]


@needs_auth_user
def test_confirmation_page_shows_masked_identifiers_and_the_warning(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    response = choose_action(boss_client, ana)

    assert response.status_code == 200
    html = page(response)
    assert "a***@e***.test" in html
    assert "4***" in html
    assert "ana@example.test" not in html
    assert WARNING in html
    assert NEVER_AGAIN in html
    assert "<strong>default</strong>" in html
    assert "That is 2 requests in all" in html
    assert not ForgetRequest.objects.exists()
    assert pureclarity.received == []


@needs_auth_user
def test_confirming_forgets_pk_and_email_and_keeps_the_user(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    confirmation = choose_action(boss_client, ana)

    response = boss_client.post(users_url(), hidden_fields(confirmation))

    assert response.status_code == 302
    assert response["Location"] == users_url()
    assert messages_of(response) == [
        "Forget requests for 1 user were sent to PureClarity."
    ]
    assert sorted(pureclarity.identifiers) == ["4242", "ana@example.test"]
    assert {r.access_key for r in pureclarity.received} == {ACCESS_KEY}
    requests = ForgetRequest.objects.all()
    assert {r.status for r in requests} == {Status.SUCCEEDED}
    assert {r.source for r in requests} == {Source.ADMIN}
    assert {r.requested_by for r in requests} == {boss.get_username()}
    entry = LogEntry.objects.get(object_id=str(ana.pk))
    assert entry.action_flag == CHANGE
    assert entry.user == boss
    assert "2 requests" in entry.get_change_message()
    assert get_user_model().objects.filter(pk=ana.pk).exists()


@needs_auth_user
def test_messages_are_pluralised_and_name_nobody(
    two_store_views: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    ben = make_user("ben", email="ben@example.test")

    response = confirm_action(boss_client, ana, ben)

    assert messages_of(response) == [
        "Forget requests for 2 users were sent to PureClarity."
    ]
    assert len(two_store_views.received) == 8
    assert {r.access_key for r in two_store_views.received} == {"AK-UK", "AK-US"}
    assert LogEntry.objects.filter(action_flag=CHANGE).count() == 2


@needs_auth_user
def test_a_failing_server_is_reported_as_failure(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    pureclarity.reply(status=503)

    with override_settings(PURECLARITY_GDPR=gdpr_settings(pureclarity, MAX_ATTEMPTS=1)):
        response = confirm_action(boss_client, ana)

    assert messages_of(response) == ["2 requests failed; see the forget requests list."]
    assert {r.status for r in ForgetRequest.objects.all()} == {Status.FAILED}
    assert all("ana@example.test" not in m for m in messages_of(response))


@needs_auth_user
def test_a_failure_that_will_be_retried_is_reported_as_such(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    pureclarity.reply(status=503)

    response = confirm_action(boss_client, ana)

    assert message_levels(response) == [
        (
            "warning",
            "2 requests could not be delivered yet; they will be tried again "
            "automatically. See the forget requests list.",
        )
    ]
    requests = ForgetRequest.objects.all()
    assert {(r.status, r.last_status_code) for r in requests} == {(Status.PENDING, 503)}
    assert all(r.next_attempt_at is not None for r in requests)


@needs_auth_user
def test_an_identifier_already_forgotten_is_not_sent_again(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    confirm_action(boss_client, ana)
    boss_client.get(users_url())

    response = confirm_action(boss_client, ana)

    assert messages_of(response) == ["2 identifiers were already forgotten."]
    assert len(pureclarity.received) == 2


@needs_auth_user
def test_a_request_delivered_beside_a_failed_one_is_reported(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    pureclarity.reply(status=400, identifier="ana@example.test", times=1)

    response = confirm_action(boss_client, ana)

    assert message_levels(response) == [
        ("success", "1 request was delivered to PureClarity."),
        ("error", "1 request failed; see the forget requests list."),
    ]
    assert sorted(r.status for r in ForgetRequest.objects.all()) == [
        Status.FAILED,
        Status.SUCCEEDED,
    ]


@needs_auth_user
def test_a_partly_sent_user_is_reported_beside_a_wholly_sent_one(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    ben = make_user("ben", email="ben@example.test")
    pureclarity.reply(status=400, identifier="ana@example.test", times=1)

    response = confirm_action(boss_client, ana, ben)

    assert messages_of(response) == [
        "Forget requests for 1 user were sent to PureClarity.",
        "1 more request was delivered to PureClarity.",
        "1 request failed; see the forget requests list.",
    ]


@needs_auth_user
def test_the_confirmation_leaves_out_what_is_already_forgotten(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    confirm_action(boss_client, ana)

    confirmation = choose_action(boss_client, ana)

    assert "That is 2 requests in all" not in text(confirmation)
    assert (
        "Nothing will be sent: PureClarity already forgot all of these identifiers"
        in text(confirmation)
    )
    assert text(confirmation).count("(already forgotten in default") == 2


@needs_auth_user
def test_the_confirmation_counts_only_what_will_be_sent(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    submit_identifiers(boss_client, "ana@example.test", confirm=True)

    confirmation = choose_action(boss_client, ana)
    response = boss_client.post(users_url(), hidden_fields(confirmation))

    assert "1 request will be sent." in text(confirmation)
    assert "1 request is left out" in text(confirmation)
    assert "4***" in text(confirmation)
    assert text(confirmation).count("(already forgotten in default") == 1
    assert messages_of(response) == [
        "Forget requests for 1 user were sent to PureClarity.",
        "1 identifier was already forgotten.",
    ]
    assert sorted(pureclarity.identifiers) == ["4242", "ana@example.test"]


@needs_auth_user
def test_a_user_without_identifier_is_shown_and_recorded_for_attention(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    nobody = make_user("nobody", email="")
    emails_only = gdpr_settings(pureclarity, IDENTIFIERS=["email"])

    with override_settings(PURECLARITY_GDPR=emails_only):
        confirmation = choose_action(boss_client, nobody)
        response = confirm_action(boss_client, nobody)

    assert "No usable identifier" in page(confirmation)
    assert "needing attention" in page(confirmation)
    assert messages_of(response) == [
        "1 user has an identifier that cannot be sent, or none at all; this was "
        "recorded as needing attention in the forget requests list."
    ]
    request = ForgetRequest.objects.get()
    assert request.status == Status.NEEDS_ATTENTION
    assert request.requested_by == boss.get_username()
    assert pureclarity.received == []


@needs_auth_user
def test_hostile_email_is_escaped_on_the_confirmation_page(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    mallory = make_user("mallory", email=HOSTILE)

    response = choose_action(boss_client, mallory)

    assert RAW_TAG not in page(response)
    assert ESCAPED_HINT in page(response)


@needs_auth_user
def test_deleting_a_user_in_the_admin_records_who_asked(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    response = boss_client.post(
        url(get_user_model(), "delete", ana.pk), {"post": "yes"}
    )

    assert response.status_code == 302
    requests = ForgetRequest.objects.all()
    assert len(requests) == 2
    assert {r.requested_by for r in requests} == {boss.get_username()}
    assert {r.source for r in requests} == {Source.USER_DELETION}


@needs_auth_user
def test_deleting_selected_users_records_who_asked(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    data = {"action": "delete_selected", SELECTED: [ana.pk], "post": "yes"}

    boss_client.post(users_url(), data)

    assert not get_user_model().objects.filter(pk=ana.pk).exists()
    assert {r.requested_by for r in ForgetRequest.objects.all()} == {
        boss.get_username()
    }


@needs_auth_user
def test_deleting_yourself_with_others_records_no_requester(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    data = {"action": "delete_selected", SELECTED: [ana.pk, boss.pk], "post": "yes"}

    boss_client.post(users_url(), data)

    assert not get_user_model().objects.exists()
    requests = ForgetRequest.objects.all()
    assert len(requests) == 3
    # The name of someone erased with the others is not kept in their records.
    assert {r.requested_by for r in requests} == {""}


class ShopUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("username", "is_active")
    actions = ("make_inactive",)

    @admin.action(description="Make inactive")
    def make_inactive(self, request: HttpRequest, queryset: Any) -> None:
        queryset.update(is_active=False)


class NoActionsUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    actions = None


def built_site(name: str, admin_class: type[Any], *, register_first: bool) -> Any:
    site = admin.AdminSite(name=name)
    if register_first:
        site.register(get_user_model(), admin_class)
    extend_user_admin_when_urls_are_built(site)
    if not register_first:
        site.register(get_user_model(), admin_class)
    site.get_urls()
    return site


def actions_for(site: Any, user: Any) -> set[str]:
    request = RequestFactory().get("/")
    request.user = user
    return set(site.get_model_admin(get_user_model()).get_actions(request))


@pytest.mark.parametrize("register_first", [True, False])
def test_user_admin_registered_before_or_after_is_extended(
    boss: Any, register_first: bool
) -> None:
    site = built_site(
        f"shop_{register_first}", ShopUserAdmin, register_first=register_first
    )

    model_admin = site.get_model_admin(get_user_model())
    assert type(model_admin) is ShopUserAdmin
    assert model_admin.list_display == ShopUserAdmin.list_display
    assert actions_for(site, boss) == {"make_inactive", "delete_selected", ACTION}


def test_building_urls_again_adds_the_action_once(boss: Any) -> None:
    site = built_site("twice", ShopUserAdmin, register_first=False)

    site.get_urls()

    model_admin = site.get_model_admin(get_user_model())
    assert list(model_admin.actions).count(forget_in_pureclarity) == 1


def test_a_user_admin_without_actions_keeps_none(boss: Any) -> None:
    site = built_site("no_actions", NoActionsUserAdmin, register_first=True)

    assert actions_for(site, boss) == set()


QUEUED_300 = (
    "300 forget requests were queued; they will be sent to PureClarity in the "
    "background. Follow them in the forget requests list."
)


def many_users(count: int, prefix: str = "shopper") -> list[Any]:
    user_model = get_user_model()
    user_model.objects.bulk_create(
        user_model(username=f"{prefix}{n}", email=f"{prefix}{n}@example.test")
        for n in range(count)
    )
    return list(user_model.objects.filter(username__startswith=prefix))


@needs_auth_user
def test_a_big_selection_is_recorded_and_queued_not_sent(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    users = many_users(150)
    worker = gdpr_settings(pureclarity, DELIVERY="worker")

    with override_settings(PURECLARITY_GDPR=worker):
        confirmation = choose_action(boss_client, *users)
        response = boss_client.post(users_url(), hidden_fields(confirmation))

    assert "The requests are recorded and queued now" in text(confirmation)
    assert "and 50 more." in text(confirmation)
    assert "That is 300 requests in all" in text(confirmation)
    assert response.status_code == 302
    assert messages_of(response) == [QUEUED_300]
    requests = ForgetRequest.objects.all()
    assert len(requests) == 300
    assert {(r.status, r.source, r.requested_by) for r in requests} == {
        (Status.PENDING, Source.ADMIN, boss.get_username())
    }
    assert pureclarity.received == []
    assert LogEntry.objects.filter(user=boss, action_flag=CHANGE).count() == 150


@needs_auth_user
def test_in_worker_mode_even_one_user_is_only_queued(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    worker = gdpr_settings(pureclarity, DELIVERY="worker")

    with override_settings(PURECLARITY_GDPR=worker):
        response = confirm_action(boss_client, ana)

    assert messages_of(response) == [
        "2 forget requests were queued; they will be sent to PureClarity in the "
        "background. Follow them in the forget requests list."
    ]
    assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 2
    assert pureclarity.received == []


@needs_auth_user
def test_over_a_hundred_users_are_sent_once_the_transaction_commits(
    pureclarity: LocalPureClarity,
    boss_client: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    users = many_users(101)

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm_action(boss_client, *users)

    assert messages_of(response)[0].startswith("202 forget requests were queued")
    assert len(pureclarity.identifiers) == 202
    assert {r.status for r in ForgetRequest.objects.all()} == {Status.SUCCEEDED}


@needs_auth_user
def test_a_hundred_users_are_still_sent_while_the_page_waits(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    users = many_users(100)

    response = confirm_action(boss_client, *users)

    assert messages_of(response) == [
        "Forget requests for 100 users were sent to PureClarity."
    ]
    assert len(pureclarity.identifiers) == 200


@needs_auth_user
def test_recording_many_users_takes_a_few_queries_not_one_per_user(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    users = many_users(240)
    worker = gdpr_settings(pureclarity, DELIVERY="worker")

    with (
        override_settings(PURECLARITY_GDPR=worker),
        CaptureQueriesContext(connection) as queries,
    ):
        confirm_action(boss_client, *users)

    assert ForgetRequest.objects.count() == 480
    # Bulk inserts still split into batches where SQLite limits query variables.
    assert len(queries) < 40


@needs_auth_user
def test_with_a_cool_off_the_action_says_so_and_sends_nothing_yet(
    pureclarity: LocalPureClarity,
    boss_client: Client,
    ana: Any,
    clock: Clock,
    django_capture_on_commit_callbacks: Any,
) -> None:
    cool_off = gdpr_settings(pureclarity, DELAY=3600)

    with override_settings(PURECLARITY_GDPR=cool_off):
        confirmation = choose_action(boss_client, ana)
        with django_capture_on_commit_callbacks(execute=True):
            response = boss_client.post(users_url(), hidden_fields(confirmation))

    assert "Each request waits 1 hour before it is sent" in text(confirmation)
    assert messages_of(response) == [
        "2 forget requests were queued; they will be sent to PureClarity in the "
        "background. Follow them in the forget requests list.",
        "Each request waits 1\xa0hour before it is sent; until then it can be "
        "cancelled in the forget requests list.",
    ]
    assert pureclarity.received == []
    assert {r.next_attempt_at for r in ForgetRequest.objects.all()} == {
        clock.now + timedelta(hours=1)
    }
