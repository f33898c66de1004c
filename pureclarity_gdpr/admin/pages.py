"""Rendering this app's admin pages, and the way back to the request list."""

from __future__ import annotations

from typing import Any

import django
from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

TEMPLATE_DIR = "admin/pureclarity_gdpr"
# Confirmation pages list this many people or requests, then say how many more:
# the page stays light when thousands are selected.
SHOWN = 100


def admin_markup() -> dict[str, bool]:
    """Which admin markup this app's templates follow: the installed Django's.

    From Django 6.1 the admin writes its breadcrumbs as an ordered list, and sets
    a page's object tools in a row beside its title instead of in its content.
    """
    return {"admin_since_6_1": django.VERSION >= (6, 1)}


def render(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
) -> TemplateResponse:
    """A page of this app inside the admin, with the site's own header and menu."""
    page_context = {
        **model_admin.admin_site.each_context(request),
        **admin_markup(),
        "opts": model_admin.opts,
        "media": model_admin.media,
        **context,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, f"{TEMPLATE_DIR}/{template}", page_context)


def changelist_url(model_admin: admin.ModelAdmin[Any]) -> str:
    opts = model_admin.opts
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_changelist",
        current_app=model_admin.admin_site.name,
    )


def back_to_changelist(model_admin: admin.ModelAdmin[Any]) -> HttpResponseRedirect:
    return HttpResponseRedirect(changelist_url(model_admin))
