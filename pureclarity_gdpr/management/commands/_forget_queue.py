"""The request queue in ``pureclarity_forget``: list, resume, purge and the worker.

Also what --deliver and --retry-failed send. Everything here streams: requests are
read in batches or with an iterator, so a backlog of any size is listed or
delivered in flat memory.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from pureclarity_gdpr import delivery, retention, worker
from pureclarity_gdpr.conf import SETTING_NAME, conf
from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, Status, StoreViewPause

from ._forget_io import Printer, plural, shorten, when

# The statuses --list shows: every request that still needs a worker or a person.
LISTED = (Status.PENDING, Status.SENDING, Status.FAILED, Status.NEEDS_ATTENTION)
ROW = "{:>7}  {:<20}  {:<12}  {:<15}  {:>8}  {:<25}  {}"
HEADER = ROW.format(
    "ID", "IDENTIFIER", "STORE VIEW", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"
)
ERROR_WIDTH = 60
ITERATOR_CHUNK = 500


def in_store_views(
    requests: QuerySet[ForgetRequest], store_views: list[str] | None
) -> QuerySet[ForgetRequest]:
    if store_views is None:
        return requests
    return requests.filter(store_view__in=store_views)


def retry_candidates(
    store_views: list[str] | None, resumed: Iterable[str] = ()
) -> QuerySet[ForgetRequest]:
    """What --retry-failed sends: failed requests and those waiting out a backoff.

    Every pending request of a store view whose pause the run lifted goes too.
    """
    # A pending request never tried is not waiting out a failure, even with a
    # first attempt scheduled: that schedule is left alone.
    chosen = Q(status=Status.FAILED) | Q(
        status=Status.PENDING, next_attempt_at__isnull=False, attempts__gt=0
    )
    resumed = list(resumed)
    if resumed:
        chosen |= Q(status=Status.PENDING, store_view__in=resumed)
    requests = ForgetRequest.objects.filter(chosen)
    return in_store_views(requests, store_views).order_by("id")


def due(
    store_views: list[str] | None, resumed: Iterable[str] = ()
) -> QuerySet[ForgetRequest]:
    """What --deliver sends; ``resumed`` previews store views about to be resumed."""
    requests = delivery.due()
    resumed = list(resumed)
    if resumed:
        requests = requests | ForgetRequest.objects.filter(
            status=Status.PENDING, store_view__in=resumed
        )
    return in_store_views(requests, store_views).order_by("id")


def active_pauses(store_views: list[str] | None = None) -> dict[str, StoreViewPause]:
    pauses = StoreViewPause.objects.filter(paused_until__gt=delivery.clock())
    if store_views is not None:
        pauses = pauses.filter(store_view__in=store_views)
    return {pause.store_view: pause for pause in pauses.order_by("store_view")}


def paused_for_retry(store_views: list[str] | None) -> list[StoreViewPause]:
    """Paused store views with requests --retry-failed would send."""
    pauses = active_pauses(store_views)
    waiting = (
        retry_candidates(store_views)
        .filter(store_view__in=list(pauses))
        .order_by()
        .values_list("store_view", flat=True)
        .distinct()
    )
    return [pauses[name] for name in sorted(set(waiting))]


def drain(
    store_views: list[str] | None,
    batch_size: int,
    stop: threading.Event,
    on_batch: Callable[[delivery.Delivered], None],
) -> None:
    """Deliver every due request (of ``store_views``), a batch at a time."""
    if store_views is None:
        worker.drain(stop, batch_size, on_batch)
        return

    # worker.drain() serves every store view; for some of them the batches are
    # chosen here, from the same due() query.
    while not stop.is_set():
        ids = list(due(store_views).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        batch = delivery.deliver(ids, stop=stop)
        on_batch(batch)
        if not (batch.succeeded or batch.failed or batch.deferred):
            return


@contextmanager
def stop_event() -> Iterator[threading.Event]:
    """An event SIGTERM and SIGINT set, where this thread may handle signals."""
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may set signal handlers; code that calls the
        # command from another thread stops it its own way.
        yield threading.Event()
        return
    with worker.stop_on_signals() as stop:
        yield stop


def _next_attempt(request: ForgetRequest) -> str:
    if request.next_attempt_at is not None:
        return when(request.next_attempt_at)
    return "due" if request.status == Status.PENDING else "-"


def _row(request: ForgetRequest) -> str:
    return ROW.format(
        request.pk,
        request.identifier_hint or "-",
        request.store_view,
        request.status,
        request.attempts,
        _next_attempt(request),
        shorten(request.last_error, ERROR_WIDTH) or "-",
    )


def _status_name(status: str) -> str:
    return status.replace("_", " ")


def list_requests(
    printer: Printer, statuses: list[str] | None, store_views: list[str] | None
) -> None:
    """Print the open requests, their counts, and the paused store views."""
    chosen = [status for status in LISTED if statuses is None or status in statuses]
    requests = ForgetRequest.objects.filter(status__in=chosen)
    requests = in_store_views(requests, store_views).order_by("created_at", "id")

    counts: Counter[str] = Counter()
    for request in requests.iterator(chunk_size=ITERATOR_CHUNK):
        if not counts:
            printer.say(1, HEADER)
        printer.say(1, _row(request))
        counts[request.status] += 1

    each = ", ".join(f"{counts[status]} {_status_name(status)}" for status in chosen)
    printer.say(1, f"{plural(counts.total(), 'forget request')}: {each}.")
    for pause in active_pauses(store_views).values():
        printer.say(
            1,
            f"Store view '{pause.store_view}' is paused until "
            f"{when(pause.paused_until)}: {pause.reason} Lift the pause with "
            f"--resume {pause.store_view} once the cause is fixed.",
        )


def resumable(names: list[str]) -> list[str]:
    """The store views to resume, each once; or CommandError for unknown ones."""
    configured = conf.store_view_names
    paused = StoreViewPause.objects.filter(store_view__in=names)
    known = set(configured) | set(paused.values_list("store_view", flat=True))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CommandError(
            f"Store view {unknown[0]!r} is neither configured nor paused. The "
            f"configured store views are: {', '.join(configured) or 'none'}."
        )
    return list(dict.fromkeys(names))


def _are(count: int) -> str:
    return "is" if count == 1 else "are"


def resume(printer: Printer, name: str, dry_run: bool) -> None:
    """Lift a store view's pause and say how many requests are due again."""
    pause = StoreViewPause.objects.filter(store_view=name).first()
    if dry_run:
        count = ForgetRequest.objects.filter(
            store_view=name, status=Status.PENDING
        ).count()
        pending = plural(count, "pending request")
        if pause is None:
            printer.say(
                1,
                f"Store view '{name}' is not paused; resuming would make its "
                f"{pending} due now.",
            )
        else:
            printer.say(
                1,
                f"Would resume store view '{name}' (paused until "
                f"{when(pause.paused_until)}): {pending} would be due again.",
            )
        return

    count = delivery.resume(name)
    pending = f"{plural(count, 'pending request')} {_are(count)}"
    if pause is None:
        printer.say(1, f"Store view '{name}' was not paused; {pending} due now.")
    else:
        printer.say(1, f"Resumed store view '{name}': {pending} due again.")


