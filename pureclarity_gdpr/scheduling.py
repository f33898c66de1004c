"""When recorded requests are delivered: after commit, by a worker, or as tasks."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, transaction

from .conf import conf
from .delivery import deliver

logger = logging.getLogger(__name__)

TASK_CHUNK = 500


class _AfterCommit:
    """One delivery run for every request recorded in a transaction.

    A queryset delete of thousands of users records requests user by user; this
    gathers them so they are sent together, concurrently, once the deletion commits.
    """

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self) -> None:
        try:
            if conf.delivery == "tasks":
                _enqueue(self.ids)
            else:
                deliver(self.ids, budget=conf.immediate_budget)
        except Exception:
            # The deletion has committed and the requests are recorded; a worker or
            # a person can still deliver them. Never fail the caller's request.
            logger.exception(
                "Delivering or enqueueing %s forget requests after commit failed; "
                "they stay pending for the pureclarity_forget command",
                len(self.ids),
            )


def _enqueue(ids: list[int]) -> None:
    from .tasks import enqueue

    # One task per chunk keeps each task small enough for any backend's payload.
    for start in range(0, len(ids), TASK_CHUNK):
        enqueue(ids[start : start + TASK_CHUNK])


def _open_batch(using: str) -> _AfterCommit | None:
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return None
    # Savepoints decide which callbacks survive a partial rollback; a request whose
    # row was rolled back is simply not found when the batch is delivered.
    for _sids, func, *_ in reversed(connection.run_on_commit):
        if isinstance(func, _AfterCommit):
            return func
    return None


def deliver_after_commit(ids: Iterable[int], using: str = DEFAULT_DB_ALIAS) -> None:
    """Arrange for requests to be delivered as the delivery mode says."""
    ids = list(ids)
    if not ids or conf.delivery == "worker":
        return

    batch = _open_batch(using)
    if batch is not None:
        batch.ids += ids
        return

    batch = _AfterCommit()
    batch.ids += ids
    transaction.on_commit(batch, using=using)
