"""The receivers that forget a user in PureClarity when the user is deleted.

Django sends ``pre_delete`` for every object a deletion removes before it deletes
any of them, then deletes each model's rows and sends ``post_delete`` for them one
by one. The ``pre_delete`` receiver reads each user's identifiers while every row
(those a cascade deletes first included) can still be read. The first
``post_delete`` of the user model comes when every user of that deletion is gone
from the table: the receiver records the forget requests of all of them there, in
one INSERT per chunk, inside the deleting transaction. The rest of that deletion's
``post_delete`` signals find their users recorded and cost nothing.

What the ``pre_delete`` receiver gathers is held by an object registered with
``transaction.on_commit``, so a deletion that is rolled back (with its savepoint or
its transaction) takes its gathered users with it, and a later deletion never
records a user that was not deleted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction

from .actor import current_actor
from .conf import conf
from .delivery import open_request_ids, record_deleted_users, record_needs_attention
from .identifiers import identifier_source, identifiers_of
from .models import Source
from .scheduling import deliver_after_commit

logger = logging.getLogger(__name__)

DISPATCH_UID = "pureclarity_gdpr.forget_deleted_user"
GATHER_UID = "pureclarity_gdpr.gather_deleted_users"


@dataclass
class _Deleted:
    """A deleted user as its forget requests need it, read before the deletion."""

    pk: Any
    identifiers: list[str]
    rejected: list[str]


def _read(user: Any, source: Any) -> _Deleted:
    identifiers, rejected = identifiers_of(user, source)
    return _Deleted(user.pk, identifiers, rejected)


class _Deletions:
    """The users of the deletions under way in one transaction (or savepoint).

    Users are grouped by the deletion's origin (the queryset or object whose
    ``delete()`` was called) and by model, which is how Django sends the signals.
    """

    def __init__(self, savepoint_ids: list[str]) -> None:
        self.savepoint_ids = savepoint_ids
        self.source = identifier_source()
        # The origins are kept so that their ids stay theirs while this lives.
        self.origins: dict[int, object] = {}
        self.waiting: dict[tuple[int, type[models.Model]], list[_Deleted]] = {}
        self.recorded: defaultdict[int, set[Any]] = defaultdict(set)

    def __call__(self) -> None:
        # Run at commit, when every deletion it followed has finished.
        self.origins.clear()
        self.waiting.clear()
        self.recorded.clear()

    def gather(self, origin: object, sender: type[models.Model], user: Any) -> None:
        # Read now, while the rows a cascade deletes first (a profile the
        # IDENTIFIERS function reads, say) and deferred fields can still be read.
        self.origins[id(origin)] = origin
        self.waiting.setdefault((id(origin), sender), []).append(
            _read(user, self.source)
        )

    def to_record(
        self, origin: object, sender: type[models.Model], user: Any
    ) -> list[_Deleted]:
        """The users to record now that ``user`` is deleted; [] if done already."""
        recorded = self.recorded[id(origin)]
        waiting = self.waiting.pop((id(origin), sender), None)
        if waiting is None:
            # Gathered and recorded with the first user of its model, or (sent by
            # hand, or connected midway) never gathered: then on its own now.
            waiting = [] if user.pk in recorded else [_read(user, self.source)]

        # A proxy's users and the user model's may name one user twice.
        users = {u.pk: u for u in waiting if u.pk not in recorded}
        recorded.update(users)
        return list(users.values())


def _deletions(using: str, create: bool) -> _Deletions | None:
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        return None

    # Looked up at this savepoint level only: one rolled back takes its own along.
    for _sids, func, *_ in reversed(connection.run_on_commit):
        if (
            isinstance(func, _Deletions)
            and func.savepoint_ids == connection.savepoint_ids
        ):
            return func
    if not create:
        return None
    deletions = _Deletions(list(connection.savepoint_ids))
    transaction.on_commit(deletions, using=using)
    return deletions


def _is_user_model(sender: type[models.Model]) -> bool:
    user_model = get_user_model()
    return (
        sender._meta.concrete_model is user_model._meta.concrete_model
        and conf.forget_on_delete
    )


def gather_deleted_user(
    sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any
) -> None:
    """Note a user about to be deleted, to record it with the rest of its deletion."""
    origin = kwargs.get("origin")
    if origin is None or not _is_user_model(sender):
        return

    deletions = _deletions(using, create=True)
    if deletions is not None:
        deletions.gather(origin, sender, instance)


def forget_deleted_user(
    sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any
) -> None:
    """Record forget requests for deleted users and deliver them after commit.

    The requests are written in the deleting transaction, so a rolled back
    deletion leaves none and a committed one cannot lose them.
    """
    if not _is_user_model(sender):
        return

    origin = kwargs.get("origin")
    deletions = None if origin is None else _deletions(using, create=False)
    if deletions is None:
        users = [_read(instance, identifier_source())]
    else:
        users = deletions.to_record(origin, sender, instance)
    if users:
        _forget(users, using)


def _forget(users: list[_Deleted], using: str) -> None:
    actor = current_actor()
    # Someone deleting their own account is not named in its records. An actor
    # may also be a name (a script's, say), which no deleted user has.
    actor_pk = getattr(actor, "pk", None)
    if actor_pk is not None and any(user.pk == actor_pk for user in users):
        actor = None

    identifiers: list[str] = []
    for user in users:
        _needs_attention(user, actor)
        identifiers += user.identifiers

    # Django deletes inside a transaction already: no savepoint of our own.
    keys = record_deleted_users(identifiers, requested_by=actor)
    logger.debug(
        "Recorded forget requests for %s deleted users (%s identifiers)",
        len(users),
        len(identifiers),
    )
    if conf.delivery != "worker":
        deliver_after_commit(open_request_ids(keys), using=using)


def _needs_attention(user: _Deleted, actor: Any) -> None:
    if user.identifiers and not user.rejected:
        return

    label = f"{get_user_model()._meta.label} {user.pk}"
    reasons = [
        f"An identifier of deleted user {label} was not sent: {reason}"
        for reason in user.rejected
    ]
    if not user.identifiers and not reasons:
        reasons.append(
            f"Deleted user {label} has no identifier to send; forget them by hand "
            "with the identifier your site sends to PureClarity."
        )
    for reason in reasons:
        record_needs_attention(
            store_views=None,
            source=Source.USER_DELETION,
            reason=reason,
            requested_by=actor,
        )
