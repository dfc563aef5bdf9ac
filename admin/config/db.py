"""Build the database configuration from AWS Secrets Manager or DATABASE_URL."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from eventbus.runtime import database_timeouts

logger = logging.getLogger(__name__)

SECRET_KEYS = ("username", "password", "host", "port", "dbname")
# django-prometheus's wrappers of Django's own backends count queries, their duration, errors and
# new connections (django_db_*): https://github.com/korfuri/django-prometheus#monitoring-your-databases
# MySQL's is wrapped once more (config/mysql/base.py): a transaction starts with one BEGIN.
MONITORED_ENGINES = {
    "django.db.backends.mysql": "config.mysql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


# SQLite shared by several processes (`make run`: web workers, consumer, relay, drift check). In a
# DEFERRED transaction (the default) that reads and then writes, the write fails at once with
# "database is locked" when another process committed since the read; IMMEDIATE takes the write
# lock at BEGIN, where the busy timeout (seconds) does wait, and WAL lets the file be read while
# one process writes. https://docs.djangoproject.com/en/5.2/ref/databases/#database-is-locked-errors
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL",
}


def mysql_options(environ: Mapping[str, str] | None = None) -> dict:
    """Return the PyMySQL connection options: utf8mb4 and the socket timeouts (eventbus.runtime)."""
    return {"charset": "utf8mb4", **database_timeouts(environ)}


class SecretUnavailable(Exception):
    """The database secret could not be fetched or used."""


def fetch_secret(name: str, region: str | None, endpoint_url: str | None) -> dict:
    """Return the secret's JSON object from AWS Secrets Manager (raises SecretUnavailable)."""
    import boto3
    from botocore.config import Config

    try:
        client = boto3.client(
            "secretsmanager",
            region_name=region or None,
            endpoint_url=endpoint_url or None,
            # Start-up must not hang on an unreachable endpoint; the fallback is DATABASE_URL.
            config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}),
        )
        text = client.get_secret_value(SecretId=name)["SecretString"]
    except Exception as exc:  # noqa: BLE001 -- any failure means: fall back
        raise SecretUnavailable(f"cannot read secret: {type(exc).__name__}") from None
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        raise SecretUnavailable("secret is not valid JSON") from None
    if not isinstance(doc, dict):
        raise SecretUnavailable("secret is not a JSON object")
    missing = [key for key in SECRET_KEYS if doc.get(key) in (None, "")]
    if missing:
        raise SecretUnavailable("secret lacks keys: " + ", ".join(missing))
    try:
        doc["port"] = int(doc["port"])
    except (TypeError, ValueError):
        raise SecretUnavailable("secret port is not an integer") from None
    return doc


def mysql_config(creds: Mapping) -> dict:
    """Return a Django DATABASES entry for MySQL/MariaDB from secret credentials."""
    return {
        "ENGINE": MONITORED_ENGINES["django.db.backends.mysql"],
        "NAME": str(creds["dbname"]),
        "USER": str(creds["username"]),
        "PASSWORD": str(creds["password"]),
        "HOST": str(creds["host"]),
        "PORT": str(creds["port"]),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": mysql_options(),
        "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
    }


def url_config(url: str) -> dict:
    """Return a Django DATABASES entry for a DATABASE_URL (sqlite:/// or mysql://)."""
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.mysql":
        config.setdefault("OPTIONS", {}).update(mysql_options())
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
        # Tests get a file too, not Django's shared in-memory database: there, threads (a relay's
        # housekeeping beside its loop) meet table locks that ignore the busy timeout.
        config["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"test-admin-{os.getpid()}.sqlite3")}
    config["ENGINE"] = MONITORED_ENGINES.get(config["ENGINE"], config["ENGINE"])
    return config


def database_config(
    database_url: str,
    secret_name: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    fail_closed: bool = False,
) -> tuple[dict, str]:
    """Return (DATABASES['default'], source); source names where the credentials came from.

    fail_closed (production): a secret that cannot be read or used stops the service with the
    reason, instead of silently running on DATABASE_URL's possibly stale credentials.
    """
    if secret_name:
        try:
            creds = fetch_secret(secret_name, region, endpoint_url)
        except SecretUnavailable as exc:
            if fail_closed:
                raise ImproperlyConfigured(
                    f"DB_SECRET_NAME={secret_name} is unusable ({exc}); fix the secret, the AWS "
                    "credentials or AWS_REGION, or unset DB_SECRET_NAME to use DATABASE_URL"
                ) from None
            # Log the reason (never the secret's content) and use the fallback.
            logger.warning(
                "database secret %s unusable (%s); falling back to DATABASE_URL",
                secret_name,
                exc,
            )
        else:
            return mysql_config(creds), f"secretsmanager:{secret_name}"
    return url_config(database_url), "DATABASE_URL"
