"""app.messaging.outbox: rows in the caller's session, and a wake-up that never raises."""

import json
import socket

from opentelemetry import trace

from app.extensions import db
from app.messaging.outbox import enqueue, wake_relay
from app.models import OutboxEvent


def test_enqueue_adds_to_the_session_and_commits_with_it(app):
    with app.app_context():
        row = enqueue(db.session, "product.likes_counted", {"product_id": 1, "likes": 3, "seq": 9})
        assert db.session.query(OutboxEvent).count() == 1  # autoflush: same session, not yet committed
        db.session.rollback()
        assert db.session.query(OutboxEvent).count() == 0
        row = enqueue(db.session, "product.likes_counted", {"product_id": 1, "likes": 3, "seq": 9})
        db.session.commit()
        stored = db.session.get(OutboxEvent, row.id)
        assert json.loads(stored.payload)["id"] == stored.event_id


def test_enqueue_stores_the_current_trace_context(app):
    tracer = trace.get_tracer("tests")
    with app.app_context(), tracer.start_as_current_span("request") as span:
        row = enqueue(db.session, "product.liked", {"product_id": 1, "likes": 1, "seq": 1})
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert json.loads(row.headers)["traceparent"].split("-")[1] == trace_id


def test_wake_relay_sends_one_datagram():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    try:
        wake_relay(f"127.0.0.1:{receiver.getsockname()[1]}")
        assert receiver.recv(16) == b"wake"
    finally:
        receiver.close()
