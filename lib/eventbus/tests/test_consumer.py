"""The consumer against a fake store and channel; then against a real broker."""

import datetime as dt
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pika
import pytest
from eventbus import consumer as core
from eventbus.consumer import DUPLICATE, ApplyLog
from eventbus.metrics import consumer_metrics
from eventbus.runtime import StopSignal
from eventbus.topology import Topology
from prometheus_client import CollectorRegistry

TOPO = Topology(service="svc", source_exchange="other.events", binding_keys=("product.#",))


class InvalidEvent(ValueError):
    def __init__(self, reason, code="bad_data", event_id=None, event_type=None):
        super().__init__(reason)
        self.reason, self.code, self.event_id, self.event_type = reason, code, event_id, event_type


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    occurred_at: dt.datetime
    data: dict


def parse(body, message_id, amqp_type):
    try:
        doc = json.loads(body)
    except ValueError:
        raise InvalidEvent("body is not JSON", "bad_json", message_id, amqp_type) from None
    if doc.get("id") != message_id:
        raise InvalidEvent("message_id does not match", "mismatch", message_id, amqp_type)
    return Event(doc["id"], doc["type"], dt.datetime.now(dt.UTC), doc.get("data", {}))


class FakeChannel:
    """Records every settlement with its multiple flag (a lost multiple=True must show)."""

    def __init__(self):
        self.calls = []

    def basic_ack(self, delivery_tag, multiple=False):
        self.calls.append(("ack", delivery_tag, multiple))

    def basic_reject(self, delivery_tag, requeue=True):
        self.calls.append(("reject", delivery_tag, requeue))


def delivery(tag, event_id=None, event_type="product.liked", body=None, headers=None):
    event_id = event_id or str(uuid.uuid4())
    body = body if body is not None else json.dumps({"id": event_id, "type": event_type}).encode()
    method = SimpleNamespace(delivery_tag=tag, routing_key=event_type)
    properties = pika.BasicProperties(message_id=event_id, type=event_type, headers=headers or {})
    return method, properties, body


class FakeStore:
    """An inbox in memory; errors to raise can be queued, and classified as the test says."""

    def __init__(self):
        self.seen, self.applied, self.errors, self.beats, self.resets = set(), [], [], [], 0
        self.bad_ids = set()

    def apply(self, events):
        if self.errors:
            raise self.errors.pop(0)
        if any(e.id in self.bad_ids for e in events):
            raise KeyError("a handler bug")
        outcomes, seen = [], set(self.seen)
        for event in events:
            if event.id in seen:
                outcomes.append(core.DUPLICATE)
            else:
                seen.add(event.id)
                outcomes.append("applied")
        self.seen = seen
        self.applied.append([e.id for e in events])
        return outcomes

    def classify(self, exc):
        return core.RETRY if isinstance(exc, ConnectionError) else core.REJECT

    def heartbeat(self, name):
        self.beats.append(name)

    def reset(self):
        self.resets += 1


def make_consumer(store, **kw):
    return core.Consumer(
        store,
        TOPO,
        consumer_metrics(CollectorRegistry(), ["product.liked"], ["bad_json", "mismatch", "handler_error"]),
        params=kw.pop("params", pika.ConnectionParameters("127.0.0.1", 1)),
        parse=parse,
        invalid_event=InvalidEvent,
        heartbeat_name="svc-consumer",
        **kw,
    )


def test_a_batch_is_applied_in_one_go_and_acked_once_with_multiple():
    store, channel = FakeStore(), FakeChannel()
    worker = make_consumer(store)
    outcomes = worker.handle_batch(channel, [delivery(1), delivery(2), delivery(3)])
    assert outcomes == ["applied"] * 3
    assert len(store.applied) == 1
    assert channel.calls == [("ack", 3, True)]
    assert worker.metrics.consumed.labels(type="product.liked")._value.get() == 3


def test_a_lone_event_is_acked_without_multiple():
    channel = FakeChannel()
    make_consumer(FakeStore()).handle_batch(channel, [delivery(7)])
    assert channel.calls == [("ack", 7, False)]


