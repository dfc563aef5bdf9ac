"""Read typed settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

# What production cannot start without (fail at start with the whole list, not one at a time).
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "RABBITMQ_URL", "ALLOWED_HOSTS")


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
    """Return the required production variables that are unset or empty."""
    return [name for name in REQUIRED_IN_PRODUCTION if not env_str(name, "", env)]


def check_production(env: Mapping[str, str] | None = None) -> None:
    """Raise ImproperlyConfigured naming every missing required variable."""
    missing = missing_required(env)
    if missing:
        raise ImproperlyConfigured(
            "APP_ENV=production but these required environment variables are missing: " + ", ".join(missing)
        )
