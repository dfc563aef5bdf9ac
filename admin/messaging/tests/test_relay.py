"""admin's relay store: claim in id order, mark only what the broker confirmed, back off the rest.

The loop itself (reconnects, housekeeping thread, unknown outcomes) is eventbus's and tested in
lib/eventbus; here the Django store runs under it against admin's real tables.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading

import pytest
from django.utils import timezone
from eventbus.publisher import BrokerUnavailable, open_wakeup_socket
from eventbus.relay import Housekeeper
from eventbus.runtime import StopSignal
from prometheus_client import REGISTRY

from messaging import contract, relay
from messaging.models import InboxEvent, OutboxEvent, WorkerHeartbeat
from messaging.outbox import enqueue

pytestmark = pytest.mark.django_db


class FakePublisher:
    """Confirms everything except the events it is told to fail; may lose the broker after n."""

    def __init__(self, fail=None, lose_after=None):
        self.batches, self.fail, self.lose_after = [], fail or {}, lose_after

    def publish_batch(self, messages):
        self.batches.append(messages)
        outcomes = {m.event_id: self.fail.get(i) for i, m in enumerate(messages)}
        if self.lose_after is not None:
            raise BrokerUnavailable("gone", confirmed=dict(list(outcomes.items())[: self.lose_after]))
        return outcomes


def make_rows(n, event_type=contract.PRODUCT_UPDATED):
    return [enqueue(event_type, {"id": i + 1, "title": f"P{i}", "image": "", "version": 1}) for i in range(n)]


def run_once(publisher, batch_size=500):
    worker = relay.build(batch_size=batch_size, wakeup_addr=None)
    worker.publisher = publisher
    return worker.run_once()


def test_a_batch_is_claimed_in_id_order_and_marked_published():
    rows = make_rows(5)
    publisher = FakePublisher()
    before = REGISTRY.get_sample_value("events_published_total", {"type": "product.updated"}) or 0

    assert run_once(publisher, batch_size=3) == 3
    assert run_once(publisher, batch_size=3) == 2
    assert run_once(publisher, batch_size=3) == 0

    sent = [m.event_id for batch in publisher.batches for m in batch]
    assert sent == [r.event_id for r in rows]
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert REGISTRY.get_sample_value("events_published_total", {"type": "product.updated"}) == before + 5


def test_messages_carry_the_agreed_properties_and_the_stored_trace_context():
    row = make_rows(1)[0]
    row.headers = json.dumps({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "junk": 1})
    row.save()
    publisher = FakePublisher()
    run_once(publisher)
    message = publisher.batches[0][0]
    props = message.properties
    assert message.body == row.payload.encode() and json.loads(message.body)["id"] == row.event_id
    assert (props.message_id, props.type, props.app_id) == (row.event_id, "product.updated", "admin")
    assert props.timestamp == int(row.created_at.timestamp())
    assert props.headers == {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}


def test_only_confirmed_rows_are_marked_and_failed_ones_back_off():
    rows = make_rows(4)
    started = timezone.now()
    run_once(FakePublisher(fail={1: "nacked by broker", 3: "returned by broker: 312 NO_ROUTE"}))

    fresh = {r.event_id: r for r in OutboxEvent.objects.all()}
    assert fresh[rows[0].event_id].published_at is not None
    assert fresh[rows[2].event_id].published_at is not None
    for i, reason in ((1, "nacked by broker"), (3, "returned by broker: 312 NO_ROUTE")):
        row = fresh[rows[i].event_id]
        assert (row.published_at, row.attempts, row.last_error) == (None, 1, reason)
        assert row.available_at >= started + dt.timedelta(seconds=1)
    assert run_once(FakePublisher()) == 0  # backing off: not claimed again at once


def test_a_failed_row_backs_off_exponentially_then_goes_out():
    row = make_rows(1)[0]
    for attempt in (1, 2, 3):
        OutboxEvent.objects.filter(pk=row.pk).update(available_at=timezone.now())
        # Returned (unroutable): the row's own fate. A batch nacked whole is the broker's: the rows
        # stay as they were and the relay reconnects (lib/eventbus/tests/test_relay.py).
        run_once(FakePublisher(fail={0: "returned by broker: 312 NO_ROUTE"}))
        row.refresh_from_db()
        assert row.attempts == attempt
    assert 2 < (row.available_at - timezone.now()).total_seconds() <= 4
    OutboxEvent.objects.filter(pk=row.pk).update(available_at=timezone.now())
    assert run_once(FakePublisher()) == 1


def test_rows_whose_fate_is_unknown_stay_pending_untouched():
    # The broker went away after confirming the first row: the others keep attempts 0 and no delay.
    rows = make_rows(3)
    with pytest.raises(BrokerUnavailable):
        run_once(FakePublisher(lose_after=1))
    pending = OutboxEvent.objects.filter(published_at__isnull=True).order_by("id")
    assert [r.event_id for r in pending] == [rows[1].event_id, rows[2].event_id]
    assert [(r.attempts, r.last_error) for r in pending] == [(0, None), (0, None)]
    assert run_once(FakePublisher()) == 2  # due again at once


def _housekeeper():
    return Housekeeper(
        relay.DjangoOutboxStore(),
        relay.METRICS,
        relay.HEARTBEAT_NAME,
        StopSignal(),
        outbox_retention=dt.timedelta(hours=24),
        inbox_retention=dt.timedelta(hours=168),
    )


def test_housekeeping_beats_and_reports_pending_rows_and_the_oldest_age():
    rows = make_rows(2)
    OutboxEvent.objects.filter(pk=rows[0].pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    _housekeeper().once()
    assert WorkerHeartbeat.objects.filter(name="admin-relay").exists()
    assert REGISTRY.get_sample_value("outbox_pending") == 2
    assert 89 <= REGISTRY.get_sample_value("outbox_oldest_age_seconds") < 100


def test_prune_removes_old_sent_rows_and_old_inbox_rows_only():
    old, recent, unsent = make_rows(3)
    long_ago = timezone.now() - dt.timedelta(hours=30)
    OutboxEvent.objects.filter(pk=old.pk).update(published_at=long_ago)
    OutboxEvent.objects.filter(pk=recent.pk).update(published_at=timezone.now())
    OutboxEvent.objects.filter(pk=unsent.pk).update(created_at=long_ago)
    InboxEvent.objects.create(
        message_id="a" * 36, event_type="product.liked", received_at=timezone.now() - dt.timedelta(hours=200)
    )
    InboxEvent.objects.create(message_id="b" * 36, event_type="product.liked")

    assert _housekeeper().prune() == 2
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, unsent.pk}
    assert list(InboxEvent.objects.values_list("message_id", flat=True)) == ["b" * 36]


def test_the_web_process_datagram_reaches_the_relay_socket(settings):
    from messaging.outbox import wake_relay

    sock = open_wakeup_socket("127.0.0.1:0")
    try:
        host, port = sock.getsockname()
        settings.OUTBOX_WAKEUP_ADDR = f"{host}:{port}"
        wake_relay()
        sock.settimeout(5)
        assert sock.recv(64) == b"wake"
    finally:
        sock.close()


@pytest.mark.django_db(transaction=True)
def test_the_relay_keeps_beating_while_the_broker_is_down_and_stops_cleanly():
    import pika

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = pika.ConnectionParameters("127.0.0.1", s.getsockname()[1], connection_attempts=1)
    worker = relay.build(params=closed, wakeup_addr=None)
    threading.Timer(0.5, worker.stop.request).start()
    assert worker.run() == 0
    assert WorkerHeartbeat.objects.filter(name="admin-relay").exists()


def test_the_inbox_is_indexed_by_age_for_pruning():
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "inbox")
    assert any(c["index"] and c["columns"] == ["received_at"] for c in constraints.values()), constraints
