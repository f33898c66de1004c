"""Pacing calls per store view: a steady maximum rate, and holding back after a 429.

The pace is shared by every thread of the process, so many calls in flight still
keep to one rate. Processes do not share it: with several workers, give each a
share of the rate PureClarity allows.
"""

from __future__ import annotations

import threading
import time


class _Pace:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_slot = 0.0
        self.held_until = 0.0


_paces: dict[str, _Pace] = {}
_paces_lock = threading.Lock()


def _pace(store_view: str) -> _Pace:
    with _paces_lock:
        return _paces.setdefault(store_view, _Pace())


def wait_turn(
    store_view: str, rate: float | None, wake: threading.Event | None = None
) -> float:
    """Block until this store view may be called again; returns the seconds waited.

    With a ``rate`` (calls per second) the calls are spaced evenly; without one
    they go at once. Setting ``wake`` ends the wait early (the caller then decides
    whether to call at all).
    """
    if not rate:
        return 0.0

    pace = _pace(store_view)
    with pace.lock:
        now = time.monotonic()
        slot = max(now, pace.next_slot)
        pace.next_slot = slot + 1.0 / rate

    delay = slot - now
    if delay > 0:
        _sleep(delay, wake)
    return delay


def _sleep(seconds: float, wake: threading.Event | None) -> None:
    if wake is None:
        time.sleep(seconds)
    else:
        wake.wait(seconds)


def hold_back(store_view: str, until: float) -> None:
    """Send nothing more to this store view before ``until`` (a timestamp).

    Timestamps come from the caller's clock, so tests can move them.
    """
    pace = _pace(store_view)
    with pace.lock:
        pace.held_until = max(pace.held_until, until)


def held_for(store_view: str, now: float) -> float:
    """How many seconds after ``now`` this store view is still held back, or 0."""
    pace = _pace(store_view)
    with pace.lock:
        return max(0.0, pace.held_until - now)


def reset() -> None:
    """Forget every pace (for tests)."""
    with _paces_lock:
        _paces.clear()
