"""The admin: forgetting users and typed identifiers, and the forget request audit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core import checks
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from pureclarity_gdpr import delivery
from pureclarity_gdpr.admin import (
    extend_user_admin_when_urls_are_built,
    forget_in_pureclarity,
)
from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .conftest import ACCESS_KEY, SECRET_KEY, gdpr_settings

if TYPE_CHECKING:
    # What the test client returns: a response with the request that made it.
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse
else:
    from django.http import HttpResponse

pytestmark = pytest.mark.django_db

CUSTOM_USER_MODEL = os.environ.get("PURECLARITY_TEST_USER_MODEL") == "custom"
needs_auth_user = pytest.mark.skipif(
    CUSTOM_USER_MODEL, reason="uses django.contrib.auth's User and its UserAdmin"
)

ACTION = "forget_in_pureclarity"
SELECTED = "_selected_action"
WARNING = "PureClarity cannot undo this."
NEVER_AGAIN = "it will never store data for that person again"
HOSTILE = "<img src=x onerror=alert(1)>@example.test"
RAW_TAG = "<img src=x onerror=alert(1)>"
ESCAPED_TAG = "&lt;img src=x onerror=alert(1)&gt;"
ESCAPED_HINT = "&lt;***@e***.test"


def make_user(username: str, **fields: Any) -> Any:
    return get_user_model().objects.create(username=username, **fields)


def grant(user: Any, model: type[models.Model], action: str) -> None:
    codename = get_permission_codename(action, model._meta)
    content_type = ContentType.objects.get_for_model(model)
    user.user_permissions.add(
        Permission.objects.get(codename=codename, content_type=content_type)
    )


def grant_forget(user: Any) -> None:
    user.user_permissions.add(Permission.objects.get(codename=ACTION))


def url(model: type[models.Model], view: str, *args: object) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def users_url() -> str:
    return url(get_user_model(), "changelist")


def requests_url() -> str:
    return url(ForgetRequest, "changelist")


def forget_url() -> str:
    return url(ForgetRequest, "forget")


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        name = values.get("name")
        if tag == "input" and values.get("type") == "hidden" and name:
            self.fields.setdefault(name, []).append(values.get("value") or "")


def hidden_fields(response: HttpResponse) -> dict[str, list[str]]:
    """What a browser would post back from a confirmation page's hidden inputs."""
    parser = _HiddenInputs()
    parser.feed(page(response))
    parser.fields.pop("csrfmiddlewaretoken", None)
    return parser.fields


