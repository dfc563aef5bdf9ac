"""Relay and consumer against a real throwaway RabbitMQ node (started and stopped by the fixture)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pika
import pytest
from eventbus.publisher import AmqpPublisher
from sqlalchemy import func, select, update

from app.extensions import db
from app.messaging import relay as relay_module
from app.messaging import topology
from app.messaging.dlq import dlq_command
from app.messaging.outbox import enqueue, wake_relay
from app.models import InboxEvent, OutboxEvent, Product, WorkerHeartbeat, utcnow
from tests.conftest import make_app
from tests.messaging.conftest import admin_event
from tests.messaging.rabbit import RabbitNode, free_port

pytestmark = pytest.mark.timeout(240)

MAIN_DIR = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


@pytest.fixture(scope="module")
def rabbit():
    node = RabbitNode().start()
    yield node
    node.remove()


@pytest.fixture
def broker_app(rabbit, tmp_path):
    url = f"sqlite:///{tmp_path / 'main.sqlite3'}"
    app = make_app(url, RABBITMQ_URL=rabbit.url)
    app.config["TEST_DATABASE_URL"] = url
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def amqp(rabbit):
    conn = pika.BlockingConnection(rabbit.params())
    yield conn.channel()
    if conn.is_open:
        conn.close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """A `flask --app app <command>` process in its own process group."""

    def __init__(self, command, app, tmp_path, **env):
        self.log = tmp_path / f"{command}.log"
        self.metrics_port = free_port()
        environ = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": app.config["TEST_DATABASE_URL"],
            "RABBITMQ_URL": app.config["RABBITMQ_URL"],
            "METRICS_PORT": str(self.metrics_port),
            "OUTBOX_WAKEUP_ADDR": "",
            **env,
        }
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [FLASK, "--app", "app", command],
                cwd=MAIN_DIR,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def stop(self):
        """SIGTERM, then the exit code (killed and -9 after 30 s)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                return -9
        return self.proc.returncode

    def output(self):
        return self.log.read_text(errors="replace")


@pytest.fixture
def workers():
    started = []
    yield started
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout=45, what="condition", worker=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if worker is not None and worker.proc.poll() is not None:
            pytest.fail(f"{what}: worker exited {worker.proc.returncode}\n{worker.output()[-4000:]}")
        if time.monotonic() > deadline:
            extra = worker.output()[-4000:] if worker is not None else ""
            pytest.fail(f"timed out waiting for {what}\n{extra}")
        time.sleep(0.1)


def collecting_queue(channel, name):
    """Declare a classic durable queue bound to main.events that collects everything main publishes."""
    topology.TOPOLOGY.declare_publisher(channel)
    channel.queue_declare(name, durable=True)
    channel.queue_bind(name, topology.TOPOLOGY.events_exchange, "product.#")


def drain(channel, queue):
    messages = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return messages
        messages.append((method, props, body))


def count(channel, queue):
    return channel.queue_declare(queue, passive=True).method.message_count


def add_likes(app, n, start=1):
    with app.app_context():
        rows = [
            enqueue(
                db.session,
                "product.liked",
                {"product_id": start + i, "likes": 1, "seq": 1},
            )
            for i in range(n)
        ]
        db.session.commit()
        ids = [row.event_id for row in rows]
        db.session.remove()
    return ids


def pending(app):
    with app.app_context():
        n = db.session.execute(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        ).scalar_one()
        db.session.remove()
    return n


def publish_admin(channel, env, *, body=None, message_id="same", exchange=topology.TOPOLOGY.source_exchange):
    channel.basic_publish(
        exchange,
        env["type"],
        body if body is not None else json.dumps(env).encode(),
        pika.BasicProperties(
            message_id=env["id"] if message_id == "same" else message_id,
            type=env["type"],
            content_type="application/json",
            delivery_mode=2,
            app_id="admin",
            headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        ),
        mandatory=True,
    )


