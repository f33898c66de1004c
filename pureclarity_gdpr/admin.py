"""The admin: forget users or typed identifiers, and audit every forget request.

The user admin belongs to the project (or to django.contrib.auth), so it is not
replaced: the ModelAdmin instance registered for AUTH_USER_MODEL on the default
site is extended in place, when that site builds its URLs. By then every admin
module has been imported, whatever the order of INSTALLED_APPS, so a user admin
registered after this module is extended just like one registered before it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .actor import acting_as
from .conf import conf
from .delivery import Recorded, deliver, record, record_needs_attention
from .delivery import retry as retry_requests
from .exceptions import InvalidIdentifier, UnknownStoreView
from .identifiers import clean, identifiers_of, mask
from .models import ForgetAttempt, ForgetRequest, Source, Status

if TYPE_CHECKING:
    ForgetRequestModelAdmin = admin.ModelAdmin[ForgetRequest]
    ForgetAttemptInlineBase = admin.TabularInline[ForgetAttempt, ForgetRequest]
else:
    ForgetRequestModelAdmin = admin.ModelAdmin
    ForgetAttemptInlineBase = admin.TabularInline

logger = logging.getLogger(__name__)

PERMISSION_CODENAME = "forget_in_pureclarity"
PERMISSION = f"{ForgetRequest._meta.app_label}.{PERMISSION_CODENAME}"
# Marks a ModelAdmin or AdminSite this module has already extended, so doing it
# twice (URLs built again, a test calling it) changes nothing.
EXTENDED = "_pureclarity_gdpr_extended"
TEMPLATE_DIR = "admin/pureclarity_gdpr"


def has_forget_permission(request: HttpRequest) -> bool:
    """Whether the person may send erasures to PureClarity."""
    return bool(request.user.has_perm(PERMISSION))


@dataclass
class Subject:
    """Someone to forget: a user with their identifiers, or one typed identifier."""

    label: str
    identifiers: list[str]
    rejected: list[str] = field(default_factory=list)
    obj: Any = None

    @property
    def masked(self) -> list[str]:
        return [mask(identifier) for identifier in self.identifiers]


@dataclass
class Batch:
    """The requests recorded for some subjects, and what delivering them did."""

    per_subject: list[list[int]] = field(default_factory=list)
    already_forgotten: set[str] = field(default_factory=set)
    needs_attention: int = 0
    succeeded: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    retrying: set[int] = field(default_factory=set)

    def add(self, recorded: Recorded) -> list[int]:
        ids = recorded.to_deliver
        self.per_subject.append(ids)
        self.already_forgotten.update(
            r.identifier_hash for r in recorded.already_forgotten
        )
        return ids

    @property
    def ids(self) -> list[int]:
        return [pk for ids in self.per_subject for pk in ids]

    @property
    def sent(self) -> int:
        """Subjects whose every request reached PureClarity in this run."""
        return sum(
            1 for ids in self.per_subject if ids and self.succeeded.issuperset(ids)
        )

    @property
    def waiting(self) -> int:
        """Requests not tried in this run: out of time, paused, or sent elsewhere."""
        tried = self.succeeded | self.failed | self.retrying
        return len(set(self.ids) - tried)

    def deliver(self) -> None:
        """Send the requests now, outside the transaction that recorded them.

        The budget keeps the admin page from hanging on a slow PureClarity.
        """
        ids = self.ids
        if not ids:
            return

        before = dict(
            ForgetRequest.objects.filter(pk__in=ids).values_list("pk", "attempts")
        )
        delivered = deliver(ids, budget=conf.immediate_budget)
        self.succeeded = set(delivered.succeeded)
        self.failed = set(delivered.failed)

        # Deferred covers both requests never tried and requests that failed
        # for now and wait for their next attempt; only the latter were tried.
        deferred = ForgetRequest.objects.filter(pk__in=delivered.deferred)
        self.retrying = {
            pk
            for pk, attempts in deferred.values_list("pk", "attempts")
            if attempts > before.get(pk, 0)
        }


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


def report(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    batch: Batch,
    sent_message: Callable[[int], str],
) -> None:
    """Tell the person what happened, in counts only: never an identifier."""
    say = functools.partial(model_admin.message_user, request)
    if batch.sent:
        say(sent_message(batch.sent), messages.SUCCESS)

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
        say(text % {"count": retrying}, messages.ERROR)

    if batch.waiting:
        text = ngettext(
            "%(count)d request is still waiting to be sent; it stays queued for "
            "the next delivery run.",
            "%(count)d requests are still waiting to be sent; they stay queued for "
            "the next delivery run.",
            batch.waiting,
        )
        say(text % {"count": batch.waiting}, messages.WARNING)

    forgotten = len(batch.already_forgotten)
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


def warning_context(subjects: list[Subject], store_views: list[str]) -> dict[str, Any]:
    identifiers = sum(len(subject.identifiers) for subject in subjects)
    return {
        "subjects": subjects,
        "store_views": store_views,
        "request_count": identifiers * len(store_views),
    }


def user_subject(user: models.Model) -> Subject:
    identifiers, rejected = identifiers_of(user)
    return Subject(str(user), identifiers, rejected, obj=user)


def record_needs_attention_for(
    user: models.Model, request: HttpRequest, reasons: Iterable[str]
) -> None:
    label = f"{user._meta.label} {user.pk}"
    for reason in reasons:
        created = record_needs_attention(
            store_views=None,
            source=Source.ADMIN,
            reason=f"User {label} could not be forgotten from the admin: {reason}",
        )
        # record_needs_attention() takes no requester; it is set afterwards.
        ForgetRequest.objects.filter(pk__in=[r.pk for r in created]).update(
            requested_by=request.user
        )


def forget_users(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, subjects: list[Subject]
) -> Batch:
    batch = Batch()
    with transaction.atomic():
        for subject in subjects:
            reasons = list(subject.rejected)
            if not subject.identifiers and not reasons:
                reasons.append("it has no identifier to send")
            if reasons:
                batch.needs_attention += 1
                record_needs_attention_for(subject.obj, request, reasons)

            recorded = record(
                subject.identifiers, source=Source.ADMIN, requested_by=request.user
            )
            count = len(batch.add(recorded))
            message = forget_log_message(count, needs_attention=bool(reasons))
            model_admin.log_change(request, subject.obj, message)

    batch.deliver()
    return batch


def forget_log_message(count: int, *, needs_attention: bool) -> str:
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
        batch = forget_users(model_admin, request, subjects)
        report(model_admin, request, batch, users_sent_message)
        return None

    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        **warning_context(subjects, conf.store_view_names),
        "title": _("Forget in PureClarity"),
        "opts": opts,
        "action_name": forget_in_pureclarity.__name__,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(
        request, f"{TEMPLATE_DIR}/forget_users_confirmation.html", context
    )


def _requester(request: HttpRequest, deletes_requester: bool) -> Any:
    # A requester deleted in the same transaction cannot be pointed to: the
    # reference would break the foreign key the moment the deletion commits.
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


class ForgetIdentifiersForm(forms.Form):
    identifiers = forms.CharField(
        label=_("Identifiers"),
        # Kept as typed, so the line numbers in errors match what the person sees.
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 60, "spellcheck": "false"}),
        help_text=_(
            "One per line, exactly as your site sends it to PureClarity: a customer "
            "id, or the email address of a guest order."
        ),
    )
    store_views = forms.MultipleChoiceField(
        label=_("Store views"), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = conf.store_view_names
        store_views = cast(forms.MultipleChoiceField, self.fields["store_views"])
        store_views.choices = [(name, name) for name in names]
        store_views.initial = names

    def clean_identifiers(self) -> list[str]:
        found: list[str] = []
        errors: list[ValidationError] = []
        for number, line in enumerate(self.cleaned_data["identifiers"].splitlines(), 1):
            if not line.strip():
                continue
            try:
                identifier = clean(line)
            except InvalidIdentifier as err:
                errors.append(
                    ValidationError(
                        _("Line %(number)d: %(error)s"),
                        code="invalid",
                        params={"number": number, "error": str(err)},
                    )
                )
                continue
            if identifier not in found:
                found.append(identifier)

        if errors:
            raise ValidationError(errors)
        if not found:
            raise ValidationError(_("Enter at least one identifier."), code="required")
        return found


class ForgetAttemptInline(ForgetAttemptInlineBase):
    model = ForgetAttempt
    fields = (
        "started_at",
        "duration_ms",
        "status_code",
        "succeeded",
        "error",
        "excerpt",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The attempts are part of the request's record: whoever may see the
        # request sees them, without a permission of their own.
        parent = self.admin_site.get_model_admin(self.parent_model)
        return parent.has_view_permission(request, obj)


FLAGGED_STATUSES = (Status.FAILED, Status.NEEDS_ATTENTION)


@admin.register(ForgetRequest)
class ForgetRequestAdmin(ForgetRequestModelAdmin):
    list_display = (
        "identifier_hint",
        "store_view",
        "status_flag",
        "source",
        "requested_by",
        "created_at",
        "acknowledged_at",
        "attempts",
        "last_status_code",
    )
    list_filter = ("status", "store_view", "source", "created_at")
    list_select_related = ("requested_by",)
    date_hierarchy = "created_at"
    # The plain identifier is never shown; its masked hint stands for it.
    fields = (
        "identifier_hint",
        "identifier_hash",
        "store_view",
        "status",
        "source",
        "requested_by",
        "created_at",
        "sent_at",
        "acknowledged_at",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    )
    readonly_fields = fields
    inlines = (ForgetAttemptInline,)
    actions = ("retry",)

    @admin.display(description=_("status"), ordering="status")
    def status_flag(self, obj: ForgetRequest) -> str | SafeString:
        label = obj.get_status_display()
        if obj.status in FLAGGED_STATUSES:
            return format_html(
                '<strong class="pureclarity-gdpr-flagged" '
                'style="color: var(--error-fg)">⚠ {}</strong>',
                label,
            )
        if obj.status == Status.PENDING and obj.next_attempt_at and obj.last_error:
            return format_html("{} <small>({})</small>", label, _("retry scheduled"))
        return label

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_forget_in_pureclarity_permission(self, request: HttpRequest) -> bool:
        return has_forget_permission(request)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "has_forget_permission": has_forget_permission(request),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(permissions=[PERMISSION_CODENAME], description=_("Retry"))
    def retry(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        """Put the selected failed requests back in the queue and send them now."""
        selected = list(queryset.values_list("pk", flat=True))
        ids = retry_requests(selected)
        for forget_request in ForgetRequest.objects.filter(pk__in=ids):
            self.log_change(request, forget_request, gettext("Retried from the admin."))

        batch = Batch(per_subject=[[pk] for pk in ids])
        batch.deliver()
        report(self, request, batch, requests_sent_message)
        skipped = len(selected) - len(ids)
        if skipped:
            text = ngettext(
                "%(count)d selected request had not failed and was skipped.",
                "%(count)d selected requests had not failed and were skipped.",
                skipped,
            )
            self.message_user(request, text % {"count": skipped}, messages.WARNING)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        forget = path(
            "forget/",
            self.admin_site.admin_view(self.forget_view),
            name="{}_{}_forget".format(*info),
        )
        return [forget, *super().get_urls()]

    def forget_view(self, request: HttpRequest) -> HttpResponse:
        """Forget identifiers that belong to no account: form, confirm, send."""
        if not has_forget_permission(request):
            raise PermissionDenied
        if no_store_view(self, request):
            return self._back_to_changelist()

        if request.method != "POST":
            form = ForgetIdentifiersForm()
            return self._render(request, "forget_identifiers.html", form)
        form = ForgetIdentifiersForm(request.POST)
        if not form.is_valid():
            return self._render(request, "forget_identifiers.html", form)
        if not request.POST.get("post"):
            return self._render(request, "forget_identifiers_confirmation.html", form)

        try:
            batch = self._forget_identifiers(request, form)
        except UnknownStoreView as err:
            form.add_error("store_views", str(err))
            return self._render(request, "forget_identifiers.html", form)
        report(self, request, batch, identifiers_sent_message)
        return self._back_to_changelist()

    def _forget_identifiers(
        self, request: HttpRequest, form: ForgetIdentifiersForm
    ) -> Batch:
        batch = Batch()
        with transaction.atomic():
            for identifier in form.cleaned_data["identifiers"]:
                recorded = record(
                    [identifier],
                    source=Source.ADMIN,
                    store_views=form.cleaned_data["store_views"],
                    requested_by=request.user,
                )
                batch.add(recorded)
                self._log_recorded(request, recorded)

        batch.deliver()
        return batch

    def _log_recorded(self, request: HttpRequest, recorded: Recorded) -> None:
        for created in recorded.created:
            self.log_addition(request, created, gettext("Recorded from the admin."))
        for reopened in recorded.already_open:
            self.log_change(request, reopened, gettext("Sent again from the admin."))

    def _render(
        self, request: HttpRequest, template: str, form: ForgetIdentifiersForm
    ) -> TemplateResponse:
        subjects = []
        if form.is_bound and form.is_valid():
            subjects = [
                Subject(mask(identifier), [identifier])
                for identifier in form.cleaned_data["identifiers"]
            ]
            store_views = form.cleaned_data["store_views"]
        else:
            store_views = conf.store_view_names
        context = {
            **self.admin_site.each_context(request),
            **warning_context(subjects, store_views),
            "title": _("Forget identifiers without an account"),
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, f"{TEMPLATE_DIR}/{template}", context)

    def _back_to_changelist(self) -> HttpResponseRedirect:
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(
            reverse(
                "admin:{}_{}_changelist".format(*info),
                current_app=self.admin_site.name,
            )
        )


extend_user_admin_when_urls_are_built(admin.site)
