"""The dead-letter workbench and the consumer's failure headers, on a real broker; refusals on fakes."""

import socket
import threading
import time
import uuid

import pika
import pika.exceptions
import pytest
from eventbus import consumer as core
from eventbus import failures, workbench
from eventbus.metrics import consumer_metrics
from eventbus.runtime import StopSignal
from eventbus.topology import Topology
from prometheus_client import CollectorRegistry
from test_consumer import FakeChannel, FakeStore, InvalidEvent, delivery, make_consumer, parse


class RefusingChannel:
    """A dead-letter channel whose publish the broker refuses (nack) or whose channel is closed."""

    def __init__(self, error):
        self.error, self.published = error, []

    def basic_publish(self, *args, **kwargs):
        self.published.append(args)
        raise self.error


def test_a_refused_dead_letter_publish_falls_back_to_a_reject():
    for error, channel_kept in (
        (pika.exceptions.NackError([]), True),
        (pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED"), False),
    ):
        worker, channel, refusing = make_consumer(FakeStore()), FakeChannel(), RefusingChannel(error)
        worker.dead_letter_channel = refusing
        assert worker.handle_batch(channel, [delivery(4, body=b"{broken")]) == [core.DEAD_LETTERED]
        assert len(refusing.published) == 1
        assert channel.calls == [("reject", 4, False)]  # the broker still dead-letters it
        assert (worker.dead_letter_channel is refusing) == channel_kept


class RecordingChannel:
    def __init__(self):
        self.published = []

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        self.published.append((exchange, routing_key, body, properties, mandatory))


def test_a_dead_letter_is_published_with_its_failure_then_acked():
    store, channel = FakeStore(), FakeChannel()
    worker = make_consumer(store)
    worker.dead_letter_channel = RecordingChannel()
    bad = str(uuid.uuid4())
    store.bad_ids.add(bad)
    outcomes = worker.handle_batch(channel, [delivery(1), delivery(2, bad), delivery(3, body=b"{broken")])
    assert outcomes == ["applied", core.DEAD_LETTERED, core.DEAD_LETTERED]
    published = worker.dead_letter_channel.published
    assert [p[0] for p in published] == ["svc.dlx", "svc.dlx"] and all(p[4] for p in published)
    by_reason = {p[3].headers[failures.REASON]: p for p in published}
    assert set(by_reason) == {"bad_json", "handler_error"}
    handler = by_reason["handler_error"][3]
    assert handler.message_id == bad and handler.delivery_mode == 2
    assert handler.headers[failures.EXCEPTION_TYPE] == "KeyError"
    assert handler.headers[failures.WHERE].endswith("test_consumer:apply")
    assert by_reason["bad_json"][3].headers[failures.EXCEPTION_TYPE] == "InvalidEvent"
    # Every settlement is an ack: no reject, so the broker adds no x-death.
    assert {call[0] for call in channel.calls} == {"ack"}


def _topology():
    return Topology(
        service=f"w{uuid.uuid4().hex[:6]}",
        source_exchange=f"s{uuid.uuid4().hex[:6]}.events",
        binding_keys=("product.#",),
    )


def _wait(condition, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _declared(params, topo: Topology):
    """Return an open connection and a confirm channel on which topo's queues are declared."""
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
    topo.declare_consumer(ch)
    ch.confirm_delivery()
    return conn, ch


def _depth(params, queue):
    with pika.BlockingConnection(params) as conn:
        return conn.channel().queue_declare(queue, passive=True).method.message_count


def test_a_poison_is_grouped_retried_after_its_cause_is_fixed_and_applied_once(rabbit):
    topo, store, stop = _topology(), FakeStore(), StopSignal()
    registry = CollectorRegistry()
    worker = core.Consumer(
        store,
        topo,
        consumer_metrics(registry, ["product.liked"], ["bad_json", "mismatch", "handler_error"]),
        params=rabbit.params(),
        parse=parse,
        invalid_event=InvalidEvent,
        heartbeat_name="svc-consumer",
        stop=stop,
    )
    with pika.BlockingConnection(rabbit.params()) as conn:
        conn.channel().exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
    poison = [str(uuid.uuid4()) for _ in range(3)]
    store.bad_ids.update(poison)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        _wait(lambda: worker.metrics.up._value.get() == 1, "the consumer never connected")
        with pika.BlockingConnection(rabbit.params()) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            for event_id in [*poison, str(uuid.uuid4())]:
                _, properties, body = delivery(0, event_id)
                ch.basic_publish(topo.source_exchange, "product.liked", body, properties)
            _, properties, _ = delivery(0)
            ch.basic_publish(topo.source_exchange, "product.liked", b"{broken", properties)
        letters = workbench.DeadLetters(rabbit.params(), topo)
        _wait(lambda: letters.depth()["depth"] == 4, "the four poisons never reached the dead-letter queue")

        overview = letters.overview()
        assert (overview["depth"], overview["scanned"], overview["count"], overview["capped"]) == (
            4,
            4,
            4,
            False,
        )
        groups = {g["reason"]: g for g in overview["groups"]}
        assert groups["handler_error"]["count"] == 3 and groups["bad_json"]["count"] == 1
        assert groups["handler_error"]["exception_type"] == "KeyError"
        assert groups["handler_error"]["event_types"] == ["product.liked"]
        assert overview["groups"][0]["reason"] == "handler_error"  # the biggest group first
        handler_fp = groups["handler_error"]["fingerprint"]
        page = letters.overview(fingerprint=handler_fp, limit=2, offset=1)
        assert page["count"] == 3 and len(page["results"]) == 2
        assert {r["message_id"] for r in page["results"]} <= set(poison)
        assert all(r["source"] == "consumer" and r["attempts"] == 1 for r in page["results"])
        # Looking gives every message back.
        assert letters.depth()["depth"] == 4

        detail = letters.show(poison[0])
        assert detail["payload"] == {"id": poison[0], "type": "product.liked"}
        assert detail["headers"][failures.EXCEPTION_TYPE] == "KeyError"
        assert detail["x_death"] == [] and detail["copies"] == 1
        assert "x-delivery-count" not in detail["headers"]  # listings counted it up: noise
        with pytest.raises(workbench.NotFound):
            letters.show("no-such-message")
        with pytest.raises(ValueError):
            letters.retry(message_id=poison[0], fingerprint=handler_fp)

        # The metrics see the queue: its depth, and how old its oldest failure is.
        _wait(
            lambda: registry.get_sample_value("dead_letters", {"queue": topo.dead_letter_queue}) == 4,
            "no depth metric",
            timeout=20,
        )
        worker._next_peek = 0
        _wait(
            lambda: (
                (
                    registry.get_sample_value(
                        "dead_letter_oldest_age_seconds", {"queue": topo.dead_letter_queue}
                    )
                    or 0
                )
                > 0
            ),
            "no age metric",
            timeout=20,
        )

        # The cause is fixed; the group is retried and applied exactly once.
        store.bad_ids.clear()
        applied_before = sum(len(batch) for batch in store.applied)
        recorded = []
        result = letters.retry(fingerprint=handler_fp, record=recorded.append)
        assert (result["matched"], result["retried"], result["depth"]) == (3, 3, 4)
        # One record per retried letter, with what the audit keeps: its type and group.
        assert sorted(r["message_id"] for r in recorded) == sorted(poison)
        assert {(r["type"], r["fingerprint"]) for r in recorded} == {("product.liked", handler_fp)}
        _wait(lambda: set(poison) <= store.seen, "the retried events were never applied")
        _wait(lambda: _depth(rabbit.params(), topo.queue) == 0, "the queue never drained")
        applied = [event_id for batch in store.applied for event_id in batch]
        assert sorted(e for e in applied if e in poison) == sorted(poison)  # once each
        assert sum(len(batch) for batch in store.applied) == applied_before + 3
        assert letters.depth()["depth"] == 1

        # The malformed one is removed, each only after its record was kept.
        kept = []
        bad_fp = groups["bad_json"]["fingerprint"]
        with pytest.raises(RuntimeError):
            letters.remove(
                fingerprint=bad_fp, record=lambda detail: (_ for _ in ()).throw(RuntimeError("db down"))
            )
        assert letters.depth()["depth"] == 1  # a failed record keeps the message
        removed = letters.remove(fingerprint=bad_fp, record=kept.append)
        assert [d["body"] for d in removed] == ["{broken"]
        assert kept == [{**d, "archived_headers": workbench.archived_headers(d)} for d in removed]
        assert letters.depth()["depth"] == 0
        with pytest.raises(workbench.NotFound):
            letters.retry(fingerprint=bad_fp)
        assert letters.overview()["groups"] == []
    finally:
        stop.request()
        thread.join(timeout=30)
        with pika.BlockingConnection(rabbit.params()) as conn:
            ch = conn.channel()
            for queue in (topo.queue, topo.dead_letter_queue):
                ch.queue_delete(queue)


def test_a_message_the_broker_dead_lettered_is_recognised(rabbit):
    topo = _topology()
    conn, ch = _declared(rabbit.params(), topo)
    with conn:
        ch.basic_publish(
            topo.source_exchange,
            "product.liked",
            b"{}",
            pika.BasicProperties(message_id="m1", type="product.liked"),
        )
        method, _, _ = ch.basic_get(topo.queue)
        ch.basic_reject(method.delivery_tag, requeue=False)  # the broker dead-letters it: x-death
    letters = workbench.DeadLetters(rabbit.params(), topo)
    _wait(lambda: letters.depth()["depth"] == 1, "never dead-lettered")
    detail = letters.show("m1")
    assert detail["source"] == "broker" and detail["reason"] == "rejected"
    assert detail["routing_key"] == "product.liked"
    assert detail["x_death"][0]["reason"] == "rejected"
    assert detail["fingerprint"] == failures.fingerprint_of("broker", "rejected", topo.queue)
    letters.retry(message_id="m1")
    _wait(lambda: _depth(rabbit.params(), topo.queue) == 1, "the retry never reached the queue")
    with pika.BlockingConnection(rabbit.params()) as conn:
        ch = conn.channel()
        method, properties, _ = ch.basic_get(topo.queue, auto_ack=True)
        assert properties.headers["x-redriven"] == 1 and "x-death" not in properties.headers
        ch.queue_delete(topo.queue)
        ch.queue_delete(topo.dead_letter_queue)


def test_an_unreachable_broker_is_said_at_once():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    letters = workbench.DeadLetters(
        pika.ConnectionParameters("127.0.0.1", port, connection_attempts=5, retry_delay=5), _topology()
    )
    started = time.monotonic()
    with pytest.raises(workbench.BrokerUnavailable, match="try again"):
        letters.depth()
    assert time.monotonic() - started < 3  # one attempt, not five with delays


def test_a_queue_not_yet_declared_is_empty(rabbit):
    assert workbench.DeadLetters(rabbit.params(), _topology()).overview()["depth"] == 0


class ClosedChannel:
    def queue_declare(self, *args, **kwargs):
        raise pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED")


def test_dead_letter_metrics_it_cannot_vouch_for_are_removed_not_kept():
    registry = CollectorRegistry()
    worker = core.Consumer(
        FakeStore(),
        Topology(service="svc", source_exchange="other.events", binding_keys=("product.#",)),
        consumer_metrics(registry, ["product.liked"], ["bad_json"]),
        params=pika.ConnectionParameters("127.0.0.1", 1),
        parse=parse,
        invalid_event=InvalidEvent,
        heartbeat_name="svc-consumer",
    )

    def sample():
        return registry.get_sample_value("dead_letters", {"queue": "svc.dlq"})

    worker.metrics.dead_letters.labels(queue="svc.dlq").set(0)
    worker.dead_letter_channel = ClosedChannel()
    worker._maybe_peek()  # the channel is gone: a stale 0 would hide new dead letters
    assert sample() is None and worker.dead_letter_channel is None
    worker.metrics.dead_letters.labels(queue="svc.dlq").set(2)
    worker._disconnect()
    assert sample() is None
    worker._disconnect()  # nothing left to remove: no error


def test_an_archive_keeps_a_body_the_list_shows_cut(rabbit):
    topo = _topology()
    big = b'{"x": "' + b"y" * 100_000 + b'"}'
    conn, ch = _declared(rabbit.params(), topo)
    with conn:
        ch.basic_publish(
            topo.dead_letter_exchange, "product.liked", big, pika.BasicProperties(message_id="big")
        )
    letters = workbench.DeadLetters(rabbit.params(), topo)
    _wait(lambda: letters.depth()["depth"] == 1, "never dead-lettered")
    assert letters.show("big")["body_truncated"] is True
    kept = []
    (shown,) = letters.remove(message_id="big", record=kept.append)
    assert len(shown["body"]) == workbench.BODY_LIMIT
    assert kept[0]["body"].encode() == big and kept[0]["body_truncated"] is False
    with pika.BlockingConnection(rabbit.params()) as conn:
        conn.channel().queue_delete(topo.queue)
        conn.channel().queue_delete(topo.dead_letter_queue)


def test_a_scan_waits_for_another_scan_holding_the_letters(rabbit):
    # Two lists of one page, or two operators, scan at once: the letters the first holds are not
    # ready for the second, which must wait for them rather than answer "none".
    topo = _topology()
    conn, ch = _declared(rabbit.params(), topo)
    with conn:
        for i in range(3):
            ch.basic_publish(
                topo.dead_letter_exchange, "x", b"{}", pika.BasicProperties(message_id=f"held{i}")
            )
    letters = workbench.DeadLetters(rabbit.params(), topo)
    _wait(lambda: letters.depth()["depth"] == 3, "never dead-lettered")
    holder = pika.BlockingConnection(rabbit.params())
    held = holder.channel()
    held.basic_qos(prefetch_count=10)
    got = []
    held.basic_consume(topo.dead_letter_queue, lambda *args: got.append(args), auto_ack=False)
    _wait(lambda: holder.process_data_events(0.05) or len(got) == 3, "the holder never got the letters")
    assert letters.depth()["depth"] == 0  # held: not ready
    result = {}
    # The scan runs in a thread of its own (its own connection); the holder closes from this one.
    scan = threading.Thread(target=lambda: result.setdefault("overview", letters.overview()))
    scan.start()
    holder.sleep(0.4)
    holder.close()
    scan.join(timeout=workbench.SCAN_WAIT_SECONDS + 5)
    assert (result["overview"]["depth"], result["overview"]["scanned"]) == (3, 3)
    with pika.BlockingConnection(rabbit.params()) as conn:
        conn.channel().queue_delete(topo.queue)
        conn.channel().queue_delete(topo.dead_letter_queue)