def test_relay_publishes_with_confirms_and_retries_returns(broker_app, rabbit, amqp):
    publisher = AmqpPublisher(topology.connection_parameters(rabbit.url), topology.TOPOLOGY)
    publisher.connect()
    try:
        amqp.exchange_delete(topology.TOPOLOGY.events_exchange)  # no queue bound: everything is returned
        publisher.close()
        publisher.connect()
        (unroutable,) = add_likes(broker_app, 1)
        relay = relay_module.build(broker_app, wakeup_addr=None)
        relay.publisher = publisher
        assert relay.run_once() == 1
        with broker_app.app_context():
            row = db.session.execute(select(OutboxEvent)).scalar_one()
            assert (row.published_at, row.attempts) == (None, 1)
            assert "312" in row.last_error and "NO_ROUTE" in row.last_error
            db.session.remove()

        collecting_queue(amqp, "relay-confirms")
        ids = add_likes(broker_app, 700, start=2)
        with broker_app.app_context():
            db.session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
            db.session.remove()
            assert relay.run_once() == 500
            assert relay.run_once() == 201
            assert relay.run_once() == 0
        assert pending(broker_app) == 0
        messages = drain(amqp, "relay-confirms")
        # One batch is written in id order on one channel, so the queue keeps that order.
        assert [props.message_id for _m, props, _b in messages] == [unroutable, *ids]
        _method, props, body = messages[1]
        envelope = json.loads(body)
        assert envelope["id"] == props.message_id and envelope["type"] == props.type == "product.liked"
        assert (props.delivery_mode, props.app_id, props.content_type) == (
            2,
            "main",
            "application/json",
        )
    finally:
        publisher.close()


def test_consumer_applies_dedupes_and_dead_letters(broker_app, rabbit, amqp, tmp_path, workers):
    amqp.exchange_declare(exchange="admin.events", exchange_type="topic", durable=True)  # admin's relay's
    topology.TOPOLOGY.declare_consumer(amqp)
    amqp.queue_purge(topology.TOPOLOGY.queue)
    amqp.queue_purge(topology.TOPOLOGY.dead_letter_queue)
    amqp.confirm_delivery()
    create = admin_event("product.created", {"id": 1, "title": "Mug", "image": "", "version": 1})
    update_ = admin_event("product.updated", {"id": 1, "title": "Big mug", "image": "", "version": 2})
    gone = admin_event("product.deleted", {"id": 2, "version": 3})
    publish_admin(amqp, update_)  # before the create: order must not matter
    publish_admin(amqp, create)
    publish_admin(amqp, create)  # redelivered copy: same message id
    publish_admin(amqp, create, body=b"{not json")  # poison
    publish_admin(amqp, gone)

    consumer = Worker("consume", broker_app, tmp_path)
    workers.append(consumer)

    def state():
        with broker_app.app_context():
            p1 = db.session.get(Product, 1)
            p2 = db.session.get(Product, 2)
            inbox = db.session.execute(select(func.count()).select_from(InboxEvent)).scalar_one()
            result = (
                p1 and (p1.title, p1.version, p1.deleted),
                p2 and (p2.deleted, p2.version),
                inbox,
            )
            db.session.remove()
        return result

    wait_for(
        lambda: state() == (("Big mug", 2, False), (True, 3), 3),
        what="events applied",
        worker=consumer,
    )
    wait_for(
        lambda: count(amqp, topology.TOPOLOGY.dead_letter_queue) == 1,
        what="poison dead-lettered",
        worker=consumer,
    )
    wait_for(lambda: count(amqp, topology.TOPOLOGY.queue) == 0, what="queue drained", worker=consumer)

    def metrics_once_counted():
        text = consumer.metrics()
        return text if 'events_duplicates_total{type="product.created"} 1.0' in text else None

    text = wait_for(metrics_once_counted, what="duplicate counted")
    assert 'events_dead_lettered_total{reason="bad_json",type="product.created"} 1.0' in text
    assert "consumer_up 1.0" in text
    wait_for(lambda: _heartbeat(broker_app, "main-consumer"), what="consumer heartbeat")

    # dlq list looks without taking; a valid dead letter is redriven to admin.events and applied.
    assert dlq_command(broker_app, "list", 10) == 1
    # The quorum queue takes the returned message back asynchronously.
    wait_for(lambda: count(amqp, topology.TOPOLOGY.dead_letter_queue) == 1, what="listed message back")
    assert dlq_command(broker_app, "list", 10) == 1
    wait_for(lambda: count(amqp, topology.TOPOLOGY.dead_letter_queue) == 1, what="listed message back")
    assert dlq_command(broker_app, "purge", 10) == 1
    assert count(amqp, topology.TOPOLOGY.dead_letter_queue) == 0
    late = admin_event("product.created", {"id": 5, "title": "Lamp", "image": "", "version": 1})
    publish_admin(amqp, late, exchange=topology.TOPOLOGY.dead_letter_exchange)
    wait_for(lambda: count(amqp, topology.TOPOLOGY.dead_letter_queue) == 1, what="dead letter parked")
    assert dlq_command(broker_app, "redrive", 10) == 1
    wait_for(
        lambda: _product(broker_app, 5) == ("Lamp", 1),
        what="redriven event applied",
        worker=consumer,
    )
    assert count(amqp, topology.TOPOLOGY.dead_letter_queue) == 0

    assert consumer.stop() == 0
    assert '"message": "consumer stopped"' in consumer.output()


