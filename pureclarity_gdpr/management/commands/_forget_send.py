"""One sending run of ``pureclarity_forget``: record, resume, retry and deliver.

Each request is reported as its batch finishes.

Requests go out a batch at a time and only counts are kept across batches, so a
run over any number of requests reports in flat memory.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import QuerySet

from pureclarity_gdpr import delivery
from pureclarity_gdpr.models import ForgetRequest, Source, Status, StoreViewPause

from . import _forget_queue as queue
from ._forget_io import Printer, describe, plural, when

SUCCEEDED = "succeeded"
FAILED = "failed"
STILL_PENDING = "still pending"


@dataclass(frozen=True)
class Plan:
    """What a sending run was asked to do."""

    store_views: list[str] | None
    resume: list[str]
    force: bool
    retry_failed: bool
    deliver: bool
    batch_size: int


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _outcome(
    request: ForgetRequest,
    delivered: delivery.Delivered,
    pauses: dict[str, StoreViewPause],
    started: datetime,
) -> tuple[str, str]:
    """What became of a request in this run: its kind and how to tell it."""
    if request.pk in delivered.succeeded:
        return SUCCEEDED, "succeeded."
    if request.status == Status.FAILED:
        return FAILED, f"failed: {request.last_error}"

    pause = pauses.get(request.store_view)
    if pause is not None:
        return FAILED, (
            "not sent, deliveries to this store view are paused until "
            f"{when(pause.paused_until)}: {pause.reason}"
        )
    if request.pk in delivered.deferred and request.next_attempt_at is not None:
        if request.sent_at is None or request.sent_at < started:
            # Given back unsent, as when PureClarity asked for calls to slow down.
            return STILL_PENDING, (
                f"not sent yet, due again at {when(request.next_attempt_at)}."
            )
        return FAILED, (
            f"not delivered, to be tried again at {when(request.next_attempt_at)}: "
            f"{request.last_error}"
        )
    return STILL_PENDING, "still pending (not due yet, or being sent elsewhere)."


class SendRun:
    """Records, resumes, retries and delivers as planned, then sums up."""

    def __init__(self, printer: Printer, plan: Plan) -> None:
        self.out = printer
        self.plan = plan
        self.tally: Counter[str] = Counter()
        self.started = delivery.clock()

    def run(self, identifiers: list[str], sends: bool) -> None:
        """Do it all; ``sends`` is False when only pauses were to be lifted."""
        for name in self.plan.resume:
            queue.resume(self.out, name, dry_run=False)
        if not sends:
            return

        recorded = delivery.record(
            identifiers,
            source=Source.COMMAND,
            store_views=self.plan.store_views,
            force=self.plan.force,
        )
        with queue.stop_event() as stop:
            self._deliver_recorded(recorded.to_deliver, stop)
            if self.plan.retry_failed:
                self._retry_failed(set(recorded.to_deliver), stop)
            if self.plan.deliver:
                queue.drain(
                    self.plan.store_views, self.plan.batch_size, stop, self._batch
                )

        for request in recorded.already_forgotten:
            self.out.say(2, f"{describe(request)}: already forgotten, not sent.")
        self._finish(len(recorded.already_forgotten), stop.is_set())

    def _deliver_recorded(self, ids: list[int], stop: threading.Event) -> None:
        for chunk in _chunks(ids, self.plan.batch_size):
            if stop.is_set():
                return
            # Someone asking for an identifier now overrides the backoff of an
            # earlier attempt at it.
            delivery.retry(chunk)
            self._report(chunk, delivery.deliver(chunk, stop=stop))

    def _retry_failed(self, handled: set[int], stop: threading.Event) -> None:
        """Send failed and waiting requests again, in batches, each once."""
        # Whoever retries has fixed the cause, keys included: pauses go first.
        paused = queue.paused_for_retry(self.plan.store_views)
        for pause in paused:
            queue.resume(self.out, pause.store_view, dry_run=False)
        resumed = [*self.plan.resume, *(pause.store_view for pause in paused)]

        # Walking up the ids visits each request once, even one that fails again.
        candidates = queue.retry_candidates(self.plan.store_views, resumed)
        last = 0
        while not stop.is_set():
            page = candidates.filter(pk__gt=last).values_list("pk", flat=True)
            ids = list(page[: self.plan.batch_size])
            if not ids:
                return
            last = ids[-1]
            chunk = [pk for pk in ids if pk not in handled]
            if chunk:
                delivery.retry(chunk)
                self._report(chunk, delivery.deliver(chunk, stop=stop))

    def _batch(self, batch: delivery.Delivered) -> None:
        self._report(sorted([*batch.succeeded, *batch.failed, *batch.deferred]), batch)

    def _report(self, ids: list[int], delivered: delivery.Delivered) -> None:
        requests = ForgetRequest.objects.in_bulk(ids)
        pauses = queue.active_pauses()
        for pk in ids:
            if pk not in requests:
                continue
            kind, text = _outcome(requests[pk], delivered, pauses, self.started)
            line = f"{describe(requests[pk])}: {text}"
            if kind == FAILED:
                self.out.error(line)
            else:
                self.out.say(2, line)
            self.tally[kind] += 1

    def _finish(self, already_forgotten: int, stopped: bool) -> None:
        self.out.say(1, self._summary(already_forgotten))
        if self.tally[FAILED]:
            raise CommandError(
                f"{plural(self.tally[FAILED], 'forget request')} not delivered; see "
                "above. Once the cause is fixed, run pureclarity_forget "
                "--retry-failed."
            )
        if stopped:
            raise CommandError(
                "Stopped by a signal before the run was complete; requests not "
                "sent stay pending for the next run."
            )

    def _summary(self, already_forgotten: int) -> str:
        total = self.tally.total() + already_forgotten
        if not total:
            return "No forget requests to send."

        summary = (
            f"{plural(total, 'forget request')}: {self.tally[SUCCEEDED]} succeeded, "
            f"{self.tally[FAILED]} failed, {already_forgotten} already forgotten"
        )
        if self.tally[STILL_PENDING]:
            summary += f", {self.tally[STILL_PENDING]} still pending"
        return summary + "."

    def dry_run(self, identifiers: list[str]) -> None:
        """Say what run() would do, computed by queries; nothing is kept or sent."""
        for name in self.plan.resume:
            queue.resume(self.out, name, dry_run=True)
        recorded = self._preview(identifiers)
        for request in [*recorded.created, *recorded.already_open]:
            self.out.say(
                1,
                f"Would forget {request.identifier_hint} in store view "
                f"'{request.store_view}'.",
            )
        for request in recorded.already_forgotten:
            self.out.say(
                1,
                f"Would skip {request.identifier_hint} in store view "
                f"'{request.store_view}': already forgotten (--force sends it again).",
            )

        retried = self._preview_retry()
        if self.plan.deliver:
            due = queue.due(self.plan.store_views, self.plan.resume)
            if retried is not None:
                due = due.exclude(pk__in=retried.values("pk"))
            self._preview_queue("deliver", "pending", due)
        self.out.say(1, "Dry run: nothing was recorded or sent.")

    def _preview(self, identifiers: list[str]) -> delivery.Recorded:
        # Recording for real and rolling back runs the very code a real run would,
        # so the preview cannot drift from what would happen; nothing is committed.
        with transaction.atomic():
            recorded = delivery.record(
                identifiers,
                source=Source.COMMAND,
                store_views=self.plan.store_views,
                force=self.plan.force,
            )
            transaction.set_rollback(True)
        return recorded

    def _preview_retry(self) -> QuerySet[ForgetRequest] | None:
        if not self.plan.retry_failed:
            return None

        resumed = list(self.plan.resume)
        for pause in queue.paused_for_retry(self.plan.store_views):
            if pause.store_view not in resumed:
                self.out.say(
                    1,
                    f"Would resume store view '{pause.store_view}' (paused until "
                    f"{when(pause.paused_until)}) to retry its requests.",
                )
                resumed.append(pause.store_view)
        retried = queue.retry_candidates(self.plan.store_views, resumed)
        self._preview_queue("retry", "failed", retried)
        return retried

    def _preview_queue(
        self, verb: str, state: str, requests: QuerySet[ForgetRequest]
    ) -> None:
        count = 0
        for request in requests.iterator(chunk_size=queue.ITERATOR_CHUNK):
            self.out.say(2, f"Would {verb} {describe(request)}.")
            count += 1
        self.out.say(1, f"Would {verb} {plural(count, f'{state} request')}.")
