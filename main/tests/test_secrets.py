"""DB credentials from AWS Secrets Manager (moto), with the DATABASE_URL fallback."""

import json
import logging

import boto3
import pytest
from moto import mock_aws

from app.config import load_config
from app.secrets import resolve_database_url

CREDS = {
    "username": "app",
    "password": "p@ss/word",
    "host": "db.internal",
    "port": 3306,
    "dbname": "main",
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def test_credentials_come_from_the_secret(aws, caplog):
    aws.create_secret(Name="main/db", SecretString=json.dumps(CREDS))
    env = {
        "DB_SECRET_NAME": "main/db",
        "AWS_REGION": "eu-west-1",
        "DATABASE_URL": "sqlite:////tmp/unused.db",
    }

    with caplog.at_level(logging.INFO, logger="app.secrets"):
        url, source = resolve_database_url(env)

    assert source == "secretsmanager"
    assert url == "mysql+pymysql://app:p%40ss%2Fword@db.internal:3306/main"
    assert "secretsmanager" in caplog.text
    assert "p@ss/word" not in caplog.text and "p%40ss" not in caplog.text


def test_load_config_uses_the_secret(aws):
    aws.create_secret(Name="main/db", SecretString=json.dumps(CREDS))

    config = load_config({"DB_SECRET_NAME": "main/db", "AWS_REGION": "eu-west-1"})

    assert config["DATABASE_SOURCE"] == "secretsmanager"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("mysql+pymysql://app:")
    assert config["SQLALCHEMY_DATABASE_URI"].endswith("/main?charset=utf8mb4")


@pytest.mark.parametrize(
    "secret_string",
    [None, "not json", json.dumps({"username": "app", "password": "pw"})],
    ids=["missing-secret", "not-json", "missing-keys"],
)
def test_falls_back_to_database_url_and_says_so(aws, caplog, secret_string):
    if secret_string is not None:
        aws.create_secret(Name="main/db", SecretString=secret_string)
    env = {
        "DB_SECRET_NAME": "main/db",
        "AWS_REGION": "eu-west-1",
        "DATABASE_URL": "mysql://u:pw@h/db",
    }

    with caplog.at_level(logging.INFO, logger="app.secrets"):
        url, source = resolve_database_url(env)

    assert (url, source) == ("mysql://u:pw@h/db", "env")
    assert "falling back to DATABASE_URL" in caplog.text
    assert "source: env" in caplog.text
    assert "pw" not in caplog.text.replace("password", "")


def test_unreachable_secrets_manager_falls_back(monkeypatch, caplog):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = {
        "DB_SECRET_NAME": "main/db",
        "AWS_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "DATABASE_URL": "sqlite:////tmp/fallback.db",
    }

    with caplog.at_level(logging.WARNING, logger="app.secrets"):
        assert resolve_database_url(env) == ("sqlite:////tmp/fallback.db", "env")
    assert "EndpointConnectionError" in caplog.text


PRODUCTION = {
    "APP_ENV": "production",
    "SECRET_KEY": "k7Hq2vR9xLmP4wZs8NcT1bYf6GdJ3aEu5oKi0rWnVyXpQeMlBhCg",  # pragma: allowlist secret
    "RATE_LIMIT_STORAGE_URI": "memory://",
    "RABBITMQ_URL": "amqp://x",
    "AWS_REGION": "eu-west-1",
}


@pytest.mark.parametrize("fallback", [None, "mysql://old:stale@db/main"])  # pragma: allowlist secret
def test_in_production_an_unusable_secret_stops_the_service_with_the_reason(aws, fallback):
    from app.config import ConfigError

    env = {**PRODUCTION, "DB_SECRET_NAME": "main/missing"}
    if fallback:
        env["DATABASE_URL"] = fallback
    with pytest.raises(ConfigError) as excinfo:
        load_config(env)
    message = str(excinfo.value)
    assert "DB_SECRET_NAME=main/missing is unusable (ResourceNotFoundException)" in message
    assert "stale" not in message


def test_in_production_the_secret_alone_is_enough(aws):
    aws.create_secret(Name="main/db", SecretString=json.dumps(CREDS))
    config = load_config({**PRODUCTION, "DB_SECRET_NAME": "main/db"})
    assert config["DATABASE_SOURCE"] == "secretsmanager"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith(
        "mysql+pymysql://app:p%40ss%2Fword@db.internal:3306/main"
    )
