"""/api/ready reports database, broker, outbox and consumer; 503 when any is not fine."""

import datetime as dt
import logging
import socket

import pytest
from django.utils import timezone

from config import health
from config.log import TraceContextFilter
from messaging.models import OutboxEvent, WorkerHeartbeat

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker_up(monkeypatch):
    calls = []

    def probe():
        calls.append(1)
        return {"ok": True}

    monkeypatch.setattr(health, "_probe_broker", probe)
    return calls


@pytest.fixture
def consumer_alive(db):
    return WorkerHeartbeat.objects.create(name="admin-consumer", last_seen=timezone.now())


def test_ready_when_everything_is_fine(anon, broker_up, consumer_alive):
    response = anon.get("/api/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "outbox", "consumer"}
    assert body["checks"]["outbox"] == {
        "ok": True,
        "pending": 0,
        "oldest_age_seconds": None,
    }
    assert body["checks"]["consumer"]["ok"] is True


def test_unreachable_broker_is_503(anon, settings, consumer_alive):
    settings.RABBITMQ_URL = f"amqp://guest:secret-pw@127.0.0.1:{closed_port()}/%2F"
    response = anon.get("/api/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"] == {"ok": True}
    assert "secret-pw" not in response.content.decode()


def test_several_broker_addresses_none_answering_is_503(anon, settings, consumer_alive):
    settings.RABBITMQ_URL = ", ".join(
        f"amqp://guest:secret-pw@127.0.0.1:{closed_port()}/%2F" for _ in range(3)
    )
    response = anon.get("/api/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "AMQPConnectionError"}
    assert "secret-pw" not in response.content.decode()


def test_a_malformed_broker_address_is_not_ready_named_by_class(anon, settings, consumer_alive):
    settings.RABBITMQ_URL = "amqp://guest:secret-pw@127.0.0.1:5672/%2F, rabbit-2:5672"
    response = anon.get("/api/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConfigError"}
    assert "secret-pw" not in response.content.decode()


def test_broker_answer_is_cached_briefly(anon, broker_up, consumer_alive):
    anon.get("/api/ready")
    anon.get("/api/ready")
    assert len(broker_up) == 1


def test_stale_outbox_is_503(anon, broker_up, consumer_alive):
    old = timezone.now() - dt.timedelta(seconds=120)
    OutboxEvent.objects.create(event_id="e" * 36, event_type="product.created", payload="{}", created_at=old)
    OutboxEvent.objects.create(
        event_id="f" * 36,
        event_type="product.created",
        payload="{}",
        published_at=timezone.now(),
    )
    response = anon.get("/api/ready")
    assert response.status_code == 503
    outbox = response.json()["checks"]["outbox"]
    assert (outbox["ok"], outbox["pending"]) == (False, 1)
    assert outbox["oldest_age_seconds"] >= 119


def test_fresh_pending_outbox_is_still_ready(anon, broker_up, consumer_alive):
    OutboxEvent.objects.create(event_id="e" * 36, event_type="product.created", payload="{}")
    assert anon.get("/api/ready").status_code == 200


def test_missing_or_stale_consumer_is_503(anon, broker_up):
    response = anon.get("/api/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["consumer"] == {
        "ok": False,
        "last_seen_age_seconds": None,
    }
    WorkerHeartbeat.objects.create(name="admin-consumer", last_seen=timezone.now() - dt.timedelta(seconds=45))
    consumer = anon.get("/api/ready").json()["checks"]["consumer"]
    assert consumer["ok"] is False
    assert consumer["last_seen_age_seconds"] >= 45


def test_database_failure_is_reported(monkeypatch):
    class Broken:
        def __enter__(self):
            raise RuntimeError("db down")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(health.connection, "cursor", lambda: Broken())
    assert health.check_database() == {"ok": False, "error": "RuntimeError"}


class _Printed(logging.Handler):
    """What the stdout handler prints: the same filter, records kept in a list."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(TraceContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_not_ready_answer_is_not_logged_as_an_error(anon, settings, consumer_alive):
    """A probe polled while the stack starts: neither django.request nor pika log the 503 as an error."""
    settings.RABBITMQ_URL = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    printed = _Printed()
    logging.getLogger().addHandler(printed)
    try:
        response = anon.get("/api/ready")
    finally:
        logging.getLogger().removeHandler(printed)
    assert response.status_code == 503
    loud = [f"{r.name}: {r.getMessage()}" for r in printed.records if r.levelno >= logging.ERROR]
    assert not loud, loud