def test_duplicates_inside_and_across_batches_are_dropped():
    store, channel = FakeStore(), FakeChannel()
    worker = make_consumer(store)
    same = str(uuid.uuid4())
    assert worker.handle_batch(channel, [delivery(1, same), delivery(2, same)]) == ["applied", core.DUPLICATE]
    assert worker.handle_batch(channel, [delivery(3, same)]) == [core.DUPLICATE]
    assert worker.metrics.duplicates.labels(type="product.liked")._value.get() == 2


def test_poison_is_rejected_without_requeue_and_the_rest_goes_on():
    store, channel = FakeStore(), FakeChannel()
    worker = make_consumer(store)
    outcomes = worker.handle_batch(
        channel, [delivery(1), delivery(2, body=b"{nope"), delivery(3, body=b"[" * 100)]
    )
    assert outcomes == ["applied", core.DEAD_LETTERED, core.DEAD_LETTERED]
    assert channel.calls == [("reject", 2, False), ("reject", 3, False), ("ack", 1, False)]
    assert worker.metrics.dead_lettered.labels(type="product.liked", reason="bad_json")._value.get() == 2


def test_a_message_without_id_is_dead_lettered():
    channel = FakeChannel()
    method, properties, body = delivery(4)
    properties.message_id = None
    assert make_consumer(FakeStore()).handle_batch(channel, [(method, properties, body)]) == [
        core.DEAD_LETTERED
    ]
    assert channel.calls == [("reject", 4, False)]


def test_a_database_outage_is_retried_in_place_holding_the_messages(caplog):
    store, channel, slept = FakeStore(), FakeChannel(), []
    store.errors = [ConnectionError("gone"), ConnectionError("gone"), ConnectionError("gone")]
    with caplog.at_level(logging.WARNING, logger="eventbus.consumer"):
        outcomes = make_consumer(store).handle_batch(channel, [delivery(1), delivery(2)], sleep=slept.append)
    assert outcomes == ["applied", "applied"]
    assert len(slept) == 3 and store.resets == 3
    assert channel.calls == [("ack", 2, True)]  # nothing rejected, nothing requeued
    # Loud at first (ERROR), then at most once a minute.
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING", "WARNING"]


def test_a_stop_during_the_retries_leaves_the_messages_unacked():
    store, channel = FakeStore(), FakeChannel()
    store.errors = [ConnectionError("gone")] * 10
    stop = StopSignal()
    worker = make_consumer(store, stop=stop)
    outcomes = worker.handle_batch(channel, [delivery(1)], sleep=lambda s: stop.request())
    assert outcomes == [core.ABANDONED] and channel.calls == []


def test_an_event_at_fault_is_found_alone_and_dead_lettered():
    store, channel = FakeStore(), FakeChannel()
    bad = str(uuid.uuid4())
    store.bad_ids = {bad}
    worker = make_consumer(store)
    outcomes = worker.handle_batch(channel, [delivery(1), delivery(2, bad), delivery(3)])
    assert outcomes == ["applied", core.DEAD_LETTERED, "applied"]
    assert channel.calls == [("ack", 1, False), ("reject", 2, False), ("ack", 3, False)]
    assert worker.metrics.dead_lettered.labels(type="product.liked", reason="handler_error")._value.get() == 1


