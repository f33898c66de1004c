"""The same project without pureclarity_gdpr: the baseline of the deletion figures."""

from __future__ import annotations

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import INSTALLED_APPS as _WITH_APP

INSTALLED_APPS = [app for app in _WITH_APP if app != "pureclarity_gdpr"]