def test_relay_and_consumer_survive_a_broker_restart(broker_app, rabbit, amqp, tmp_path, workers):
    collecting_queue(amqp, "relay-restart")
    amqp.queue_purge("relay-restart")
    amqp.exchange_declare(exchange="admin.events", exchange_type="topic", durable=True)  # admin's relay's
    topology.TOPOLOGY.declare_consumer(amqp)
    amqp.queue_purge(topology.TOPOLOGY.queue)
    wake_port = free_udp_port()
    relay = Worker(
        "relay-outbox",
        broker_app,
        tmp_path,
        OUTBOX_WAKEUP_ADDR=f"127.0.0.1:{wake_port}",
    )
    consumer = Worker("consume", broker_app, tmp_path)
    workers.extend([relay, consumer])

    add_likes(broker_app, 3)
    wake_relay(f"127.0.0.1:{wake_port}")
    wait_for(lambda: pending(broker_app) == 0, what="first rows published", worker=relay)
    wait_for(
        lambda: _heartbeat(broker_app, "main-relay"),
        what="relay heartbeat",
        worker=relay,
    )
    # The outage must hit a connected consumer: one still starting only waits for the broker.
    wait_for(lambda: "consuming queue" in consumer.output(), what="consumer connected", worker=consumer)
    amqp.connection.close()

    rabbit.stop()
    add_likes(broker_app, 2, start=10)  # written while the broker is down: they wait
    for worker in (relay, consumer):
        wait_for(
            lambda w=worker: "broker unavailable" in w.output(),
            what="outage noticed",
            worker=worker,
        )
    assert pending(broker_app) == 2
    rabbit.start()

    wait_for(
        lambda: pending(broker_app) == 0,
        timeout=90,
        what="rows published after restart",
        worker=relay,
    )
    conn = pika.BlockingConnection(rabbit.params())
    try:
        channel = conn.channel()
        assert count(channel, "relay-restart") == 5
        channel.confirm_delivery()
        event = admin_event("product.created", {"id": 9, "title": "After", "image": "", "version": 1})
        publish_admin(channel, event)
    finally:
        conn.close()
    wait_for(
        lambda: _product(broker_app, 9) == ("After", 1),
        timeout=90,
        what="consumed after restart",
        worker=consumer,
    )

    assert relay.stop() == 0
    assert consumer.stop() == 0
    assert "reconnecting" in relay.output() and "reconnecting" in consumer.output()


def _product(app, pid):
    with app.app_context():
        row = db.session.get(Product, pid)
        result = None if row is None else (row.title, row.version)
        db.session.remove()
    return result


def _heartbeat(app, name):
    with app.app_context():
        row = db.session.get(WorkerHeartbeat, name)
        db.session.remove()
    return row is not None
