"""First vertical slice: both services run on real MariaDB + RabbitMQ and report healthy and ready."""

from __future__ import annotations

import pytest

from harness.services import PROCESS_NAMES

HEALTH = [("admin", "/api/health"), ("main", "/flask/api/health")]
READY = [("admin", "/api/ready"), ("main", "/flask/api/ready")]


def _base(stack, service: str) -> str:
    return stack.admin_url if service == "admin" else stack.main_url


@pytest.mark.parametrize(("service", "path"), HEALTH)
def test_liveness_answers_ok(stack, http, service, path) -> None:
    resp = http.get(_base(stack, service) + path, timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"status": "ok"}


@pytest.mark.parametrize(("service", "path"), READY)
def test_readiness_reports_database_broker_outbox_and_consumer_ok(stack, http, service, path) -> None:
    resp = http.get(_base(stack, service) + path, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ready", body
    checks = body["checks"]
    assert checks["database"]["ok"] is True, checks
    assert checks["broker"]["ok"] is True, checks
    outbox = checks["outbox"]
    assert outbox["ok"] is True, checks
    assert isinstance(outbox["pending"], int)
    assert outbox["pending"] >= 0
    assert outbox["oldest_age_seconds"] is None or outbox["oldest_age_seconds"] >= 0
    consumer = checks["consumer"]
    assert consumer["ok"] is True, checks
    assert 0 <= consumer["last_seen_age_seconds"] < 60


def test_every_service_process_is_running(stack) -> None:
    assert {name: proc.running for name, proc in stack.procs.items()} == dict.fromkeys(PROCESS_NAMES, True)


@pytest.mark.parametrize("service", ["admin", "main"])
def test_migrations_ran_on_the_service_mariadb(stack, mariadb, db_accounts, service) -> None:
    account = db_accounts[service]
    with (
        mariadb.connect(account.db, account.user, account.password) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        tables = {row[0] for row in cur.fetchall()}
    assert {"outbox", "inbox", "worker_heartbeat"} <= tables, sorted(tables)
