"""Every admin page of the app: no secret, nothing unescaped, and German spoken."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import django
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from pureclarity_gdpr.models import ForgetRequest
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    CUSTOM_USER_MODEL,
    ESCAPED_HINT,
    HOSTILE,
    HOSTILE_HINT,
    RAW_TAG,
    choose_action,
    confirm_action,
    csv_rows,
    failed_requests,
    forget_url,
    hidden_fields,
    make_user,
    messages_of,
    needs_auth_user,
    page,
    pause,
    pending_requests,
    request_action,
    requested_days_ago,
    requests_url,
    resume_url,
    retry,
    submit_identifiers,
    succeeded_requests,
    text,
    url,
    users_url,
)
from .conftest import SECRET_KEY

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as HttpResponse
else:
    from django.http import HttpResponse

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


@pytest.fixture
def every_page(
    pureclarity: LocalPureClarity, boss_client: Client
) -> Iterator[list[HttpResponse]]:
    pages: list[HttpResponse] = []
    ids = failed_requests(pureclarity, "ben@example.test")
    (waiting,) = pending_requests("dan@example.test")
    pause()
    pages += [
        boss_client.get(requests_url()),
        boss_client.get(requests_url() + "?gdpr_deadline=overdue"),
        boss_client.get(url(ForgetRequest, "change", ids[0])),
        retry(boss_client, *ids),
        request_action(boss_client, "cancel", waiting),
        request_action(boss_client, "cancel", waiting, confirm=True),
        boss_client.get(forget_url()),
        submit_identifiers(boss_client, "carl@example.test"),
        submit_identifiers(boss_client, "carl@example.test", confirm=True),
        boss_client.post(resume_url(), {"store_view": "default"}, follow=True),
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

    assert len(contents) >= 12
    assert all(SECRET_KEY not in content for content in contents)
    assert all(response.status_code in (200, 302) for response in every_page)


def test_every_page_writes_its_breadcrumbs_as_the_installed_admin_does(
    every_page: list[HttpResponse],
) -> None:
    # Django 6.1's admin lists its breadcrumbs in an <ol>, 5.2's and 6.0's write a
    # <div> of links; the admin's CSS styles only its own.
    ol, div = '<ol class="breadcrumbs">', '<div class="breadcrumbs">'
    expected, other = (ol, div) if django.VERSION >= (6, 1) else (div, ol)
    trails = [page(r) for r in every_page if 'class="breadcrumbs"' in page(r)]

    # Every page but the index, which has none; the users' pages only with
    # Django's user model.
    assert len(trails) >= 8
    assert all(expected in trail and other not in trail for trail in trails)


def test_the_export_holds_no_secret_key(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    ids = failed_requests(pureclarity, "ben@example.test")

    response = request_action(boss_client, "export_csv", *ids)

    assert SECRET_KEY not in str(csv_rows(response))


@pytest.fixture
def hostile_request(pureclarity: LocalPureClarity) -> int:
    """A pending request for the hostile identifier, overdue, in a paused view."""
    (pk,) = pending_requests(HOSTILE)
    requested_days_ago(31, pk)
    pause(reason=HOSTILE)
    return pk


def test_the_hostile_identifier_is_escaped_on_every_new_page(
    boss_client: Client, hostile_request: int
) -> None:
    shown = [
        boss_client.get(requests_url()),
        boss_client.get(requests_url() + "?gdpr_deadline=overdue"),
        boss_client.get(url(ForgetRequest, "change", hostile_request)),
        request_action(boss_client, "cancel", hostile_request),
    ]
    after = [
        request_action(boss_client, "cancel", hostile_request, confirm=True),
        boss_client.post(resume_url(), {"store_view": "default"}, follow=True),
    ]

    assert all(response.status_code == 200 for response in shown)
    assert all(RAW_TAG not in page(response) for response in shown + after)
    assert all("<***" not in page(response) for response in shown + after)
    assert all(ESCAPED_HINT in page(response) for response in shown)


def test_the_hostile_identifier_is_one_plain_cell_in_the_export(
    boss_client: Client, hostile_request: int
) -> None:
    response = request_action(boss_client, "export_csv", hostile_request)

    header, row = csv_rows(response)
    assert len(row) == len(header) == 9
    assert row[1] == HOSTILE_HINT


# German


def test_the_request_list_speaks_german(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    failed_requests(pureclarity, "ana@example.test")
    pause()

    with translation.override("de"):
        response = boss_client.get(requests_url())

    german = text(response)
    assert "Auf einen Blick" in german
    assert "⚠ 1 fehlgeschlagener Auftrag" in german
    assert "0 ausstehende Aufträge" in german
    assert "Pausierte Store-Views" in german
    assert "Zustellung fortsetzen" in german
    assert "DSGVO-Frist" in german
    assert "Als CSV exportieren" in german
    assert "Stornieren" in german
    assert "Fehlgeschlagen" in german


def test_cancelling_speaks_german(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    (waiting,) = pending_requests("ana@example.test")
    (done,) = succeeded_requests("ben@example.test")

    with translation.override("de"):
        confirmation = request_action(boss_client, "cancel", waiting, done)
        response = request_action(boss_client, "cancel", waiting, done, confirm=True)

    assert "Diesen ausstehenden Löschauftrag stornieren?" in text(confirmation)
    assert "Eine Löschung lässt sich nicht zurückholen." in text(confirmation)
    assert messages_of(response) == [
        "1 Löschauftrag wurde storniert: Er wird nicht gesendet, und seine Kennung "
        "wurde gelöscht.",
        "1 ausgewählter Auftrag wurde nicht storniert. PureClarity hat ihn bereits "
        "bestätigt: Eine Löschung lässt sich nicht zurückholen.",
    ]


@needs_auth_user
def test_forgetting_users_speaks_german(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    with translation.override("de"):
        confirmation = choose_action(boss_client, ana)
        response = boss_client.post(users_url(), hidden_fields(confirmation))

    assert "PureClarity bitten, die ausgewählte Person zu vergessen?" in text(
        confirmation
    )
    assert "PureClarity kann das nicht rückgängig machen." in text(confirmation)
    assert "Das sind insgesamt 2 Aufträge" in text(confirmation)
    assert messages_of(response) == [
        "Löschaufträge für 1 Benutzer wurden an PureClarity gesendet."
    ]


def test_what_is_already_forgotten_is_told_in_german(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    submit_identifiers(boss_client, "ana@example.test", confirm=True)

    with translation.override("de"):
        some = submit_identifiers(boss_client, "ana@example.test\nben@example.test")
        none = submit_identifiers(boss_client, "ana@example.test")

    assert "1 Auftrag wird gesendet." in text(some)
    assert "1 Auftrag entfällt: PureClarity hat diese Kennung" in text(some)
    assert "(bereits vergessen in default: wird dort nicht erneut gesendet)" in text(
        some
    )
    assert "Es wird nichts gesendet" in text(none)


def test_a_partial_delivery_is_told_in_german(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    pureclarity.reply(status=400, identifier="ana@example.test", times=1)
    pending_requests("ana@example.test", "ben@example.test")
    pause()

    with translation.override("de"):
        response = boss_client.post(resume_url(), {"store_view": "default"})

    assert messages_of(response) == [
        "Die Zustellung an Store-View default wurde fortgesetzt; 2 ausstehende "
        "Aufträge sind wieder fällig.",
        "1 Auftrag wurde an PureClarity zugestellt.",
        "1 Auftrag ist fehlgeschlagen; siehe Liste der Löschaufträge.",
    ]


@needs_auth_user
def test_more_requests_delivered_are_told_in_german(
    pureclarity: LocalPureClarity, boss_client: Client, ana: Any
) -> None:
    ben = make_user("ben", email="ben@example.test")
    pureclarity.reply(status=400, identifier="ana@example.test", times=1)

    with translation.override("de"):
        response = confirm_action(boss_client, ana, ben)

    assert messages_of(response)[1] == (
        "1 weiterer Auftrag wurde an PureClarity zugestellt."
    )


def test_the_export_header_speaks_german(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    ids = succeeded_requests("ana@example.test")

    with translation.override("de"):
        response = request_action(boss_client, "export_csv", *ids)

    header, row = csv_rows(response)
    assert header[0] == "Hash der Kennung"
    assert row[-1] == "Erfolgreich"
