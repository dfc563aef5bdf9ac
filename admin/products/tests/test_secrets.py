"""Database credentials come from AWS Secrets Manager when configured, else DATABASE_URL."""

import json
import logging

import boto3
import pytest
from moto import mock_aws

from config.db import database_config

FALLBACK = "sqlite:////tmp/fallback.sqlite3"
CREDS = {
    "username": "app",
    "password": "pw-never-logged",
    "host": "db.internal",
    "port": 3306,
    "dbname": "admin",
}


@pytest.fixture
def aws(monkeypatch):
    """A mocked Secrets Manager in us-east-1."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_secret_gives_mysql_config(aws, caplog):
    aws.create_secret(Name="admin/db", SecretString=json.dumps(CREDS))
    with caplog.at_level(logging.INFO):
        config, source = database_config(FALLBACK, "admin/db", "us-east-1")
    assert source == "secretsmanager:admin/db"
    assert config["ENGINE"] == "config.mysql"
    assert (config["NAME"], config["USER"], config["HOST"], config["PORT"]) == (
        "admin",
        "app",
        "db.internal",
        "3306",
    )
    assert config["PASSWORD"] == "pw-never-logged"
    assert config["OPTIONS"]["charset"] == "utf8mb4"
    assert "pw-never-logged" not in caplog.text


def test_port_as_text_is_accepted(aws):
    aws.create_secret(Name="admin/db", SecretString=json.dumps({**CREDS, "port": "3307"}))
    config, _ = database_config(FALLBACK, "admin/db", "us-east-1")
    assert config["PORT"] == "3307"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "ResourceNotFoundException"),
        ("{not json", "not valid JSON"),
        ('["a list"]', "not a JSON object"),
        (
            json.dumps({k: v for k, v in CREDS.items() if k != "host"}),
            "lacks keys: host",
        ),
        (json.dumps({**CREDS, "port": "eighty"}), "port is not an integer"),
    ],
)
def test_unusable_secret_falls_back_to_database_url(aws, caplog, secret, reason):
    if secret is not None:
        aws.create_secret(Name="admin/db", SecretString=secret)
    with caplog.at_level(logging.WARNING, logger="config.db"):
        config, source = database_config(FALLBACK, "admin/db", "us-east-1")
    assert source == "DATABASE_URL"
    assert config["ENGINE"] == "django_prometheus.db.backends.sqlite3"
    assert config["NAME"] == "/tmp/fallback.sqlite3"
    assert reason in caplog.text
    assert "pw-never-logged" not in caplog.text


def test_in_production_an_unusable_secret_stops_the_service_with_the_reason(aws):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured) as excinfo:
        database_config(FALLBACK, "admin/missing", "us-east-1", fail_closed=True)
    assert "DB_SECRET_NAME=admin/missing is unusable (cannot read secret: ResourceNotFoundException)" in str(
        excinfo.value
    )


def test_in_production_the_secret_alone_is_enough(aws):
    from config.env import check_production

    aws.create_secret(Name="admin/db", SecretString=json.dumps(CREDS))
    env = {
        "SECRET_KEY": "k7Hq2vR9xLmP4wZs8NcT1bYf6GdJ3aEu5oKi0rWnVyXpQeMlBhCg",  # pragma: allowlist secret
        "RABBITMQ_URL": "amqps://mq.example/%2F",
        "ALLOWED_HOSTS": "shop.example",
        "DB_SECRET_NAME": "admin/db",  # pragma: allowlist secret
        "OPERATOR_JWT_PRIVATE_KEY_FILE": "/run/secrets/operator-jwt-private.pem",
    }
    check_production(env)  # no DATABASE_URL needed
    config, source = database_config("", "admin/db", "us-east-1", fail_closed=True)
    assert source == "secretsmanager:admin/db" and config["HOST"] == "db.internal"


def test_no_credentials_falls_back(monkeypatch, tmp_path, caplog):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A closed local port: nothing outside this machine is ever contacted.
    with caplog.at_level(logging.WARNING, logger="config.db"):
        _, source = database_config(FALLBACK, "admin/db", "us-east-1", endpoint_url="http://127.0.0.1:9")
    assert source == "DATABASE_URL"
    assert "NoCredentialsError" in caplog.text


def test_unreachable_endpoint_falls_back(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    _, source = database_config(FALLBACK, "admin/db", "us-east-1", endpoint_url="http://127.0.0.1:9")
    assert source == "DATABASE_URL"


def test_without_secret_name_database_url_is_used():
    config, source = database_config("mysql://u:p@h:3310/shop")
    assert source == "DATABASE_URL"
    assert (config["ENGINE"], config["NAME"], config["PORT"]) == (
        "config.mysql",
        "shop",
        3310,
    )
    assert config["OPTIONS"]["charset"] == "utf8mb4"


def _connect_kwargs(config: dict) -> dict:
    """Return the keyword arguments Django's MySQL backend hands to PyMySQL for config."""
    from django.db.backends.mysql.base import DatabaseWrapper

    return DatabaseWrapper({**config, "TIME_ZONE": None, "AUTOCOMMIT": True}).get_connection_params()


def test_mysql_sockets_time_out_so_a_dead_database_fails_fast(aws, monkeypatch):
    # Both ways to a MySQL configuration reach PyMySQL with read/write timeouts below the broker
    # heartbeat (30 s): a half-open socket fails the statement instead of hanging the worker.
    monkeypatch.delenv("DATABASE_TIMEOUT_SECONDS", raising=False)
    aws.create_secret(Name="admin/db", SecretString=json.dumps(CREDS))
    from_secret, _ = database_config(FALLBACK, "admin/db", "us-east-1")
    from_url, _ = database_config("mysql://app:pw@db.internal:3306/admin")  # pragma: allowlist secret
    for config in (from_secret, from_url):
        kwargs = _connect_kwargs(config)
        assert (kwargs["read_timeout"], kwargs["write_timeout"], kwargs["connect_timeout"]) == (20, 20, 10)

    monkeypatch.setenv("DATABASE_TIMEOUT_SECONDS", "600")  # a one-off long migration
    longer, _ = database_config("mysql://app:pw@db/admin")  # pragma: allowlist secret
    assert _connect_kwargs(longer)["read_timeout"] == 600


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_database_timeout_is_refused_with_its_name(monkeypatch, value):
    monkeypatch.setenv("DATABASE_TIMEOUT_SECONDS", value)
    with pytest.raises(ValueError, match="DATABASE_TIMEOUT_SECONDS"):
        database_config("mysql://app:pw@db/admin")  # pragma: allowlist secret
