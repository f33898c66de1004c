"""A proxy and a subclass of auth.User, as shops use for staff and members, and a
row that belongs to a user.

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


class LoyaltyCard(models.Model):
    """A row deleted with its user, before the user's own row."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="loyalty_card"
    )
    number = models.CharField(max_length=20)

    def __str__(self) -> str:
        return self.number
