"""The admin in headless Chromium, used as staff handling erasure requests use it.

Each test logs in on a fresh session and checks what the pages say. The local
PureClarity answers every request normally unless a test tells it otherwise,
and shows what the shop sent it. Screenshots of the key moments go to
docs/screenshots/, for the README.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .conftest import CUSTOMERS, OFFICER, PASSWORD, SECRET_KEY, VIEWER

if TYPE_CHECKING:
    from pureclarity_gdpr.testing import LocalPureClarity

    from .browser import AdminBrowser, Box
    from .conftest import Shop

pytestmark = pytest.mark.slow

FORGET = "Forget in PureClarity"
CONFIRM_FORGET = "Yes, forget them in PureClarity"
CANNOT_UNDO = "PureClarity cannot undo this."
CSV_HEADER = [
    "identifier hash",
    "masked identifier",
    "store view",
    "source",
    "requested by",
    "requested",
    "acknowledged",
    "attempts",
    "status",
]


def open_users(admin: AdminBrowser) -> None:
    admin.open("/admin/")
    admin.click_link("Users")


def open_requests(admin: AdminBrowser) -> None:
    admin.open("/admin/")
    admin.click_link("Forget requests")


def forget_users(admin: AdminBrowser, *usernames: str) -> None:
    """Select the users, run "Forget in PureClarity" and confirm."""
    open_users(admin)
    admin.select(*usernames)
    admin.run_action(FORGET)
    admin.press(CONFIRM_FORGET)


def ask_to_forget_guest(admin: AdminBrowser, identifier: str) -> None:
    """Type an identifier in the form for guests, and go on to the confirmation."""
    open_requests(admin)
    admin.click_link("Forget identifiers without an account")
    admin.type_into("identifiers", identifier)
    admin.press("Continue")


def test_forgetting_two_users_after_a_confirmation(
    admin: AdminBrowser, shop: Shop, local_pureclarity: LocalPureClarity
) -> None:
    admin.log_in(OFFICER, PASSWORD)
    open_users(admin)
    admin.select("ana", "ben")

    admin.run_action(FORGET)

    assert admin.heading == FORGET
    assert "Ask PureClarity to forget the 2 selected people?" in admin.text
    assert CANNOT_UNDO in admin.text
    assert "a***@e***.test" in admin.text
    assert "b***@e***.test" in admin.text
    assert "ana@example.test" not in admin.text
    assert local_pureclarity.received == []
    admin.screenshot("01-confirm-forget.png")

    admin.press(CONFIRM_FORGET)

    assert admin.messages == ["Forget requests for 2 users were sent to PureClarity."]
    assert sorted(local_pureclarity.identifiers) == sorted(
        [
            str(shop.users["ana"]),
            "ana@example.test",
            str(shop.users["ben"]),
            "ben@example.test",
        ]
    )
    admin.screenshot("02-forget-sent.png")


def test_retrying_a_failed_request_once_pureclarity_accepts_it(
    admin: AdminBrowser, local_pureclarity: LocalPureClarity
) -> None:
    # PureClarity refuses cleo's email once; the retry finds it answering again.
    local_pureclarity.reply(
        400, "Bad identifier", identifier="cleo@example.test", times=1
    )
    admin.log_in(OFFICER, PASSWORD)

    forget_users(admin, "cleo")

    assert admin.messages == [
        "1 request was delivered to PureClarity.",
        "1 request failed; see the forget requests list.",
    ]

    open_requests(admin)
    admin.filter_by("status", "Failed")

    assert len(admin.row_texts()) == 1
    assert "⚠ Failed" in admin.row("c***@e***.test").text
    assert "⚠ 1 failed request" in admin.text
    assert not admin.box("ul.object-tools").overlaps(
        admin.box(".pureclarity-gdpr-summary")
    )
    admin.screenshot("03-failed-requests.png")

    admin.select("c***@e***.test")
    admin.run_action("Retry")

    assert admin.messages == ["1 request was delivered to PureClarity."]
    assert admin.row_texts() == []
    assert local_pureclarity.identifiers.count("cleo@example.test") == 2

    admin.filter_by("status", "Succeeded")

    assert "Succeeded" in admin.row("c***@e***.test").text


def test_cancelling_a_request_that_waits_for_a_retry(
    admin: AdminBrowser, local_pureclarity: LocalPureClarity
) -> None:
    # A 503 leaves dan's email pending, with a retry scheduled a minute later.
    local_pureclarity.reply(503, "Busy", identifier="dan@example.test")
    admin.log_in(OFFICER, PASSWORD)
    forget_users(admin, "dan")
    open_requests(admin)
    admin.filter_by("status", "Pending")

    assert "Pending (retry scheduled)" in admin.row("d***@e***.test").text

    admin.select("d***@e***.test")
    admin.run_action("Cancel")

    assert admin.heading == "Cancel forget requests"
    assert "Cancel this pending forget request?" in admin.text
    assert "d***@e***.test \N{EN DASH} default" in admin.text
    admin.screenshot("04-confirm-cancel.png")

    admin.press("Yes, cancel them")

    assert admin.messages == [
        "1 forget request was cancelled: it will not be sent, and its identifier "
        "was deleted."
    ]
    assert admin.row_texts() == []

    admin.filter_by("status", "Cancelled")

    assert "Cancelled" in admin.row("d***@e***.test").text
    assert local_pureclarity.identifiers.count("dan@example.test") == 1
    admin.screenshot("05-cancelled.png")


def test_forgetting_a_guest_without_an_account(
    admin: AdminBrowser, local_pureclarity: LocalPureClarity
) -> None:
    admin.log_in(OFFICER, PASSWORD)
    open_requests(admin)
    admin.click_link("Forget identifiers without an account")
    admin.type_into("identifiers", "guest.buyer@example.test")
    admin.tick("default")
    admin.screenshot("06-forget-guest.png")

    admin.press("Continue")

    assert "Ask PureClarity to forget this identifier?" in admin.text
    assert CANNOT_UNDO in admin.text
    assert "g***@e***.test" in admin.text
    assert "guest.buyer@example.test" not in admin.text
    assert local_pureclarity.received == []

    admin.press(CONFIRM_FORGET)

    assert admin.messages == [
        "Forget requests for 1 identifier were sent to PureClarity."
    ]
    assert local_pureclarity.identifiers == ["guest.buyer@example.test"]
    row = admin.row("g***@e***.test").text
    assert "Succeeded" in row
    assert OFFICER in row


def label_placement(label: Box, field: Box) -> str:
    """Where a field's label is drawn: "beside" it on the left, or "above" it."""
    if label.right <= field.x and field.y <= label.middle <= field.bottom:
        return "beside"
    if label.bottom <= field.y and abs(label.x - field.x) <= 2:
        return "above"
    return "elsewhere"


