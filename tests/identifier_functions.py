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


def a_number(user: Any) -> int:
    return int(user.pk)


def a_mapping(user: Any) -> dict[str, str]:
    return {"email": user.email}


def from_a_profile(user: Any) -> list[str]:
    """Reads a related row, which a cascade deletes before the user row goes."""
    return [user.loyalty_card.number]
