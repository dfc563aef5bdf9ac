"""Property-based API test: the real app under gunicorn, fuzzed by schemathesis from its OpenAPI document."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.mariadb import free_port
from tests.operators import OperatorKey

# The operator routes are fuzzed with a staff token of this key (main trusts its public half).
OPERATOR_KEY = OperatorKey()

MAIN_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_for(url, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def served_app(tmp_path):
    """Start main under gunicorn on a free port over a migrated SQLite file with two products."""
    database = tmp_path / "main.sqlite3"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": "schemathesis-secret",
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
        "OUTBOX_WAKEUP_ADDR": "127.0.0.1:9",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
        # Thousands of generated calls from one address: the budgets (documented as 429) would
        # leave the routes' own logic untested; tests/api/test_guard.py tests them.
        "LIKES_RATE_LIMIT": "1000000 per minute",
        "NEW_SHOPPER_RATE_LIMIT": "1000000 per minute",
        "OPERATOR_JWKS": OPERATOR_KEY.jwks(),
    }
    env.pop("TEST_DATABASE_URL", None)
    subprocess.run(
        [str(BIN / "flask"), "--app", "app", "db", "upgrade"],
        cwd=MAIN_DIR,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO product (id, title, image, version, likes, likes_seq, deleted, updated_at)"
            " VALUES (?, ?, '', 1, 0, 0, 0, '2026-01-01 00:00:00')",
            [(1, "One"), (2, "Two")],
        )
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "app:create_app()",
        ],
        cwd=MAIN_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/flask/api/health", proc)
        yield f"http://127.0.0.1:{port}", tmp_path / "gunicorn.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_api_conforms_to_its_openapi_document(served_app):
    base, log_path = served_app

    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{base}/flask/api/openapi.json",
            "--checks",
            "all",
            # /ready answers 503 here by design (no broker, no consumer); tests/api/test_health.py covers it.
            "--exclude-path",
            "/flask/api/ready",
            "--header",
            f"Authorization: Bearer {OPERATOR_KEY.token(lifetime=600)}",
            "--max-examples",
            "15",
            "--max-time",
            "45",
            "--workers",
            "1",
            "--seed",
            "4",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        check=False,
        cwd=MAIN_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert '"status": 500' not in log_path.read_text()
