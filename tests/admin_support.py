"""What the admin tests share: people, URLs, and reading the pages they get."""

from __future__ import annotations

import csv
import io
import os
from datetime import timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, StoreViewPause
from pureclarity_gdpr.testing import LocalPureClarity

if TYPE_CHECKING:
    # What the test client returns: a response with the request that made it.
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse
else:
    from django.http import HttpResponse

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
HOSTILE_HINT = "<***@e***.test"
ESCAPED_HINT = "&lt;***@e***.test"
NOT_CALLED_BACK = (
    "It was already acknowledged by PureClarity: an erasure cannot be called back."
)


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


def resume_url() -> str:
    return url(ForgetRequest, "resume")


class _HiddenInputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        name = values.get("name")
        if tag == "input" and values.get("type") == "hidden" and name:
            self.fields.setdefault(name, []).append(values.get("value") or "")


def hidden_fields(response: HttpResponse, *, csrf: bool = False) -> dict[str, Any]:
    """What a browser would post back from a page's hidden inputs.

    The CSRF token is left out unless asked for: the test client skips the check.
    """
    parser = _HiddenInputs()
    parser.feed(page(response))
    fields: dict[str, Any] = parser.fields
    token = fields.pop("csrfmiddlewaretoken", [])
    if csrf:
        fields["csrfmiddlewaretoken"] = token[0]
    return fields


def messages_of(response: HttpResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def message_levels(response: HttpResponse) -> list[tuple[str, str]]:
    """The messages with their levels, as ("warning", "1 request could not ...")."""
    return [
        (message.level_tag, str(message))
        for message in get_messages(response.wsgi_request)
    ]


def page(response: HttpResponse) -> str:
    return response.content.decode()


def text(response: HttpResponse) -> str:
    """The page with its whitespace runs made single spaces, as a reader sees it."""
    return " ".join(page(response).split())


def csv_rows(response: HttpResponse) -> list[list[str]]:
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(content, newline="")))


def choose_action(client: Client, *users: Any) -> HttpResponse:
    data = {"action": ACTION, SELECTED: [u.pk for u in users], "index": "0"}
    return client.post(users_url(), data)


def confirm_action(client: Client, *users: Any) -> HttpResponse:
    data = {"action": ACTION, SELECTED: [u.pk for u in users], "post": "yes"}
    return client.post(users_url(), data)


def request_action(
    client: Client, action: str, *ids: int, confirm: bool = False
) -> HttpResponse:
    """Choose an action on the forget request list, confirmed or not."""
    data: dict[str, Any] = {"action": action, SELECTED: list(ids), "index": "0"}
    if confirm:
        data["post"] = "yes"
    return client.post(requests_url(), data)


def failed_requests(server: LocalPureClarity, *identifiers: str) -> list[int]:
    """Requests that failed for good: PureClarity did not accept them."""
    server.reply(status=400, times=len(identifiers))
    recorded = delivery.record(identifiers, source=Source.API)
    delivery.deliver(recorded.to_deliver)
    return recorded.to_deliver


def succeeded_requests(*identifiers: str, requested_by: Any = None) -> list[int]:
    """Requests PureClarity acknowledged (the local server answers 200)."""
    recorded = delivery.record(
        identifiers, source=Source.ADMIN, requested_by=requested_by
    )
    delivery.deliver(recorded.to_deliver)
    return recorded.to_deliver


def pending_requests(*identifiers: str) -> list[int]:
    """Requests recorded and not sent yet, as in "worker" delivery mode."""
    return delivery.record(identifiers, source=Source.API).to_deliver


def requested_days_ago(days: float, *ids: int) -> None:
    then = timezone.now() - timedelta(days=days)
    ForgetRequest.objects.filter(pk__in=ids).update(created_at=then)


def pause(store_view: str = "default", reason: str = "Refused.") -> StoreViewPause:
    """A store view paused as delivery pauses one after a 401 or 403."""
    now = timezone.now()
    return StoreViewPause.objects.create(
        store_view=store_view,
        reason=reason,
        paused_at=now,
        paused_until=now + timedelta(hours=1),
    )


def retry(client: Client, *ids: int) -> HttpResponse:
    return request_action(client, "retry", *ids)


def submit_identifiers(
    client: Client, text: str, *, confirm: bool = False
) -> HttpResponse:
    data = {"identifiers": text, "store_views": ["default"]}
    if confirm:
        data["post"] = "yes"
    return client.post(forget_url(), data)


def status_of(pk: int) -> str:
    return ForgetRequest.objects.get(pk=pk).status
