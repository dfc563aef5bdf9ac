"""Settings of the admin service, every value from the environment.

Docs: https://docs.djangoproject.com/en/5.2/ref/settings/
"""

from __future__ import annotations

import datetime
import logging.config
import warnings
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from accounts.operator_tokens import OperatorKeyError
from accounts.operator_tokens import load_keys as load_operator_keys
from config.db import database_config, url_config
from config.env import check_production, env_bool, env_int, env_list, env_str
from config.log import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent  # admin/
REPO_DIR = BASE_DIR.parent

# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------
APP_ENV = env_str("APP_ENV", "development").lower()
PRODUCTION = APP_ENV == "production"
if PRODUCTION:
    check_production()

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = env_str("SECRET_KEY", "django-insecure-dev-only-key-never-use-in-production")
# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env_str("DEBUG") == "1"
# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS",
    [] if PRODUCTION else ["http://localhost:8080", "http://127.0.0.1:8080"],
)

# ---------------------------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "axes",
    "products",
    "accounts",
    "messaging",
    "operations",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before anything reads the Host: scrapes and probes come by IP (config/hosts.py).
    "config.hosts.OperationsHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns a locked-out login of the Django admin into accounts.security.lockout_response.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# ---------------------------------------------------------------------------------------------
# Login throttling (django-axes) and API tokens: accounts/security.py says how they fit together
# ---------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out address before hashing
    "django.contrib.auth.backends.ModelBackend",
]
# LOGIN_FAILURE_LIMIT wrong passwords are answered as such; the next one locks the address out
# (axes locks on the failure that reaches its own limit, hence the + 1).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT + 1
AXES_COOLOFF_TIME = datetime.timedelta(seconds=env_int("LOGIN_COOLOFF_SECONDS", 900))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.security.client_ip"
AXES_VERBOSE = False
# Proxies in front whose X-Forwarded-For names the client (compose: 1, the frontend's nginx).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)
API_TOKEN_TTL_HOURS = env_int("API_TOKEN_TTL_HOURS", 24)

# ---------------------------------------------------------------------------------------------
# Operator tokens: JWTs for the operations endpoints of other services (accounts/operator_tokens.py)
# ---------------------------------------------------------------------------------------------
# The Ed25519 private key, PEM (a secret, like SECRET_KEY), or a file holding it; required in
# production. Without one in development, POST /api/auth/operator-token answers 503.
OPERATOR_JWT_PRIVATE_KEY = env_str("OPERATOR_JWT_PRIVATE_KEY")
OPERATOR_JWT_PRIVATE_KEY_FILE = env_str("OPERATOR_JWT_PRIVATE_KEY_FILE")
# Public keys still published at /api/auth/jwks.json while tokens they signed may be alive (a JWKS).
OPERATOR_JWKS_RETIRING = env_str("OPERATOR_JWKS_RETIRING")
OPERATOR_TOKEN_TTL_SECONDS = env_int("OPERATOR_TOKEN_TTL_SECONDS", 300)
if not 1 <= OPERATOR_TOKEN_TTL_SECONDS <= 3600:
    raise ImproperlyConfigured(
        "OPERATOR_TOKEN_TTL_SECONDS must be between 1 and 3600 (an operator token is short-lived)"
    )
try:  # a broken key stops the service at start, in every environment, naming the setting
    load_operator_keys(OPERATOR_JWT_PRIVATE_KEY, OPERATOR_JWT_PRIVATE_KEY_FILE, OPERATOR_JWKS_RETIRING)
except OperatorKeyError as exc:
    raise ImproperlyConfigured(str(exc)) from None

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DJANGO_ADMIN_URL = env_str("DJANGO_ADMIN_URL", "admin/").strip("/") + "/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# prometheus_client's multiprocess mode (gunicorn sets PROMETHEUS_MULTIPROC_DIR) writes every
# metric value to a file in that folder; a command run with the same environment (migrate, say)
# must find the folder too, or its first metric (a database query) fails.
if env_str("PROMETHEUS_MULTIPROC_DIR"):
    Path(env_str("PROMETHEUS_MULTIPROC_DIR")).mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------------------------------------
# Logging: JSON lines to stdout (applied now too, so the database-source messages below are JSON)
# ---------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = logging_config(LOG_LEVEL)
logging.config.dictConfig(LOGGING)

