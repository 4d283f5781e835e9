"""Django settings for Nubo.

Everything that differs between machines comes from the environment:
DATABASE_URL (default: SQLite under var/), REDIS_URL (default redis://127.0.0.1:6379/0),
NUBO_SECRET_KEY (default: a random key created once under var/), NUBO_DEBUG, NUBO_CONSOLE_BIND,
NUBO_BEHIND_PROXY, NUBO_INSTANCE_NAME, NUBO_GENERATION_PUSH.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("NUBO_VAR_DIR", BASE_DIR / "var"))


def _secret_key() -> str:
    key = os.environ.get("NUBO_SECRET_KEY")
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("NUBO_DEBUG", "") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("NUBO_ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("NUBO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Behind a TLS-terminating reverse proxy (docs/console.md): trust its X-Forwarded-Proto, so the
# portal knows its own origin is https:// (console links are bound to the page's origin).
if os.environ.get("NUBO_BEHIND_PROXY") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# The console proxy (manage.py consoleproxy): where it listens; browsers reach it on the portal's
# host name at this port unless the consoleproxy.url setting says otherwise.
NUBO_CONSOLE_BIND = os.environ.get("NUBO_CONSOLE_BIND", "127.0.0.1:6080")
# CloudStack's instance.name: the last part of every libvirt domain name, i-<account>-<VM>-<this>.
# Two Nubo installations (or test runs) sharing one libvirtd must use different ones.
NUBO_INSTANCE_NAME = os.environ.get("NUBO_INSTANCE_NAME", "VM")
if not NUBO_INSTANCE_NAME.isalnum() or not NUBO_INSTANCE_NAME.isascii() or len(NUBO_INSTANCE_NAME) > 16:
    raise RuntimeError(f"NUBO_INSTANCE_NAME must be 1-16 letters and digits, not {NUBO_INSTANCE_NAME!r}")
NUBO_CONSOLE_PORT = int(os.environ.get("NUBO_CONSOLE_PORT", NUBO_CONSOLE_BIND.rpartition(":")[2] or "6080"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_rq",
    "portal",
    "accounts",
    "compute",
    "storage",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.api.middleware.ApiEndpointMiddleware",  # /client/api: a shorter chain (see there)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.cache.GenerationsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.views.shell_context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'nubo.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.auth.DomainUserBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if os.environ.get("NUBO_FAST_HASHER") == "1":  # test suites only: thousands of users
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"] + PASSWORD_HASHERS

# CloudStack's session cookie is JSESSIONID; the UI and the API share the session.
SESSION_COOKIE_NAME = "JSESSIONID"
SESSION_COOKIE_AGE = 1800
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "/client/login"
LOGIN_REDIRECT_URL = "/client/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticroot"
# Static files are served by the app itself (whitenoise), straight from the finders, so a server
# started without collectstatic (tests, e2e) serves them too.
WHITENOISE_USE_FINDERS = True
NUBO_ASSETS_DIR = BASE_DIR / "node_modules"  # pinned front-end packages (npm ci)
# The packages pages use, served under /static/vendor/<package>/; the others (axe-core, which only
# the browser tests inject) are never served.
NUBO_SERVED_ASSETS = ("@novnc/novnc", "@picocss/pico", "htmx.org")
for _package in NUBO_SERVED_ASSETS:
    if (NUBO_ASSETS_DIR / _package).exists():
        STATICFILES_DIRS.append((f"vendor/{_package}", NUBO_ASSETS_DIR / _package))

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}
NUBO_JOB_QUEUE = "default"
# Web processes learn access changes by Redis pub/sub with leases (portal.generation_push) instead
# of one Redis read per request; "0" turns that off (every request reads the token).
NUBO_GENERATION_PUSH = os.environ.get("NUBO_GENERATION_PUSH", "1") != "0"
# Tests run jobs in-process, synchronously, after the request's transaction commits.
NUBO_JOBS_EAGER = os.environ.get("NUBO_JOBS_EAGER") == "1"

REST_FRAMEWORK = {
    "UNAUTHENTICATED_USER": None,
}

CLOUDSTACK_VERSION = "4.18.0.0"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("NUBO_LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}
SILENCED_SYSTEM_CHECKS = ["auth.W004"]  # usernames are unique per domain, not globally