def messages_of(response: HttpResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def page(response: HttpResponse) -> str:
    return response.content.decode()


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


def choose_action(client: Client, *users: Any) -> HttpResponse:
    data = {"action": ACTION, SELECTED: [u.pk for u in users], "index": "0"}
    return client.post(users_url(), data)


def confirm_action(client: Client, *users: Any) -> HttpResponse:
    data = {"action": ACTION, SELECTED: [u.pk for u in users], "post": "yes"}
    return client.post(users_url(), data)


def failed_requests(server: LocalPureClarity, *identifiers: str) -> list[int]:
    """Requests that failed for good: PureClarity did not accept them."""
    server.reply(status=400, times=len(identifiers))
    recorded = delivery.record(identifiers, source=Source.API)
    delivery.deliver(recorded.to_deliver)
    return recorded.to_deliver


def retry(client: Client, *ids: int) -> HttpResponse:
    data = {"action": "retry", SELECTED: list(ids), "index": "0"}
    return client.post(requests_url(), data)


def submit_identifiers(
    client: Client, text: str, *, confirm: bool = False
) -> HttpResponse:
    data = {"identifiers": text, "store_views": ["default"]}
    if confirm:
        data["post"] = "yes"
    return client.post(forget_url(), data)


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
    assert {r.requested_by for r in requests} == {boss}
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

    assert messages_of(response) == [
        "2 requests could not be delivered yet; they will be tried again "
        "automatically. See the forget requests list."
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
    assert request.requested_by == boss
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
    assert {r.requested_by for r in requests} == {boss}
    assert {r.source for r in requests} == {Source.USER_DELETION}


@needs_auth_user
def test_deleting_selected_users_records_who_asked(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    data = {"action": "delete_selected", SELECTED: [ana.pk], "post": "yes"}

    boss_client.post(users_url(), data)

    assert not get_user_model().objects.filter(pk=ana.pk).exists()
    assert {r.requested_by for r in ForgetRequest.objects.all()} == {boss}


@needs_auth_user
def test_deleting_yourself_with_others_records_no_requester(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any, ana: Any
) -> None:
    data = {"action": "delete_selected", SELECTED: [ana.pk, boss.pk], "post": "yes"}

    boss_client.post(users_url(), data)

    assert not get_user_model().objects.exists()
    requests = ForgetRequest.objects.all()
    assert len(requests) == 3
    assert {r.requested_by_id for r in requests} == {None}


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


def test_the_request_list_links_to_the_form(boss_client: Client) -> None:
    response = boss_client.get(requests_url())

    assert forget_url() in page(response)
    assert "Forget identifiers without an account" in page(response)


def test_the_form_needs_the_permission(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    listing = viewer_client.get(requests_url())
    form = viewer_client.get(forget_url())
    confirmed = submit_identifiers(viewer_client, "ana@example.test", confirm=True)

    assert listing.status_code == 200
    assert forget_url() not in page(listing)
    assert form.status_code == 403
    assert confirmed.status_code == 403
    assert not ForgetRequest.objects.exists()
    assert pureclarity.received == []


def test_the_form_is_csrf_protected(pureclarity: LocalPureClarity, boss: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(boss)

    response = submit_identifiers(client, "ana@example.test", confirm=True)

    assert response.status_code == 403
    assert not ForgetRequest.objects.exists()


def test_the_form_offers_every_store_view_checked(
    two_store_views: LocalPureClarity, boss_client: Client
) -> None:
    response = boss_client.get(forget_url())

    html = page(response)
    assert response.status_code == 200
    assert '<textarea name="identifiers"' in html
    assert html.count('type="checkbox" name="store_views"') == 2
    assert 'value="uk"' in html and 'value="us"' in html
    assert html.count("checked") == 2


def test_a_bad_line_is_an_error_and_nothing_is_written(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    text = "\nana@example.test\n\n" + "x" * 300 + "\nben\x07@example.test"

    response = submit_identifiers(boss_client, text, confirm=True)

    html = page(response)
    assert response.status_code == 200
    assert "Line 4: The identifier is 300 characters long; the most is 255." in html
    assert "Line 5: The identifier" in html
    assert "holds control characters" in html
    assert "nothing was recorded" in html
    assert not ForgetRequest.objects.exists()
    assert pureclarity.received == []


def test_good_lines_are_forgotten_after_confirmation(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    text = "ana@example.test\r\n  guest-77  \r\n"

    confirmation = submit_identifiers(boss_client, text)
    nothing_yet = (ForgetRequest.objects.count(), list(pureclarity.received))
    response = boss_client.post(forget_url(), hidden_fields(confirmation))

    assert WARNING in page(confirmation)
    assert "a***@e***.test" in page(confirmation)
    assert "g***" in page(confirmation)
    assert nothing_yet == (0, [])
    assert response.status_code == 302
    assert response["Location"] == requests_url()
    assert messages_of(response) == [
        "Forget requests for 2 identifiers were sent to PureClarity."
    ]
    assert sorted(pureclarity.identifiers) == ["ana@example.test", "guest-77"]
    requests = ForgetRequest.objects.all()
    assert {(r.source, r.requested_by, r.status) for r in requests} == {
        (Source.ADMIN, boss, Status.SUCCEEDED)
    }
    assert LogEntry.objects.filter(user=boss, action_flag=ADDITION).count() == 2


def test_blank_lines_alone_are_not_enough(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    response = submit_identifiers(boss_client, " \n\t\n", confirm=True)

    assert response.status_code == 200
    assert "Enter at least one identifier." in page(response)
    assert not ForgetRequest.objects.exists()


def test_only_the_chosen_store_views_are_sent_to(
    two_store_views: LocalPureClarity, boss_client: Client
) -> None:
    data = {"identifiers": "ana@example.test", "store_views": ["uk"], "post": "yes"}

    boss_client.post(forget_url(), data)

    assert [r.access_key for r in two_store_views.received] == ["AK-UK"]


def test_an_unknown_store_view_is_refused(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    data = {"identifiers": "ana@example.test", "store_views": ["mars"], "post": "yes"}

    response = boss_client.post(forget_url(), data)

    assert response.status_code == 200
    assert "Select a valid choice" in page(response)
    assert not ForgetRequest.objects.exists()


def test_a_failing_server_is_reported_for_typed_identifiers(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pureclarity.reply(status=503)

    response = submit_identifiers(boss_client, "ana@example.test", confirm=True)

    assert messages_of(response) == [
        "1 request could not be delivered yet; it will be tried again "
        "automatically. See the forget requests list."
    ]
    assert ForgetRequest.objects.get().last_status_code == 503


def test_hostile_identifier_is_escaped_everywhere(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    confirmation = submit_identifiers(boss_client, HOSTILE)
    boss_client.post(forget_url(), hidden_fields(confirmation))
    listing = boss_client.get(requests_url())

    assert RAW_TAG not in page(confirmation)
    assert ESCAPED_TAG in page(confirmation)
    assert ESCAPED_HINT in page(confirmation)
    assert RAW_TAG not in page(listing)
    assert "<***" not in page(listing)
    assert ESCAPED_HINT in page(listing)
    assert pureclarity.identifiers == [HOSTILE]


def test_hostile_bad_line_is_escaped_in_the_error(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    response = submit_identifiers(boss_client, "<script>alert(1)</script>\x07")

    assert "<script>alert" not in page(response)
    assert "&lt;***" in page(response)


@pytest.fixture
def every_page(
    pureclarity: LocalPureClarity, boss_client: Client
) -> Iterator[list[HttpResponse]]:
    pages: list[HttpResponse] = []
    ids = failed_requests(pureclarity, "ben@example.test")
    pages += [
        boss_client.get(requests_url()),
        boss_client.get(url(ForgetRequest, "change", ids[0])),
        retry(boss_client, *ids),
        boss_client.get(forget_url()),
        submit_identifiers(boss_client, "carl@example.test"),
        submit_identifiers(boss_client, "carl@example.test", confirm=True),
    ]
    if not CUSTOM_USER_MODEL:
        ana = make_user("ana", email="ana@example.test")
        pages += [
            boss_client.get(users_url()),
            choose_action(boss_client, ana),
            confirm_action(boss_client, ana),
        ]
    pages += [boss_client.get(requests_url()), boss_client.get(reverse("admin:index"))]
    yield pages


def test_the_secret_key_appears_on_no_page(every_page: list[HttpResponse]) -> None:
    contents = [page(response) for response in every_page]

    assert len(contents) >= 8
    assert all(SECRET_KEY not in content for content in contents)
    assert all(response.status_code in (200, 302) for response in every_page)