def test_the_guest_form_lines_its_fields_up_as_admin_forms_do(
    admin: AdminBrowser,
) -> None:
    admin.log_in(OFFICER, PASSWORD)
    # The admin's own form, laid out as this Django does: up to 6.0 its labels
    # stand beside the fields, from 6.1 above them.
    admin.open("/admin/password_change/")
    admins_own = label_placement(
        admin.box("label[for=id_old_password]"), admin.box("input[name=old_password]")
    )
    assert admins_own in {"beside", "above"}

    admin.open("/admin/pureclarity_gdpr/forgetrequest/forget/")

    textarea = admin.box("textarea[name=identifiers]")
    checkbox = admin.box("input[name=store_views]")
    assert abs(checkbox.x - textarea.x) <= 2
    label = admin.box("label[for=id_identifiers]")
    assert label_placement(label, textarea) == admins_own


def test_the_forget_pages_show_the_breadcrumbs_the_admin_does(
    admin: AdminBrowser,
) -> None:
    admin.log_in(OFFICER, PASSWORD)
    open_requests(admin)
    # The request list's trail is the admin's own, in this Django's markup.
    admins_own = admin.breadcrumbs()

    admin.click_link("Forget identifiers without an account")
    form = admin.breadcrumbs()
    admin.type_into("identifiers", "trail@example.test")
    admin.press("Continue")
    confirmation = admin.breadcrumbs()

    for trail in (form, confirmation):
        assert (trail.tag, trail.background) == (admins_own.tag, admins_own.background)
        assert abs(trail.height - admins_own.height) <= 1
    assert form.links == [*admins_own.links, "Forget requests"]
    assert confirmation.links == [*form.links, "Forget identifiers"]


