"""The page that forgets identifiers belonging to no account: form, confirm, send."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..conf import conf
from ..exceptions import UnknownStoreView
from ..identifiers import mask
from .forgetting import Batch, Subject, record_subjects, sends_now, warning_context
from .forms import ForgetIdentifiersForm
from .messages import identifiers_sent_message, no_store_view, report
from .pages import back_to_changelist, render
from .permissions import has_forget_permission, staff_id


def forget_identifiers_view(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest
) -> HttpResponse:
    """Show the form; on a valid POST, the confirmation; on confirming, send."""
    if not has_forget_permission(request):
        raise PermissionDenied
    if no_store_view(model_admin, request):
        return back_to_changelist(model_admin)

    if request.method != "POST":
        return _render(model_admin, request, "forget_identifiers.html", None)
    form = ForgetIdentifiersForm(request.POST)
    if not form.is_valid():
        return _render(model_admin, request, "forget_identifiers.html", form)
    if not request.POST.get("post"):
        template = "forget_identifiers_confirmation.html"
        return _render(model_admin, request, template, form)

    try:
        batch = _forget(request, form)
    except UnknownStoreView as err:
        form.add_error("store_views", str(err))
        return _render(model_admin, request, "forget_identifiers.html", form)
    report(model_admin, request, batch, identifiers_sent_message)
    return back_to_changelist(model_admin)


def _subjects(form: ForgetIdentifiersForm) -> list[Subject]:
    return [
        Subject(mask(identifier), [identifier])
        for identifier in form.cleaned_data["identifiers"]
    ]


def _forget(request: HttpRequest, form: ForgetIdentifiersForm) -> Batch:
    subjects = _subjects(form)
    with transaction.atomic():
        batch = record_subjects(
            subjects,
            store_views=form.cleaned_data["store_views"],
            requested_by=request.user,
        )
        _log(request, batch)
        if not sends_now(len(subjects)):
            batch.queue()

    if not batch.queued:
        batch.deliver()
    return batch


def _log(request: HttpRequest, batch: Batch) -> None:
    """A history entry per request, in one insert per kind however many there are."""
    entries = [
        (batch.recorded.created, ADDITION, gettext("Recorded from the admin.")),
        (batch.recorded.already_open, CHANGE, gettext("Sent again from the admin.")),
    ]
    for requests, flag, message in entries:
        if requests:
            LogEntry.objects.log_actions(
                user_id=staff_id(request),
                queryset=requests,
                action_flag=flag,
                change_message=message,
            )


def _render(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    template: str,
    form: ForgetIdentifiersForm | None,
) -> TemplateResponse:
    subjects: list[Subject] = []
    store_views = conf.store_view_names
    if form is None:
        form = ForgetIdentifiersForm()
    elif form.is_valid():
        subjects = _subjects(form)
        store_views = form.cleaned_data["store_views"]

    context = {
        **warning_context(subjects, store_views),
        "title": _("Forget identifiers without an account"),
        "form": form,
        # Laid out by the admin's own fieldset template, as its forms are. The
        # stubs ask for a ModelForm; the admin passes plain forms too (the
        # password change form), and nothing here needs a model.
        "adminform": helpers.AdminForm(
            form,  # type: ignore[arg-type]
            [(None, {"fields": list(form.fields)})],
            {},
        ),
        "media": model_admin.media + form.media,
    }
    return render(model_admin, request, template, context)
