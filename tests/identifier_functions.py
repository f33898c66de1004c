"""Identifier functions named by dotted path in tests."""

from __future__ import annotations

from typing import Any


def username_only(user: Any) -> list[str]:
    return [user.username]
