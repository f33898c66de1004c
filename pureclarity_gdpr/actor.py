"""Who asked for the deletions under way, so the forget requests can name them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .models import REQUESTER_LENGTH

_actor: ContextVar[Any] = ContextVar("pureclarity_gdpr_actor", default=None)


@contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Record ``user`` as who asked for the deletions made inside the block."""
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> Any:
    return _actor.get()


def name_of(requester: Any) -> str:
    """How a forget request names who asked for it: their username, or "" for none.

    Takes a user, or a name already (a script may name itself).
    """
    if requester is None:
        return ""
    name = requester if isinstance(requester, str) else requester.get_username()
    return str(name)[:REQUESTER_LENGTH]
