"""Recording forget requests and delivering them to PureClarity.

Requests are written first (inside the caller's transaction) and delivered later,
outside any transaction: a request is claimed with a conditional UPDATE, the HTTP
calls run in a thread pool, and each outcome is written by the calling thread, so
no database connection is shared across threads and SQLite's single writer is never
contended by this app.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import bulk, client, ratelimit, signals
from .actor import name_of
from .conf import StoreView, conf
from .exceptions import ConfigurationError, InvalidIdentifier, UnknownStoreView
from .identifiers import clean, identifier_hash, identifier_hashes, mask
from .models import ForgetAttempt, ForgetRequest, Source, Status, StoreViewPause

logger = logging.getLogger(__name__)

# Identifiers looked up and inserted together when recording.
RECORD_CHUNK = 500

# How often a worker looks again for due requests that other workers' claims hid,
# and the pause before the first new look (each pause is longer than the last).
CLAIM_TRIES = 10
CLAIM_PAUSE = 0.02

# How often a run with a stop event looks at it while calls are in flight.
STOP_POLL = 0.2

# The time as delivery sees it; tests replace it to step through backoff without
# sleeping.
clock: Callable[[], datetime] = timezone.now


@dataclass
class Recorded:
    """What recording a set of identifiers did, request by request."""

    created: list[ForgetRequest] = field(default_factory=list)
    already_open: list[ForgetRequest] = field(default_factory=list)
    already_forgotten: list[ForgetRequest] = field(default_factory=list)

    @property
    def to_deliver(self) -> list[int]:
        return [r.pk for r in [*self.created, *self.already_open] if r.pk is not None]


@dataclass
class Delivered:
    """What one delivery run did."""

    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    # Tried in this run, failed for now, and scheduled for another attempt; these
    # are also in ``deferred``.
    retrying: list[int] = field(default_factory=list)

    def merge(self, other: Delivered) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.deferred += other.deferred
        self.retrying += other.retrying


def _store_view_names(store_views: Iterable[str] | None) -> list[str]:
    names = conf.store_view_names
    if not names:
        # Recording nothing would lose the erasure without a trace.
        raise ConfigurationError(
            "No PureClarity store view is configured, so nobody can be forgotten: "
            "set PURECLARITY_GDPR (pureclarity_gdpr.E001)."
        )
    if store_views is None:
        return names

    chosen = list(dict.fromkeys(store_views))
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise UnknownStoreView(
            f"Store view {unknown[0]!r} is not configured; the configured store views "
            f"are: {', '.join(names)}."
        )
    return chosen


def record(
    identifiers: Iterable[str],
    *,
    source: str,
    store_views: Iterable[str] | None = None,
    requested_by: Any = None,
    force: bool = False,
) -> Recorded:
    """Write one pending forget request per identifier and store view.

    Every identifier is validated before anything is written, so bad input raises
    InvalidIdentifier and leaves no request behind. An identifier that already has
    an open request in a store view reuses it; one already forgotten there is
    reported and not sent again unless ``force`` is set.
    """
    if isinstance(identifiers, str | bytes):
        # A string is iterable too: each of its characters would be forgotten.
        raise InvalidIdentifier(
            "Give a list of identifiers, not a single string: "
            f"[{mask(str(identifiers))!r}]."
        )
    cleaned = list(dict.fromkeys(clean(identifier) for identifier in identifiers))
    names = _store_view_names(store_views)
    requester = name_of(requested_by)
    result = Recorded()

    # All or nothing; inside a caller's transaction, no savepoint of its own.
    with transaction.atomic(savepoint=False):
        for start in range(0, len(cleaned), RECORD_CHUNK):
            chunk = cleaned[start : start + RECORD_CHUNK]
            _record_chunk(chunk, names, source, requester, force, result)
    return result


def _record_chunk(
    identifiers: list[str],
    names: list[str],
    source: str,
    requester: str,
    force: bool,
    result: Recorded,
) -> None:
    hashes = {identifier: identifier_hashes(identifier) for identifier in identifiers}
    first_attempt = _first_attempt()
    every_hash = [h for found in hashes.values() for h in found]
    known = list(
        ForgetRequest.objects.filter(
            Q(open_key__in=[_key(name, h) for name in names for h in every_hash])
            | Q(
                identifier_hash__in=every_hash,
                store_view__in=names,
                status=Status.SUCCEEDED,
            )
        )
    )
    open_requests = {r.open_key: r for r in known if r.open_key}
    forgotten = {
        _key(r.store_view, r.identifier_hash): r
        for r in known
        if r.status == Status.SUCCEEDED
    }

    new: list[ForgetRequest] = []
    for identifier in identifiers:
        for name in names:
            keys = [_key(name, h) for h in hashes[identifier]]
            existing = next(
                (open_requests[k] for k in keys if k in open_requests), None
            )
            done = next((forgotten[k] for k in keys if k in forgotten), None)
            if existing is not None:
                result.already_open.append(existing)
            elif done is not None and not force:
                result.already_forgotten.append(done)
            else:
                new.append(
                    ForgetRequest(
                        identifier=identifier,
                        identifier_hash=hashes[identifier][0],
                        identifier_hint=mask(identifier),
                        store_view=name,
                        source=source,
                        requested_by=requester,
                        open_key=_key(name, hashes[identifier][0]),
                        next_attempt_at=first_attempt,
                    )
                )

    # Asking again for a request that failed for good is a retry.
    failed = [r.pk for r in result.already_open if r.status == Status.FAILED]
    ForgetRequest.objects.filter(pk__in=failed, status=Status.FAILED).update(
        status=Status.PENDING, next_attempt_at=None
    )
    result.created += _insert(new, result)


def _first_attempt() -> datetime | None:
    """When a new request is first due: at once, or after the DELAY cool-off."""
    delay = conf.delay
    # A cool-off gives staff the time to cancel a request made by mistake.
    return clock() + delay if delay else None


def _key(store_view: str, identifier_hash: str) -> str:
    return ForgetRequest.make_open_key(store_view, identifier_hash)


def _insert(new: list[ForgetRequest], result: Recorded) -> list[ForgetRequest]:
    """Insert new requests; one recorded meanwhile by another process is reused."""
    if not new:
        return []
    try:
        with transaction.atomic():
            created = ForgetRequest.objects.bulk_create(new)
    except IntegrityError:
        created = []
        for request in new:
            try:
                with transaction.atomic():
                    request.save(force_insert=True)
                created.append(request)
            except IntegrityError:
                request.pk = None
                result.already_open.append(
                    ForgetRequest.objects.get(open_key=request.open_key)
                )

    if any(request.pk is None for request in created):
        # Databases that cannot return ids from a bulk insert.
        by_key = ForgetRequest.objects.in_bulk(
            [r.open_key for r in created], field_name="open_key"
        )
        created = [by_key[r.open_key] for r in created]
    return created


def record_deleted_users(identifiers: Iterable[str], *, requested_by: Any) -> list[str]:
    """Write a pending request per identifier of deleted users and store view.

    The fast path for a deletion of thousands of users: a few INSERTs and no
    lookup first. An identifier with an open request keeps it (its row is skipped);
    one forgotten before is forgotten again, as the account may have gathered data
    since. The identifiers must be clean. Returns the open keys of the requests.
    """
    names = _store_view_names(None)
    key = conf.hash_keys[0]
    shared = {
        "source": Source.USER_DELETION,
        "requested_by": name_of(requested_by),
        "created_at": clock(),
        "next_attempt_at": _first_attempt(),
    }

    rows: list[bulk.Row] = []
    for identifier in dict.fromkeys(identifiers):
        digest = identifier_hash(identifier, key)
        hint = mask(identifier)
        rows += [(identifier, digest, hint, name, _key(name, digest)) for name in names]
    # An open request that failed for good is tried again: the deletion asks anew.
    # In key order, as outcomes are written: deletions and workers that meet on
    # the same open requests then lock them in one order and cannot deadlock.
    rows.sort(key=lambda row: row[-1])
    bulk.insert_or_reopen(rows, shared)
    return [row[-1] for row in rows]


def open_request_ids(open_keys: Sequence[str]) -> list[int]:
    """The ids of the open requests under these keys, to deliver them."""
    ids: list[int] = []
    for start in range(0, len(open_keys), RECORD_CHUNK):
        chunk = open_keys[start : start + RECORD_CHUNK]
        found = ForgetRequest.objects.filter(open_key__in=chunk).values_list(
            "pk", flat=True
        )
        ids += found
    return ids


def record_needs_attention(
    *,
    store_views: Iterable[str] | None,
    source: str,
    reason: str,
    requested_by: Any = None,
) -> list[ForgetRequest]:
    """Record that someone could not be forgotten automatically, and why."""
    requests = [
        ForgetRequest.objects.create(
            store_view=name,
            source=source,
            status=Status.NEEDS_ATTENTION,
            last_error=reason,
            requested_by=name_of(requested_by),
        )
        for name in _store_view_names(store_views)
    ]
    logger.warning("A forget request needs attention: %s", reason)
    return requests


def retry(ids: Iterable[int]) -> list[int]:
    """Make failed requests, and pending ones waiting for a retry, due now.

    Returns the ids that were put back; others (succeeded, cancelled, in flight)
    are left as they are.
    """
    # A request in its DELAY cool-off has not been tried; Retry must not end it.
    retryable = Q(status=Status.FAILED) | Q(
        status=Status.PENDING, next_attempt_at__isnull=False, attempts__gt=0
    )
    chosen = ForgetRequest.objects.filter(retryable, pk__in=list(ids))
    put_back = list(chosen.values_list("pk", flat=True))
    ForgetRequest.objects.filter(retryable, pk__in=put_back).update(
        status=Status.PENDING, next_attempt_at=None
    )
    return put_back


def cancel(ids: Iterable[int]) -> list[int]:
    """Cancel pending requests, waiting for a retry or not, so they are never sent.

    Returns the ids that were cancelled; others (being sent, succeeded, failed, in
    need of attention, cancelled already) are left as they are. The identifier
    goes in the same write: a cancelled request has nothing left to send.
    """
    chosen = list(
        ForgetRequest.objects.filter(
            status=Status.PENDING, pk__in=list(ids)
        ).values_list("pk", flat=True)
    )
    # The status is checked again in the UPDATE: a request claimed meanwhile is
    # being sent and stays so.
    ForgetRequest.objects.filter(pk__in=chosen, status=Status.PENDING).update(
        status=Status.CANCELLED, identifier="", open_key=None, next_attempt_at=None
    )
    cancelled = list(
        ForgetRequest.objects.filter(
            pk__in=chosen, status=Status.CANCELLED
        ).values_list("pk", flat=True)
    )
    if cancelled:
        logger.info("Cancelled %s pending forget requests", len(cancelled))
    return cancelled


def due(
    now: datetime | None = None, store_views: Iterable[str] | None = None
) -> QuerySet[ForgetRequest]:
    """Requests deliver() would claim now: due ones, and ones whose lease ran out.

    Requests of store views that are paused are left out; with ``store_views``,
    so are those of other store views.
    """
    now = clock() if now is None else now
    paused = StoreViewPause.objects.filter(paused_until__gt=now).values("store_view")
    requests = ForgetRequest.objects.filter(_due(now) | _abandoned(now))
    if store_views is not None:
        requests = requests.filter(store_view__in=list(store_views))
    return requests.exclude(store_view__in=paused)


def _due(now: datetime) -> Q:
    return Q(status=Status.PENDING) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def _abandoned(now: datetime) -> Q:
    return Q(status=Status.SENDING, lease_expires_at__lt=now)


def _claim(
    ids: Sequence[int] | None,
    limit: int | None,
    now: datetime,
    store_views: Iterable[str] | None = None,
) -> list[ForgetRequest]:
    """Take requests that are due (or whose lease ran out) for this process."""
    candidates = due(now, store_views)
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))

    for attempt in range(CLAIM_TRIES):
        claimed = _claim_once(candidates, limit, now)
        # MariaDB and MySQL lock every row a sorted SELECT ... FOR UPDATE reads, so
        # while another worker claims, SKIP LOCKED may find nothing though most
        # due rows will be left to take: look again once its claim has committed.
        if claimed or not _skip_locked() or not candidates.exists():
            return claimed
        time.sleep(CLAIM_PAUSE * (attempt + 1))
    return []


def _skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def _claim_once(
    candidates: QuerySet[ForgetRequest], limit: int | None, now: datetime
) -> list[ForgetRequest]:
    token = uuid.uuid4().hex

    with transaction.atomic():
        candidates = candidates.order_by("next_attempt_at", "created_at", "id")
        if _skip_locked():
            # Rows another worker is claiming are skipped, not waited for.
            candidates = candidates.select_for_update(skip_locked=True)
        candidate_ids = list(candidates.values_list("pk", flat=True)[:limit])
        if not candidate_ids:
            return []

        # The conditional UPDATE re-checks the status, so where no row locks are
        # taken (SQLite) two processes still cannot both win the same request.
        ForgetRequest.objects.filter(
            _due(now) | _abandoned(now), pk__in=candidate_ids
        ).update(
            status=Status.SENDING,
            claim_token=token,
            lease_expires_at=now + _lease_for(len(candidate_ids)),
        )
    claimed = ForgetRequest.objects.filter(claim_token=token, status=Status.SENDING)
    # Sent in the order claimed, oldest first, not in the model's newest-first order.
    return list(claimed.order_by("next_attempt_at", "created_at", "id"))


def _lease_for(count: int) -> timedelta:
    """How long a batch of ``count`` requests may take, with room to spare.

    A worker still sending its batch must keep it: another worker taking over
    part of it would send those requests a second time.
    """
    connect, read = conf.timeout
    rounds = math.ceil(count / conf.max_in_flight)
    pacing = count / conf.rate_limit if conf.rate_limit else 0.0
    needed = timedelta(seconds=1.5 * rounds * (connect + read) + pacing)
    return max(conf.lease, needed)


def _release(requests: Sequence[ForgetRequest], after: float = 0.0) -> None:
    """Give claimed requests back unsent, due again ``after`` seconds from now."""
    after = min(after, conf.retry_max_delay.total_seconds())
    for token in {r.claim_token for r in requests}:
        ForgetRequest.objects.filter(
            pk__in=[r.pk for r in requests if r.claim_token == token],
            claim_token=token,
            status=Status.SENDING,
        ).update(
            status=Status.PENDING,
            lease_expires_at=None,
            claim_token="",
            next_attempt_at=clock() + timedelta(seconds=after) if after else None,
        )


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential backoff with jitter, never sooner than PureClarity asked.

    Both are capped by RETRY_MAX_DELAY: a Retry-After of a year must not park a
    request past GDPR's deadline.
    """
    longest = conf.retry_max_delay.total_seconds()
    delay = min(
        conf.retry_delay.total_seconds() * 2.0 ** min(attempts - 1, 40), longest
    )
    # Half fixed, half random: workers that failed together do not retry together.
    delay = delay / 2 + delay / 2 * random.random()  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(retry_after, longest))
    return timedelta(seconds=delay)


