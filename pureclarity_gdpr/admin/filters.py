"""The "GDPR deadline" filter: requests at risk of missing the month to erase.

A request counts while it still has to reach PureClarity: pending (in its
cool-off, or waiting for a retry), being sent, or failed. Succeeded requests
were acknowledged; cancelled ones were called off; those needing attention have
nothing to send and are counted apart on the list's header.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import OPEN_STATUSES, ForgetRequest

# The GDPR gives a month to act on a request to erase; 30 days stand for it.
DEADLINE = timedelta(days=30)
# From when a request is "due soon": a week before its deadline.
DUE_SOON = timedelta(days=23)

OVERDUE = "overdue"
SOON = "due_soon"


def overdue(now: datetime) -> Q:
    """Not acknowledged, and requested more than 30 days ago."""
    return Q(status__in=OPEN_STATUSES, created_at__lt=now - DEADLINE)


def due_soon(now: datetime) -> Q:
    """Not acknowledged, and requested between 23 and 30 days ago."""
    return Q(
        status__in=OPEN_STATUSES,
        created_at__gte=now - DEADLINE,
        created_at__lt=now - DUE_SOON,
    )


class DeadlineFilter(admin.SimpleListFilter):
    title = _("GDPR deadline")
    parameter_name = "gdpr_deadline"

    def lookups(
        self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]
    ) -> list[tuple[str, Any]]:
        return [
            (OVERDUE, _("Overdue: not acknowledged within 30 days")),
            (SOON, _("Due soon: not acknowledged after 23 days")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ForgetRequest]
    ) -> QuerySet[ForgetRequest]:
        now = timezone.now()
        if self.value() == OVERDUE:
            return queryset.filter(overdue(now))
        if self.value() == SOON:
            return queryset.filter(due_soon(now))
        return queryset
