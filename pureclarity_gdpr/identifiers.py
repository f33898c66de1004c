"""Identifiers: which ones a user has, whether one can be sent, its hash and hint."""

from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.module_loading import import_string

from .conf import SETTING_NAME, conf
from .exceptions import ConfigurationError, InvalidIdentifier

logger = logging.getLogger(__name__)

MAX_LENGTH = 255
# Control, invisible format, surrogate and line/paragraph separator characters: no
# site sends them in an identifier, so they are a copy-and-paste accident.
UNSENDABLE = ("Cc", "Cf", "Cs", "Zl", "Zp")
# Values a user field may hold that are identifiers once written as text.
IDENTIFIER_TYPES = (str, int, uuid.UUID)


def clean(identifier: object) -> str:
    """Return the identifier as it will be sent, or raise InvalidIdentifier."""
    if not isinstance(identifier, str):
        raise InvalidIdentifier(
            f"An identifier must be text, not {type(identifier).__name__}."
        )

    value = identifier.strip()
    if not value:
        raise InvalidIdentifier("The identifier is empty.")
    if len(value) > MAX_LENGTH:
        raise InvalidIdentifier(
            f"The identifier is {len(value)} characters long; the most is {MAX_LENGTH}."
        )
    # Printable ASCII, as nearly every identifier is, holds none of them.
    plain = value.isascii() and value.isprintable()
    if not plain and any(unicodedata.category(c) in UNSENDABLE for c in value):
        raise InvalidIdentifier(
            f"The identifier {mask(value)!r} holds control or invisible characters "
            "(such as a byte order mark or a zero-width space); remove them."
        )
    return value


def identifier_hash(identifier: str, key: bytes | None = None) -> str:
    """The keyed hash (HMAC-SHA256, hex) under which an identifier is remembered."""
    key = conf.hash_keys[0] if key is None else key
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


def identifier_hashes(identifier: str) -> list[str]:
    """The identifier's hash under the current key and every fallback key."""
    return [identifier_hash(identifier, key) for key in conf.hash_keys]


def _mask_part(part: str) -> str:
    return part[:1] + "***" if part else ""


def _suffix(suffix: str) -> str:
    # A top-level domain is short; anything longer is not worth showing whole.
    return suffix if len(suffix) <= 10 else suffix[:1] + "***"


def mask(identifier: str) -> str:
    """A hint for staff that does not give the identifier away.

    ``ana@example.test`` becomes ``a***@e***.test``; ``42`` becomes ``4*``.
    """
    local, at, domain = identifier.rpartition("@")
    if at and local:
        name, dot, suffix = domain.rpartition(".")
        masked_domain = (
            f"{_mask_part(name)}.{_suffix(suffix)}" if dot else _mask_part(domain)
        )
        return f"{_mask_part(local)}@{masked_domain}"
    if len(identifier) < 2:
        # One character shown of one would be the whole identifier.
        return "*"
    return identifier[:1] + "*" * min(len(identifier) - 1, 3)


def _default_fields(model: type[models.Model]) -> list[str]:
    fields = ["pk"]
    email_field = getattr(model, "EMAIL_FIELD", "email")
    try:
        model._meta.get_field(email_field)
    except FieldDoesNotExist:
        return fields
    return [*fields, email_field]


def identifier_source() -> list[str] | Callable[[Any], Iterable[object]]:
    """The field names, or the callable, that give a user's identifiers."""
    setting = conf.identifiers
    if setting is None:
        return _default_fields(get_user_model())
    if isinstance(setting, str):
        try:
            func: Callable[[Any], Iterable[object]] = import_string(setting)
        except ImportError as err:
            raise ConfigurationError(
                f"{SETTING_NAME}['IDENTIFIERS'] is {setting!r}, which cannot be "
                f"imported: {err}. Give a dotted path to a function that takes a user "
                "and returns its identifiers, or a list of field names. "
                "(pureclarity_gdpr.E005)"
            ) from err
        return func
    return list(setting)


def identifiers_of(
    user: models.Model,
    source: list[str] | Callable[[Any], Iterable[object]] | None = None,
) -> tuple[list[str], list[str]]:
    """The identifiers PureClarity may know a user by, each once, in setting order.

    Returns them with the reasons any value was rejected (too long, control
    characters, not text or a number), so that nothing is dropped without a trace.
    Empty values are not identifiers and are skipped. ``source`` is what
    identifier_source() returns, for a caller reading many users.
    """
    if source is None:
        source = identifier_source()
    if not callable(source):
        return _collect(getattr(user, name, None) for name in source)

    try:
        values = source(user)
    except Exception as err:
        # A broken function must not stop the shop from deleting accounts.
        logger.exception("The IDENTIFIERS function failed for user %s", user.pk)
        return [], [f"the IDENTIFIERS function raised {type(err).__name__}"]
    if isinstance(values, str | bytes):
        return [], [
            "the IDENTIFIERS function returned a single string; it must return a "
            "list of identifiers"
        ]
    if values is not None and (
        isinstance(values, Mapping) or not isinstance(values, Iterable)
    ):
        # A dict's keys are field names, not identifiers; a number is not a list.
        return [], [
            f"the IDENTIFIERS function returned a value of type "
            f"{type(values).__name__}; it must return a list of identifiers"
        ]
    return _collect(values or ())


def _collect(values: Iterable[object]) -> tuple[list[str], list[str]]:
    found: list[str] = []
    rejected: list[str] = []
    for value in values:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, bool) or not isinstance(value, IDENTIFIER_TYPES):
            rejected.append(
                f"a value of type {type(value).__name__} is not an identifier"
            )
            continue
        try:
            identifier = clean(str(value))
        except InvalidIdentifier as err:
            rejected.append(str(err))
            continue
        if identifier not in found:
            found.append(identifier)
    return found, rejected