def _pause(store_view: str, reason: str, now: datetime) -> datetime:
    until = now + conf.pause
    StoreViewPause.objects.update_or_create(
        store_view=store_view,
        defaults={"reason": reason, "paused_at": now, "paused_until": until},
    )
    logger.error(
        "Deliveries to store view %r are paused until %s: %s",
        store_view,
        until.isoformat(timespec="seconds"),
        reason,
    )
    return until


def _outcome(
    request: ForgetRequest, answer: client.Answer, now: datetime
) -> dict[str, Any]:
    """The fields that record what an answer means for the request."""
    attempts = request.attempts + 1
    if answer.succeeded:
        done: dict[str, Any] = {
            "status": Status.SUCCEEDED,
            "acknowledged_at": now,
            "open_key": None,
            "last_error": "",
            "next_attempt_at": None,
        }
        if not conf.keep_identifiers:
            # The plain identifier goes in the same write that records the success.
            done["identifier"] = ""
        return done

    if answer.status_code in (401, 403):
        until = _pause(request.store_view, answer.error, now)
        return {
            "status": Status.PENDING,
            "next_attempt_at": until,
            "last_error": f"{answer.error} Deliveries to this store view are paused.",
        }

    too_old = now - request.created_at >= conf.max_age
    if answer.transient and attempts < conf.max_attempts and not too_old:
        return {
            "status": Status.PENDING,
            "next_attempt_at": now + _backoff(attempts, answer.retry_after),
            "last_error": answer.error,
        }

    error = answer.error
    if answer.transient:
        error = f"{error} Gave up after {attempts} attempts."
    return {"status": Status.FAILED, "next_attempt_at": None, "last_error": error}


