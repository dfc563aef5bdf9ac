"""Database credentials from AWS Secrets Manager, with DATABASE_URL as the fallback."""

import json
import logging
from urllib.parse import quote

logger = logging.getLogger(__name__)

SECRET_KEYS = ("username", "password", "host", "port", "dbname")


class SecretUnavailable(RuntimeError):
    """In production, DB_SECRET_NAME is set and its secret cannot be read or used."""


def fetch_db_secret(secret_name, region=None, endpoint_url=None):
    """Return the parsed DB credentials JSON stored under secret_name."""
    import boto3  # imported lazily: only needed when DB_SECRET_NAME is set
    from botocore.config import Config

    client = boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint_url,
        # A missing or slow Secrets Manager must not hang start-up: fail fast, fall back.
        config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
    )
    value = json.loads(client.get_secret_value(SecretId=secret_name)["SecretString"])
    missing = [key for key in SECRET_KEYS if key not in value]
    if missing:
        raise ValueError(f"secret lacks keys: {', '.join(missing)}")
    return value


def url_from_secret(creds):
    """Return a mysql+pymysql URL built from a credentials mapping."""
    return "mysql+pymysql://{user}:{pw}@{host}:{port}/{db}".format(
        user=quote(str(creds["username"]), safe=""),
        pw=quote(str(creds["password"]), safe=""),
        host=creds["host"],
        port=int(creds["port"]),
        db=quote(str(creds["dbname"]), safe=""),
    )


def resolve_database_url(env, default=None):
    """Return (url, source) where source is 'secretsmanager', 'env' or 'default'; log the source only."""
    secret_name = env.get("DB_SECRET_NAME")
    if secret_name:
        try:
            creds = fetch_db_secret(
                secret_name,
                region=env.get("AWS_REGION"),
                endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            )
            logger.info("database credentials source: secretsmanager (secret %s)", secret_name)
            return url_from_secret(creds), "secretsmanager"
        except Exception as exc:  # noqa: BLE001 - any failure means: use the fallback
            if env.get("APP_ENV") == "production":
                # Fail closed: never run silently on DATABASE_URL's possibly stale credentials.
                raise SecretUnavailable(
                    f"DB_SECRET_NAME={secret_name} is unusable ({type(exc).__name__}); fix the secret, "
                    "the AWS credentials or AWS_REGION, or unset DB_SECRET_NAME to use DATABASE_URL"
                ) from None
            # Log the error class only: a botocore message could echo request details.
            logger.warning(
                "database credentials from secretsmanager failed (%s); falling back to DATABASE_URL",
                type(exc).__name__,
            )
    if env.get("DATABASE_URL"):
        logger.info("database credentials source: env (DATABASE_URL)")
        return env["DATABASE_URL"], "env"
    if default is not None:
        logger.info("database credentials source: default (development SQLite)")
    return default, "default"
