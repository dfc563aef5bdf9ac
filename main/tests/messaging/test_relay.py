"""The outbox relay against a fake publisher: order, confirms, retries, housekeeping."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.messaging import metrics, relay
from app.messaging.outbox import enqueue
from app.messaging.relay import (
    BrokerUnavailable,
    ConfirmTracker,
    Relay,
    message_from_row,
)
from app.models import InboxEvent, OutboxEvent, WorkerHeartbeat, utcnow


class FakePublisher:
    """Records each batch; answers with the outcome chosen per event id (default: confirmed)."""

    def __init__(self):
        self.batches = []
        self.outcomes = {}
        self.lose_after = None

    def publish_batch(self, messages):
        self.batches.append(messages)
        results = {m.event_id: self.outcomes.get(m.event_id) for m in messages}
        if self.lose_after is not None:
            confirmed = dict(list(results.items())[: self.lose_after])
            raise BrokerUnavailable("connection reset", confirmed=confirmed)
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
                enqueue(
                    db.session,
                    "product.liked",
                    {"product_id": i + 1, "likes": i, "seq": i},
                )
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


def run_once(app, publisher, **kwargs):
    with app.app_context():
        return Relay(publisher, **kwargs).run_once()


def test_publishes_pending_rows_in_id_order_and_marks_them(app, publisher, add_events):
    ids = add_events(5)

    assert run_once(app, publisher) == 5

    assert [m.event_id for m in publisher.batches[0]] == ids
    rows = outbox(app)
    assert all(row.published_at is not None for row in rows)
    assert all(row.attempts == 0 for row in rows)
    assert run_once(app, publisher) == 0
    assert len(publisher.batches) == 1


def test_batches_are_capped(app, publisher, add_events):
    ids = add_events(7)

    run_once(app, publisher, batch_size=3)
    run_once(app, publisher, batch_size=3)
    run_once(app, publisher, batch_size=3)

    assert [[m.event_id for m in batch] for batch in publisher.batches] == [
        ids[:3],
        ids[3:6],
        ids[6:],
    ]


def test_only_confirmed_rows_are_marked_and_nacked_ones_back_off(app, publisher, add_events):
    ids = add_events(3)
    publisher.outcomes[ids[1]] = "nacked by broker"
    before = utcnow()

    run_once(app, publisher)

    first, nacked, third = outbox(app)
    assert first.published_at is not None and third.published_at is not None
    assert nacked.published_at is None
    assert nacked.attempts == 1
    assert nacked.last_error == "nacked by broker"
    assert nacked.available_at >= before + timedelta(seconds=relay.retry_delay(1)) - timedelta(
        milliseconds=50
    )

    # Not due yet: the next pass leaves it alone.
    assert run_once(app, publisher) == 0

    # Once due it is sent again, and a confirm finally marks it.
    with app.app_context():
        db.session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    publisher.outcomes.clear()
    assert run_once(app, publisher) == 1
    assert [m.event_id for m in publisher.batches[-1]] == [ids[1]]
    assert outbox(app)[1].published_at is not None
    assert outbox(app)[1].attempts == 1


def test_returned_rows_are_retried_with_growing_backoff(app, publisher, add_events):
    (event_id,) = add_events(1)
    publisher.outcomes[event_id] = "returned by broker: 312 NO_ROUTE"

    for attempt in (1, 2, 3):
        with app.app_context():
            db.session.execute(update(OutboxEvent).values(available_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
        now = utcnow()
        run_once(app, publisher)
        (row,) = outbox(app)
        assert row.attempts == attempt
        delay = (row.available_at - now).total_seconds()
        assert relay.retry_delay(attempt) - 0.1 <= delay <= relay.retry_delay(attempt) + 1
    assert [relay.retry_delay(n) for n in (1, 2, 3, 20)] == [
        1,
        2,
        4,
        relay.RETRY_CAP_SECONDS,
    ]


def test_broker_loss_mid_batch_keeps_unconfirmed_rows_pending(app, publisher, add_events):
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


def test_published_counter_counts_confirmed_events(app, publisher, add_events):
    before = metrics.REGISTRY.get_sample_value("events_published_total", {"type": "product.liked"}) or 0
    ids = add_events(3)
    publisher.outcomes[ids[0]] = "nacked by broker"

    run_once(app, publisher)

    after = metrics.REGISTRY.get_sample_value("events_published_total", {"type": "product.liked"})
    assert after == before + 2


def test_message_carries_the_agreed_properties_and_trace_headers(app, publisher, add_events):
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    (event_id,) = add_events(1, headers={"traceparent": traceparent, "tracestate": "k=v", "secret": "x"})

    run_once(app, publisher)

    (message,) = publisher.batches[0]
    (row,) = outbox(app)
    props = message.properties
    assert message.routing_key == "product.liked"
    assert json.loads(message.body) == json.loads(row.payload)
    assert props.message_id == event_id == json.loads(message.body)["id"]
    assert props.type == "product.liked"
    assert props.content_type == "application/json"
    assert props.delivery_mode == 2
    assert props.app_id == "main"
    assert abs(props.timestamp - utcnow().timestamp()) < 60
    assert props.headers == {"traceparent": traceparent, "tracestate": "k=v"}


def test_broken_headers_column_is_sent_without_headers(app, add_events):
    add_events(1)
    with app.app_context():
        db.session.execute(update(OutboxEvent).values(headers="not json"))
        db.session.commit()
    (row,) = outbox(app)
    assert message_from_row(row).properties.headers == {}


def test_confirm_tracker_handles_multiple_acks_nacks_and_returns():
    tracker = ConfirmTracker()
    for tag, event_id in enumerate("abcdef", start=11):
        tracker.sent(tag, event_id)

    tracker.confirm(13, multiple=True, ack=True)  # a, b, c
    tracker.returned("d", "returned by broker: 312 NO_ROUTE")
    tracker.confirm(14, multiple=False, ack=True)  # d, but it was returned
    tracker.confirm(16, multiple=False, ack=False)  # f
    assert not tracker.done
    tracker.confirm(99, multiple=False, ack=True)  # unknown tag: ignored
    tracker.confirm(15, multiple=True, ack=True)  # e

    assert tracker.done
    assert tracker.results == {
        "a": None,
        "b": None,
        "c": None,
        "d": "returned by broker: 312 NO_ROUTE",
        "e": None,
        "f": "nacked by broker",
    }


def test_prune_deletes_only_old_sent_rows_and_old_inbox_rows(app, publisher, add_events, monkeypatch):
    monkeypatch.setattr(relay, "PRUNE_CHUNK", 2)
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
        deleted = Relay(publisher).prune(24, 168)
        remaining_inbox = set(db.session.execute(select(InboxEvent.message_id)).scalars())

    assert deleted == 4 + 3
    assert [row.id for row in outbox(app)] == [5, 6]
    assert remaining_inbox == {"new"}


def test_housekeeping_beats_and_sets_the_gauges(app, publisher, add_events):
    add_events(2)
    with app.app_context():
        old = utcnow() - timedelta(seconds=120)
        db.session.execute(update(OutboxEvent).where(OutboxEvent.id == 1).values(created_at=old))
        db.session.commit()
        Relay(publisher).housekeeping(24, 168)
        heartbeat = db.session.get(WorkerHeartbeat, "main-relay")

    assert heartbeat is not None
    assert abs((utcnow() - heartbeat.last_seen).total_seconds()) < 10
    assert metrics.REGISTRY.get_sample_value("outbox_pending") == 2
    assert 119 <= metrics.REGISTRY.get_sample_value("outbox_oldest_age_seconds") < 200


def test_wakeup_socket_receives_the_web_datagram():
    from app.messaging.outbox import wake_relay

    sock = relay.open_wakeup_socket("127.0.0.1:0")
    try:
        host, port = sock.getsockname()
        addr = f"{host}:{port}"
        wake_relay(addr)
        sock.settimeout(5)
        assert sock.recv(64) == b"wake"
    finally:
        sock.close()


def test_unusable_wakeup_address_falls_back_to_polling():
    assert relay.open_wakeup_socket("256.1.1.1:notaport") is None
    assert relay.open_wakeup_socket("") is None
