"""The admin: forget users or typed identifiers, and audit every forget request.

``user_admin`` extends the project's user admin with "Forget in PureClarity";
``request_admin`` lists the forget requests with their actions (retry, cancel,
export), the GDPR deadline filter and a header of counts and paused store views;
``identifiers_view`` forgets identifiers that belong to no account.
"""

from __future__ import annotations

from django.contrib import admin

from ..models import ForgetRequest
from .request_admin import ForgetAttemptInline, ForgetRequestAdmin
from .user_admin import (
    extend_registered_user_admin,
    extend_user_admin,
    extend_user_admin_when_urls_are_built,
    forget_in_pureclarity,
)

__all__ = [
    "ForgetAttemptInline",
    "ForgetRequestAdmin",
    "extend_registered_user_admin",
    "extend_user_admin",
    "extend_user_admin_when_urls_are_built",
    "forget_in_pureclarity",
]

admin.site.register(ForgetRequest, ForgetRequestAdmin)
extend_user_admin_when_urls_are_built(admin.site)