Outcome = tuple[ForgetRequest, client.Answer, datetime]


def _finish(
    request: ForgetRequest, answer: client.Answer, started_at: datetime
) -> Status:
    """Write the outcome of one attempt and its log entry; returns the new status."""
    return _finish_all([(request, answer, started_at)])[0]


def _finish_all(outcomes: list[Outcome]) -> list[Status]:
    """Write the outcomes of attempts that ended together, in one transaction.

    Under load many calls end while the last outcome is written; one commit for
    all of them keeps the database from becoming what limits the throughput.
    """
    now = clock()
    written = []
    with transaction.atomic():
        # Rows are updated in open key order, as deletions insert them (see
        # record_deleted_users), so the two never wait on each other in a cycle.
        for request, answer, started_at in sorted(outcomes, key=_lock_order):
            changes = _outcome(request, answer, now)
            changes.update(
                attempts=request.attempts + 1,
                sent_at=started_at,
                last_status_code=answer.status_code,
                lease_expires_at=None,
                claim_token="",
            )
            still_ours = ForgetRequest.objects.filter(
                pk=request.pk, claim_token=request.claim_token
            ).update(**changes)
            written.append((request, changes, still_ours))
        # Each attempt happened whoever holds its request now: it is evidence.
        ForgetAttempt.objects.bulk_create(
            ForgetAttempt(
                request_id=request.pk,
                started_at=started_at,
                duration_ms=round(answer.duration * 1000),
                status_code=answer.status_code,
                succeeded=answer.succeeded,
                error=answer.error,
                excerpt=answer.excerpt,
            )
            for request, answer, started_at in outcomes
        )

    statuses = {entry[0].pk: _after_write(*entry) for entry in written}
    return [statuses[request.pk] for request, _, _ in outcomes]


