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
from ..delivery import Delivered, Recorded, deliver, record
from ..identifiers import identifier_hashes, mask
from ..models import ForgetRequest, Source, Status
from ..scheduling import deliver_after_commit
from .pages import SHOWN

# Selections larger than this are recorded and queued rather than sent at once.
BIG_SELECTION = 100
# Identifiers looked up together for the confirmation page, as recording does.
LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class Shown:
    """An identifier on a confirmation page: masked, and where it is not sent."""

    masked: str
    # The store views where PureClarity already forgot it, in the chosen order.
    forgotten_in: list[str]


@dataclass
class Subject:
    """Someone to forget: a user with their identifiers, or one typed identifier."""

    label: str
    identifiers: list[str]
    rejected: list[str] = field(default_factory=list)
    obj: Any = None
    # Identifier to the store views where PureClarity already forgot it.
    forgotten: dict[str, list[str]] = field(default_factory=dict)

    @property
    def masked(self) -> list[str]:
        return [mask(identifier) for identifier in self.identifiers]

    @property
    def shown(self) -> list[Shown]:
        return [
            Shown(mask(identifier), self.forgotten.get(identifier, []))
            for identifier in self.identifiers
        ]

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
        return len(self._wholly_sent())

    @property
    def delivered_apart(self) -> int:
        """Requests that reached PureClarity for subjects not wholly sent."""
        whole = {pk for ids in self._wholly_sent() for pk in ids}
        return len(self.succeeded - whole)

    def _wholly_sent(self) -> list[list[int]]:
        return [
            ids for ids in self.per_subject if ids and self.succeeded.issuperset(ids)
        ]

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

        self.note(deliver(ids, budget=conf.immediate_budget))

    def note(self, delivered: Delivered) -> None:
        """Take in what a delivery run did with these requests."""
        self.succeeded = set(delivered.succeeded)
        self.failed = set(delivered.failed)
        self.retrying = set(delivered.retrying)

    @classmethod
    def of(cls, delivered: Delivered) -> Batch:
        """One subject per request: what a run over recorded requests did."""
        tried = [*delivered.succeeded, *delivered.failed, *delivered.deferred]
        batch = cls(per_subject=[[pk] for pk in dict.fromkeys(tried)])
        batch.note(delivered)
        return batch

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


def _forgotten_in(
    identifiers: list[str], store_views: list[str]
) -> dict[str, list[str]]:
    """Where PureClarity already forgot each identifier, in one query.

    As recording will find it: acknowledged under the current or an older hash
    key, and with no open request that would be sent again anyway.
    """
    owners = {
        key_hash: identifier
        for identifier in identifiers
        for key_hash in identifier_hashes(identifier)
    }
    rows = ForgetRequest.objects.filter(
        identifier_hash__in=list(owners), store_view__in=store_views
    ).values_list("identifier_hash", "store_view", "status", "open_key")
    done: set[tuple[str, str]] = set()
    still_open: set[tuple[str, str]] = set()
    for key_hash, store_view, status, open_key in rows:
        pair = (owners[key_hash], store_view)
        if open_key:
            still_open.add(pair)
        elif status == Status.SUCCEEDED:
            done.add(pair)

    not_sent = done - still_open
    forgotten: dict[str, list[str]] = {}
    for identifier in identifiers:
        names = [name for name in store_views if (identifier, name) in not_sent]
        if names:
            forgotten[identifier] = names
    return forgotten


def mark_forgotten(subjects: list[Subject], store_views: list[str]) -> int:
    """Note where each subject's identifiers are already forgotten.

    Returns how many requests that leaves out: recording will not send them.
    """
    identifiers = list(
        dict.fromkeys(identifier for s in subjects for identifier in s.identifiers)
    )
    found: dict[str, list[str]] = {}
    for start in range(0, len(identifiers), LOOKUP_CHUNK):
        chunk = identifiers[start : start + LOOKUP_CHUNK]
        found.update(_forgotten_in(chunk, store_views))

    for subject in subjects:
        subject.forgotten = {
            identifier: found[identifier]
            for identifier in subject.identifiers
            if identifier in found
        }
    return sum(len(names) for names in found.values())


def warning_context(subjects: list[Subject], store_views: list[str]) -> dict[str, Any]:
    """What the warning on every forget confirmation page needs.

    Requests for identifiers PureClarity already forgot are counted apart, as
    they will not be sent again.
    """
    forgotten = mark_forgotten(subjects, store_views)
    # Two people may share an identifier, and so a request.
    identifiers = len({i for subject in subjects for i in subject.identifiers})
    delay = conf.delay
    return {
        "subjects": subjects,
        "shown_subjects": subjects[:SHOWN],
        "more_subjects": max(len(subjects) - SHOWN, 0),
        "store_views": store_views,
        "request_count": identifiers * len(store_views) - forgotten,
        "forgotten_count": forgotten,
        "queued": not sends_now(len(subjects)),
        "delay": delay_text(delay) if delay else "",
    }
