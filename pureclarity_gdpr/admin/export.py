"""Exporting forget requests as CSV, the evidence a data-protection officer keeps.

The file holds what the request list shows, never a plain identifier. It is
opened in spreadsheets, where a cell starting with "=" is run as a formula, so
such cells are written as text.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import ForgetRequest, Source, Status

logger = logging.getLogger(__name__)

# Characters that make a spreadsheet read a cell as a formula (tab and carriage
# return too, as some programs skip them before looking).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Lets spreadsheet programs tell the file is UTF-8.
BYTE_ORDER_MARK = "\ufeff"
CHUNK = 2000


def as_text(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat(timespec="seconds")


class _Line:
    """Where csv.writer writes: each row comes back as a string to stream."""

    def write(self, line: str) -> str:
        return line


@dataclass(frozen=True)
class _Labels:
    """Column names and choice labels in the language of the person exporting.

    They are fixed before the response streams, when that language is active.
    """

    header: list[str]
    sources: dict[str, str]
    statuses: dict[str, str]


def _labels() -> _Labels:
    header = [
        gettext("identifier hash"),
        gettext("masked identifier"),
        gettext("store view"),
        gettext("source"),
        gettext("requested by"),
        gettext("requested"),
        gettext("acknowledged"),
        gettext("attempts"),
        gettext("status"),
    ]
    return _Labels(
        header=header,
        sources={value: str(label) for value, label in Source.choices},
        statuses={value: str(label) for value, label in Status.choices},
    )


def rows(
    queryset: models.QuerySet[ForgetRequest], labels: _Labels
) -> Iterator[list[str]]:
    yield labels.header
    for request in queryset.iterator(CHUNK):
        yield [
            request.identifier_hash,
            request.identifier_hint,
            request.store_view,
            labels.sources.get(request.source, request.source),
            request.requested_by,
            _when(request.created_at),
            _when(request.acknowledged_at),
            str(request.attempts),
            labels.statuses.get(request.status, request.status),
        ]


def _lines(rows: Iterator[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield BYTE_ORDER_MARK
    for row in rows:
        yield writer.writerow([as_text(cell) for cell in row])


@admin.action(permissions=["view"], description=_("Export as CSV"))
def export_csv(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[ForgetRequest],
) -> StreamingHttpResponse:
    """Stream the selected requests as a CSV file, however many there are."""
    logger.info(
        "User %s exported %s forget requests", request.user.pk, queryset.count()
    )
    filename = f"forget-requests-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(
        _lines(rows(queryset, _labels())), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