def _lock_order(outcome: Outcome) -> tuple[str, int]:
    request = outcome[0]
    return (request.open_key or "", request.pk)


def _after_write(
    request: ForgetRequest, changes: dict[str, Any], still_ours: int
) -> Status:
    if not still_ours:
        logger.warning(
            "Forget request %s was taken over by another worker while this one "
            "sent it (its lease ran out); the other worker's outcome stands",
            request.pk,
        )
        return Status.SENDING

    _log(request, changes)
    for name, value in changes.items():
        setattr(request, name, value)
    _announce(request)
    return Status(changes["status"])


def _announce(request: ForgetRequest) -> None:
    if request.status == Status.SUCCEEDED:
        signal = signals.forget_acknowledged
    elif request.status == Status.FAILED:
        signal = signals.forget_failed
    else:
        return
    # A shop's receiver that fails must not stop the deliveries that follow.
    for receiver, outcome in signal.send_robust(sender=ForgetRequest, request=request):
        if isinstance(outcome, Exception):
            logger.error(
                "Receiver %r of a pureclarity_gdpr signal failed for request %s",
                receiver,
                request.pk,
                exc_info=outcome,
            )


def _log(request: ForgetRequest, changes: dict[str, Any]) -> None:
    status = changes["status"]
    where = (request.pk, request.identifier_hint, request.store_view)
    if status == Status.SUCCEEDED:
        logger.info("Forget request %s for %s delivered to store view %r", *where)
    elif status == Status.PENDING:
        logger.warning(
            "Forget request %s for %s in store view %r will be tried again at %s: %s",
            *where,
            changes["next_attempt_at"].isoformat(timespec="seconds"),
            changes["last_error"],
        )
    else:
        logger.error(
            "Forget request %s for %s in store view %r failed for good: %s",
            *where,
            changes["last_error"],
        )


