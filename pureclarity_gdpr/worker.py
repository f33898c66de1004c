"""The delivery worker: drains due requests once (for cron) or until stopped."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from django.db import DatabaseError, close_old_connections, connection

from .delivery import Delivered, deliver

logger = logging.getLogger(__name__)

BATCH_SIZE = 500


@dataclass
class Counts:
    """How many requests batches delivered: counts only, so a worker running for
    months keeps no growing list of ids."""

    succeeded: int = 0
    failed: int = 0
    deferred: int = 0

    def add(self, batch: Delivered | Counts) -> None:
        if isinstance(batch, Delivered):
            batch = Counts(len(batch.succeeded), len(batch.failed), len(batch.deferred))
        self.succeeded += batch.succeeded
        self.failed += batch.failed
        self.deferred += batch.deferred


def drain(
    stop: threading.Event | None = None,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[Delivered], None] | None = None,
    store_views: Iterable[str] | None = None,
) -> Counts:
    """Deliver every request that is due now (of ``store_views``), batch after batch.

    Requests that fail and are scheduled again are not due now, so this ends.
    """
    total = Counts()
    while stop is None or not stop.is_set():
        batch = deliver(limit=batch_size, stop=stop, store_views=store_views)
        if on_batch is not None:
            on_batch(batch)
        total.add(batch)
        if not (batch.succeeded or batch.failed or batch.deferred):
            break
    return total


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the batch in flight can finish."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        # Event.set() takes a lock the interrupted main thread may hold (inside
        # stop.wait()); setting it from another thread cannot deadlock.
        threading.Thread(target=stop.set, daemon=True).start()
        logger.info("Stopping after the requests in flight (signal %s)", signum)

    previous = {
        signum: signal.signal(signum, request_stop)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(
    stop: threading.Event,
    poll_interval: float = 5.0,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[Delivered], None] | None = None,
) -> Counts:
    """Keep delivering until ``stop`` is set, looking for due requests each poll."""
    if connection.vendor == "sqlite":
        logger.warning(
            "The worker runs on SQLite: run one worker only; SQLite has no row "
            "locks to share requests between several."
        )

    total = Counts()
    while not stop.is_set():
        # A long-running process must not keep a connection the server dropped.
        close_old_connections()
        try:
            total.add(drain(stop, batch_size, on_batch))
        except DatabaseError:
            # The database restarted or a connection dropped: what was claimed
            # comes back after its lease; the worker itself carries on.
            logger.exception("The database failed; trying again after the poll")
            connection.close()
        stop.wait(poll_interval)
    return total