# ---------------------------------------------------------------------------------------------
# Database: https://docs.djangoproject.com/en/5.2/ref/settings/#databases
# ---------------------------------------------------------------------------------------------
_default_sqlite = REPO_DIR / "var" / "admin.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{_default_sqlite}")
if DATABASE_URL == f"sqlite:///{_default_sqlite}":
    _default_sqlite.parent.mkdir(parents=True, exist_ok=True)
_db, DATABASE_SOURCE = database_config(
    DATABASE_URL,
    secret_name=env_str("DB_SECRET_NAME") or None,
    region=env_str("AWS_REGION") or None,
    endpoint_url=env_str("AWS_ENDPOINT_URL") or None,
    fail_closed=PRODUCTION,
)
# The test suite may run against MySQL/MariaDB: TEST_DATABASE_URL=mysql://user:pw@host:port/db.
if env_str("TEST_DATABASE_URL"):
    _db, DATABASE_SOURCE = url_config(env_str("TEST_DATABASE_URL")), "TEST_DATABASE_URL"
# No request-wide transaction (ATOMIC_REQUESTS stays off): a product change and its outbox row
# commit together because products.services wraps each change in its own transaction.atomic(),
# and the Django admin wraps its change views. A request-wide transaction would hold the database
# for the whole request, password hashing included; on SQLite, where a write transaction locks
# the whole file, every other process's write would wait for it.
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Auth, i18n, static files
# ---------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # No manifest: the service starts even when collectstatic has not been run.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the Django admin's assets straight from the installed apps when collectstatic was skipped.
WHITENOISE_USE_FINDERS = True
# ...so an absent STATIC_ROOT (no collectstatic) is expected, not worth a warning per worker.
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

# Bodies above this size are refused (413) before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024)

# ---------------------------------------------------------------------------------------------
# Security: https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ---------------------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes and Prometheus talk plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^api/ready$", r"^metrics$"]
if env_bool("SECURE_PROXY_SSL_HEADER", PRODUCTION):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The SPA reads the csrftoken cookie and echoes it in X-CSRFToken.
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "config.api.csrf_failure"

# CORS: https://github.com/adamchainz/django-cors-headers
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_ALLOW_CREDENTIALS = True
CORS_EXPOSE_HEADERS = ["X-Total-Count", "X-Result-Capped"]

# ---------------------------------------------------------------------------------------------
# Django REST framework: https://www.django-rest-framework.org/api-guide/settings/
# ---------------------------------------------------------------------------------------------
# HTTP Basic auth runs the password hasher (PBKDF2, about 0.3-1 s of CPU) on every request, and
# so does every wrong guess: API clients use a token (POST /api/auth/token). Basic stays on in
# development, for `curl -u`, and is off in production unless API_BASIC_AUTH=1 (README: Admin API).
API_BASIC_AUTH = env_bool("API_BASIC_AUTH", not PRODUCTION)
REST_FRAMEWORK = {
    # Token first: its "Token" challenge makes anonymous writes 401 without a browser
    # basic-auth pop-up; session auth enforces CSRF.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.security.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        *(["accounts.security.LockoutAwareBasicAuthentication"] if API_BASIC_AUTH else []),
    ],
    "DEFAULT_PERMISSION_CLASSES": ["products.permissions.IsStaffOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Admin service API",
    "DESCRIPTION": "Product catalogue (owner of products), users and service health.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's assets come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.schema_without_trailing_slashes",
    ],
}

# ---------------------------------------------------------------------------------------------
# Messaging (read by messaging/*)
# ---------------------------------------------------------------------------------------------
RABBITMQ_URL = env_str("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
RABBITMQ_CA_FILE = env_str("RABBITMQ_CA_FILE") or None
OUTBOX_WAKEUP_ADDR = env_str("OUTBOX_WAKEUP_ADDR", "127.0.0.1:7801")
OUTBOX_RETENTION_HOURS = env_int("OUTBOX_RETENTION_HOURS", 24)
INBOX_RETENTION_HOURS = env_int("INBOX_RETENTION_HOURS", 168)
CONSUMER_METRICS_PORT = env_int("METRICS_PORT", 9801)
RELAY_METRICS_PORT = env_int("METRICS_PORT", 9802)
# /api/ready thresholds.
READY_OUTBOX_MAX_AGE_SECONDS = 60
READY_CONSUMER_MAX_AGE_SECONDS = 30
READY_BROKER_CACHE_SECONDS = 2.0
CONSUMER_HEARTBEAT_NAME = "admin-consumer"