def _fail_unsendable(request: ForgetRequest, reason: str) -> None:
    ForgetRequest.objects.filter(pk=request.pk, claim_token=request.claim_token).update(
        status=Status.FAILED, last_error=reason, lease_expires_at=None, claim_token=""
    )
    logger.error("Forget request %s cannot be sent: %s", request.pk, reason)


def deliver(
    ids: Sequence[int] | None = None,
    *,
    limit: int | None = None,
    budget: float | None = None,
    stop: threading.Event | None = None,
    store_views: Iterable[str] | None = None,
) -> Delivered:
    """Send due requests (all, or those of ``ids``) and record each outcome.

    Up to MAX_IN_FLIGHT calls run at once. With a ``budget`` in seconds, the run
    returns once it has run out: requests not yet sent are put back as pending for
    a later run, and requests whose calls are still in flight stay claimed until
    their lease ends, when a worker sends them again. Setting
    ``stop`` (from a signal handler, say) ends the run the same way.
    """
    result = Delivered()
    claimed = _claim(ids, limit, clock(), store_views)
    if not claimed:
        return result

    try:
        store_views = conf.store_views
    except ConfigurationError as err:
        for request in claimed:
            _fail_unsendable(request, str(err))
        result.failed += [r.pk for r in claimed]
        return result

    deadline = None if budget is None else time.monotonic() + budget
    _Run(claimed, store_views, deadline, stop, result)()
    return result


