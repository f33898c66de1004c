"""Settings of pureclarity_gdpr, read lazily from the ``PURECLARITY_GDPR`` dict.

Every property reads ``django.conf.settings`` on access, so ``override_settings``
works in tests. The same validation feeds the system checks (with ids and hints)
and the errors raised when a bad value is used at run time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from .exceptions import ConfigurationError, UnknownStoreView
from .regions import FORGET_PATH, REGION_CODES, region_code, region_host

SETTING_NAME = "PURECLARITY_GDPR"
DEFAULT_STORE_VIEW = "default"
STORE_VIEW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

DeliveryMode = Literal["immediate", "worker", "tasks"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("immediate", "worker", "tasks")

STORE_VIEW_KEYS = {"ACCESS_KEY", "SECRET_KEY", "REGION", "BASE_URL"}
DEFAULTS: dict[str, Any] = {
    "STORE_VIEWS": None,
    "FORGET_ON_DELETE": True,
    "IDENTIFIERS": None,
    "DELIVERY": "immediate",
    "CONNECT_TIMEOUT": 5.0,
    "READ_TIMEOUT": 20.0,
    "MAX_IN_FLIGHT": 8,
    "IMMEDIATE_BUDGET": 5.0,
    "DELAY": 0,
    "MAX_ATTEMPTS": 10,
    "RETRY_DELAY": 60,
    "RETRY_MAX_DELAY": 6 * 3600,
    "MAX_AGE": 7 * 24 * 3600,
    "LEASE": 300,
    "PAUSE": 3600,
    "RATE_LIMIT": None,
    "KEEP_IDENTIFIERS": False,
    "RETENTION_DAYS": None,
    "HASH_KEY": None,
    "HASH_KEY_FALLBACKS": None,
}
KNOWN_KEYS = STORE_VIEW_KEYS | set(DEFAULTS)
SECONDS_KEYS = (
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "IMMEDIATE_BUDGET",
    "RETRY_DELAY",
    "RETRY_MAX_DELAY",
    "MAX_AGE",
    "LEASE",
    "PAUSE",
)
# Seconds that may be 0, which switches the feature off.
OPTIONAL_SECONDS_KEYS = {
    "DELAY": "how long a new request waits before it is first sent, such as 3600",
}
COUNT_KEYS = {
    "MAX_IN_FLIGHT": "how many requests may be in flight at once",
    "MAX_ATTEMPTS": "how many times a request is tried before it fails for good",
}


@dataclass(frozen=True)
class StoreView:
    """One PureClarity store view: its keys and the host that serves it."""

    name: str
    access_key: str
    secret_key: str = field(repr=False)
    base_url: str

    @property
    def forget_url(self) -> str:
        return self.base_url.rstrip("/") + FORGET_PATH

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


@dataclass(frozen=True)
class Problem:
    """A setting that cannot be used: the check id, what is wrong and what to do."""

    id: str
    msg: str
    hint: str
    level: Literal["error", "warning"] = "error"


def _raw() -> dict[str, Any]:
    value = getattr(django_settings, SETTING_NAME, None)
    return dict(value) if isinstance(value, Mapping) else {}


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _base_url_problems(where: str, base_url: object) -> Iterator[Problem]:
    hint = (
        f"Set {where}['BASE_URL'] to an https:// URL such as "
        "'https://api-eu-w-1.pureclarity.net', or to http:// on a loopback "
        "host for local testing; or remove it to use the region's host."
    )
    if not isinstance(base_url, str) or not base_url.strip():
        yield Problem("pureclarity_gdpr.E004", f"{where}['BASE_URL'] is empty.", hint)
        return

    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018  (reading it validates it)
    except ValueError:
        yield Problem(
            "pureclarity_gdpr.E004", f"{where}['BASE_URL'] is not a URL.", hint
        )
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        yield Problem(
            "pureclarity_gdpr.E004",
            f"{where}['BASE_URL'] is not an http(s) URL with a host.",
            hint,
        )
    elif parts.scheme == "http" and not is_loopback_host(parts.hostname):
        yield Problem(
            "pureclarity_gdpr.E004",
            f"{where}['BASE_URL'] uses plain http to {parts.hostname!r}, which would "
            "send the secret key unencrypted.",
            hint,
        )
    elif any(c in base_url for c in "?#") or parts.username or parts.password:
        yield Problem(
            "pureclarity_gdpr.E004",
            f"{where}['BASE_URL'] must not carry a query, fragment or credentials.",
            hint,
        )
    elif parts.path.rstrip("/").endswith(FORGET_PATH):
        yield Problem(
            "pureclarity_gdpr.E004",
            f"{where}['BASE_URL'] ends with {FORGET_PATH}, which the app adds itself.",
            hint,
        )


def _store_view_problems(where: str, values: Mapping[str, Any]) -> Iterator[Problem]:
    for key in ("ACCESS_KEY", "SECRET_KEY"):
        value = values.get(key)
        if not isinstance(value, str) or not value.strip():
            yield Problem(
                "pureclarity_gdpr.E002",
                f"{where}['{key}'] is missing or empty.",
                f"Set {where}['{key}'] to the store view's "
                f"{key.lower().replace('_', ' ')} from the PureClarity admin console "
                "(read it from the environment, not from source code).",
            )

    unknown = sorted(set(values) - STORE_VIEW_KEYS)
    if unknown:
        yield Problem(
            "pureclarity_gdpr.E009",
            f"{where} has unknown keys: {', '.join(unknown)}.",
            f"A store view takes only {', '.join(sorted(STORE_VIEW_KEYS))}.",
        )

    if values.get("BASE_URL") is not None:
        yield from _base_url_problems(where, values["BASE_URL"])
        return

    region = values.get("REGION")
    if not isinstance(region, str) or region_code(region) is None:
        yield Problem(
            "pureclarity_gdpr.E003",
            f"{where}['REGION'] is {region!r}, which is not a PureClarity region.",
            "Set REGION to 'eu', 'us' or one of the region codes: "
            f"{', '.join(REGION_CODES)}. The region is shown in the PureClarity "
            "admin console and cannot change once the store view exists.",
        )


def _store_view_specs() -> tuple[dict[str, Mapping[str, Any]], list[Problem]]:
    raw = _raw()
    shorthand = {k: raw[k] for k in STORE_VIEW_KEYS if k in raw}
    store_views = raw.get("STORE_VIEWS")
    problems: list[Problem] = []

    if store_views is not None and shorthand:
        problems.append(
            Problem(
                "pureclarity_gdpr.E006",
                f"{SETTING_NAME} sets both STORE_VIEWS and "
                f"{', '.join(sorted(shorthand))}.",
                "Use ACCESS_KEY, SECRET_KEY and REGION for a single store view, or "
                "STORE_VIEWS for several, not both.",
            )
        )
        return {}, problems

    if store_views is None:
        if not shorthand:
            problems.append(
                Problem(
                    "pureclarity_gdpr.E001",
                    f"No PureClarity store view is configured in {SETTING_NAME}.",
                    f"Set {SETTING_NAME} = {{'ACCESS_KEY': ..., 'SECRET_KEY': ..., "
                    "'REGION': 'eu'}, or a STORE_VIEWS mapping of store view names "
                    "to such dicts.",
                )
            )
            return {}, problems
        return {DEFAULT_STORE_VIEW: shorthand}, problems

    if not isinstance(store_views, Mapping) or not store_views:
        problems.append(
            Problem(
                "pureclarity_gdpr.E001",
                f"{SETTING_NAME}['STORE_VIEWS'] must be a non-empty mapping.",
                "Map each store view name to a dict with ACCESS_KEY, SECRET_KEY and "
                "REGION, for example {'uk': {...}, 'us': {...}}.",
            )
        )
        return {}, problems

    specs: dict[str, Mapping[str, Any]] = {}
    for name, values in store_views.items():
        if not isinstance(name, str) or not STORE_VIEW_NAME.match(name):
            problems.append(
                Problem(
                    "pureclarity_gdpr.E007",
                    f"Store view name {name!r} is not usable.",
                    "Name store views with 1-64 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit.",
                )
            )
        elif not isinstance(values, Mapping):
            problems.append(
                Problem(
                    "pureclarity_gdpr.E002",
                    f"{SETTING_NAME}['STORE_VIEWS'][{name!r}] is not a dict.",
                    "Give each store view a dict with ACCESS_KEY, SECRET_KEY and "
                    "REGION.",
                )
            )
        else:
            specs[name] = values
    return specs, problems


def _where(name: str) -> str:
    if name == DEFAULT_STORE_VIEW and "STORE_VIEWS" not in _raw():
        return SETTING_NAME
    return f"{SETTING_NAME}['STORE_VIEWS'][{name!r}]"


# No setting of seconds may be longer than this: a year is already no use for
# an erasure GDPR wants answered within a month, and larger values overflow dates.
MAX_SECONDS = 366 * 24 * 3600


def _is_seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value <= MAX_SECONDS


def _number_problems() -> Iterator[Problem]:
    raw = _raw()
    for key in SECONDS_KEYS:
        value = raw.get(key, DEFAULTS[key])
        if not _is_seconds(value) or value <= 0:
            yield Problem(
                "pureclarity_gdpr.E008",
                f"{SETTING_NAME}['{key}'] is {value!r}; it must be a positive number "
                "of seconds.",
                f"Set {key} to a number of seconds such as {DEFAULTS[key]}, or "
                "remove it.",
            )
    for key, meaning in OPTIONAL_SECONDS_KEYS.items():
        value = raw.get(key, DEFAULTS[key])
        if not _is_seconds(value) or value < 0:
            yield Problem(
                "pureclarity_gdpr.E008",
                f"{SETTING_NAME}['{key}'] is {value!r}; it must be a number of "
                "seconds, 0 or more.",
                f"Set {key} to {meaning}, or to 0 to switch it off.",
            )
    for key, meaning in COUNT_KEYS.items():
        value = raw.get(key, DEFAULTS[key])
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= 1000
        ):
            yield Problem(
                "pureclarity_gdpr.E008",
                f"{SETTING_NAME}['{key}'] is {value!r}; it must be a whole number "
                "from 1 to 1000.",
                f"Set {key} to {meaning}, such as {DEFAULTS[key]}, or remove it.",
            )
    for key in ("FORGET_ON_DELETE", "KEEP_IDENTIFIERS"):
        if not isinstance(raw.get(key, DEFAULTS[key]), bool):
            yield Problem(
                "pureclarity_gdpr.E008",
                f"{SETTING_NAME}['{key}'] is {raw[key]!r}; it must be True or False.",
                f"Set {key} to True or False (a string such as 'false' would count "
                "as true).",
            )
    mode = raw.get("DELIVERY", DEFAULTS["DELIVERY"])
    if mode not in DELIVERY_MODES:
        yield Problem(
            "pureclarity_gdpr.E008",
            f"{SETTING_NAME}['DELIVERY'] is {mode!r}.",
            f"Set DELIVERY to one of: {', '.join(DELIVERY_MODES)}.",
        )


def _privacy_problems() -> Iterator[Problem]:
    raw = _raw()
    rate = raw.get("RATE_LIMIT")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
    ):
        yield Problem(
            "pureclarity_gdpr.E008",
            f"{SETTING_NAME}['RATE_LIMIT'] is {rate!r}.",
            "Set RATE_LIMIT to the most requests per second to send to each store "
            "view, such as 50, or None for no limit.",
        )
    days = raw.get("RETENTION_DAYS")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or days < 1
    ):
        yield Problem(
            "pureclarity_gdpr.E010",
            f"{SETTING_NAME}['RETENTION_DAYS'] is {days!r}.",
            "Set RETENTION_DAYS to a whole number of days such as 365, or None to "
            "keep finished requests in full.",
        )
    fallbacks = raw.get("HASH_KEY_FALLBACKS")
    if fallbacks is not None and (
        isinstance(fallbacks, str | bytes)
        or not isinstance(fallbacks, list | tuple)
        or not all(isinstance(k, str | bytes) for k in fallbacks)
    ):
        yield Problem(
            "pureclarity_gdpr.E011",
            f"{SETTING_NAME}['HASH_KEY_FALLBACKS'] must be a list of keys.",
            "Set HASH_KEY_FALLBACKS to a list of the hash keys used before, newest "
            "first, or remove it.",
        )
    for key in ("HASH_KEY",):
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, str | bytes) or len(value) < 32
        ):
            yield Problem(
                "pureclarity_gdpr.E011",
                f"{SETTING_NAME}['{key}'] must be a string of at least 32 characters.",
                "Set HASH_KEY to a long random string kept as secret as SECRET_KEY, "
                "or remove it to derive one from SECRET_KEY.",
            )
    if raw.get("KEEP_IDENTIFIERS"):
        yield Problem(
            "pureclarity_gdpr.W002",
            "KEEP_IDENTIFIERS is on: identifiers stay in the database in plain text "
            "after PureClarity has forgotten them.",
            "Turn it off unless you must keep them, and say why in your records of "
            "processing.",
            level="warning",
        )


def setting_problems() -> list[Problem]:
    """Everything wrong with the store views and plain settings, for the checks."""
    specs, problems = _store_view_specs()
    for name, values in specs.items():
        problems.extend(_store_view_problems(_where(name), values))
    problems.extend(_number_problems())

    problems.extend(_privacy_problems())

    unknown = sorted(set(_raw()) - KNOWN_KEYS)
    if unknown:
        problems.append(
            Problem(
                "pureclarity_gdpr.W001",
                f"{SETTING_NAME} has keys this version does not know: "
                f"{', '.join(unknown)}.",
                "Check their spelling against the configuration reference; unknown "
                "keys are ignored.",
                level="warning",
            )
        )
    return problems


def _fail(problems: list[Problem]) -> ConfigurationError:
    errors = [p for p in problems if p.level == "error"]
    text = " ".join(f"{p.msg} {p.hint} ({p.id})" for p in errors)
    return ConfigurationError(text)


class Settings:
    """Typed, lazy access to ``settings.PURECLARITY_GDPR``."""

    def _get(self, key: str) -> Any:
        return _raw().get(key, DEFAULTS[key])

    @property
    def store_views(self) -> dict[str, StoreView]:
        """The configured store views by name; raises ConfigurationError if unusable."""
        specs, problems = _store_view_specs()
        for name, values in specs.items():
            problems.extend(_store_view_problems(_where(name), values))
        if any(p.level == "error" for p in problems):
            raise _fail(problems)

        views = {}
        for name, values in specs.items():
            base_url = values.get("BASE_URL")
            if base_url is None:
                base_url = region_host(region_code(values["REGION"]) or "")
            views[name] = StoreView(
                name=name,
                access_key=values["ACCESS_KEY"].strip(),
                secret_key=values["SECRET_KEY"].strip(),
                base_url=base_url.strip(),
            )
        return views

    def store_view(self, name: str) -> StoreView:
        views = self.store_views
        if name not in views:
            raise UnknownStoreView(
                f"Store view {name!r} is not configured; the configured store views "
                f"are: {', '.join(sorted(views))}."
            )
        return views[name]

    @property
    def store_view_names(self) -> list[str]:
        """Names of the configured store views, without validating their keys."""
        specs, _ = _store_view_specs()
        return sorted(specs)

    @property
    def forget_on_delete(self) -> bool:
        return bool(self._get("FORGET_ON_DELETE"))

    @property
    def identifiers(self) -> list[str] | str | None:
        value: list[str] | str | None = self._get("IDENTIFIERS")
        return value

    @property
    def delivery(self) -> DeliveryMode:
        mode: DeliveryMode = self._get("DELIVERY")
        if mode not in DELIVERY_MODES:
            raise _fail(list(_number_problems()))
        return mode

    @property
    def timeout(self) -> tuple[float, float]:
        """Connect and read timeouts, in seconds."""
        return float(self._get("CONNECT_TIMEOUT")), float(self._get("READ_TIMEOUT"))

    @property
    def max_in_flight(self) -> int:
        return int(self._get("MAX_IN_FLIGHT"))

    @property
    def immediate_budget(self) -> float:
        return float(self._get("IMMEDIATE_BUDGET"))

    @property
    def delay(self) -> timedelta:
        """The cool-off in which a new request waits, and staff may cancel it."""
        return timedelta(seconds=self._get("DELAY"))

    @property
    def max_attempts(self) -> int:
        return int(self._get("MAX_ATTEMPTS"))

    @property
    def retry_delay(self) -> timedelta:
        """The wait after the first transient failure; it doubles with each one."""
        return timedelta(seconds=self._get("RETRY_DELAY"))

    @property
    def retry_max_delay(self) -> timedelta:
        return timedelta(seconds=self._get("RETRY_MAX_DELAY"))

    @property
    def max_age(self) -> timedelta:
        """How long after its creation a request is still retried automatically."""
        return timedelta(seconds=self._get("MAX_AGE"))

    @property
    def lease(self) -> timedelta:
        """How long a claimed request belongs to the worker that claimed it."""
        connect, read = self.timeout
        return max(
            timedelta(seconds=self._get("LEASE")),
            timedelta(seconds=2 * (connect + read)),
        )

    @property
    def pause(self) -> timedelta:
        """How long a store view waits after PureClarity refuses its keys."""
        return timedelta(seconds=self._get("PAUSE"))

    @property
    def rate_limit(self) -> float | None:
        """The most calls per second to each store view, or None for no limit."""
        rate = self._get("RATE_LIMIT")
        return None if rate is None else float(rate)

    @property
    def keep_identifiers(self) -> bool:
        return bool(self._get("KEEP_IDENTIFIERS"))

    @property
    def retention(self) -> timedelta | None:
        """How long finished requests keep more than the proof of erasure."""
        days = self._get("RETENTION_DAYS")
        return None if days is None else timedelta(days=days)

    @property
    def hash_keys(self) -> list[bytes]:
        """The identifier hash key first, then the fallbacks still accepted."""
        key = self._get("HASH_KEY")
        fallbacks = self._get("HASH_KEY_FALLBACKS")
        if key is None:
            key = _derived_key(django_settings.SECRET_KEY)
            if fallbacks is None:
                fallbacks = [
                    _derived_key(old)
                    for old in getattr(django_settings, "SECRET_KEY_FALLBACKS", [])
                ]
        return [_as_bytes(k) for k in [key, *(fallbacks or [])]]


def _as_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


def _derived_key(secret: str | bytes) -> bytes:
    # A key of its own, so an identifier hash reveals nothing about SECRET_KEY and
    # no other part of Django computes the same values.
    return hashlib.sha256(
        b"pureclarity_gdpr.identifier-hash:" + _as_bytes(secret)
    ).digest()


conf = Settings()
