"""A proxy of auth.User, as shops use for a separate staff admin.

Installed only when auth.User is the user model.
"""

from __future__ import annotations

from django.contrib.auth.models import User


class StaffProxy(User):
    class Meta:
        proxy = True