_pool: tuple[int, int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's thread pool for HTTP calls.

    It outlives each delivery run so that its threads keep their sessions, and the
    sessions their kept-alive connections. A forked child makes its own.
    """
    global _pool
    size = conf.max_in_flight
    with _pool_lock:
        if _pool is None or _pool[:2] != (os.getpid(), size):
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(size, thread_name_prefix="pureclarity-forget")
            _pool = (os.getpid(), size, pool)
        return _pool[2]


def _send(
    store_view: StoreView,
    identifier: str,
    rate: float | None,
    secrets: Sequence[str] = (),
    may_send: Callable[[], bool] | None = None,
    wake: threading.Event | None = None,
) -> client.Answer | None:
    """Make one call once its turn comes; None if ``may_send`` then says not to."""
    started = time.monotonic()
    try:
        ratelimit.wait_turn(store_view.name, rate, wake)
        if may_send is not None and not may_send():
            # The run ended, or the store view is held back, while this call
            # waited its turn: it is not made, and its request goes back.
            return None
        answer = client.send_forget(store_view, identifier, conf.timeout, secrets)
    except Exception as err:
        # Whatever went wrong, the request must be recorded, not left claimed.
        logger.exception("Unexpected error while sending a forget request")
        return client.Answer(
            succeeded=False,
            status_code=None,
            error=f"Unexpected error while calling PureClarity ({type(err).__name__});"
            " see the log.",
            excerpt="",
            transient=True,
            duration=time.monotonic() - started,
        )

    if answer.status_code == 429:
        wait = min(answer.retry_after or 1.0, conf.retry_max_delay.total_seconds())
        ratelimit.hold_back(store_view.name, clock().timestamp() + wait)
    return answer


class _Run:
    """One delivery run: calls in flight, requests waiting, requests held back.

    A call that ends starts the next one from the pool thread that made it, so the
    calls never wait for the database; this thread, the caller's, writes every
    outcome, as many as have ended since its last write in one transaction.
    """

    def __init__(
        self,
        claimed: list[ForgetRequest],
        store_views: dict[str, StoreView],
        deadline: float | None,
        stop: threading.Event | None,
        result: Delivered,
    ) -> None:
        self.pool = _executor()
        self.store_views = store_views
        self.deadline = deadline
        self.stop = stop
        self.result = result
        self.max_in_flight = conf.max_in_flight
        self.rate = conf.rate_limit
        self.secrets = [view.secret_key for view in store_views.values()]

        # Reentrant: a call that has ended by the time it is started reports at once,
        # in the thread that started it.
        self.lock = threading.Condition(threading.RLock())
        # Set when the run ends (budget, stop, error): calls still waiting their
        # turn are not made, and no new call starts.
        self.over = threading.Event()
        self.starting = False
        self.waiting = collections.deque(claimed)
        # Each call's event is set once the call is really made.
        self.running: dict[
            Future[client.Answer | None],
            tuple[ForgetRequest, datetime, threading.Event],
        ] = {}
        self.ended: list[Outcome] = []
        self.unsendable: list[ForgetRequest] = []
        self.paused: set[str] = set()
        self.held: dict[float, list[ForgetRequest]] = {}

    def __call__(self) -> None:
        try:
            self._run()
        except BaseException:
            # The database failed, say: end the run so the pool threads start no
            # more calls nobody would record, and put back what was never sent.
            with self.lock:
                self.over.set()
                for future in list(self.running):
                    future.cancel()
                unsent = [*self.waiting, *self.unsendable]
                unsent += [r for requests in self.held.values() for r in requests]
                self.waiting.clear()
                self.held.clear()
            try:
                _release(unsent)
            except Exception:
                logger.exception(
                    "%s unsent forget requests stay claimed until their lease ends",
                    len(unsent),
                )
            raise

    def _run(self) -> None:
        with self.lock:
            self._start_calls()

        while True:
            outcomes, unsendable, busy = self._take_ended()
            for request in unsendable:
                _fail_unsendable(
                    request,
                    f"Store view {request.store_view!r} is no longer configured in "
                    "PURECLARITY_GDPR; add it back or cancel the request.",
                )
                self.result.failed.append(request.pk)
            statuses = _finish_all(outcomes) if outcomes else []
            for (request, _, _), status in zip(outcomes, statuses, strict=True):
                _count(self.result, request.pk, status)
            if not busy:
                break

        for after, requests in self.held.items():
            _release(requests, after)
            self.result.deferred += [r.pk for r in requests]

    def _take_ended(self) -> tuple[list[Outcome], list[ForgetRequest], bool]:
        """Wait for calls to end; returns them, the unsendable, and whether any run."""
        with self.lock:
            while self.running and not (self.ended or self.unsendable):
                left = None
                if not self.over.is_set():
                    if self.stop is not None and self.stop.is_set():
                        # Calls waiting their turn are not made after a stop.
                        self.over.set()
                        self._start_calls()
                        continue
                    if self.deadline is not None:
                        left = self.deadline - time.monotonic()
                        if left <= 0:
                            self._time_is_up()
                            continue
                    if self.stop is not None:
                        left = STOP_POLL if left is None else min(left, STOP_POLL)
                self.lock.wait(left)

            outcomes, self.ended = self.ended, []
            unsendable, self.unsendable = self.unsendable, []
            return outcomes, unsendable, bool(self.running)

    def _time_is_up(self) -> None:
        """Stop waiting for the calls made; those not made yet never will be."""
        self.over.set()
        made = {f: entry for f, entry in self.running.items() if entry[2].is_set()}
        _abandon(made, self.result)
        for future in made:
            del self.running[future]
        for future in list(self.running):
            # Still queued in the pool: its callback puts the request back.
            future.cancel()
        self._start_calls()

    def _may_send(self, request: ForgetRequest, made: threading.Event) -> bool:
        """Whether a call whose turn has come is still to be made (pool thread)."""
        with self.lock:
            held = ratelimit.held_for(request.store_view, clock().timestamp()) > 0
            if (
                self.over.is_set()
                or _out_of_time(self.deadline, self.stop)
                or request.store_view in self.paused
                or held
            ):
                return False
            made.set()
            return True

    def _start_calls(self) -> None:
        """Start calls until MAX_IN_FLIGHT run; called with the lock held."""
        if self.over.is_set() or _out_of_time(self.deadline, self.stop):
            self.held.setdefault(0.0, []).extend(self.waiting)
            self.waiting.clear()

        self.starting = True
        try:
            while self.waiting and len(self.running) < self.max_in_flight:
                self._start(self.waiting.popleft())
        finally:
            self.starting = False

    def _start(self, request: ForgetRequest) -> None:
        held_for = ratelimit.held_for(request.store_view, clock().timestamp())
        if request.store_view in self.paused or held_for > 0:
            # Waiting here would keep a caller (a web request, even) waiting.
            self.held.setdefault(round(held_for), []).append(request)
            return
        store_view = self.store_views.get(request.store_view)
        if store_view is None:
            # Written by the caller's thread, which owns the database connection.
            self.unsendable.append(request)
            self.lock.notify()
            return

        made = threading.Event()
        future = self.pool.submit(
            _send,
            store_view,
            request.identifier,
            self.rate,
            self.secrets,
            functools.partial(self._may_send, request, made),
            self.over,
        )
        self.running[future] = (request, clock(), made)
        future.add_done_callback(self._call_ended)

    def _call_ended(self, future: Future[client.Answer | None]) -> None:
        with self.lock:
            entry = self.running.pop(future, None)
            if entry is None:
                # Abandoned when the time budget ran out: a worker sends it again.
                return
            request, started_at, _ = entry
            answer = _answer_of(future)
            if answer is None:
                # Never made: back to the queue, after any hold on its store view.
                held_for = ratelimit.held_for(request.store_view, clock().timestamp())
                self.held.setdefault(round(held_for), []).append(request)
                self.lock.notify()
                return
            if answer.status_code in (401, 403):
                self.paused.add(request.store_view)
            self.ended.append((request, answer, started_at))
            if not self.starting:
                self._start_calls()
            self.lock.notify()


def _answer_of(future: Future[client.Answer | None]) -> client.Answer | None:
    if future.cancelled():
        return None
    try:
        return future.result()
    except BaseException as err:
        # _send catches what a call raises; this is a pool shutting down.
        return client.Answer(
            succeeded=False,
            status_code=None,
            error=f"The call was not made ({type(err).__name__}).",
            excerpt="",
            transient=True,
            duration=0.0,
        )


def _out_of_time(deadline: float | None, stop: threading.Event | None) -> bool:
    if stop is not None and stop.is_set():
        return True
    return deadline is not None and time.monotonic() >= deadline


def _abandon(
    running: dict[
        Future[client.Answer | None], tuple[ForgetRequest, datetime, threading.Event]
    ],
    result: Delivered,
) -> None:
    """Stop waiting for calls in flight when the time budget is spent.

    Their requests stay claimed; once the lease runs out a worker sends them
    again, so the caller is never held longer than its budget.
    """
    logger.info(
        "%s forget requests were still in flight when the time budget ran out; "
        "a worker sends them again once their lease ends",
        len(running),
    )
    result.deferred += [request.pk for request, _, _ in running.values()]


def _count(result: Delivered, pk: int, status: Status) -> None:
    if status == Status.SUCCEEDED:
        result.succeeded.append(pk)
    elif status == Status.FAILED:
        result.failed.append(pk)
    elif status == Status.SENDING:
        result.deferred.append(pk)
    else:
        result.deferred.append(pk)
        result.retrying.append(pk)


def resume(store_view: str) -> int:
    """Lift a store view's pause; returns how many of its requests are due again."""
    StoreViewPause.objects.filter(store_view=store_view).delete()
    # Requests still in their DELAY cool-off keep it.
    cooling_off = Q(attempts=0, next_attempt_at__gt=clock())
    return (
        ForgetRequest.objects.filter(store_view=store_view, status=Status.PENDING)
        .exclude(cooling_off)
        .update(next_attempt_at=None)
    )
