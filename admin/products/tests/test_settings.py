"""Production settings fail fast on missing variables and pass manage.py check --deploy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from eventbus.runtime import PLACEHOLDER_MARKERS

from accounts.operator_tokens import generate_pem
from config.env import check_production, env_bool, env_list, missing_required

ADMIN_DIR = Path(__file__).resolve().parents[2]


def test_missing_required_lists_every_name():
    assert missing_required({}) == [
        "SECRET_KEY",
        "DATABASE_URL",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
        "OPERATOR_JWT_PRIVATE_KEY",
    ]
    assert missing_required({"SECRET_KEY": "k", "DATABASE_URL": " "}) == [
        "DATABASE_URL",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
        "OPERATOR_JWT_PRIVATE_KEY",
    ]
    # Their stand-ins: the database secret in AWS Secrets Manager, the key in a file.
    stand_ins = {
        "DB_SECRET_NAME": "db",  # pragma: allowlist secret
        "OPERATOR_JWT_PRIVATE_KEY_FILE": "/run/secrets/k",  # pragma: allowlist secret
    }
    assert missing_required(stand_ins) == [
        "SECRET_KEY",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
    ]
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY, DATABASE_URL"):
        check_production({})


STRONG_KEY = "k3y-" + "x7Qp9Lm2Rt" * 6
OPERATOR_KEY = generate_pem()  # a throwaway key made for this test run
PRODUCTION_ENV = {
    "OPERATOR_JWT_PRIVATE_KEY": OPERATOR_KEY,
    "SECRET_KEY": STRONG_KEY,
    "DATABASE_URL": "mysql://admin:s3cure-Pw@db/admin",  # pragma: allowlist secret
    "RABBITMQ_URL": "amqps://admin-svc:An0ther-Pw@mq/%2F",  # pragma: allowlist secret
    "ALLOWED_HOSTS": "shop.example",
}


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SECRET_KEY", "change-me-long-random-string", "placeholder"),
        ("SECRET_KEY", "django-insecure-dev-only-key-never-use-in-production", "placeholder"),
        ("SECRET_KEY", "short-key", "too weak"),
        ("DATABASE_URL", "mysql://admin:change-me@db/admin", "placeholder"),  # pragma: allowlist secret
        ("RABBITMQ_URL", "amqp://admin-svc:change-me@mq/%2F", "placeholder"),  # pragma: allowlist secret
        (  # several brokers: one placeholder among them is enough to refuse
            "RABBITMQ_URL",
            "amqps://admin-svc:An0ther-Pw@mq-0/%2F,amqps://admin-svc:change-me@mq-1/%2F",  # pragma: allowlist secret
            "placeholder",
        ),
        ("ADMIN_PASSWORD", "change-me", "placeholder"),
        ("OPERATOR_JWT_PRIVATE_KEY", "change-me", "placeholder"),
        ("DEBUG", "1", "DEBUG is on"),
    ],
)
def test_production_refuses_weak_secrets_and_debug_naming_the_variable(name, value, says):
    check_production(PRODUCTION_ENV)  # the strong set passes

    with pytest.raises(ImproperlyConfigured) as excinfo:
        check_production({**PRODUCTION_ENV, name: value})

    message = str(excinfo.value)
    assert name in message and says in message
    if name != "DEBUG" and value not in PLACEHOLDER_MARKERS:
        assert value not in message  # the message names the variable, never its value


def test_production_takes_several_broker_addresses():
    several = "amqps://admin-svc:An0ther-Pw@mq-0/%2F, amqps://admin-svc:An0ther-Pw@mq-1/%2F"  # pragma: allowlist secret
    check_production({**PRODUCTION_ENV, "RABBITMQ_URL": several})


def test_production_with_a_placeholder_secret_does_not_start(tmp_path):
    env = {
        **PRODUCTION_ENV,
        "APP_ENV": "production",
        "SECRET_KEY": "change-me-long-random-string",
    }  # pragma: allowlist secret
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/prod.sqlite3"
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY holds the placeholder 'change-me'" in result.stderr


def test_env_helpers():
    assert env_list("X", ["d"], {"X": " a, ,b "}) == ["a", "b"]
    assert env_list("X", ["d"], {}) == ["d"]
    assert env_bool("X", False, {"X": "1"}) is True
    assert env_bool("X", True, {"X": "0"}) is False


def run_python(argv, env):
    """Run the admin's Python in a new interpreter with `env` over a cleaned copy of ours."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECRET_", "DB_"))}
    for name in (
        "DATABASE_URL",
        "TEST_DATABASE_URL",
        "RABBITMQ_URL",
        "ALLOWED_HOSTS",
        "APP_ENV",
        "OPERATOR_JWT_PRIVATE_KEY",
        "OPERATOR_JWT_PRIVATE_KEY_FILE",
    ):
        base.pop(name, None)  # a developer's shell (or make) may export them
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ADMIN_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manage(*args, env):
    return run_python(["manage.py", *args], env)