def test_forgetting_a_guest_twice_says_it_is_not_sent_again(
    admin: AdminBrowser, local_pureclarity: LocalPureClarity
) -> None:
    admin.log_in(OFFICER, PASSWORD)
    ask_to_forget_guest(admin, "twice@example.test")
    admin.press(CONFIRM_FORGET)

    ask_to_forget_guest(admin, "twice@example.test")

    assert "That is 1 request in all" not in admin.text
    assert (
        "Nothing will be sent: PureClarity already forgot all of these identifiers"
        in admin.text
    )
    assert "t***@e***.test (already forgotten in default" in admin.text
    admin.screenshot("10-already-forgotten.png")

    admin.press(CONFIRM_FORGET)

    assert admin.messages == ["1 identifier was already forgotten."]
    assert local_pureclarity.identifiers == ["twice@example.test"]


@pytest.fixture
def resumed_afterwards(shop: Shop) -> Iterator[None]:
    """The shop's store view unpaused after the test, whatever became of it."""
    yield
    shop.manage("pureclarity_forget", "--resume", "default")


def test_a_paused_store_view_is_shown_clear_of_the_buttons_and_resumed(
    admin: AdminBrowser, local_pureclarity: LocalPureClarity, resumed_afterwards: None
) -> None:
    # PureClarity refuses emma's email once, as if the keys had been revoked.
    local_pureclarity.reply(
        403, "Account not found", identifier="emma@example.test", times=1
    )
    admin.log_in(OFFICER, PASSWORD)
    forget_users(admin, "emma")
    open_requests(admin)

    tools = admin.box("ul.object-tools")
    assert not tools.overlaps(admin.box(".pureclarity-gdpr-summary"))
    assert not tools.overlaps(admin.box(".pureclarity-gdpr-pauses"))
    button = admin.box(".pureclarity-gdpr-pauses input[type=submit]")
    assert button.within(admin.box(".pureclarity-gdpr-pauses tbody td:last-child"))
    assert button.within(admin.box(".pureclarity-gdpr-pauses table"))
    # On the line of its row, beside the store view's name, not below it.
    name = admin.text_box(".pureclarity-gdpr-pauses tbody td:first-child")
    assert abs(button.middle - name.middle) <= 2
    admin.screenshot("09-paused-store-view.png")

    admin.press("Resume deliveries")

    assert admin.messages == [
        "Deliveries to store view default were resumed; 1 pending request is due "
        "again.",
        "1 request was delivered to PureClarity.",
    ]
    assert local_pureclarity.identifiers.count("emma@example.test") == 2
    assert "Paused store views" not in admin.text


def test_exporting_requests_as_csv_shows_no_plain_identifier(
    admin: AdminBrowser, shop: Shop
) -> None:
    shop.manage("pureclarity_forget", "hana@example.test", "ivo@example.test")
    admin.log_in(OFFICER, PASSWORD)
    open_requests(admin)
    shown = len(admin.row_texts())
    admin.select_all()
    admin.choose_action("Export as CSV")
    admin.screenshot("07-export-csv.png")

    exported = admin.download(admin.press_go, "forget-requests-*.csv")

    text = exported.read_text(encoding="utf-8-sig")
    header, *rows = csv.reader(io.StringIO(text))
    by_hint = {row[1]: row for row in rows}
    assert header == CSV_HEADER
    assert len(rows) == shown
    assert by_hint["h***@e***.test"][2:5] == ["default", "Command", ""]
    assert by_hint["h***@e***.test"][-1] == "Succeeded"
    assert by_hint["i***@e***.test"][-1] == "Succeeded"
    plain = ["hana@example.test", "ivo@example.test"]
    plain += [f"{name}@example.test" for name in CUSTOMERS]
    assert [identifier for identifier in plain if identifier in text] == []
    assert SECRET_KEY not in text


def test_staff_without_the_permission_are_not_offered_to_forget(
    admin: AdminBrowser, shop: Shop
) -> None:
    shop.manage("pureclarity_forget", "jo@example.test")
    admin.log_in(VIEWER, PASSWORD)

    open_users(admin)

    assert "ana@example.test" in admin.text
    assert FORGET not in admin.action_labels
    assert FORGET not in admin.text

    open_requests(admin)

    assert "Export as CSV" in admin.action_labels
    assert "Retry" not in admin.action_labels
    assert "Cancel" not in admin.action_labels
    assert not admin.has_link("Forget identifiers without an account")
    admin.screenshot("08-without-permission.png")

    admin.open("/admin/pureclarity_gdpr/forgetrequest/forget/")

    assert "403 Forbidden" in admin.text
