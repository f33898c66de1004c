"""The request list's header: counts at a glance, and paused store views.

Resuming a paused store view is a plain POST from the header, with no
confirmation page: it sends only what staff already asked to send. With
immediate delivery it sends the store view's waiting requests at once, as
nothing else would until the next delivery run.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone

from ..conf import conf
from ..delivery import deliver, resume
from ..models import ForgetRequest, Status, StoreViewPause
from .filters import OVERDUE, overdue
from .forgetting import Batch
from .messages import (
    not_paused_message,
    report,
    requests_sent_message,
    resumed_message,
)
from .pages import back_to_changelist
from .permissions import has_forget_permission

logger = logging.getLogger(__name__)


def counts() -> dict[str, int]:
    """How many requests need watching, over all requests, in one query."""
    result: dict[str, int] = ForgetRequest.objects.aggregate(
        pending=Count("pk", filter=Q(status=Status.PENDING)),
        failed=Count("pk", filter=Q(status=Status.FAILED)),
        needs_attention=Count("pk", filter=Q(status=Status.NEEDS_ATTENTION)),
        overdue=Count("pk", filter=overdue(timezone.now())),
    )
    return result


def summary_context(request: HttpRequest) -> dict[str, Any]:
    """What the header of the request list shows."""
    return {
        "summary": counts(),
        "summary_filters": {
            "pending": f"?status__exact={Status.PENDING}",
            "failed": f"?status__exact={Status.FAILED}",
            "needs_attention": f"?status__exact={Status.NEEDS_ATTENTION}",
            "overdue": f"?gdpr_deadline={OVERDUE}",
        },
        "pauses": list(StoreViewPause.objects.order_by("store_view")),
        "now": timezone.now(),
        "has_forget_permission": has_forget_permission(request),
    }


def resume_store_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest
) -> HttpResponse:
    """Lift a store view's pause so its waiting requests are due again."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not has_forget_permission(request):
        raise PermissionDenied

    store_view = request.POST.get("store_view", "")
    if not StoreViewPause.objects.filter(store_view=store_view).exists():
        model_admin.message_user(
            request, not_paused_message(store_view), messages.WARNING
        )
        return back_to_changelist(model_admin)

    due_again = resume(store_view)
    logger.info(
        "User %s resumed deliveries to store view %r", request.user.pk, store_view
    )
    model_admin.message_user(request, resumed_message(store_view, due_again))
    if conf.delivery == "immediate":
        _deliver_now(model_admin, request, store_view)
    return back_to_changelist(model_admin)


def _deliver_now(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, store_view: str
) -> None:
    """Send the store view's due requests while the page waits, within the budget.

    Those left when the budget runs out stay pending, as after a commit.
    """
    delivered = deliver(budget=conf.immediate_budget, store_views=[store_view])
    report(model_admin, request, Batch.of(delivered), requests_sent_message)