def _purgeable(cutoff: datetime) -> tuple[int, int]:
    """What retention.purge() would change, counted without writing."""
    old = ForgetRequest.objects.filter(
        status__in=retention.FINISHED, created_at__lt=cutoff
    )
    attempts = (
        ForgetAttempt.objects.filter(request__in=old).exclude(excerpt="", error="")
    ).count()
    requests = old.exclude(identifier_hint="", last_error="", requested_by="").count()
    return requests, attempts


def purge(printer: Printer, days: int | None, dry_run: bool) -> None:
    """Strip finished requests older than the retention to the proof of erasure."""
    older_than = timedelta(days=days) if days is not None else conf.retention
    if older_than is None:
        raise CommandError(
            "--purge needs an age: pass --older-than-days N, or set "
            f"{SETTING_NAME}['RETENTION_DAYS'] to how many days finished requests "
            "keep their details, such as 365."
        )
    now = timezone.now()
    cutoff = now - older_than
    age = f"older than {plural(older_than.days, 'day')} (created before {when(cutoff)})"

    if dry_run:
        requests, attempts = _purgeable(cutoff)
        printer.say(
            1,
            f"Would purge the details of {plural(requests, 'finished forget request')}"
            f" and {plural(attempts, 'attempt')} {age}.",
        )
        printer.say(1, "Dry run: nothing was changed.")
        return

    purged = retention.purge(older_than, now=now)
    printer.say(
        1,
        f"Purged the details of {plural(purged.requests, 'finished forget request')}"
        f" and {plural(purged.attempts, 'attempt')} {age}; the proof of each "
        "erasure is kept.",
    )


class _WorkerTally:
    """Counts of what the worker did, batch by batch; no ids are kept."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        self.counts: Counter[str] = Counter()

    def add(self, batch: delivery.Delivered) -> None:
        counts = Counter(
            succeeded=len(batch.succeeded),
            failed=len(batch.failed),
            deferred=len(batch.deferred),
        )
        if not counts.total():
            return
        self.counts.update(counts)
        self.printer.say(
            2,
            f"Delivered a batch of {self.describe(counts)}.",
        )

    @staticmethod
    def describe(counts: Counter[str]) -> str:
        return (
            f"{plural(counts.total(), 'forget request')}: {counts['succeeded']} "
            f"succeeded, {counts['failed']} failed, {counts['deferred']} to try "
            "again"
        )


def run_worker(printer: Printer, poll_interval: float, batch_size: int) -> None:
    """Deliver due requests until SIGTERM or SIGINT, then say what was done."""
    if connection.vendor == "sqlite":
        printer.warn(
            "Warning: the database is SQLite; run only one worker. Several would "
            "wait on each other's writes and fail with 'database is locked'."
        )
    printer.say(
        1,
        f"Worker started: delivering due forget requests in batches of "
        f"{batch_size}, looking every {poll_interval:g} s. SIGTERM or Ctrl-C "
        "stops it once the requests in flight are done.",
    )

    tally = _WorkerTally(printer)
    with worker.stop_on_signals() as stop:
        worker.run(
            stop, poll_interval=poll_interval, batch_size=batch_size, on_batch=tally.add
        )

    printer.say(1, f"Worker stopped: {tally.describe(tally.counts)}.")
