"""Inserting the forget requests of many deleted users in a few statements.

A queryset delete of 10,000 users records 20,000 requests or more inside the
deleting transaction. ``bulk_create`` would build a model instance per request and
prepare each of its seventeen values on its own; here the values all requests share
are prepared once, and only the five that differ per request (identifier, hash,
hint, store view, open key) vary from row to row.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from .models import ForgetRequest, Status

# Rows per statement: small enough for every database's limit on a packet.
CHUNK = 500

# The values that differ from one request to the next, in the order rows give them.
VARYING = ("identifier", "identifier_hash", "identifier_hint", "store_view", "open_key")

Row = tuple[str, str, str, str, str]


def insert_or_reopen(rows: Sequence[Row], shared: dict[str, Any]) -> None:
    """Insert requests with the VARYING values of each row and ``shared`` values.

    ``shared`` maps field names to the values every request gets; other fields
    take their defaults. Where a row's open key is taken, the open request for that
    identifier and store view stands for it, and is due again if it had failed for
    good. Any other error is raised, never skipped.
    """
    using = router.db_for_write(ForgetRequest)
    connection = connections[using]
    statement = _statement(using)
    if statement is None:
        _insert_with_orm(rows, shared)
        return
    sql, fields = statement

    values = []
    for f in fields:
        value = shared[f.name] if f.name in shared else f.get_default()
        if f.name in VARYING:
            value = None
        elif not (value is None or type(value) in (str, int)):
            # Text, numbers and NULL go to every database as they are.
            value = f.get_db_prep_save(value, connection)
        values.append(value)
    # Per column: the index of its value in a row, or None for a shared value.
    where = [VARYING.index(f.name) if f.name in VARYING else None for f in fields]

    with connection.cursor() as cursor:
        for start in range(0, len(rows), CHUNK):
            cursor.executemany(
                sql,
                [
                    [
                        v if i is None else row[i]
                        for i, v in zip(where, values, strict=True)
                    ]
                    for row in rows[start : start + CHUNK]
                ],
            )


@functools.cache
def _statement(using: str) -> tuple[str, list[Field[Any, Any]]] | None:
    """The INSERT for one request on this database and the fields it sets, or None
    for a database whose way with a taken key this module does not know."""
    connection = connections[using]
    on_conflict = _on_conflict(connection)
    if on_conflict is None:
        return None

    ops = connection.ops
    fields = [f for f in ForgetRequest._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(ops.quote_name(_column(f.name)) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = ops.quote_name(ForgetRequest._meta.db_table)
    # Names come from the model, quoted by the database's own rules; every value
    # is a parameter.
    insert = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
    return f"{insert} {on_conflict}", fields


def _on_conflict(connection: BaseDatabaseWrapper) -> str | None:
    """What a taken open key does: reopen a failed request, leave others as they are.

    Unlike ignoring conflicts (MariaDB's INSERT IGNORE skips a row on almost any
    error), this clause answers a taken key and nothing else.
    """
    quote = connection.ops.quote_name
    table = quote(ForgetRequest._meta.db_table)
    status, due, key = (
        quote(_column(name)) for name in ("status", "next_attempt_at", "open_key")
    )
    if connection.vendor == "mysql":
        # MySQL and MariaDB name the existing row's columns unqualified.
        start, row = "ON DUPLICATE KEY UPDATE", ""
    elif connection.vendor in ("postgresql", "sqlite"):
        start, row = f"ON CONFLICT ({key}) DO UPDATE SET", f"{table}."
    else:
        return None

    failed = f"{row}{status} = '{Status.FAILED.value}'"
    # The due time first: MySQL applies the assignments in order, so its test must
    # see the status as it was.
    return (
        f"{start} {due} = CASE WHEN {failed} THEN NULL ELSE {row}{due} END, "
        f"{status} = CASE WHEN {failed} THEN '{Status.PENDING.value}' "
        f"ELSE {row}{status} END"
    )


def _column(name: str) -> str:
    field = cast("Field[Any, Any]", ForgetRequest._meta.get_field(name))
    return cast(str, field.column)


def _insert_with_orm(rows: Sequence[Row], shared: dict[str, Any]) -> None:
    """The same, slower, on other databases: an INSERT ignoring taken keys, then an
    UPDATE that reopens the failed requests among them."""
    requests = [
        ForgetRequest(**shared, **dict(zip(VARYING, row, strict=True))) for row in rows
    ]
    ForgetRequest.objects.bulk_create(requests, CHUNK, ignore_conflicts=True)

    keys = [row[VARYING.index("open_key")] for row in rows]
    for start in range(0, len(keys), CHUNK):
        ForgetRequest.objects.filter(
            open_key__in=keys[start : start + CHUNK], status=Status.FAILED
        ).update(status=Status.PENDING, next_attempt_at=None)
