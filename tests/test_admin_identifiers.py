"""Forgetting identifiers that belong to no account: form, confirmation, sending."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.test import Client, override_settings

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    ESCAPED_HINT,
    ESCAPED_TAG,
    HOSTILE,
    NEVER_AGAIN,
    RAW_TAG,
    WARNING,
    forget_url,
    hidden_fields,
    message_levels,
    messages_of,
    page,
    requests_url,
    submit_identifiers,
    text,
)
from .conftest import gdpr_settings

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db


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
    assert "holds control or invisible characters" in html
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
        (Source.ADMIN, boss.get_username(), Status.SUCCEEDED)
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

    assert message_levels(response) == [
        (
            "warning",
            "1 request could not be delivered yet; it will be tried again "
            "automatically. See the forget requests list.",
        )
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


def test_the_confirmation_carries_the_same_warning_as_the_user_action(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    response = submit_identifiers(boss_client, "ana@example.test")

    assert WARNING in page(response)
    assert NEVER_AGAIN in page(response)
    assert "That is 1 request in all." in text(response)


def test_a_long_list_is_recorded_and_queued(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    lines = "\n".join(f"guest{n}@example.test" for n in range(150))

    confirmation = submit_identifiers(boss_client, lines)
    response = boss_client.post(forget_url(), hidden_fields(confirmation))

    assert "The requests are recorded and queued now" in text(confirmation)
    assert "and 50 more." in text(confirmation)
    assert messages_of(response) == [
        "150 forget requests were queued; they will be sent to PureClarity in the "
        "background. Follow them in the forget requests list."
    ]
    assert ForgetRequest.objects.filter(status=Status.PENDING).count() == 150
    assert pureclarity.received == []
    assert LogEntry.objects.filter(user=boss, action_flag=ADDITION).count() == 150


def test_with_a_cool_off_typed_identifiers_wait(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    cool_off = gdpr_settings(pureclarity, DELAY=600)

    with override_settings(PURECLARITY_GDPR=cool_off):
        confirmation = submit_identifiers(boss_client, "ana@example.test")
        response = submit_identifiers(boss_client, "ana@example.test", confirm=True)

    assert "Each request waits 10 minutes before it is sent" in text(confirmation)
    assert messages_of(response)[1] == (
        "Each request waits 10\xa0minutes before it is sent; until then it can be "
        "cancelled in the forget requests list."
    )
    assert ForgetRequest.objects.get().status == Status.PENDING
    assert pureclarity.received == []


OLD_KEY = "old-hash-key-that-is-at-least-32-characters"
NEW_KEY = "new-hash-key-that-is-at-least-32-characters"
NOTHING_SENT = (
    "Nothing will be sent: PureClarity already forgot all of these identifiers, "
    "as marked below."
)


def test_forgetting_twice_says_nothing_is_sent_again(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    submit_identifiers(boss_client, "twice@example.test", confirm=True)

    confirmation = submit_identifiers(boss_client, "twice@example.test")
    response = boss_client.post(forget_url(), hidden_fields(confirmation))

    assert "That is 1 request in all" not in text(confirmation)
    assert NOTHING_SENT in text(confirmation)
    assert "t***@e***.test" in text(confirmation)
    assert "(already forgotten in default: not sent there again)" in text(confirmation)
    assert "queued" not in text(confirmation)
    assert messages_of(response) == ["1 identifier was already forgotten."]
    assert pureclarity.identifiers == ["twice@example.test"]


def test_only_what_is_not_forgotten_yet_is_counted(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    submit_identifiers(boss_client, "ana@example.test", confirm=True)

    confirmation = submit_identifiers(boss_client, "ana@example.test\nben@example.test")
    response = boss_client.post(forget_url(), hidden_fields(confirmation))

    assert "1 request will be sent." in text(confirmation)
    assert (
        "1 request is left out: PureClarity already forgot that identifier in that "
        "store view, as marked below." in text(confirmation)
    )
    assert "That is" not in text(confirmation)
    assert text(confirmation).count("already forgotten in default") == 1
    assert messages_of(response) == [
        "Forget requests for 1 identifier were sent to PureClarity.",
        "1 identifier was already forgotten.",
    ]
    assert sorted(pureclarity.identifiers) == ["ana@example.test", "ben@example.test"]


def test_the_confirmation_names_the_store_views_already_forgotten_in(
    two_store_views: LocalPureClarity, boss_client: Client
) -> None:
    delivery.deliver(
        delivery.record(
            ["ana@example.test"], source=Source.API, store_views=["uk"]
        ).to_deliver
    )
    data = {"identifiers": "ana@example.test", "store_views": ["uk", "us"]}

    confirmation = boss_client.post(forget_url(), data)

    assert "1 request will be sent." in text(confirmation)
    assert "1 request is left out" in text(confirmation)
    assert "(already forgotten in uk: not sent there again)" in text(confirmation)


def test_a_request_sent_again_on_purpose_is_counted_as_sent(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    submit_identifiers(boss_client, "ana@example.test", confirm=True)
    delivery.record(["ana@example.test"], source=Source.API, force=True)

    confirmation = submit_identifiers(boss_client, "ana@example.test")

    assert "That is 1 request in all." in text(confirmation)
    assert "already forgotten" not in text(confirmation)


def test_an_identifier_forgotten_under_an_older_hash_key_is_not_counted(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    with override_settings(
        PURECLARITY_GDPR=gdpr_settings(pureclarity, HASH_KEY=OLD_KEY)
    ):
        submit_identifiers(boss_client, "ana@example.test", confirm=True)
    rotated = gdpr_settings(pureclarity, HASH_KEY=NEW_KEY, HASH_KEY_FALLBACKS=[OLD_KEY])

    with override_settings(PURECLARITY_GDPR=rotated):
        confirmation = submit_identifiers(boss_client, "ana@example.test")

    assert NOTHING_SENT in text(confirmation)
