"""Settings of the example shop, read from the environment or example_project/.env.

With nothing set, the shop runs on SQLite with fake PureClarity keys, and sends
forget requests to a local PureClarity on 127.0.0.1:8765 (start one with
``python -m pureclarity_gdpr.testing --port 8765``). It needs no credentials and no
internet. With DEBUG=false it runs as in production: SECRET_KEY must be set, and
it is served over HTTPS only (HTTPS=false allows plain HTTP; BEHIND_HTTPS_PROXY=true
trusts a proxy that ends TLS). See .env.example for every variable.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_PURECLARITY = "http://127.0.0.1:8765"

env = environ.Env()
ENV_FILE = BASE_DIR / ".env"
if ENV_FILE.is_file():
    # Variables already set in the environment win over the file.
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
if DEBUG:
    SECRET_KEY = env.str("SECRET_KEY", default="example-shop-insecure-key-change-me")
else:
    # With DEBUG off the shop runs as in production, where a key known to all
    # would let anyone forge sessions: it must come from the environment.
    SECRET_KEY = env.str("SECRET_KEY")

# HTTPS only, with secure cookies and HSTS, unless DEBUG is on (runserver speaks
# plain HTTP) or HTTPS=false says otherwise.
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
# A year, the least that browsers' HSTS preload lists accept.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env.bool("BEHIND_HTTPS_PROXY", default=False):
    # The proxy ends TLS; without its word every request would look like plain
    # HTTP and be redirected to HTTPS forever.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "pureclarity_gdpr",
    "storefront",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # MySQL's "utf8" holds only part of Unicode; identifiers may hold any of it.
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"


def pureclarity_store_view() -> dict[str, str]:
    """The shop's one store view, from PURECLARITY_* variables."""
    store_view = {
        "ACCESS_KEY": env.str("PURECLARITY_ACCESS_KEY", default="AK-EXAMPLE"),
        "SECRET_KEY": env.str("PURECLARITY_SECRET_KEY", default="SK-EXAMPLE-FAKE"),
    }
    region = env.str("PURECLARITY_REGION", default="")
    base_url = env.str("PURECLARITY_BASE_URL", default="")
    # The real PureClarity is reached only when a region or URL is set on purpose;
    # anything less goes to the local stand-in.
    if region and not base_url:
        store_view["REGION"] = region
    else:
        store_view["BASE_URL"] = base_url or LOCAL_PURECLARITY
    return store_view


PURECLARITY_GDPR = pureclarity_store_view()

# Shows what the app logs: each request delivered or failed, identifiers masked.
# On stdout, so the lines appear in order with the demo's own output.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"brief": {"format": "   [log] %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "brief",
            "stream": "ext://sys.stdout",
        }
    },
    "loggers": {"pureclarity_gdpr": {"handlers": ["console"], "level": "INFO"}},
}