def test_production_without_required_variables_fails_with_the_list():
    result = manage("check", env={"APP_ENV": "production"})
    assert result.returncode != 0
    for name in ("SECRET_KEY", "DATABASE_URL", "RABBITMQ_URL", "ALLOWED_HOSTS"):
        assert name in result.stderr
    assert "OPERATOR_JWT_PRIVATE_KEY (or OPERATOR_JWT_PRIVATE_KEY_FILE)" in result.stderr


def _production(tmp_path, **extra):
    return {
        "APP_ENV": "production",
        "SECRET_KEY": STRONG_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "ALLOWED_HOSTS": "admin.example.com",
        **extra,
    }


def test_production_does_not_start_without_an_operator_signing_key(tmp_path):
    result = manage("check", env=_production(tmp_path))
    assert result.returncode != 0
    assert "missing: OPERATOR_JWT_PRIVATE_KEY (or OPERATOR_JWT_PRIVATE_KEY_FILE)" in result.stderr


def test_an_unusable_operator_key_stops_the_service_naming_the_setting(tmp_path):
    bad = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----"  # pragma: allowlist secret
    result = manage("check", env=_production(tmp_path, OPERATOR_JWT_PRIVATE_KEY=bad))
    assert result.returncode != 0
    assert "OPERATOR_JWT_PRIVATE_KEY is unusable" in result.stderr
    assert "bm90IGEga2V5" not in result.stderr
    # In development too: a key that is set must work (only a missing one is allowed there).
    dev = manage(
        "check",
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3",
            "OPERATOR_JWT_PRIVATE_KEY_FILE": "/nonexistent.pem",
        },
    )
    assert dev.returncode != 0 and "OPERATOR_JWT_PRIVATE_KEY_FILE cannot be read" in dev.stderr


def test_production_starts_with_the_key_in_a_file(tmp_path):
    key_file = tmp_path / "private.pem"
    key_file.write_text(OPERATOR_KEY)
    result = manage("check", env=_production(tmp_path, OPERATOR_JWT_PRIVATE_KEY_FILE=str(key_file)))
    assert result.returncode == 0, result.stderr


def test_an_operator_token_lifetime_out_of_range_stops_the_service(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite3", "OPERATOR_TOKEN_TTL_SECONDS": "86400"}
    result = manage("check", env=env)
    assert result.returncode != 0 and "OPERATOR_TOKEN_TTL_SECONDS must be between 1 and 3600" in result.stderr


def test_check_deploy_is_clean_in_production(tmp_path):
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "k3y-" + "x7Qp9Lm2Rt" * 6,
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.sqlite3",
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "ALLOWED_HOSTS": "admin.example.com",
        "OPERATOR_JWT_PRIVATE_KEY": OPERATOR_KEY,
    }
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


DOTTED_SETTINGS = """
import django
django.setup()
from django.conf import settings
from django.utils.module_loading import import_string
paths = [settings.CSRF_FAILURE_VIEW, settings.REST_FRAMEWORK["EXCEPTION_HANDLER"]]
paths += settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]
paths += settings.SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]
for path in paths:
    import_string(path)
print("imported", len(paths))
"""


def test_every_dotted_setting_imports_first_in_a_fresh_interpreter(tmp_path):
    # Django runs its system checks in set order (random per interpreter), so the CSRF failure
    # view may be the first thing imported: a parser module that pulls in rest_framework.views
    # made that a circular import. Import each path first, before any view, in a new process.
    env = {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    result = run_python(["-c", DOTTED_SETTINGS], env)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout


AUTH_CLASSES = """
import django
django.setup()
from django.conf import settings
print(",".join(c.rsplit(".", 1)[1] for c in settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]))
"""


@pytest.mark.parametrize(
    ("env", "classes"),
    [
        ({}, "ExpiringTokenAuthentication,SessionAuthentication,LockoutAwareBasicAuthentication"),
        ({"APP_ENV": "production"}, "ExpiringTokenAuthentication,SessionAuthentication"),
        (
            {"APP_ENV": "production", "API_BASIC_AUTH": "1"},
            "ExpiringTokenAuthentication,SessionAuthentication,LockoutAwareBasicAuthentication",
        ),
        ({"API_BASIC_AUTH": "0"}, "ExpiringTokenAuthentication,SessionAuthentication"),
    ],
)
def test_basic_auth_is_for_development_only_unless_asked_for(tmp_path, env, classes):
    # Each Basic request costs a full password hash: production answers it 401 like any unknown scheme.
    full = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        **env,
    }
    if full.get("APP_ENV") == "production":
        full.update(
            SECRET_KEY="k3y-" + "x7Qp9Lm2Rt" * 6,
            RABBITMQ_URL="amqp://h/%2F",
            ALLOWED_HOSTS="a.example.com",
            OPERATOR_JWT_PRIVATE_KEY=OPERATOR_KEY,
        )
    result = run_python(["-c", AUTH_CLASSES], full)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == classes  # after the start-up log lines
