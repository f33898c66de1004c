"""Settings for the test suite; DATABASE_URL picks the database (SQLite by default)."""

from __future__ import annotations

import json
import os

import environ

env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "pureclarity_gdpr",
    "tests.testapp",
]

# A user model of our own, swapped in when a test run asks for it.
if os.environ.get("PURECLARITY_TEST_USER_MODEL") == "custom":
    AUTH_USER_MODEL = "testapp.Customer"
else:
    INSTALLED_APPS.append("tests.proxyapp")

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
# A test database name of its own lets two runs share one server.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("PURECLARITY_TEST_DB_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
    DATABASES["default"]["TEST"].update(CHARSET="utf8mb4", COLLATION="utf8mb4_bin")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests point BASE_URL at the local PureClarity server; nothing leaves loopback.
PURECLARITY_GDPR = {
    "ACCESS_KEY": "AK-TEST",
    "SECRET_KEY": "SK-FAKE-0000",
    "BASE_URL": os.environ.get("PURECLARITY_TEST_BASE_URL", "http://127.0.0.1:9"),
    "CONNECT_TIMEOUT": 1.0,
    "READ_TIMEOUT": 1.0,
    # Subprocesses started by the fault tests pass their own settings this way.
    **json.loads(os.environ.get("PURECLARITY_TEST_GDPR_JSON", "{}")),
}
