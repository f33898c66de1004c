"""Export as CSV: the forget requests as evidence for a data-protection officer."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from pureclarity_gdpr.models import ForgetRequest
from pureclarity_gdpr.testing import LocalPureClarity

from .admin_support import (
    HOSTILE,
    HOSTILE_HINT,
    csv_rows,
    failed_requests,
    make_user,
    page,
    request_action,
    requests_url,
    succeeded_requests,
)

# The admin fixtures: boss, viewer, their clients, and ana.
pytest_plugins = ["tests.admin_fixtures"]
pytestmark = pytest.mark.django_db

HEADER = [
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


def export(client: Client, *ids: int) -> Any:
    return request_action(client, "export_csv", *ids)


def test_export_has_a_row_per_selected_request(
    pureclarity: LocalPureClarity, boss_client: Client, boss: Any
) -> None:
    (done,) = succeeded_requests("ana@example.test", requested_by=boss)
    (failed,) = failed_requests(pureclarity, "ben@example.test")
    succeeded_requests("not-chosen@example.test")
    done_row = ForgetRequest.objects.get(pk=done)
    failed_row = ForgetRequest.objects.get(pk=failed)

    response = export(boss_client, done, failed)

    rows = csv_rows(response)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        'attachment; filename="forget-requests-'
    )
    assert rows[0] == HEADER
    assert sorted(rows[1:]) == sorted(
        [
            [
                done_row.identifier_hash,
                "a***@e***.test",
                "default",
                "Admin",
                "boss",
                done_row.created_at.isoformat(timespec="seconds"),
                done_row.acknowledged_at.isoformat(timespec="seconds"),
                "1",
                "Succeeded",
            ],
            [
                failed_row.identifier_hash,
                "b***@e***.test",
                "default",
                "Python API",
                "",
                failed_row.created_at.isoformat(timespec="seconds"),
                "",
                "1",
                "Failed",
            ],
        ]
    )


def test_export_holds_no_plain_identifier(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    ids = succeeded_requests("ana@example.test")

    response = export(boss_client, *ids)

    assert "ana@example.test" not in str(csv_rows(response))


@pytest.mark.parametrize(
    ("identifier", "cell"),
    [
        ("=cmd|' /C calc'!A0@example.test", "'=***@e***.test"),
        ("+41 79 000 00 00", "'+***"),
        ("-2+3", "'-***"),
        ("@handle", "'@***"),
        ("ana@example.test", "a***@e***.test"),
    ],
)
def test_cells_a_spreadsheet_would_run_are_written_as_text(
    pureclarity: LocalPureClarity, boss_client: Client, identifier: str, cell: str
) -> None:
    ids = succeeded_requests(identifier)

    response = export(boss_client, *ids)

    assert csv_rows(response)[1][1] == cell


def test_a_formula_in_a_username_is_written_as_text(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    mallory = make_user('=HYPERLINK("http://127.0.0.1/x","click"),\nme')
    ids = succeeded_requests("ana@example.test", requested_by=mallory)

    response = export(boss_client, *ids)

    (row,) = csv_rows(response)[1:]
    assert len(row) == len(HEADER)
    assert row[4] == '\'=HYPERLINK("http://127.0.0.1/x","click"),\nme'


def test_a_hostile_identifier_stays_in_its_one_cell(
    pureclarity: LocalPureClarity, boss_client: Client
) -> None:
    ids = succeeded_requests(HOSTILE)

    response = export(boss_client, *ids)

    (row,) = csv_rows(response)[1:]
    assert len(row) == len(HEADER)
    assert row[1] == HOSTILE_HINT
    assert HOSTILE not in str(row)


def test_staff_who_may_view_requests_may_export_but_not_cancel(
    pureclarity: LocalPureClarity, viewer_client: Client
) -> None:
    ids = succeeded_requests("ana@example.test")

    listing = viewer_client.get(requests_url())
    response = export(viewer_client, *ids)

    assert 'value="export_csv"' in page(listing)
    assert 'value="cancel"' not in page(listing)
    assert len(csv_rows(response)) == 2
