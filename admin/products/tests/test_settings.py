"""Production settings fail fast on missing variables and pass manage.py check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import check_production, env_bool, env_list, missing_required

ADMIN_DIR = Path(__file__).resolve().parents[2]


def test_missing_required_lists_every_name():
    assert missing_required({}) == [
        "SECRET_KEY",
        "DATABASE_URL",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
    ]
    assert missing_required({"SECRET_KEY": "k", "DATABASE_URL": " "}) == [
        "DATABASE_URL",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
    ]
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY, DATABASE_URL"):
        check_production({})


def test_env_helpers():
    assert env_list("X", ["d"], {"X": " a, ,b "}) == ["a", "b"]
    assert env_list("X", ["d"], {}) == ["d"]
    assert env_bool("X", False, {"X": "1"}) is True
    assert env_bool("X", True, {"X": "0"}) is False


def manage(*args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_", "DB_"))}
    for name in ("DATABASE_URL", "TEST_DATABASE_URL", "RABBITMQ_URL", "ALLOWED_HOSTS", "APP_ENV"):
        base.pop(name, None)  # a developer's shell (or make) may export them
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ADMIN_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_without_required_variables_fails_with_the_list():
    result = manage("check", env={"APP_ENV": "production"})
    assert result.returncode != 0
    for name in ("SECRET_KEY", "DATABASE_URL", "RABBITMQ_URL", "ALLOWED_HOSTS"):
        assert name in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path):
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "k3y-" + "x7Qp9Lm2Rt" * 6,
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "ALLOWED_HOSTS": "admin.example.com",
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
