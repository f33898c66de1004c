"""What deleting users costs, with or without the app: run in a child process.

The parent starts one process with the project's settings and one with the same
project minus pureclarity_gdpr, so the baseline pays for nothing of the app, its
receivers or anything else it adds to a deletion.
"""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import Signal
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from .data import clear, create_users, gdpr_settings, user_tables

APP_UID_PREFIX = "pureclarity_gdpr."
WARM_UP = 5
COUNTED_BULK = 100


def _time_single_deletes(count: int, prefix: str) -> float:
    create_users(count, prefix)
    users = list(get_user_model().objects.filter(username__startswith=f"{prefix}-"))

    times = []
    for user in users:
        started = time.perf_counter()
        user.delete()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _time_bulk_delete(count: int, prefix: str) -> float:
    create_users(count, prefix)
    users = get_user_model().objects.filter(username__startswith=f"{prefix}-")

    started = time.perf_counter()
    deleted = users.delete()[1].get(get_user_model()._meta.label, 0)
    elapsed = time.perf_counter() - started

    if deleted != count:
        raise RuntimeError(f"deleted {deleted} users, expected {count}")
    return elapsed


def _count_queries(prefix: str) -> tuple[int, int]:
    """Queries to delete one user, and to delete COUNTED_BULK users at once."""
    create_users(1 + COUNTED_BULK, prefix)
    users = get_user_model().objects.filter(username__startswith=f"{prefix}-")
    single = users.order_by("pk").first()
    assert single is not None

    with CaptureQueriesContext(connection) as one:
        single.delete()
    with CaptureQueriesContext(connection) as bulk:
        users.delete()
    return len(one), len(bulk)


def _measure(name: str, singles: int, bulk: int, rounds: int) -> dict[str, float]:
    _time_single_deletes(WARM_UP, f"{name}-warm")
    one = _time_single_deletes(singles, f"{name}-one")
    many = statistics.median(
        _time_bulk_delete(bulk, f"{name}-bulk{n}") for n in range(rounds)
    )
    one_queries, bulk_queries = _count_queries(f"{name}-count")
    return {
        "one": one,
        "bulk": many,
        "one_queries": one_queries,
        "bulk_queries": bulk_queries,
    }


def _app_receivers() -> list[tuple[Signal, type[Model], str, Callable[..., Any]]]:
    """The app's deletion receivers: those with a ``pureclarity_gdpr.`` uid.

    Django does not document ``Signal.receivers``; it holds a ``(dispatch_uid,
    id(sender))`` key and the receiver (or a weak reference to it) per entry.
    """
    models = {id(model): model for model in apps.get_models()}
    found: list[tuple[Signal, type[Model], str, Callable[..., Any]]] = []
    for signal in (pre_delete, post_delete):
        for (uid, sender_id), receiver, *_ in signal.receivers:
            func = receiver() if isinstance(receiver, weakref.ref) else receiver
            if isinstance(uid, str) and uid.startswith(APP_UID_PREFIX) and func:
                found.append((signal, models[sender_id], uid, func))
    return found


@contextmanager
def _receivers_disconnected() -> Iterator[None]:
    found = _app_receivers()
    if not found:
        raise RuntimeError("no deletion receiver of pureclarity_gdpr was found")
    for signal, model, uid, _func in found:
        signal.disconnect(sender=model, dispatch_uid=uid)
    try:
        yield
    finally:
        for signal, model, uid, func in found:
            signal.connect(func, sender=model, dispatch_uid=uid)


VARIANTS = ("without-app", "app", "app-unhooked")


def measure(variant: str, singles: int, bulk: int, rounds: int) -> dict[str, float]:
    """Median times of single and queryset deletes, and the queries they make.

    ``variant`` is the project without the app, the app in worker mode, or the
    app with its deletion receivers disconnected.
    """
    clear(*user_tables())
    if variant == "without-app":
        return _measure(variant, singles, bulk, rounds)

    from .data import clear_requests

    clear_requests()
    with override_settings(PURECLARITY_GDPR=gdpr_settings(DELIVERY="worker")):
        if variant == "app":
            return _measure(variant, singles, bulk, rounds)
        with _receivers_disconnected():
            return _measure(variant, singles, bulk, rounds)
