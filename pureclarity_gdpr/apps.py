from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_delete
from django.utils.translation import gettext_lazy as _


class PureClarityGDPRConfig(AppConfig):
    name = "pureclarity_gdpr"
    verbose_name = _("PureClarity GDPR")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import DISPATCH_UID, forget_deleted_user

        # Connected for every sender so proxies and subclasses of the user model
        # are covered; the receiver returns at once for other models.
        post_delete.connect(forget_deleted_user, dispatch_uid=DISPATCH_UID)
