"""Read typed settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured
from eventbus.runtime import weak_secret_problems

# What production cannot start without (fail at start with the whole list, not one at a time).
# DATABASE_URL may be left out when DB_SECRET_NAME names the credentials in AWS Secrets Manager,
# OPERATOR_JWT_PRIVATE_KEY when OPERATOR_JWT_PRIVATE_KEY_FILE names a file holding it.
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "DATABASE_URL",
    "RABBITMQ_URL",
    "ALLOWED_HOSTS",
    "OPERATOR_JWT_PRIVATE_KEY",
)
# A required variable that another one may stand in for.
ALTERNATIVES = {
    "DATABASE_URL": "DB_SECRET_NAME",
    "OPERATOR_JWT_PRIVATE_KEY": "OPERATOR_JWT_PRIVATE_KEY_FILE",  # pragma: allowlist secret
}
# Checked for placeholders (and SECRET_KEY for strength) before production starts.
SECRETS_CHECKED_IN_PRODUCTION = (
    "SECRET_KEY",
    "DATABASE_URL",
    "RABBITMQ_URL",
    "ADMIN_PASSWORD",
    "OPERATOR_JWT_PRIVATE_KEY",
)


def env_str(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    """Return the variable's value, or default when unset or empty."""
    value = (os.environ if env is None else env).get(name, "")
    return value if value.strip() else default


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """Return the variable as a boolean (1/true/yes/on)."""
    value = env_str(name, "", env)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """Return the variable as an int; a malformed value is a configuration error."""
    value = env_str(name, "", env)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of non-empty items."""
    value = env_str(name, "", env)
    if not value:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def missing_required(env: Mapping[str, str] | None = None) -> list[str]:
    """Return the required production variables that are unset or empty (and have no stand-in set)."""
    return [
        name
        for name in REQUIRED_IN_PRODUCTION
        if not env_str(name, "", env) and not (name in ALTERNATIVES and env_str(ALTERNATIVES[name], "", env))
    ]


def check_production(env: Mapping[str, str] | None = None) -> None:
    """Raise ImproperlyConfigured naming every missing required variable, weak secret or unsafe switch."""
    missing = missing_required(env)
    if missing:
        raise ImproperlyConfigured(
            "APP_ENV=production but these required environment variables are missing: "
            + ", ".join(
                f"{name} (or {ALTERNATIVES[name]})" if name in ALTERNATIVES else name for name in missing
            )
        )
    problems = weak_secret_problems({name: env_str(name, "", env) for name in SECRETS_CHECKED_IN_PRODUCTION})
    if env_str("DEBUG", "", env) not in ("", "0"):
        problems.append("DEBUG is on: it shows settings and code to anyone who triggers an error")
    if problems:
        raise ImproperlyConfigured("APP_ENV=production refuses to start: " + "; ".join(problems))
