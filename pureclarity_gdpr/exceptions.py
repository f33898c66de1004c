"""The errors this app raises."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class PureClarityGDPRError(Exception):
    """Base class of every error raised by pureclarity_gdpr."""


class ConfigurationError(PureClarityGDPRError, ImproperlyConfigured):
    """The ``PURECLARITY_GDPR`` setting cannot be used as it stands."""


class InvalidIdentifier(PureClarityGDPRError, ValueError):
    """An identifier cannot be sent to PureClarity (empty, too long, control chars)."""


class UnknownStoreView(PureClarityGDPRError, ValueError):
    """A store view name that is not configured in ``PURECLARITY_GDPR``."""
