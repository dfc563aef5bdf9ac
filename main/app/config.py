"""Settings for the main service, all read from the environment (README: Configuration)."""

import logging
import os
from pathlib import Path

from eventbus import runtime

from app import sqlite
from app.operator_tokens import InvalidKeySet, parse_key_set
from app.secrets import SecretUnavailable, resolve_database_url

logger = logging.getLogger(__name__)

SERVICE_NAME = "main"
BASE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BASE_DIR.parent
DEFAULT_SQLITE_URL = f"sqlite:///{REPO_DIR / 'var' / 'main.sqlite3'}"
INSECURE_DEV_SECRET_KEY = "insecure-dev-only-secret-key-change-me"  # noqa: S105 - refused in production
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
# Shopper cookies expire this many days after they were last signed (app.api.shopper refreshes them daily).
SHOPPER_COOKIE_DAYS = 90


class ConfigError(RuntimeError):
    """Raised when required settings are missing in production."""


def _flag(value):
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _number(env, name, default, kind=int, minimum=0):
    """Return env[name] as a number of kind (default when unset); ConfigError naming it otherwise."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} is not a number: set it to one, or unset it for {default}"
        ) from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} is below {minimum}: set it to {minimum} or more, or unset it")
    return value


def _csv(value):
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _jwks(value):
    """Return OPERATOR_JWKS checked to be a JWKS with an Ed25519 key (None when unset); ConfigError otherwise."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        parse_key_set(value)
    except InvalidKeySet as exc:
        raise ConfigError(f"OPERATOR_JWKS: {exc}: give admin's /api/auth/jwks.json, or unset it") from None
    return value


