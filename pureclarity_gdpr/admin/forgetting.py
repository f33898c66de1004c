"""Recording forget requests for the people chosen in the admin, and sending them.

A few people are sent to PureClarity while the page waits, so staff see at once
what became of them. Many people, or a delivery mode that sends in the
background, or a cool-off, are only recorded and queued: the page answers within
the request however many were selected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.timesince import timeuntil

from ..conf import conf
from ..delivery import Recorded, deliver, record
from ..identifiers import identifier_hashes, mask
from ..models import Source
from ..scheduling import deliver_after_commit
from .pages import SHOWN

# Selections larger than this are recorded and queued rather than sent at once.
BIG_SELECTION = 100


@dataclass
class Subject:
    """Someone to forget: a user with their identifiers, or one typed identifier."""

    label: str
    identifiers: list[str]
    rejected: list[str] = field(default_factory=list)
    obj: Any = None

    @property
    def masked(self) -> list[str]:
        return [mask(identifier) for identifier in self.identifiers]

    @property
    def unsendable(self) -> list[str]:
        """Why some or all of this person cannot be sent, for the audit record."""
        if self.rejected or self.identifiers:
            return list(self.rejected)
        return ["it has no identifier to send"]


@dataclass
class Batch:
    """The requests recorded for some subjects, and what became of them."""

    recorded: Recorded = field(default_factory=Recorded)
    per_subject: list[list[int]] = field(default_factory=list)
    needs_attention: int = 0
    queued: bool = False
    succeeded: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    retrying: set[int] = field(default_factory=set)

    @property
    def ids(self) -> list[int]:
        # Two people may share an identifier, and so a request.
        return list(dict.fromkeys(pk for ids in self.per_subject for pk in ids))

    @property
    def already_forgotten(self) -> int:
        return len({r.identifier_hash for r in self.recorded.already_forgotten})

    @property
    def sent(self) -> int:
        """Subjects whose every request reached PureClarity in this run."""
        return sum(
            1 for ids in self.per_subject if ids and self.succeeded.issuperset(ids)
        )

    @property
    def waiting(self) -> int:
        """Requests not tried in this run: out of time, paused, or sent elsewhere."""
        tried = self.succeeded | self.failed | self.retrying
        return len(set(self.ids) - tried)

    def deliver(self) -> None:
        """Send the requests now, outside the transaction that recorded them.

        The budget keeps the admin page from hanging on a slow PureClarity.
        """
        ids = self.ids
        if not ids:
            return

        delivered = deliver(ids, budget=conf.immediate_budget)
        self.succeeded = set(delivered.succeeded)
        self.failed = set(delivered.failed)
        self.retrying = set(delivered.retrying)

    def queue(self) -> None:
        """Leave the requests to the delivery mode, once the transaction commits."""
        deliver_after_commit(self.ids)
        self.queued = True


def sends_now(subject_count: int) -> bool:
    """Whether the admin sends the requests while the person waits for the page."""
    return (
        conf.delivery == "immediate"
        and not conf.delay
        and subject_count <= BIG_SELECTION
    )


def record_subjects(
    subjects: list[Subject], *, store_views: Iterable[str] | None, requested_by: Any
) -> Batch:
    """Record every subject's requests at once, then sort them back per subject."""
    recorded = record(
        [identifier for subject in subjects for identifier in subject.identifiers],
        source=Source.ADMIN,
        store_views=store_views,
        requested_by=requested_by,
    )

    by_hash: dict[str, list[int]] = {}
    for request in [*recorded.created, *recorded.already_open]:
        by_hash.setdefault(request.identifier_hash, []).append(request.pk)
    per_subject = [
        list(
            dict.fromkeys(
                pk
                for identifier in subject.identifiers
                # A request recorded under an older hash key still counts.
                for key_hash in identifier_hashes(identifier)
                for pk in by_hash.get(key_hash, [])
            )
        )
        for subject in subjects
    ]
    return Batch(recorded=recorded, per_subject=per_subject)


def delay_text(delay: timedelta) -> str:
    """The cool-off in words, such as "1 hour", in the active language."""
    now = timezone.now()
    return timeuntil(now + delay, now)


def warning_context(subjects: list[Subject], store_views: list[str]) -> dict[str, Any]:
    """What the warning on every forget confirmation page needs."""
    identifiers = sum(len(subject.identifiers) for subject in subjects)
    delay = conf.delay
    return {
        "subjects": subjects,
        "shown_subjects": subjects[:SHOWN],
        "more_subjects": max(len(subjects) - SHOWN, 0),
        "store_views": store_views,
        "request_count": identifiers * len(store_views),
        "queued": not sends_now(len(subjects)),
        "delay": delay_text(delay) if delay else "",
    }
