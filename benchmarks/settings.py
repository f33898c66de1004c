"""Django settings for the benchmarks.

``run.py`` chooses the database and the local PureClarity and passes both to every
process it starts through the environment, so a child process sees what it sees.
"""

from __future__ import annotations

import os

import environ

env = environ.Env()

SECRET_KEY = "benchmarks-only-not-secret"  # noqa: S105 (a throwaway database)
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "pureclarity_gdpr",
]

DATABASES = {"default": env.db("PCGDPR_BENCH_DATABASE_URL")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Each benchmark overrides what it measures (delivery mode, concurrency, store
# views); the base points at the loopback server that run.py started.
PURECLARITY_GDPR = {
    "ACCESS_KEY": "AK-BENCH",
    "SECRET_KEY": "SK-BENCH-NOT-SECRET",
    "BASE_URL": os.environ.get("PCGDPR_BENCH_BASE_URL", "http://127.0.0.1:9"),
    "DELIVERY": "worker",
}