def normalise_database_url(url):
    """Return url with the PyMySQL driver for mysql:// URLs, unchanged otherwise."""
    if url.startswith("mysql://"):
        url = "mysql+pymysql://" + url[len("mysql://") :]
    if url.startswith("mysql+pymysql://") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def database_timeouts(environ=None):
    """Return PyMySQL's socket timeouts from DATABASE_TIMEOUT_SECONDS (eventbus.runtime); ConfigError when bad."""
    try:
        return runtime.database_timeouts(environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def engine_options(url, timeouts=None):
    """Return SQLAlchemy engine options suited to the database behind url."""
    if url.startswith("sqlite"):
        return sqlite.engine_options()
    # pool_pre_ping is off: app.db_pool pings only connections that sat idle, which keeps a
    # database restart from failing shoppers' requests without a round trip on every like.
    # reset_on_return=None drops the ROLLBACK the pool would send after every COMMIT: every
    # Connection and Session here ends its own transaction on close (Connection.close() rolls
    # back an open one), so the reset only cost a round trip.
    return {
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_reset_on_return": None,
        # A half-open socket fails the statement after read_timeout instead of hanging the worker.
        "connect_args": timeouts or database_timeouts(),
    }


def load_config(environ=None):
    """Build the Flask config mapping from environ; fail fast in production on missing vars."""
    env = os.environ if environ is None else environ
    app_env = env.get("APP_ENV", "development")
    if app_env not in ("development", "production"):
        raise ConfigError(f"APP_ENV must be 'development' or 'production', not {app_env!r}")
    production = app_env == "production"

    if production:
        missing = [name for name in ("SECRET_KEY", "RABBITMQ_URL") if not env.get(name)]
        if not env.get("DATABASE_URL") and not env.get("DB_SECRET_NAME"):
            missing.append("DATABASE_URL (or DB_SECRET_NAME)")
        if not env.get("RATE_LIMIT_STORAGE_URI") and not _flag(env.get("RATE_LIMITS_OFF")):
            missing.append("RATE_LIMIT_STORAGE_URI (a store all workers share, e.g. redis://redis:6379/0)")
        if missing:
            raise ConfigError("missing required settings for APP_ENV=production: " + ", ".join(missing))
        weak = runtime.weak_secret_problems(
            {name: env.get(name, "") for name in ("SECRET_KEY", "RABBITMQ_URL", "DATABASE_URL")}
        )
        if _flag(env.get("FLASK_DEBUG")):
            weak.append("FLASK_DEBUG is on: the debugger runs code for anyone who can reach it")
        if weak:
            raise ConfigError("APP_ENV=production refuses to start: " + "; ".join(weak))

    rate_limit_storage = env.get("RATE_LIMIT_STORAGE_URI") or "memory://"
    try:
        database_url, source = resolve_database_url(env, default=None if production else DEFAULT_SQLITE_URL)
    except SecretUnavailable as exc:
        raise ConfigError(str(exc)) from None
    if database_url is None:
        raise ConfigError("no database: DB_SECRET_NAME lookup failed and DATABASE_URL is not set")
    database_url = normalise_database_url(database_url)
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        # Multiprocess mode writes every metric value to a file there, a CLI command's too.
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    if database_url.startswith("sqlite:///") and database_url == DEFAULT_SQLITE_URL:
        (REPO_DIR / "var").mkdir(exist_ok=True)

    return {
        "APP_ENV": app_env,
        "SECRET_KEY": env.get("SECRET_KEY") or INSECURE_DEV_SECRET_KEY,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url, database_timeouts(env)),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "DATABASE_SOURCE": source,
        "RABBITMQ_URL": env.get("RABBITMQ_URL") or DEFAULT_RABBITMQ_URL,
        "RABBITMQ_CA_FILE": env.get("RABBITMQ_CA_FILE") or None,
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").upper(),
        "CORS_ALLOWED_ORIGINS": _csv(env.get("CORS_ALLOWED_ORIGINS")),
        "OUTBOX_WAKEUP_ADDR": env.get("OUTBOX_WAKEUP_ADDR") or "127.0.0.1:7802",
        "METRICS_PORT": _number(env, "METRICS_PORT", 0),
        "OTEL_EXPORTER_OTLP_ENDPOINT": env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        "OUTBOX_RETENTION_HOURS": _number(env, "OUTBOX_RETENTION_HOURS", 24.0, float),
        "INBOX_RETENTION_HOURS": _number(env, "INBOX_RETENTION_HOURS", 168.0, float),
        "PROMETHEUS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        # Likes carry no body; anything large is refused before it is read.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "SHOPPER_COOKIE_SECURE": _flag(env.get("SHOPPER_COOKIE_SECURE")) or _flag(env.get("HTTPS_ONLY")),
        "SHOPPER_COOKIE_MAX_AGE": 86400 * _number(env, "SHOPPER_COOKIE_DAYS", SHOPPER_COOKIE_DAYS, minimum=1),
        # app.api.guard: per-client limits (limits' notation, ";" between several), shared store.
        "LIKES_RATE_LIMIT": env.get("LIKES_RATE_LIMIT") or "60 per minute",
        "NEW_SHOPPER_RATE_LIMIT": env.get("NEW_SHOPPER_RATE_LIMIT") or "10 per minute",
        "RATELIMIT_STORAGE_URI": rate_limit_storage,
        "RATELIMIT_ENABLED": not _flag(env.get("RATE_LIMITS_OFF")),
        # How many proxies in front of this service to trust for X-Forwarded-For/-Proto (ProxyFix).
        "TRUSTED_PROXY_HOPS": _number(env, "TRUSTED_PROXY_HOPS", 0),
        # app.operator_tokens: the public keys that verify admin's operator tokens (a JWKS), given
        # inline or as a file re-read when it changes. Neither: the operations endpoints answer 503.
        "OPERATOR_JWKS": _jwks(env.get("OPERATOR_JWKS")),
        "OPERATOR_JWKS_FILE": (env.get("OPERATOR_JWKS_FILE") or "").strip() or None,
        "JSON_SORT_KEYS": False,
    }
