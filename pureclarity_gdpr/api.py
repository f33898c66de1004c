"""The Python API: forget people from code and ask whether someone was forgotten.

::

    from pureclarity_gdpr.api import forget, forget_user, is_forgotten

    forget(["guest@example.test"])            # every configured store view
    forget_user(user)                         # by the user's identifiers
    if is_forgotten("guest@example.test"):    # one indexed lookup
        ...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from .delivery import Delivered, Recorded, deliver, record, record_needs_attention
from .exceptions import InvalidIdentifier
from .identifiers import clean, identifier_hashes, identifiers_of
from .models import ForgetRequest, Source, Status
from .scheduling import deliver_after_commit

__all__ = ["forget", "forget_user", "is_forgotten"]


def forget(
    identifiers: Iterable[str],
    *,
    store_views: Iterable[str] | None = None,
    requested_by: Any = None,
    force: bool = False,
    wait: bool = False,
) -> Recorded | tuple[Recorded, Delivered]:
    """Record forget requests for identifiers and have them delivered.

    Raises InvalidIdentifier (nothing written) for an empty, overlong or control
    character identifier, and UnknownStoreView for a store view not configured.
    By default the requests are delivered as the DELIVERY setting says, after the
    current transaction commits; ``wait=True`` sends them now and returns what
    became of them too.
    """
    recorded = record(
        identifiers,
        source=Source.API,
        store_views=store_views,
        requested_by=requested_by,
        force=force,
    )
    if wait:
        return recorded, deliver(recorded.to_deliver)
    deliver_after_commit(recorded.to_deliver)
    return recorded


def forget_user(
    user: models.Model, *, requested_by: Any = None, force: bool = False
) -> Recorded:
    """Forget a user by its identifiers without deleting it."""
    identifiers, rejected = identifiers_of(user)
    for reason in rejected:
        record_needs_attention(
            store_views=None,
            source=Source.API,
            reason=f"An identifier of user {user.pk} was not sent: {reason}",
        )
    if not identifiers:
        raise InvalidIdentifier(f"User {user.pk} has no identifier to send.")

    recorded = record(
        identifiers, source=Source.API, requested_by=requested_by, force=force
    )
    deliver_after_commit(recorded.to_deliver)
    return recorded


def is_forgotten(identifier: str, store_view: str | None = None) -> bool:
    """Whether PureClarity acknowledged forgetting this identifier.

    In one store view, or in any when ``store_view`` is None. An identifier that
    could never be sent (empty, overlong) is not forgotten. Hashes under the
    current key and every fallback key are tried, so key rotation keeps answers.
    """
    try:
        hashes = identifier_hashes(clean(identifier))
    except InvalidIdentifier:
        return False

    done = ForgetRequest.objects.filter(
        identifier_hash__in=hashes, status=Status.SUCCEEDED
    )
    if store_view is not None:
        done = done.filter(store_view=store_view)
    return done.exists()
