"""The receiver that forgets a user in PureClarity when the user is deleted."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction

from .actor import current_actor
from .conf import conf
from .delivery import record, record_needs_attention
from .identifiers import identifiers_of, mask
from .models import Source
from .scheduling import deliver_after_commit

logger = logging.getLogger(__name__)

DISPATCH_UID = "pureclarity_gdpr.forget_deleted_user"


def _actor_for(deleted: models.Model) -> Any:
    actor = current_actor()
    # Someone deleting their own account cannot be pointed to by the request.
    if actor is None or actor.pk == deleted.pk:
        return None
    return actor


def forget_deleted_user(
    sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any
) -> None:
    """Record forget requests for a deleted user and deliver them after commit.

    The identifiers are read now: once the deletion finishes, Django clears the
    primary key. The requests are written in the deleting transaction, so a rolled
    back deletion leaves none and a committed one cannot lose them.
    """
    user_model = get_user_model()
    if not issubclass(sender, user_model) or not conf.forget_on_delete:
        return

    identifiers, rejected = identifiers_of(instance)
    actor = _actor_for(instance)
    label = f"{user_model._meta.label} {instance.pk}"
    # Django deletes inside a transaction already; no savepoint of our own, which
    # would cost two queries for every user of a queryset delete.
    with transaction.atomic(using=using, savepoint=False):
        for reason in rejected:
            record_needs_attention(
                store_views=None,
                source=Source.USER_DELETION,
                reason=f"An identifier of deleted user {label} was not sent: {reason}",
            )
        if not identifiers:
            if not rejected:
                record_needs_attention(
                    store_views=None,
                    source=Source.USER_DELETION,
                    reason=f"Deleted user {label} has no identifier to send; forget "
                    "them by hand with the identifier your site sends to PureClarity.",
                )
            return
        recorded = record(identifiers, source=Source.USER_DELETION, requested_by=actor)

    logger.debug(
        "Recorded %s forget requests for deleted user %s",
        len(recorded.created),
        ", ".join(mask(i) for i in identifiers),
    )
    deliver_after_commit(recorded.to_deliver, using=using)
