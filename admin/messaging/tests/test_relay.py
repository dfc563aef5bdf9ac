"""Relay: claim in id order, publish, mark only what the broker confirmed, back off the rest."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from types import SimpleNamespace

import pika.exceptions
import pytest
from django.utils import timezone
from pika import spec
from prometheus_client import REGISTRY

from messaging import contract, relay
from messaging.models import InboxEvent, OutboxEvent
from messaging.outbox import enqueue

pytestmark = pytest.mark.django_db


class FakePublisher:
    """Stands in for ConfirmPublisher: confirms everything except what it is told to fail."""

    def __init__(self, fail=None, error=None):
        self.batches: list[list[relay.OutgoingMessage]] = []
        self.fail = fail or {}  # index in batch -> reason
        self.error = error

    def publish_batch(self, messages):
        self.batches.append(messages)
        result = relay.PublishResult(error=self.error)
        for i, m in enumerate(messages):
            if i in self.fail:
                result.failed[m.event_id] = self.fail[i]
            else:
                result.confirmed.add(m.event_id)
        return result


def make_rows(n, event_type=contract.PRODUCT_UPDATED):
    return [enqueue(event_type, {"id": i + 1, "title": f"P{i}", "image": "", "version": 1}) for i in range(n)]


def test_a_batch_is_claimed_in_id_order_and_marked_published():
    rows = make_rows(5)
    publisher = FakePublisher()
    before = REGISTRY.get_sample_value("events_published_total", {"type": "product.updated"}) or 0

    assert relay.relay_batch(publisher, batch_size=3) == 3
    assert relay.relay_batch(publisher, batch_size=3) == 2
    assert relay.relay_batch(publisher, batch_size=3) == 0

    sent = [m.event_id for batch in publisher.batches for m in batch]
    assert sent == [r.event_id for r in rows]
    assert [len(b) for b in publisher.batches] == [3, 2]
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    after = REGISTRY.get_sample_value("events_published_total", {"type": "product.updated"})
    assert after == before + 5


def test_messages_carry_the_spec_properties_and_the_stored_trace_context():
    row = make_rows(1)[0]
    row.headers = json.dumps({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "junk": 1})
    row.save()
    publisher = FakePublisher()
    relay.relay_batch(publisher)
    message = publisher.batches[0][0]
    props = message.properties
    assert message.body == row.payload.encode()
    assert json.loads(message.body)["id"] == row.event_id
    assert (props.message_id, props.type, props.app_id) == (
        row.event_id,
        "product.updated",
        "admin",
    )
    assert (props.content_type, props.delivery_mode) == ("application/json", 2)
    assert props.timestamp == int(row.created_at.timestamp())
    assert props.headers == {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"}


def test_only_confirmed_rows_are_marked_and_failed_ones_back_off():
    rows = make_rows(4)
    publisher = FakePublisher(fail={1: "nacked by broker", 3: "returned 312 NO_ROUTE"})
    started = timezone.now()

    relay.relay_batch(publisher)

    fresh = {r.event_id: r for r in OutboxEvent.objects.all()}
    assert fresh[rows[0].event_id].published_at is not None
    assert fresh[rows[2].event_id].published_at is not None
    for i, reason in ((1, "nacked by broker"), (3, "returned 312 NO_ROUTE")):
        row = fresh[rows[i].event_id]
        assert row.published_at is None
        assert row.attempts == 1
        assert row.last_error == reason
        assert row.available_at >= started + dt.timedelta(seconds=1)
    # Backing off: not claimed again right away.
    assert relay.relay_batch(FakePublisher()) == 0


def test_a_failed_row_is_retried_once_due_and_backs_off_exponentially():
    row = make_rows(1)[0]
    for attempt in (1, 2, 3):
        OutboxEvent.objects.filter(pk=row.pk).update(available_at=timezone.now())
        relay.relay_batch(FakePublisher(fail={0: "nacked by broker"}))
        row.refresh_from_db()
        assert row.attempts == attempt
    delay = (row.available_at - timezone.now()).total_seconds()
    assert 2 < delay <= 4
    OutboxEvent.objects.filter(pk=row.pk).update(available_at=timezone.now())
    assert relay.relay_batch(FakePublisher()) == 1
    row.refresh_from_db()
    assert row.published_at is not None


def test_retry_delay_grows_and_is_capped():
    assert [relay.retry_delay(a) for a in (1, 2, 3, 4, 7, 50)] == [1, 2, 4, 8, 60, 60]


def test_a_broker_error_keeps_the_confirmed_part_and_is_raised_for_a_reconnect():
    rows = make_rows(3)
    lost = pika.exceptions.StreamLostError("gone")
    publisher = FakePublisher(fail={2: "unconfirmed: gone"}, error=lost)

    with pytest.raises(pika.exceptions.StreamLostError):
        relay.relay_batch(publisher)

    pending = OutboxEvent.objects.filter(published_at__isnull=True)
    assert [r.event_id for r in pending] == [rows[2].event_id]


def test_rows_already_published_are_not_sent_again():
    make_rows(2)
    relay.relay_batch(FakePublisher())
    publisher = FakePublisher()
    assert relay.relay_batch(publisher) == 0
    assert publisher.batches == []


def test_gauges_report_pending_rows_and_the_oldest_age():
    rows = make_rows(2)
    OutboxEvent.objects.filter(pk=rows[0].pk).update(created_at=timezone.now() - dt.timedelta(seconds=90))
    relay.update_gauges()
    assert REGISTRY.get_sample_value("outbox_pending") == 2
    assert 89 <= REGISTRY.get_sample_value("outbox_oldest_age_seconds") < 100
    relay.relay_batch(FakePublisher())
    relay.update_gauges()
    assert REGISTRY.get_sample_value("outbox_pending") == 0
    assert REGISTRY.get_sample_value("outbox_oldest_age_seconds") == 0


def test_prune_removes_old_sent_rows_and_old_inbox_rows_only():
    old, recent, unsent = make_rows(3)
    long_ago = timezone.now() - dt.timedelta(hours=30)
    OutboxEvent.objects.filter(pk=old.pk).update(published_at=long_ago)
    OutboxEvent.objects.filter(pk=recent.pk).update(published_at=timezone.now())
    OutboxEvent.objects.filter(pk=unsent.pk).update(created_at=long_ago)
    InboxEvent.objects.create(
        message_id="a" * 36,
        event_type="product.liked",
        received_at=timezone.now() - dt.timedelta(hours=200),
    )
    InboxEvent.objects.create(message_id="b" * 36, event_type="product.liked")

    assert relay.prune(outbox_hours=24, inbox_hours=168) == (1, 1)
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {
        recent.pk,
        unsent.pk,
    }
    assert list(InboxEvent.objects.values_list("message_id", flat=True)) == ["b" * 36]


# --- ConfirmPublisher against a scripted pika channel --------------------------------------


class ScriptedImplChannel:
    """The asynchronous pika channel under a BlockingChannel, driven by a script of frames."""

    def __init__(self):
        self.published = []
        self.on_return = None
        self.on_confirm = None

    def add_on_return_callback(self, callback):
        self.on_return = callback

    def confirm_delivery(self, ack_nack_callback, callback):
        self.on_confirm = ack_nack_callback
        callback(SimpleNamespace(method=spec.Confirm.SelectOk()))

    def basic_publish(self, exchange, routing_key, body, properties, mandatory):
        self.published.append((exchange, routing_key, properties.message_id, mandatory))


class ScriptedConnection:
    """process_data_events plays the next step of the script (a function of the channel)."""

    def __init__(self, impl, steps):
        self.impl, self.steps, self.waits, self.timers = impl, list(steps), 0, 0

    def process_data_events(self, time_limit=0):
        self.waits += 1
        if self.steps:
            self.steps.pop(0)(self.impl)

    def call_later(self, delay, callback):
        self.timers += 1


def ack(tag, multiple=False):
    return lambda ch: ch.on_confirm(SimpleNamespace(method=spec.Basic.Ack(tag, multiple)))


def nack(tag, multiple=False):
    return lambda ch: ch.on_confirm(SimpleNamespace(method=spec.Basic.Nack(tag, multiple)))


def returned(message_id):
    props = SimpleNamespace(message_id=message_id)
    method = SimpleNamespace(reply_code=312, reply_text="NO_ROUTE")
    return lambda ch: ch.on_return(ch, method, props, b"")


def messages(n):
    return [
        relay.OutgoingMessage(f"e{i}", "product.updated", b"{}", pika.BasicProperties(message_id=f"e{i}"))
        for i in range(1, n + 1)
    ]


def publisher_with(steps, timeout=30.0):
    impl = ScriptedImplChannel()
    connection = ScriptedConnection(impl, steps)
    return (
        relay.ConfirmPublisher(connection, SimpleNamespace(_impl=impl), confirm_timeout=timeout),
        impl,
        connection,
    )


def both(*steps):
    def run(ch):
        for step in steps:
            step(ch)

    return run


def test_confirm_publisher_publishes_the_whole_batch_before_waiting_and_maps_confirms():
    publisher, impl, connection = publisher_with(
        [both(ack(2, multiple=True), nack(3)), both(returned("e4"), ack(4), ack(5))]
    )
    result = publisher.publish_batch(messages(5))

    assert [p[2] for p in impl.published] == ["e1", "e2", "e3", "e4", "e5"]
    assert all(p[0] == "admin.events" and p[1] == "product.updated" and p[3] for p in impl.published)
    assert result.confirmed == {"e1", "e2", "e5"}
    assert result.failed == {"e3": "nacked by broker", "e4": "returned 312 NO_ROUTE"}
    assert result.error is None
    assert connection.waits == 2  # pumped until all confirms arrived, not once per message
    assert connection.timers == 1  # woke the wait as soon as the last confirm came


def test_confirm_publisher_tags_keep_counting_across_batches():
    publisher, _impl, _connection = publisher_with([ack(2, multiple=True), ack(3)])
    assert publisher.publish_batch(messages(2)).confirmed == {"e1", "e2"}
    result = publisher.publish_batch([messages(3)[2]])
    assert result.confirmed == {"e3"}


def test_confirm_publisher_reports_a_timeout_as_an_error_with_unconfirmed_rows():
    publisher, _impl, connection = publisher_with([ack(1)], timeout=0.05)
    connection.steps.extend([lambda ch: None] * 1000)
    result = publisher.publish_batch(messages(2))
    assert result.confirmed == {"e1"}
    assert isinstance(result.error, relay.ConfirmTimeout)
    assert result.failed["e2"].startswith("unconfirmed")


def test_confirm_publisher_reports_a_lost_connection():
    def lose(ch):
        raise pika.exceptions.StreamLostError("reset by peer")

    publisher, _impl, connection = publisher_with([ack(1), lose])
    connection.steps.insert(0, lambda ch: None)
    result = publisher.publish_batch(messages(2))
    assert isinstance(result.error, pika.exceptions.StreamLostError)
    assert "e2" in result.failed


# --- the long-running loop -------------------------------------------------------------------


def test_the_wakeup_listener_wakes_on_the_web_process_datagram(settings):
    from messaging.outbox import wake_relay
    from messaging.tests.rabbit import free_port

    settings.OUTBOX_WAKEUP_ADDR = f"127.0.0.1:{free_port()}"
    listener = relay.WakeupListener(settings.OUTBOX_WAKEUP_ADDR)
    second = relay.WakeupListener(settings.OUTBOX_WAKEUP_ADDR)  # a second relay may bind too
    try:
        assert listener.sock is not None and second.sock is not None
        wake_relay()
        started = time.monotonic()
        # The kernel hands the datagram to one of the two sockets.
        assert listener.wait(5.0, also=[second.sock])
        assert time.monotonic() - started < 1.0
        second.drain()
        assert not listener.wait(0.01, also=[second.sock])  # drained
    finally:
        listener.close()
        second.close()


def test_the_relay_keeps_beating_while_the_broker_is_down_and_stops_cleanly():
    from messaging.models import WorkerHeartbeat
    from messaging.tests.rabbit import free_port

    closed = pika.ConnectionParameters("127.0.0.1", free_port(), connection_attempts=1)
    worker = relay.Relay(params=closed)
    threading.Timer(0.3, worker.stop.request).start()
    assert worker.run() == 0
    assert WorkerHeartbeat.objects.filter(name="admin-relay").exists()
    assert worker.publisher is None


def test_an_unrecoverable_broker_error_ends_the_relay_non_zero(monkeypatch):
    def refuse(params=None):
        raise pika.exceptions.ProbableAuthenticationError(
            "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'"
        )

    monkeypatch.setattr(relay, "connect", refuse)
    assert relay.Relay().run() == 1
