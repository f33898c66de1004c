"""Identifier functions named by dotted path in tests."""

from __future__ import annotations

from typing import Any


def username_only(user: Any) -> list[str]:
    return [user.username]


def email_as_a_string(user: Any) -> str:
    return str(user.email)


def broken(user: Any) -> list[str]:
    raise RuntimeError("the shop's identifier function broke")


def odd_values(user: Any) -> list[object]:
    return [user.pk, b"bytes", 1.5, True, user]
