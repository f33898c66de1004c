"""What the admin tells staff: pluralised, translatable, in counts only.

No message names an identifier, masked or not: messages outlive the page in the
session, and counts are all a person needs to know what happened.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext

from ..conf import conf
from .forgetting import Batch, delay_text


def users_sent_message(count: int) -> str:
    return ngettext(
        "Forget requests for %(count)d user were sent to PureClarity.",
        "Forget requests for %(count)d users were sent to PureClarity.",
        count,
    ) % {"count": count}


def identifiers_sent_message(count: int) -> str:
    return ngettext(
        "Forget requests for %(count)d identifier were sent to PureClarity.",
        "Forget requests for %(count)d identifiers were sent to PureClarity.",
        count,
    ) % {"count": count}


def requests_sent_message(count: int) -> str:
    return ngettext(
        "%(count)d request was delivered to PureClarity.",
        "%(count)d requests were delivered to PureClarity.",
        count,
    ) % {"count": count}


def more_requests_sent_message(count: int) -> str:
    return ngettext(
        "%(count)d more request was delivered to PureClarity.",
        "%(count)d more requests were delivered to PureClarity.",
        count,
    ) % {"count": count}


def forget_log_message(count: int, *, needs_attention: bool) -> str:
    """The history entry of a user asked to be forgotten."""
    text = ngettext(
        "Asked PureClarity to forget this person (%(count)d request).",
        "Asked PureClarity to forget this person (%(count)d requests).",
        count,
    ) % {"count": count}
    if needs_attention:
        text += " " + gettext(
            "An identifier could not be sent; recorded as needing attention."
        )
    return text


def _queued(say: Callable[[str, int], None], count: int) -> None:
    text = ngettext(
        "%(count)d forget request was queued; it will be sent to PureClarity in "
        "the background. Follow it in the forget requests list.",
        "%(count)d forget requests were queued; they will be sent to PureClarity "
        "in the background. Follow them in the forget requests list.",
        count,
    )
    say(text % {"count": count}, messages.SUCCESS)

    delay = conf.delay
    if delay:
        text = gettext(
            "Each request waits %(delay)s before it is sent; until then it can be "
            "cancelled in the forget requests list."
        )
        say(text % {"delay": delay_text(delay)}, messages.INFO)


def _delivered(
    say: Callable[[str, int], None],
    batch: Batch,
    sent_message: Callable[[int], str],
) -> None:
    if batch.sent:
        say(sent_message(batch.sent), messages.SUCCESS)
    # Some of a person's requests got through though others did not.
    apart = batch.delivered_apart
    if apart:
        message = more_requests_sent_message if batch.sent else requests_sent_message
        say(message(apart), messages.SUCCESS)

    failed = len(batch.failed)
    if failed:
        text = ngettext(
            "%(count)d request failed; see the forget requests list.",
            "%(count)d requests failed; see the forget requests list.",
            failed,
        )
        say(text % {"count": failed}, messages.ERROR)

    retrying = len(batch.retrying)
    if retrying:
        text = ngettext(
            "%(count)d request could not be delivered yet; it will be tried again "
            "automatically. See the forget requests list.",
            "%(count)d requests could not be delivered yet; they will be tried "
            "again automatically. See the forget requests list.",
            retrying,
        )
        # Nothing failed for good yet: these are tried again without anyone.
        say(text % {"count": retrying}, messages.WARNING)

    if batch.waiting:
        text = ngettext(
            "%(count)d request is still waiting to be sent; it stays queued for "
            "the next delivery run.",
            "%(count)d requests are still waiting to be sent; they stay queued for "
            "the next delivery run.",
            batch.waiting,
        )
        say(text % {"count": batch.waiting}, messages.WARNING)


def report(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    batch: Batch,
    sent_message: Callable[[int], str],
) -> None:
    """Tell the person what recording, and sending or queueing, did."""
    say = functools.partial(model_admin.message_user, request)
    if batch.queued:
        if batch.ids:
            _queued(say, len(batch.ids))
    else:
        _delivered(say, batch, sent_message)

    forgotten = batch.already_forgotten
    if forgotten:
        text = ngettext(
            "%(count)d identifier was already forgotten.",
            "%(count)d identifiers were already forgotten.",
            forgotten,
        )
        say(text % {"count": forgotten}, messages.INFO)

    if batch.needs_attention:
        text = ngettext(
            "%(count)d user has an identifier that cannot be sent, or none at all; "
            "this was recorded as needing attention in the forget requests list.",
            "%(count)d users have identifiers that cannot be sent, or none at all; "
            "this was recorded as needing attention in the forget requests list.",
            batch.needs_attention,
        )
        say(text % {"count": batch.needs_attention}, messages.WARNING)


def no_store_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest) -> bool:
    """Say so, and return True, when there is nowhere to send requests."""
    if conf.store_view_names:
        return False

    model_admin.message_user(
        request,
        gettext(
            "PURECLARITY_GDPR configures no store view, so there is nowhere to send "
            "forget requests."
        ),
        messages.ERROR,
    )
    return True


def retry_skipped_message(count: int) -> str:
    return ngettext(
        "%(count)d selected request had not failed and was skipped.",
        "%(count)d selected requests had not failed and were skipped.",
        count,
    ) % {"count": count}


def cancelled_message(count: int) -> str:
    return ngettext(
        "%(count)d forget request was cancelled: it will not be sent, and its "
        "identifier was deleted.",
        "%(count)d forget requests were cancelled: they will not be sent, and "
        "their identifiers were deleted.",
        count,
    ) % {"count": count}


def not_cancelled_message(count: int, reason: str) -> str:
    return ngettext(
        "%(count)d selected request was not cancelled. %(reason)s",
        "%(count)d selected requests were not cancelled. %(reason)s",
        count,
    ) % {"count": count, "reason": reason}


def resumed_message(store_view: str, count: int) -> str:
    return ngettext(
        "Deliveries to store view %(name)s were resumed; %(count)d pending request "
        "is due again.",
        "Deliveries to store view %(name)s were resumed; %(count)d pending "
        "requests are due again.",
        count,
    ) % {"name": store_view, "count": count}


def not_paused_message(store_view: str) -> str:
    return gettext("Store view %(name)s was not paused.") % {"name": store_view}
