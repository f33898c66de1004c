from __future__ import annotations

from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    """The example shop's own app; it holds the ``demo`` command."""

    name = "storefront"
    default_auto_field = "django.db.models.BigAutoField"
