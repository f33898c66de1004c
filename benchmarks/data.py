"""Rows the benchmarks start from: users to delete, requests waiting to be sent.

Nothing here imports pureclarity_gdpr's models at module level, so the baseline
process, which runs without the app, can use it too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.management.color import no_style
from django.db import connection, models

BATCH = 1000


def gdpr_settings(**extra: Any) -> dict[str, Any]:
    """The project's PURECLARITY_GDPR with what one benchmark sets on top."""
    return {**settings.PURECLARITY_GDPR, **extra}


def clear(*tables: type[models.Model] | str) -> None:
    """Empty tables fast (TRUNCATE where the database has it)."""
    names = [t if isinstance(t, str) else t._meta.db_table for t in tables]
    # Cascading reaches the app's tables too where they point at users; they are
    # the benchmark's own and get cleared before each benchmark anyway.
    statements = connection.ops.sql_flush(
        no_style(), names, reset_sequences=False, allow_cascade=True
    )
    connection.ops.execute_sql_flush(statements)


def user_tables() -> list[str]:
    """The user table and its many-to-many tables (groups, permissions)."""
    user = get_user_model()
    through = [field.remote_field.through for field in user._meta.local_many_to_many]
    return [user._meta.db_table, *(m._meta.db_table for m in through if m is not None)]


def create_users(count: int, prefix: str) -> None:
    """Users with a pk and an email, so each has two identifiers to forget."""
    user = get_user_model()
    for start in range(0, count, BATCH):
        user.objects.bulk_create(
            user(
                username=f"{prefix}-{n}",
                email=f"{prefix}-{n}@example.test",
                # Unusable: hashing passwords is not what is measured.
                password=UNUSABLE_PASSWORD_PREFIX,
            )
            for n in range(start, min(count, start + BATCH))
        )


def clear_requests() -> None:
    from pureclarity_gdpr.models import ForgetAttempt, ForgetRequest, StoreViewPause

    clear(ForgetAttempt, ForgetRequest, StoreViewPause)


def create_pending(count: int, store_view: str = "default") -> None:
    """``count`` pending requests, as recording them would have left them."""
    from pureclarity_gdpr.identifiers import identifier_hash, mask
    from pureclarity_gdpr.models import ForgetRequest, Source

    for start in range(0, count, BATCH):
        batch = []
        for n in range(start, min(count, start + BATCH)):
            identifier = f"pending-{n}@example.test"
            hashed = identifier_hash(identifier)
            batch.append(
                ForgetRequest(
                    identifier=identifier,
                    identifier_hash=hashed,
                    identifier_hint=mask(identifier),
                    store_view=store_view,
                    source=Source.API,
                    open_key=ForgetRequest.make_open_key(store_view, hashed),
                )
            )
        ForgetRequest.objects.bulk_create(batch)
