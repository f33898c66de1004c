"""A proxy and a subclass of auth.User, as shops use for staff and members.

Installed only when auth.User is the user model.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import models


class StaffProxy(User):
    class Meta:
        proxy = True


class Member(User):
    """A subclass with a table of its own: deleting one deletes two rows."""

    loyalty_number = models.CharField(max_length=20, blank=True)
