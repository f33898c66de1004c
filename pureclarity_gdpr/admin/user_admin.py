"""The user admin, extended in place with "Forget in PureClarity".

The user admin belongs to the project (or to django.contrib.auth), so it is not
replaced: the ModelAdmin instance registered for AUTH_USER_MODEL on the default
site is extended in place, when that site builds its URLs. By then every admin
module has been imported, whatever the order of INSTALLED_APPS, so a user admin
registered after this module is extended just like one registered before it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver
from django.utils.translation import gettext_lazy as _

from ..actor import acting_as
from ..conf import conf
from ..delivery import record_needs_attention
from ..identifiers import identifiers_of
from ..models import Source
from .forgetting import Batch, Subject, record_subjects, sends_now, warning_context
from .messages import forget_log_message, no_store_view, report, users_sent_message
from .pages import render
from .permissions import PERMISSION_CODENAME, has_forget_permission, staff_id

logger = logging.getLogger(__name__)

# Marks a ModelAdmin or AdminSite this module has already extended, so doing it
# twice (URLs built again, a test calling it) changes nothing.
EXTENDED = "_pureclarity_gdpr_extended"


def user_subject(user: models.Model) -> Subject:
    identifiers, rejected = identifiers_of(user)
    return Subject(str(user), identifiers, rejected, obj=user)


def record_unsendable(subjects: list[Subject], requested_by: Any) -> int:
    """Record, as needing attention, whatever of these people cannot be sent."""
    count = 0
    for subject in subjects:
        reasons = subject.unsendable
        if not reasons:
            continue

        count += 1
        label = f"{subject.obj._meta.label} {subject.obj.pk}"
        for reason in reasons:
            record_needs_attention(
                store_views=None,
                source=Source.ADMIN,
                reason=f"User {label} could not be forgotten from the admin: {reason}",
                requested_by=requested_by,
            )
    return count


def log_forgotten_users(
    request: HttpRequest, subjects: list[Subject], batch: Batch
) -> None:
    """One history entry per user, written in a few inserts however many there are.

    Entries go straight to LogEntry, as ModelAdmin.log_change would write them,
    because one insert per user would make a big selection slow.
    """
    by_message: dict[str, list[models.Model]] = {}
    for subject, ids in zip(subjects, batch.per_subject, strict=True):
        message = forget_log_message(len(ids), needs_attention=bool(subject.unsendable))
        by_message.setdefault(message, []).append(subject.obj)
    for message, users in by_message.items():
        LogEntry.objects.log_actions(
            user_id=staff_id(request),
            queryset=users,
            action_flag=CHANGE,
            change_message=message,
        )


def forget_users(request: HttpRequest, subjects: list[Subject]) -> Batch:
    """Record the users' requests and needs, then send them or queue them."""
    with transaction.atomic():
        batch = record_subjects(subjects, store_views=None, requested_by=request.user)
        batch.needs_attention = record_unsendable(subjects, request.user)
        log_forgotten_users(request, subjects, batch)
        if not sends_now(len(subjects)):
            batch.queue()

    if not batch.queued:
        batch.deliver()
    return batch


@admin.action(permissions=[PERMISSION_CODENAME], description=_("Forget in PureClarity"))
def forget_in_pureclarity(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[Any],
) -> TemplateResponse | None:
    """Confirm, then record and deliver forget requests for the selected users.

    Like delete_selected: a confirmation page first, the permission checked again
    on the confirming POST, a log entry per user, then back to the changelist.
    The users themselves are left alone; deleting them is the shop's decision.
    """
    if no_store_view(model_admin, request):
        return None

    subjects = [user_subject(user) for user in queryset]
    if request.method == "POST" and request.POST.get("post"):
        if not has_forget_permission(request):
            raise PermissionDenied
        batch = forget_users(request, subjects)
        report(model_admin, request, batch, users_sent_message)
        return None

    context = {
        **warning_context(subjects, conf.store_view_names),
        "title": _("Forget in PureClarity"),
        "action_name": forget_in_pureclarity.__name__,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return render(model_admin, request, "forget_users_confirmation.html", context)


def _requester(request: HttpRequest, deletes_requester: bool) -> Any:
    # Staff deleting their own account are being erased too: their name is not
    # kept in the records of that deletion.
    return None if deletes_requester else request.user


def _deleting_model_as_requester(
    delete_model: Callable[[HttpRequest, Any], None],
) -> Callable[[HttpRequest, Any], None]:
    @functools.wraps(delete_model)
    def wrapper(request: HttpRequest, obj: Any) -> None:
        with acting_as(_requester(request, obj.pk == request.user.pk)):
            delete_model(request, obj)

    return wrapper


def _deleting_queryset_as_requester(
    delete_queryset: Callable[[HttpRequest, Any], None],
) -> Callable[[HttpRequest, Any], None]:
    @functools.wraps(delete_queryset)
    def wrapper(request: HttpRequest, queryset: Any) -> None:
        deletes_requester = queryset.filter(pk=request.user.pk).exists()
        with acting_as(_requester(request, deletes_requester)):
            delete_queryset(request, queryset)

    return wrapper


def extend_user_admin(model_admin: admin.ModelAdmin[Any]) -> None:
    """Add "Forget in PureClarity" to a user ModelAdmin instance, in place.

    Its class, list display and other actions stay as they are. Its deletions
    record the person deleting as who asked PureClarity to forget. An admin with
    ``actions = None`` keeps no actions at all, as its authors chose.
    """
    if getattr(model_admin, EXTENDED, False):
        return

    if model_admin.actions is None:
        logger.info(
            "%s disables actions, so it gets no 'Forget in PureClarity' action",
            type(model_admin).__name__,
        )
    elif forget_in_pureclarity not in model_admin.actions:
        model_admin.actions = [*model_admin.actions, forget_in_pureclarity]
    # Instance attributes: the project's class stays as it is, and the action's
    # permission check is found where Django looks, on the ModelAdmin.
    vars(model_admin).update(
        has_forget_in_pureclarity_permission=has_forget_permission,
        delete_model=_deleting_model_as_requester(model_admin.delete_model),
        delete_queryset=_deleting_queryset_as_requester(model_admin.delete_queryset),
    )
    setattr(model_admin, EXTENDED, True)


def extend_registered_user_admin(site: admin.AdminSite) -> None:
    """Extend the user admin registered on ``site`` now, if there is one."""
    user_model = get_user_model()
    if site.is_registered(user_model):
        extend_user_admin(site.get_model_admin(user_model))


def extend_user_admin_when_urls_are_built(site: admin.AdminSite) -> None:
    """Extend the site's user admin when the site builds its URLs.

    Admin modules register at import, in INSTALLED_APPS order, and a project may
    replace auth's user admin after this module ran; the URLs are built once every
    registration is done, so that is when the final user admin is known.
    """
    if getattr(site, EXTENDED, False):
        return

    build_urls = site.get_urls

    @functools.wraps(build_urls)
    def get_urls() -> list[URLResolver | URLPattern]:
        extend_registered_user_admin(site)
        return build_urls()

    site.get_urls = get_urls  # type: ignore[method-assign]
    setattr(site, EXTENDED, True)
