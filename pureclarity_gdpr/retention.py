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


def purge(
    older_than: timedelta, now: datetime | None = None, *, dry_run: bool = False
) -> Purged:
    """Strip finished requests created before ``now - older_than`` to their proof.

    What is kept: the identifier hash, the store view, the status and the dates.
    What goes: the masked hint, error texts, who asked, and the attempts' answer
    excerpts and errors (the attempts' dates and status codes stay). With
    ``dry_run`` nothing is written; the counts are what a purge would change.
    """
    cutoff = (now or timezone.now()) - older_than
    old = ForgetRequest.objects.filter(status__in=FINISHED, created_at__lt=cutoff)
    attempts = ForgetAttempt.objects.filter(request__in=old).exclude(
        excerpt="", error=""
    )
    requests = old.exclude(identifier_hint="", last_error="", requested_by="")
    if dry_run:
        return Purged(requests=requests.count(), attempts=attempts.count())

    with transaction.atomic():
        attempts_purged = attempts.update(excerpt="", error="")
        requests_purged = requests.update(
            identifier="", identifier_hint="", last_error="", requested_by=""
        )

    logger.info(
        "Purged %s finished forget requests and %s attempts older than %s",
        requests_purged,
        attempts_purged,
        cutoff.date().isoformat(),
    )
    return Purged(requests=requests_purged, attempts=attempts_purged)
