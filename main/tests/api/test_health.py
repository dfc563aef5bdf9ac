"""/flask/api/health, /flask/api/ready and /metrics."""

from datetime import timedelta

import pytest

from app import services
from app.extensions import db
from app.models import OutboxEvent, WorkerHeartbeat, utcnow


@pytest.fixture(autouse=True)
def _fresh_broker_cache():
    services._broker_cache.clear()
    yield
    services._broker_cache.clear()


@pytest.fixture
def broker_up(monkeypatch):
    monkeypatch.setattr(services, "_connect_broker", lambda url, ca_file: {"ok": True})


def heartbeat(app, age_seconds):
    with app.app_context():
        db.session.merge(
            WorkerHeartbeat(
                name="main-consumer",
                last_seen=utcnow() - timedelta(seconds=age_seconds),
            )
        )
        db.session.commit()


def pending_outbox(app, age_seconds):
    with app.app_context():
        created = utcnow() - timedelta(seconds=age_seconds)
        db.session.add(
            OutboxEvent(
                event_id=f"00000000-0000-4000-8000-{int(age_seconds):012d}",
                event_type="product.liked",
                payload="{}",
                headers="{}",
                created_at=created,
                available_at=created,
            )
        )
        db.session.commit()


def test_health_is_ok(client):
    response = client.get("/flask/api/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_everything_is_healthy(app, client, broker_up):
    heartbeat(app, 3)
    pending_outbox(app, 5)

    response = client.get("/flask/api/ready")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    assert body["checks"]["outbox"]["ok"] is True
    assert body["checks"]["outbox"]["pending"] == 1
    assert 4 <= body["checks"]["outbox"]["oldest_age_seconds"] < 60
    assert body["checks"]["consumer"]["ok"] is True
    assert 2 <= body["checks"]["consumer"]["last_seen_age_seconds"] < 30


def test_not_ready_when_the_broker_is_unreachable(app, client):
    # conftest points RABBITMQ_URL at port 1 where nothing listens: a real, failing connect.
    heartbeat(app, 1)

    response = client.get("/flask/api/ready")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_several_broker_addresses_none_answering_or_malformed(monkeypatch):
    template = "amqp://guest:secret-pw@127.0.0.1:{}/%2F"  # pragma: allowlist secret
    down = ", ".join(template.format(port) for port in (1, 2, 3))
    assert services._connect_broker(down, None) == {"ok": False, "error": "AMQPConnectionError"}
    malformed = "amqp://guest:secret-pw@127.0.0.1:1/%2F, rabbit-2:5672"  # pragma: allowlist secret
    assert services._connect_broker(malformed, None) == {"ok": False, "error": "ConfigError"}


def test_broker_result_is_cached_briefly(monkeypatch):
    calls = []
    monkeypatch.setattr(services, "_connect_broker", lambda url, ca: calls.append(url) or {"ok": True})

    services.check_broker("amqp://x", ttl=60)
    services.check_broker("amqp://x", ttl=60)
    services.check_broker("amqp://x", ttl=0)

    assert len(calls) == 2


def test_not_ready_when_the_outbox_is_stuck(app, client, broker_up):
    heartbeat(app, 1)
    pending_outbox(app, 61)

    body = client.get("/flask/api/ready").get_json()

    assert body["status"] == "not_ready"
    assert body["checks"]["outbox"]["ok"] is False


@pytest.mark.parametrize("age", [None, 31])
def test_not_ready_without_a_recent_consumer_heartbeat(app, client, broker_up, age):
    if age is not None:
        heartbeat(app, age)

    response = client.get("/flask/api/ready")

    assert response.status_code == 503
    assert response.get_json()["checks"]["consumer"]["ok"] is False


def test_not_ready_when_the_database_is_gone(tmp_path, broker_up):
    from tests.conftest import make_app

    app = make_app(f"sqlite:///{tmp_path / 'gone.sqlite3'}")
    (tmp_path / "gone.sqlite3").unlink()
    (tmp_path / "gone.sqlite3").mkdir()  # a directory where the file was: every query fails
    with app.app_context():
        db.engine.dispose()

    response = app.test_client().get("/flask/api/ready")

    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["ok"] is False


def test_metrics_exposes_request_metrics_by_route(client, add_product):
    add_product(7)
    client.post("/flask/api/products/7/like")

    text = client.get("/metrics").get_data(as_text=True)

    assert "flask_http_request_total" in text
    assert 'url_rule="/flask/api/products/<product_id:product_id>/like"' in text
