"""/flask/api/dead-letters against a real throwaway RabbitMQ node: grouped, shown, retried, archived."""

import contextlib
import hashlib
import json

import pika
import pika.exceptions
import pytest

from app.extensions import db
from app.messaging import topology
from tests.conftest import make_app
from tests.messaging.conftest import admin_event
from tests.messaging.rabbit import RabbitNode
from tests.messaging.test_real_broker import count, publish_admin, wait_for
from tests.operators import OperatorKey

pytestmark = pytest.mark.timeout(180)

BASE = "/flask/api/dead-letters"
TOPOLOGY = topology.TOPOLOGY
FINGERPRINT = "a1b2c3d4e5f60718"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def rabbit():
    node = RabbitNode().start()
    yield node
    node.remove()


@pytest.fixture
def amqp(rabbit):
    conn = pika.BlockingConnection(rabbit.params())
    channel = conn.channel()
    channel.exchange_declare(exchange=TOPOLOGY.source_exchange, exchange_type="topic", durable=True)
    TOPOLOGY.declare_consumer(channel)
    channel.queue_purge(TOPOLOGY.queue)
    channel.queue_purge(TOPOLOGY.dead_letter_queue)
    channel.confirm_delivery()
    yield channel
    with contextlib.suppress(pika.exceptions.AMQPError):  # a test may have restarted the node
        conn.close()


@pytest.fixture
def key():
    return OperatorKey()


@pytest.fixture
def ops(rabbit, key, tmp_path):
    app = make_app(
        f"sqlite:///{tmp_path / 'main.sqlite3'}", RABBITMQ_URL=rabbit.url, OPERATOR_JWKS=key.jwks()
    )
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key.token(sub='ops-carol')}"
    yield client
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def dead_letter_as_the_consumer_does(channel, envelope):
    """Publish a copy to main.dlx with the failure headers, as main's consumer does when it gives up."""
    headers = {
        "x-failure-reason": "handler_error",
        "x-failure-exception-type": "IntegrityError",
        "x-failure-exception-message": "FOREIGN KEY constraint failed",
        "x-failure-where": "app.messaging.handlers:apply",
        "x-failure-fingerprint": FINGERPRINT,
        "x-failure-attempts": 1,
        "x-failure-first-at": "2026-12-06T16:40:00.123456+00:00",
        "x-failure-last-at": "2026-12-06T16:40:00.123456+00:00",
        "x-failure-host": "main-1",
        "x-failure-queue": TOPOLOGY.queue,
    }
    channel.basic_publish(
        TOPOLOGY.dead_letter_exchange,
        envelope["type"],
        json.dumps(envelope).encode(),
        pika.BasicProperties(
            message_id=envelope["id"],
            type=envelope["type"],
            content_type="application/json",
            delivery_mode=2,
            headers=headers,
        ),
        mandatory=True,
    )


def rejected_by_a_consumer(channel, envelope):
    """Route an event to main's queue and reject it there: the broker dead-letters it with x-death."""
    publish_admin(channel, envelope)
    wait_for(lambda: count(channel, TOPOLOGY.queue) == 1, what="event in main")
    method, _props, _body = channel.basic_get(TOPOLOGY.queue, auto_ack=False)
    channel.basic_reject(method.delivery_tag, requeue=False)


def test_dead_letters_are_grouped_shown_retried_to_main_and_archived(rabbit, amqp, ops):
    first = admin_event("product.created", {"id": 1, "title": "Mug", "image": "", "version": 1})
    second = admin_event("product.updated", {"id": 1, "title": "Big mug", "image": "", "version": 2})
    poison = admin_event("product.deleted", {"id": 9, "version": 1})
    dead_letter_as_the_consumer_does(amqp, first)
    dead_letter_as_the_consumer_does(amqp, second)
    rejected_by_a_consumer(amqp, poison)
    wait_for(lambda: count(amqp, TOPOLOGY.dead_letter_queue) == 3, what="three dead letters")

    assert ops.get(f"{BASE}/depth").get_json() == {"queue": "main.dlq", "depth": 3}

    overview = ops.get(BASE).get_json()
    groups = {group["fingerprint"]: group for group in overview["groups"]}
    broker_group = hashlib.sha256(f"broker|rejected|{TOPOLOGY.queue}".encode()).hexdigest()[:16]
    assert set(groups) == {FINGERPRINT, broker_group}
    assert groups[FINGERPRINT]["count"] == 2
    assert groups[FINGERPRINT]["exception_type"] == "IntegrityError"
    assert sorted(groups[FINGERPRINT]["event_types"]) == ["product.created", "product.updated"]
    assert (groups[broker_group]["count"], groups[broker_group]["reason"]) == (1, "rejected")
    assert overview["count"] == 3 and overview["capped"] is False

    page = ops.get(f"{BASE}?fingerprint={FINGERPRINT}&limit=1").get_json()
    assert page["count"] == 2 and len(page["results"]) == 1
    assert page["results"][0]["fingerprint"] == FINGERPRINT

    shown = ops.get(f"{BASE}/{poison['id']}").get_json()
    assert shown["payload"] == poison and shown["source"] == "broker"
    assert shown["x_death"][0]["reason"] == "rejected" and "x-death" not in shown["headers"]
    assert ops.get(f"{BASE}/no-such-id").status_code == 404

    # The listing and showing gave every message back.
    wait_for(lambda: count(amqp, TOPOLOGY.dead_letter_queue) == 3, what="dead letters back")

    retried = ops.post(f"{BASE}/retry", json={"fingerprint": FINGERPRINT})
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["retried"] == 2
    assert sorted(retried.get_json()["message_ids"]) == sorted([first["id"], second["id"]])

    # Back on main's own queue (through main.redrive), untouched but for the retry count.
    wait_for(lambda: count(amqp, TOPOLOGY.queue) == 2, what="retried messages on main")
    back = {}
    for _ in range(2):
        method, props, body = amqp.basic_get(TOPOLOGY.queue, auto_ack=True)
        back[props.message_id] = (json.loads(body), props.type, props.headers.get("x-redriven"))
    assert back == {
        first["id"]: (first, "product.created", 1),
        second["id"]: (second, "product.updated", 1),
    }
    wait_for(lambda: count(amqp, TOPOLOGY.dead_letter_queue) == 1, what="only the poison left")

    archived = ops.post(
        f"{BASE}/archive", json={"message_id": poison["id"], "reason": "product 9 never existed"}
    )
    assert archived.get_json() == {"archived": 1, "message_ids": [poison["id"]]}
    assert count(amqp, TOPOLOGY.dead_letter_queue) == 0
    assert ops.post(f"{BASE}/retry", json={"message_id": poison["id"]}).status_code == 404

    audit = ops.get(f"{BASE}/audit").get_json()["results"]
    assert [(row["action"], row["actor"], row["archived"]) for row in audit] == [
        ("archive", "ops-carol", True),
        ("retry", "ops-carol", False),
        ("retry", "ops-carol", False),
    ]
    assert audit[0]["event_type"] == "product.deleted" and audit[0]["reason"] == "product 9 never existed"


def test_a_stopped_broker_is_503_and_the_next_call_works_again(rabbit, amqp, ops):
    assert ops.get(f"{BASE}/depth").status_code == 200
    rabbit.stop()
    try:
        down = ops.get(BASE)
        assert down.status_code == 503
        assert down.get_json()["error"] == "broker_unavailable"
        assert "main.dlq" in down.get_json()["detail"]
    finally:
        rabbit.start()
    wait_for(lambda: ops.get(f"{BASE}/depth").status_code == 200, what="operations back with the broker")
