"""Actions on forget requests that send or stop them: Retry and Cancel."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..delivery import cancel as cancel_requests
from ..delivery import retry as retry_requests
from ..models import ForgetRequest, Status
from .forgetting import Batch
from .messages import (
    cancelled_message,
    not_cancelled_message,
    report,
    requests_sent_message,
    retry_skipped_message,
)
from .pages import SHOWN, render
from .permissions import PERMISSION_CODENAME, has_forget_permission, staff_id

logger = logging.getLogger(__name__)

# Why a selected request is left alone by Cancel; only pending ones are cancelled.
NOT_CANCELLABLE: dict[str, Promise] = {
    Status.SUCCEEDED: _(
        "It was already acknowledged by PureClarity: an erasure cannot be called back."
    ),
    Status.SENDING: _(
        "It is being sent right now; its page will show whether PureClarity "
        "accepted it."
    ),
    Status.FAILED: _(
        "It failed for good and is not sent again unless someone retries it."
    ),
    Status.NEEDS_ATTENTION: _(
        "It has nothing to send: it records that someone could not be forgotten "
        "automatically."
    ),
    Status.CANCELLED: _("It was already cancelled."),
}


@admin.action(permissions=[PERMISSION_CODENAME], description=_("Retry"))
def retry(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[Any],
) -> None:
    """Put the selected failed requests back in the queue and send them now."""
    selected = list(queryset.values_list("pk", flat=True))
    ids = retry_requests(selected)
    _log(request, ids, gettext("Retried from the admin."))

    batch = Batch(per_subject=[[pk] for pk in ids])
    batch.deliver()
    report(model_admin, request, batch, requests_sent_message)
    skipped = len(selected) - len(ids)
    if skipped:
        model_admin.message_user(
            request, retry_skipped_message(skipped), messages.WARNING
        )


@admin.action(permissions=[PERMISSION_CODENAME], description=_("Cancel"))
def cancel(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[Any],
) -> TemplateResponse | None:
    """Confirm, then cancel the selected requests that are still pending.

    Pending requests, in their cool-off or waiting for a retry, never reach
    PureClarity once cancelled; every other request is left alone, and the
    confirmation page says why, status by status.
    """
    selected = list(queryset)
    if request.method == "POST" and request.POST.get("post"):
        if not has_forget_permission(request):
            raise PermissionDenied
        _cancel(model_admin, request, [r.pk for r in selected])
        return None

    pending = [r for r in selected if r.status == Status.PENDING]
    context = {
        "title": _("Cancel forget requests"),
        "pending": pending,
        "shown": pending[:SHOWN],
        "more": max(len(pending) - SHOWN, 0),
        "skipped": _skipped(selected),
        "action_name": cancel.__name__,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return render(model_admin, request, "cancel_confirmation.html", context)


def _skipped(requests: list[ForgetRequest]) -> list[tuple[int, Promise]]:
    """How many selected requests each reason leaves alone, in a stable order."""
    counts = Counter(r.status for r in requests if r.status != Status.PENDING)
    return [
        (counts[status], reason)
        for status, reason in NOT_CANCELLABLE.items()
        if counts[status]
    ]


def _cancel(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, selected: list[int]
) -> None:
    ids = cancel_requests(selected)
    _log(request, ids, gettext("Cancelled from the admin; the identifier was deleted."))
    logger.info("User %s cancelled %s forget requests", request.user.pk, len(ids))
    if ids:
        model_admin.message_user(request, cancelled_message(len(ids)))

    # Read again: a request may have been sent between the two pages.
    left = ForgetRequest.objects.filter(pk__in=selected).exclude(pk__in=ids)
    for count, reason in _skipped(list(left.only("pk", "status"))):
        model_admin.message_user(
            request, not_cancelled_message(count, str(reason)), messages.WARNING
        )


def _log(request: HttpRequest, ids: list[int], message: str) -> None:
    if ids:
        LogEntry.objects.log_actions(
            user_id=staff_id(request),
            queryset=ForgetRequest.objects.filter(pk__in=ids),
            action_flag=CHANGE,
            change_message=message,
        )
