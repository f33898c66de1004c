from __future__ import annotations

from django.apps import AppConfig, apps
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, pre_delete
from django.utils.translation import gettext_lazy as _


class PureClarityGDPRConfig(AppConfig):
    name = "pureclarity_gdpr"
    verbose_name = _("PureClarity GDPR")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import (
            DISPATCH_UID,
            GATHER_UID,
            forget_deleted_user,
            gather_deleted_user,
        )

        # Connected to the user model and its proxies only: a deletion receiver
        # on a model stops Django from deleting it in bulk without loading it,
        # which no other model should pay for. A subclass with a table of its own
        # needs none: deleting one deletes its user row, which sends the signals,
        # unless keep_parents keeps the account.
        user_model = get_user_model()
        for model in apps.get_models(include_auto_created=False):
            if model._meta.concrete_model is user_model._meta.concrete_model:
                label = model._meta.label_lower
                pre_delete.connect(
                    gather_deleted_user,
                    sender=model,
                    dispatch_uid=f"{GATHER_UID}:{label}",
                )
                post_delete.connect(
                    forget_deleted_user,
                    sender=model,
                    dispatch_uid=f"{DISPATCH_UID}:{label}",
                )
