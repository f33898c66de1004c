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
from django.db.models import Field
from django.db.models.constants import OnConflict

from .models import ForgetRequest

# Rows per statement: small enough for every database's limit on a packet.
CHUNK = 500

# The values that differ from one request to the next, in the order rows give them.
VARYING = ("identifier", "identifier_hash", "identifier_hint", "store_view", "open_key")

Row = tuple[str, str, str, str, str]


def insert_skipping_open(rows: Sequence[Row], shared: dict[str, Any]) -> None:
    """Insert requests with the VARYING values of each row and ``shared`` values.

    ``shared`` maps field names to the values every request gets; other fields
    take their defaults. A row whose open key is taken is skipped: an open request
    for the same identifier and store view already stands for it. Any other error
    is raised, never skipped.
    """
    using = router.db_for_write(ForgetRequest)
    connection = connections[using]
    sql, fields = _statement(using)

    values = []
    for f in fields:
        value = shared[f.name] if f.name in shared else f.get_default()
        values.append(
            None if f.name in VARYING else f.get_db_prep_save(value, connection)
        )
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
def _statement(using: str) -> tuple[str, list[Field[Any, Any]]]:
    """The INSERT for one request on this database, and the fields it sets."""
    ops = connections[using].ops
    fields = [f for f in ForgetRequest._meta.concrete_fields if not f.primary_key]
    open_key = [cast(str, ForgetRequest._meta.get_field("open_key").column)]
    # A taken open key "updates" the open key to itself: unlike ignoring conflicts
    # (INSERT IGNORE on MariaDB skips a row on almost any error), this skips only
    # the rows whose key is taken.
    on_conflict = ops.on_conflict_suffix_sql(
        fields, OnConflict.UPDATE, open_key, open_key
    )
    sql = " ".join(
        [
            ops.insert_statement(on_conflict=OnConflict.UPDATE),
            ops.quote_name(ForgetRequest._meta.db_table),
            f"({', '.join(ops.quote_name(cast(str, f.column)) for f in fields)})",
            f"VALUES ({', '.join(['%s'] * len(fields))})",
            on_conflict,
        ]
    )
    return sql, fields
