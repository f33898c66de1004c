"""Retention: finished requests keep only the proof that an erasure happened."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import ForgetAttempt, ForgetRequest, Status

logger = logging.getLogger(__name__)

FINISHED = (Status.SUCCEEDED, Status.CANCELLED)


@dataclass(frozen=True)
class Purged:
    requests: int
    attempts: int


def purge(older_than: timedelta, now: datetime | None = None) -> Purged:
    """Strip finished requests created before ``now - older_than`` to their proof.

    What is kept: the identifier hash, the store view, the status and the dates.
    What goes: the masked hint, error texts, who asked, and the attempts' answer
    excerpts and errors (the attempts' dates and status codes stay).
    """
    cutoff = (now or timezone.now()) - older_than
    old = ForgetRequest.objects.filter(status__in=FINISHED, created_at__lt=cutoff)

    with transaction.atomic():
        attempts = (
            ForgetAttempt.objects.filter(request__in=old)
            .exclude(excerpt="", error="")
            .update(excerpt="", error="")
        )
        requests = old.exclude(
            identifier_hint="", last_error="", requested_by__isnull=True
        ).update(identifier="", identifier_hint="", last_error="", requested_by=None)

    logger.info(
        "Purged %s finished forget requests and %s attempts older than %s",
        requests,
        attempts,
        cutoff.date().isoformat(),
    )
    return Purged(requests=requests, attempts=attempts)
