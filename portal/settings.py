"""Settings for the Recording Portal, read from the environment (see README "Configuration")."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (written by `make run` with fresh keys) is read if present; real deployments set the
# environment instead. Variables already in the environment win.
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)


def _required(name: str, *, dev_default: str) -> str:
    """A setting production must set: with DEBUG off a missing value stops the start, naming it."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. It is required when DEBUG is off; see README.md, section Configuration."
    )


SECRET_KEY = _required("SECRET_KEY", dev_default="django-insecure-development-only-key-do-not-deploy")
# Comma list of Fernet keys: the first encrypts, every one decrypts (see recordings/fields.py).
FIELD_ENCRYPTION_KEYS = [
    key.strip()
    for key in _required(
        "FIELD_ENCRYPTION_KEYS",
        # A fixed key for DEBUG only, so a developer's database stays readable between runs.
        dev_default="ZGV2ZWxvcG1lbnQtb25seS1rZXktMzItYnl0ZXMhISE=",
    ).split(",")
    if key.strip()
]
ALLOWED_HOSTS = [
    host.strip()
    for host in _required("ALLOWED_HOSTS", dev_default="localhost,127.0.0.1,[::1]").split(",")
    if host.strip()
]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_tasks",
    "django_tasks_db",
    "axes",
    "csp",
    "recordings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early, so that every response (errors and the lockout page included) carries the policy.
    "csp.middleware.CSPMiddleware",
    "recordings.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during authentication into the lockout page.
    "axes.middleware.AxesMiddleware",
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
                "recordings.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web server and the worker share one SQLite file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Per-process memory by default; with several nodes point CACHE_URL at Redis (e.g. rediscache://127.0.0.1:6379/1).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://portal")}
# Sessions are read from the cache and written through to the database: no session query per audio range.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before any backend checks the password; it checks no permission.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "recordings.auth.CachedPermissionsBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "calls"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
# The zone times are shown in; a user's own choice can override it (see recordings/middleware).
PORTAL_TIME_ZONE = env.str("PORTAL_TIME_ZONE", default="Europe/London")

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_CACHE_DIR = Path(env.str("MEDIA_CACHE_DIR", default=str(VAR_DIR / "media-cache")))
MEDIA_CACHE_MAX_BYTES = env.int("MEDIA_CACHE_MAX_BYTES", default=2 * 1024**3)
# Audio bodies move from the provider's plain-HTTP socket or the cached file to the listener in the kernel
# (splice/sendfile) when served by gunicorn without TLS; off: always through Python (recordings/zerocopy.py).
AUDIO_KERNEL_RELAY = env.bool("AUDIO_KERNEL_RELAY", default=True)

# Background work: django-tasks API. db (default) = django-tasks-db and `manage.py db_worker`;
# rq = django-tasks-rq on REDIS_URL (scale-out); immediate = run inline (tests of pure logic).
TASKS_BACKEND = env.str("TASKS_BACKEND", default="db")
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
_TASK_BACKENDS = {
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    "rq": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]},
    "immediate": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"},
}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be one of {', '.join(_TASK_BACKENDS)}, not {TASKS_BACKEND!r}.")
TASKS = {"default": _TASK_BACKENDS[TASKS_BACKEND]}
if TASKS_BACKEND == "rq":
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}

# Security. Production runs behind a TLS-terminating proxy that sets X-Forwarded-Proto.
HTTPS = env.bool("HTTPS", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
SILENCED_SYSTEM_CHECKS: list[str] = []

# Content Security Policy (django-csp 4): no inline script or style anywhere, the admin included; see docs/security.md.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
# Browser features no page of the portal uses (recordings/middleware.py sends it).
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

# Addresses (or networks) of the reverse proxies in front of the portal: from them, and only from them, the client's
# address is read from X-Forwarded-For (recordings/services/audit.py client_ip), for the audit log and the lockout.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network.") from None

# Login protection (django-axes 8): 5 failures of one username from one address lock that pair out for 15 minutes
# (each further try while locked out starts the 15 minutes again); a success clears the count. The address is the
# audit log's (client_ip: REMOTE_ADDR, or X-Forwarded-For from a trusted proxy), never one the client chose.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "recordings.services.audit.client_ip"
AXES_USERNAME_CALLABLE = "recordings.auth.lockout_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# django-axes keeps its failure counts (AccessAttempt) only: logins and lockouts are read in our audit log, so its
# access log and its admin (whose models no role holds) are off.
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

# Outbound requests to providers.
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=5.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=30.0)
# Hosts that follow-up media URLs may point at even when they resolve inside our network
# (the demo's sandbox on loopback). Comma list of host or host:port.
MEDIA_URL_ALLOWLIST = env.list("MEDIA_URL_ALLOWLIST", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Credentials, signed links and URL queries are redacted from every line (recordings/logfilters.py).
    "filters": {"redact_secrets": {"()": "recordings.logfilters.RedactSecretsFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes tells every login at INFO; its failures and lockouts are WARNINGs (and audit rows).
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# The first sync of an account looks this far back.
SYNC_INITIAL_LOOKBACK_DAYS = env.int("SYNC_INITIAL_LOOKBACK_DAYS", default=400)
# Largest report upload accepted (bytes).
REPORT_UPLOAD_MAX_BYTES = env.int("REPORT_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)

# Background jobs (recordings/services/jobs.py): tries per item, first back-off (doubles), and how long a
# `running` item may sit untouched before `jobs_resume` treats its worker as dead.
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=5)
JOBS_RETRY_BACKOFF = env.float("JOBS_RETRY_BACKOFF", default=2.0)
JOBS_LEASE_SECONDS = env.int("JOBS_LEASE_SECONDS", default=600)

# Exports (recordings/services/exports.py): where the ZIPs go, how long they are kept, the most recordings one
# export may hold, and how often the worker sweeps expired exports away.
EXPORT_DIR = Path(env.str("EXPORT_DIR", default=str(VAR_DIR / "exports")))
EXPORT_TTL = env.int("EXPORT_TTL", default=7 * 24 * 3600)
EXPORT_MAX_RECORDINGS = env.int("EXPORT_MAX_RECORDINGS", default=5000)
EXPORT_SWEEP_INTERVAL = env.int("EXPORT_SWEEP_INTERVAL", default=3600)
