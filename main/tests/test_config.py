"""Settings from the environment; production fails fast with the list of what is missing."""

import pytest

from app import create_app
from app.config import (
    DEFAULT_SQLITE_URL,
    INSECURE_DEV_SECRET_KEY,
    ConfigError,
    load_config,
    normalise_database_url,
)


def test_development_defaults():
    config = load_config({})

    assert config["APP_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == DEFAULT_SQLITE_URL
    assert config["SECRET_KEY"] == INSECURE_DEV_SECRET_KEY
    assert config["RABBITMQ_URL"] == "amqp://guest:guest@127.0.0.1:5672/%2F"
    assert config["OUTBOX_WAKEUP_ADDR"] == "127.0.0.1:7802"
    assert config["CORS_ALLOWED_ORIGINS"] == []
    assert config["OTEL_EXPORTER_OTLP_ENDPOINT"] is None


def test_production_lists_every_missing_setting():
    with pytest.raises(ConfigError) as excinfo:
        load_config({"APP_ENV": "production"})

    message = str(excinfo.value)
    for name in ("SECRET_KEY", "RABBITMQ_URL", "DATABASE_URL"):
        assert name in message


STRONG_KEY = "k7Hq2vR9xLmP4wZs8NcT1bYf6GdJ3aEu5oKi0rWnVyXpQeMlBhCg"  # pragma: allowlist secret
PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "RABBITMQ_URL": "amqps://u:p@mq.example:5671/%2F",  # pragma: allowlist secret
    "DATABASE_URL": "mysql://u:p@db:3306/main",  # pragma: allowlist secret
    "RATE_LIMIT_STORAGE_URI": "redis://redis:6379/0",
}


def test_production_with_everything_set():
    config = load_config({**PRODUCTION, "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example"})

    assert config["SECRET_KEY"] == STRONG_KEY
    assert config["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0"
    assert config["SQLALCHEMY_DATABASE_URI"] == "mysql+pymysql://u:p@db:3306/main?charset=utf8mb4"
    # No ping on every checkout: app.db_pool pings only connections that sat idle.
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False
    assert config["CORS_ALLOWED_ORIGINS"] == ["https://a.example", "https://b.example"]


def test_production_takes_several_broker_addresses():
    several = "amqps://u:p@mq-0:5671/%2F, amqps://u:p@mq-1:5671/%2F"  # pragma: allowlist secret
    assert load_config({**PRODUCTION, "RABBITMQ_URL": several})["RABBITMQ_URL"] == several
    with pytest.raises(ConfigError, match="RABBITMQ_URL holds the placeholder"):
        placeholder = "amqps://u:change-me@mq-2/%2F"  # pragma: allowlist secret
        load_config({**PRODUCTION, "RABBITMQ_URL": f"{several},{placeholder}"})


def test_create_app_refuses_production_without_settings(monkeypatch):
    for name in ("SECRET_KEY", "RABBITMQ_URL", "DATABASE_URL", "DB_SECRET_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "production")

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SECRET_KEY", "change-me-long-random-string", "placeholder"),
        ("SECRET_KEY", "insecure-dev-only-secret-key-change-me", "placeholder"),
        ("SECRET_KEY", "s3cret", "too weak"),
        ("SECRET_KEY", "a" * 60, "too weak"),
        (
            "RABBITMQ_URL",
            "amqp://main-svc:change-me@rabbitmq:5672/%2F",  # pragma: allowlist secret
            "placeholder",
        ),
        ("DATABASE_URL", "mysql://main:change-me@db/main", "placeholder"),  # pragma: allowlist secret
        ("FLASK_DEBUG", "1", "FLASK_DEBUG"),
    ],
)
def test_production_refuses_weak_secrets_and_names_them(name, value, says):
    with pytest.raises(ConfigError) as excinfo:
        load_config({**PRODUCTION, name: value})

    message = str(excinfo.value)
    assert name in message and says in message
    if name != "FLASK_DEBUG":
        assert value not in message  # the value itself is never logged


def test_production_needs_a_shared_rate_limit_store():
    env = {key: value for key, value in PRODUCTION.items() if key != "RATE_LIMIT_STORAGE_URI"}
    with pytest.raises(ConfigError, match="RATE_LIMIT_STORAGE_URI"):
        load_config(env)
    assert load_config({**env, "RATE_LIMITS_OFF": "1"})["RATELIMIT_ENABLED"] is False


def test_development_keeps_its_defaults():
    config = load_config({})
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SHOPPER_COOKIE_SECURE"] is False
    assert load_config({"HTTPS_ONLY": "1"})["SHOPPER_COOKIE_SECURE"] is True


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("TRUSTED_PROXY_HOPS", "one", "not a number"),
        ("SHOPPER_COOKIE_DAYS", "90d", "not a number"),
        ("SHOPPER_COOKIE_DAYS", "0", "below 1"),
        ("METRICS_PORT", "-1", "below 0"),
        ("INBOX_RETENTION_HOURS", "a week", "not a number"),
    ],
)
def test_a_number_setting_that_is_not_one_is_named(name, value, says):
    with pytest.raises(ConfigError, match=f"{name}=.*{says}"):
        load_config({name: value})


def test_number_settings_are_read():
    config = load_config(
        {"TRUSTED_PROXY_HOPS": "2", "SHOPPER_COOKIE_DAYS": "7", "INBOX_RETENTION_HOURS": "0.5"}
    )
    assert config["TRUSTED_PROXY_HOPS"] == 2
    assert config["SHOPPER_COOKIE_MAX_AGE"] == 7 * 24 * 3600
    assert config["INBOX_RETENTION_HOURS"] == 0.5


def test_unknown_app_env_is_refused():
    with pytest.raises(ConfigError):
        load_config({"APP_ENV": "staging"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("mysql://u:p@h:3306/db", "mysql+pymysql://u:p@h:3306/db?charset=utf8mb4"),
        ("mysql://u:p@h/db?ssl=1", "mysql+pymysql://u:p@h/db?ssl=1&charset=utf8mb4"),
        (
            "mysql+pymysql://u:p@h/db?charset=latin1",
            "mysql+pymysql://u:p@h/db?charset=latin1",
        ),
    ],
)
def test_database_url_normalisation(given, expected):
    assert normalise_database_url(given) == expected


def test_mysql_sockets_time_out_so_a_dead_database_fails_fast():
    # Below the broker heartbeat (30 s): a half-open socket fails the statement instead of hanging.
    url = "mysql+pymysql://app:pw@db/main?charset=utf8mb4"  # pragma: allowlist secret
    options = load_config({"DATABASE_URL": url})["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"] == {"connect_timeout": 10, "read_timeout": 20, "write_timeout": 20}
    longer = load_config({"DATABASE_URL": url, "DATABASE_TIMEOUT_SECONDS": "600"})
    assert longer["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["read_timeout"] == 600


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_database_timeout_is_refused_with_its_name(value):
    with pytest.raises(ConfigError, match="DATABASE_TIMEOUT_SECONDS"):
        url = "mysql://app:pw@db/main"  # pragma: allowlist secret
        load_config({"DATABASE_URL": url, "DATABASE_TIMEOUT_SECONDS": value})
