"""The forget request admin: a read-only audit of every erasure, with its attempts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import OPEN_STATUSES, ForgetAttempt, ForgetRequest, Status
from .export import export_csv
from .filters import DEADLINE, DeadlineFilter
from .identifiers_view import forget_identifiers_view
from .pages import admin_markup
from .permissions import has_forget_permission
from .request_actions import cancel, retry
from .summary import resume_store_view, summary_context

if TYPE_CHECKING:
    ForgetRequestModelAdmin = admin.ModelAdmin[ForgetRequest]
    ForgetAttemptInlineBase = admin.TabularInline[ForgetAttempt, ForgetRequest]
else:
    ForgetRequestModelAdmin = admin.ModelAdmin
    ForgetAttemptInlineBase = admin.TabularInline

FLAGGED_STATUSES = (Status.FAILED, Status.NEEDS_ATTENTION)


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


def _time(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


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
    list_filter = (DeadlineFilter, "status", "store_view", "source", "created_at")
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
        "gdpr_deadline",
        "sent_at",
        "acknowledged_at",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
    )
    readonly_fields = fields
    inlines = (ForgetAttemptInline,)
    actions = (retry, cancel, export_csv)

    @admin.display(description=_("status"), ordering="status")
    def status_flag(self, obj: ForgetRequest) -> str | SafeString:
        label = obj.get_status_display()
        if obj.status in FLAGGED_STATUSES:
            return format_html(
                '<strong class="pureclarity-gdpr-flagged" '
                'style="color: var(--error-fg)">⚠ {}</strong>',
                label,
            )
        if obj.status == Status.PENDING and obj.next_attempt_at:
            if obj.last_error:
                note = gettext("retry scheduled")
            else:
                note = gettext("waits until %(time)s") % {
                    "time": _time(obj.next_attempt_at)
                }
            return format_html("{} <small>({})</small>", label, note)
        return label

    @admin.display(description=_("GDPR deadline"))
    def gdpr_deadline(self, obj: ForgetRequest) -> str:
        deadline = _time(obj.created_at + DEADLINE)
        if obj.status in OPEN_STATUSES and timezone.now() > obj.created_at + DEADLINE:
            return gettext("%(deadline)s (overdue)") % {"deadline": deadline}
        return deadline

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
            **summary_context(request),
            **admin_markup(),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        own = [
            path(
                "forget/",
                self.admin_site.admin_view(self.forget_view),
                name=f"{info}_forget",
            ),
            path(
                "resume/",
                self.admin_site.admin_view(self.resume_view),
                name=f"{info}_resume",
            ),
        ]
        return [*own, *super().get_urls()]

    def forget_view(self, request: HttpRequest) -> HttpResponse:
        return forget_identifiers_view(self, request)

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        return resume_store_view(self, request)
