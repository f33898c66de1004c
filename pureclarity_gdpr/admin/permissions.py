"""The one permission behind every admin page and action that sends or stops."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..models import ForgetRequest

PERMISSION_CODENAME = "forget_in_pureclarity"
PERMISSION = f"{ForgetRequest._meta.app_label}.{PERMISSION_CODENAME}"


def has_forget_permission(request: HttpRequest) -> bool:
    """Whether the person may send erasures, cancel them and resume store views."""
    return bool(request.user.has_perm(PERMISSION))


def staff_id(request: HttpRequest) -> Any:
    """The key of the staff user making the request (admin views require one)."""
    return request.user.pk
