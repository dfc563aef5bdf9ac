"""main's relay store: claim in id order, mark only what the broker confirmed, back off the rest.

The loop itself (reconnects, housekeeping thread, unknown outcomes) is eventbus's and tested in
lib/eventbus; here the SQLAlchemy store runs under it against main's real tables.
"""

import json
import threading
from datetime import timedelta

import pytest
from eventbus.publisher import BrokerUnavailable, open_wakeup_socket
from eventbus.relay import Housekeeper
from eventbus.runtime import StopSignal
from sqlalchemy import select, update

from app.extensions import db
from app.messaging import metrics, relay
from app.messaging.outbox import enqueue
from app.models import InboxEvent, OutboxEvent, WorkerHeartbeat, utcnow


class FakePublisher:
    """Answers with the outcome chosen per event id (default: confirmed); may lose the broker after n."""

    def __init__(self):
        self.batches, self.outcomes, self.lose_after = [], {}, None

    def publish_batch(self, messages):
        self.batches.append(messages)
        results = {m.event_id: self.outcomes.get(m.event_id) for m in messages}
        if self.lose_after is not None:
            raise BrokerUnavailable(
                "connection reset", confirmed=dict(list(results.items())[: self.lose_after])
            )
        return results


@pytest.fixture
def publisher():
    return FakePublisher()


@pytest.fixture
def add_events(app):
    """Return a function that commits n product.liked outbox rows; it returns their event ids."""

    def add(n, headers=None):
        with app.app_context():
            rows = [
                enqueue(db.session, "product.liked", {"product_id": i + 1, "likes": i, "seq": i})
                for i in range(n)
            ]
            if headers is not None:
                for row in rows:
                    row.headers = json.dumps(headers)
            db.session.commit()
            ids = [row.event_id for row in rows]
            db.session.remove()
            return ids

    return add


def outbox(app):
    with app.app_context():
        rows = db.session.execute(select(OutboxEvent).order_by(OutboxEvent.id)).scalars().all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def run_once(app, publisher, batch_size=500):
    worker = relay.build(app, batch_size=batch_size, wakeup_addr=None)
    worker.publisher = publisher
    return worker.run_once()


def test_publishes_pending_rows_in_id_order_in_capped_batches_and_marks_them(app, publisher, add_events):
    ids = add_events(7)
    before = metrics.REGISTRY.get_sample_value("events_published_total", {"type": "product.liked"}) or 0

    assert [run_once(app, publisher, batch_size=3) for _ in range(4)] == [3, 3, 1, 0]

    assert [[m.event_id for m in batch] for batch in publisher.batches] == [ids[:3], ids[3:6], ids[6:]]
    assert all(row.published_at is not None and row.attempts == 0 for row in outbox(app))
    after = metrics.REGISTRY.get_sample_value("events_published_total", {"type": "product.liked"})
    assert after == before + 7


def test_only_confirmed_rows_are_marked_and_nacked_ones_back_off(app, publisher, add_events):
    ids = add_events(3)
    publisher.outcomes[ids[1]] = "nacked by broker"
    before = utcnow()

    run_once(app, publisher)

    first, nacked, third = outbox(app)
    assert first.published_at is not None and third.published_at is not None
    assert (nacked.published_at, nacked.attempts, nacked.last_error) == (None, 1, "nacked by broker")
    assert nacked.available_at >= before + timedelta(seconds=1) - timedelta(milliseconds=50)
    assert run_once(app, publisher) == 0  # not due yet

    with app.app_context():
        db.session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    publisher.outcomes.clear()
    assert run_once(app, publisher) == 1
    assert [m.event_id for m in publisher.batches[-1]] == [ids[1]]
    assert outbox(app)[1].published_at is not None


def test_broker_loss_mid_batch_keeps_unconfirmed_rows_pending_untouched(app, publisher, add_events):
    ids = add_events(4)
    publisher.lose_after = 2

    with pytest.raises(BrokerUnavailable):
        run_once(app, publisher)

    rows = outbox(app)
    assert [row.published_at is not None for row in rows] == [True, True, False, False]
    assert [row.attempts for row in rows] == [0, 0, 0, 0]
    publisher.lose_after = None
    assert run_once(app, publisher) == 2
    assert [m.event_id for m in publisher.batches[-1]] == ids[2:]


