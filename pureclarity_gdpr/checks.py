"""System checks: every setting problem with an id and a hint that says what to do."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.apps import AppConfig
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import FieldDoesNotExist

from .conf import SETTING_NAME, conf, setting_problems
from .exceptions import ConfigurationError
from .identifiers import identifier_source

TAG = "pureclarity_gdpr"


@checks.register(TAG)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for problem in setting_problems():
        level = checks.Error if problem.level == "error" else checks.Warning
        messages.append(level(problem.msg, hint=problem.hint, id=problem.id))
    return messages


def _identifier_error(msg: str) -> checks.Error:
    return checks.Error(
        msg,
        hint=f"Set {SETTING_NAME}['IDENTIFIERS'] to a list of user field names, "
        "such as ['pk', 'email'], or to the dotted path of a function that takes a "
        "user and returns its identifiers.",
        id="pureclarity_gdpr.E005",
    )


@checks.register(TAG)
def check_identifiers(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    setting = conf.identifiers
    if setting is not None and not isinstance(setting, str | list | tuple):
        return [_identifier_error(f"{SETTING_NAME}['IDENTIFIERS'] is {setting!r}.")]
    if isinstance(setting, list | tuple) and (
        not setting or not all(isinstance(name, str) and name for name in setting)
    ):
        return [
            _identifier_error(
                f"{SETTING_NAME}['IDENTIFIERS'] must list at least one field name."
            )
        ]

    try:
        source = identifier_source()
    except ConfigurationError as err:
        return [_identifier_error(str(err).replace(" (pureclarity_gdpr.E005)", ""))]
    if callable(source):
        return []

    user_model = get_user_model()
    missing = [name for name in source if not _is_user_attribute(user_model, name)]
    if missing:
        return [
            _identifier_error(
                f"{SETTING_NAME}['IDENTIFIERS'] names {', '.join(missing)}, which "
                f"{user_model._meta.label} does not have."
            )
        ]
    return []


def _is_user_attribute(model: Any, name: str) -> bool:
    if name == "pk":
        return True
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return hasattr(model, name)
    return True


@checks.register(TAG)
def check_tasks(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    from .tasks import TASKS_AVAILABLE

    try:
        mode = conf.delivery
    except ConfigurationError:
        return []
    if mode != "tasks" or TASKS_AVAILABLE:
        return []
    return [
        checks.Error(
            f"{SETTING_NAME}['DELIVERY'] is 'tasks', but Django's Tasks framework "
            "is not available.",
            hint="Use Django 6, or install django-tasks on Django 5.2, and set a "
            "TASKS backend; or set DELIVERY to 'immediate' or 'worker'.",
            id="pureclarity_gdpr.E012",
        )
    ]


# Tagged "database" as Django's checks that query are: it runs with
# "manage.py check --database default" (say, from monitoring), not on every command.
@checks.register(TAG, checks.Tags.database)
def check_failing_requests(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    if not databases:
        return []
    from django.db import DatabaseError
    from django.db.models import Q
    from django.utils import timezone

    from .models import OPEN_STATUSES, ForgetRequest, Status

    # Open for more than a day beyond any cool-off: failing, held back, or never
    # sent because no delivery process runs.
    day_ago = timezone.now() - timedelta(days=1) - conf.delay
    failing = ForgetRequest.objects.filter(created_at__lt=day_ago).filter(
        Q(status__in=OPEN_STATUSES) | Q(status=Status.NEEDS_ATTENTION)
    )
    try:
        count = sum(failing.using(alias).count() for alias in databases)
    except DatabaseError:
        # Not migrated yet, or no database at hand: nothing to say about requests.
        return []
    if not count:
        return []
    return [
        checks.Warning(
            f"{count} forget request(s) have not reached PureClarity for more than a "
            "day.",
            hint="Open the forget requests in the admin (filter on status), or run "
            "'manage.py pureclarity_forget --list', and see the runbook for what "
            "each failure means.",
            id="pureclarity_gdpr.W003",
        )
    ]