def test_the_consumer_span_continues_the_producer_trace():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = core.tracer
    core.tracer = provider.get_tracer("test")
    try:
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        make_consumer(FakeStore()).handle_batch(
            FakeChannel(), [delivery(1, headers={"traceparent": traceparent})]
        )
    finally:
        core.tracer = original
    (span,) = exporter.get_finished_spans()
    assert span.kind == trace.SpanKind.CONSUMER and span.name == "svc process"
    assert format(span.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_with_the_production_sampler_the_producer_decision_holds_in_the_consumer():
    # README: Monitoring. A tenth of new traces are recorded; a like's consumer span follows the
    # decision its traceparent carries, so a sampled like's trace continues whole into admin.
    from eventbus.tracing import sampler
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler("production", {}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = core.tracer
    core.tracer = provider.get_tracer("test")
    sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    unsampled = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    try:
        for tag in range(1, 41):  # 20 of each: a ratio alone would record about 4
            headers = {"traceparent": sampled if tag % 2 else unsampled}
            make_consumer(FakeStore()).handle_batch(FakeChannel(), [delivery(tag, headers=headers)])
    finally:
        core.tracer = original
    spans = exporter.get_finished_spans()
    assert len(spans) == 20
    assert {format(span.context.trace_id, "032x") for span in spans} == {"4bf92f3577b34da6a3ce929d0e0e4736"}


# -- against a real broker -----------------------------------------------------------------------------
def test_the_process_consumes_dedupes_dead_letters_and_stops_cleanly(rabbit):
    topo = Topology(
        service=f"c{uuid.uuid4().hex[:6]}",
        source_exchange=f"s{uuid.uuid4().hex[:6]}.events",
        binding_keys=("product.#",),
    )
    store, stop = FakeStore(), StopSignal()
    worker = core.Consumer(
        store,
        topo,
        consumer_metrics(CollectorRegistry(), ["product.liked"], ["bad_json", "mismatch", "handler_error"]),
        # A node that is down first: the consumer goes on to the next address.
        params=[
            pika.ConnectionParameters("127.0.0.1", _closed_port(), connection_attempts=1),
            rabbit.params(),
        ],
        parse=parse,
        invalid_event=InvalidEvent,
        heartbeat_name="svc-consumer",
        stop=stop,
    )
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", worker.run()))
    thread.start()
    try:
        # The other service's exchange does not exist yet: the consumer waits for it (404 is not
        # fatal) and does not declare it itself; it consumes once that service has declared it.
        time.sleep(1.5)
        assert thread.is_alive() and worker.metrics.up._value.get() == 0
        with pika.BlockingConnection(rabbit.params()) as conn:
            with pytest.raises(pika.exceptions.ChannelClosedByBroker):
                conn.channel().exchange_declare(exchange=topo.source_exchange, passive=True)
            conn.channel().exchange_declare(
                exchange=topo.source_exchange, exchange_type="topic", durable=True
            )
        deadline = time.monotonic() + 30
        while worker.metrics.up._value.get() != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.metrics.up._value.get() == 1
        same = str(uuid.uuid4())
        with pika.BlockingConnection(rabbit.params()) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            for _method, properties, body in (
                delivery(1, same),
                delivery(2, same),
                delivery(3, body=b"{broken"),
            ):
                ch.basic_publish(topo.source_exchange, "product.liked", body, properties)
            deadline = time.monotonic() + 30
            while ch.queue_declare(topo.dead_letter_queue, passive=True).method.message_count < 1:
                assert time.monotonic() < deadline, "the poison never reached the dead-letter queue"
                time.sleep(0.05)
            while store.seen != {same} or ch.queue_declare(topo.queue, passive=True).method.message_count:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert store.beats and worker.metrics.up._value.get() == 1
    finally:
        stop.request()
        thread.join(20)
    assert result == {"rc": 0}
    assert worker.metrics.duplicates.labels(type="product.liked")._value.get() == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_applied_events_get_a_line_each_while_few_and_a_summary_under_load(caplog):
    now = [100.0]
    log = ApplyLog(per_second=3, clock=lambda: now[0])
    events = [SimpleNamespace(id=f"e{i}", type="product.liked") for i in range(8)]
    with caplog.at_level(logging.INFO, logger="eventbus.consumer"):
        log.batch(events[:2], ["applied", "applied"])
        log.batch(events[2:], ["applied", DUPLICATE, "applied", "stale", "applied", "applied"])
        assert [r.getMessage() for r in caplog.records] == [
            "event e0 applied",
            "event e1 applied",
            "event e2 applied",
        ]
        log.tick()  # the window is not over: nothing yet
        assert len(caplog.records) == 3
        now[0] += 1.5
        log.tick()
        assert caplog.records[-1].getMessage().startswith("applied 4 more events in 1.5 s")
        log.batch(events[:1], ["applied"])  # a new window: a line per event again
        assert caplog.records[-1].getMessage() == "event e0 applied"
        log.tick()
        assert len(caplog.records) == 5