def test_the_message_carries_the_agreed_properties_and_trace_headers(app, publisher, add_events):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    (event_id,) = add_events(1, headers={"traceparent": traceparent, "tracestate": "k=v", "secret": "x"})

    run_once(app, publisher)

    (message,) = publisher.batches[0]
    (row,) = outbox(app)
    props = message.properties
    assert json.loads(message.body) == json.loads(row.payload)
    assert (message.routing_key, props.message_id, props.type, props.app_id) == (
        "product.liked",
        event_id,
        "product.liked",
        "main",
    )
    assert abs(props.timestamp - utcnow().timestamp()) < 60
    assert props.headers == {"traceparent": traceparent, "tracestate": "k=v"}


def _housekeeper(app):
    return Housekeeper(
        relay.build(app).store,
        metrics.RELAY,
        relay.HEARTBEAT_NAME,
        StopSignal(),
        outbox_retention=timedelta(hours=24),
        inbox_retention=timedelta(hours=168),
    )


def test_prune_deletes_only_old_sent_rows_and_old_inbox_rows(app, publisher, add_events, monkeypatch):
    from eventbus import relay as core

    monkeypatch.setattr(core, "PRUNE_CHUNK", 2)
    add_events(6)
    run_once(app, publisher, batch_size=5)  # 5 published, 1 pending
    now = utcnow()
    with app.app_context():
        old = now - timedelta(hours=25)
        db.session.execute(update(OutboxEvent).where(OutboxEvent.id <= 4).values(published_at=old))
        db.session.add_all(
            [
                InboxEvent(
                    message_id=f"old-{i}",
                    event_type="product.created",
                    received_at=now - timedelta(hours=200),
                )
                for i in range(3)
            ]
            + [InboxEvent(message_id="new", event_type="product.created", received_at=now)]
        )
        db.session.commit()
        db.session.remove()

    assert _housekeeper(app).prune() == 4 + 3
    assert [row.id for row in outbox(app)] == [5, 6]
    with app.app_context():
        assert set(db.session.execute(select(InboxEvent.message_id)).scalars()) == {"new"}


def test_housekeeping_beats_and_sets_the_gauges(app, add_events):
    add_events(2)
    with app.app_context():
        old = utcnow() - timedelta(seconds=120)
        db.session.execute(update(OutboxEvent).where(OutboxEvent.id == 1).values(created_at=old))
        db.session.commit()
    _housekeeper(app).once()
    with app.app_context():
        heartbeat = db.session.get(WorkerHeartbeat, "main-relay")
    assert heartbeat is not None and abs((utcnow() - heartbeat.last_seen).total_seconds()) < 10
    assert metrics.REGISTRY.get_sample_value("outbox_pending") == 2
    assert 119 <= metrics.REGISTRY.get_sample_value("outbox_oldest_age_seconds") < 200


def test_the_web_datagram_reaches_the_relay_socket():
    from app.messaging.outbox import wake_relay

    sock = open_wakeup_socket("127.0.0.1:0")
    try:
        host, port = sock.getsockname()
        wake_relay(f"{host}:{port}")
        sock.settimeout(5)
        assert sock.recv(64) == b"wake"
    finally:
        sock.close()


def test_the_relay_process_keeps_beating_while_the_broker_is_down_and_stops_cleanly(app):
    import socket

    import pika

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = pika.ConnectionParameters("127.0.0.1", s.getsockname()[1], connection_attempts=1)
    worker = relay.build(app, params=closed, wakeup_addr=None)
    threading.Timer(0.5, worker.stop.request).start()
    assert worker.run() == 0
    with app.app_context():
        assert db.session.get(WorkerHeartbeat, "main-relay") is not None


def test_the_inbox_is_indexed_by_age_for_pruning(app):
    from sqlalchemy import inspect

    with app.app_context():
        indexes = inspect(db.engine).get_indexes("inbox")
    assert any(index["column_names"] == ["received_at"] for index in indexes), indexes
