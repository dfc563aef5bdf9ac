"""The relay loop against a fake store and publisher; the publisher against a real broker."""

import contextlib
import datetime as dt
import json
import socket
import threading
import time
import uuid

import pika
import pytest
from eventbus import relay
from eventbus.connection import Brokers, BrokerWait
from eventbus.metrics import relay_metrics
from eventbus.publisher import (
    AmqpPublisher,
    BrokerUnavailable,
    ConfirmTracker,
    OutboxRow,
    Unrecoverable,
    open_wakeup_socket,
    to_message,
)
from eventbus.runtime import Backoff, StopSignal
from eventbus.topology import Topology
from prometheus_client import CollectorRegistry

TOPO = Topology(service="svc", source_exchange="other.events", binding_keys=("x.#",))


def row(i, attempts=0, headers=None):
    return OutboxRow(
        id=i,
        event_id=f"e{i}",
        event_type="product.liked",
        payload=json.dumps({"id": f"e{i}"}),
        headers=headers,
        created_at=dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC),
        attempts=attempts,
    )


class FakeStore:
    """An outbox in memory: claim() hands out the pending rows; mark() records the outcome."""

    database_errors = (ConnectionError,)

    def __init__(self, rows=()):
        self.pending = {r.id: r for r in rows}
        self.published, self.retried, self.beats, self.resets, self.pruned = [], {}, [], 0, []
        self.fail_claims = 0
        self.to_prune = {"outbox": 0, "inbox": 0}

    @contextlib.contextmanager
    def claim(self, limit):
        if self.fail_claims:
            self.fail_claims -= 1
            raise ConnectionError("database gone")
        rows = [self.pending[i] for i in sorted(self.pending)][:limit]

        def mark(published, retry):
            for i in published:
                self.published.append(i)
                del self.pending[i]
            self.retried.update(retry)

        yield relay.ClaimedBatch(rows, mark)

    def stats(self):
        oldest = min((r.created_at for r in self.pending.values()), default=None)
        return len(self.pending), oldest

    def prune(self, table, older_than, limit):
        count = min(limit, self.to_prune[table])
        self.to_prune[table] -= count
        self.pruned.append((table, count))
        return count

    def heartbeat(self, name):
        self.beats.append(name)

    def reset(self):
        self.resets += 1


class FakePublisher:
    """Answers each event with the outcome chosen per id (default: confirmed)."""

    def __init__(self, params=None, topology=None, wake_socket=None):
        self.batches, self.outcomes, self.lose_after, self.connects = [], {}, None, 0

    def connect(self):
        self.connects += 1

    def publish_batch(self, messages):
        self.batches.append(messages)
        results = {m.event_id: self.outcomes.get(m.event_id) for m in messages}
        if self.lose_after is not None:
            raise BrokerUnavailable(
                "connection reset", confirmed=dict(list(results.items())[: self.lose_after])
            )
        return results

    def clear_wakeups(self):
        pass

    def wait(self, seconds, should_stop):
        time.sleep(0.01)

    def pause(self, seconds):
        self.pauses = [*getattr(self, "pauses", []), seconds]
        time.sleep(seconds)

    def close(self):
        pass


def make_relay(store, publisher=None, **kw):
    worker = relay.Relay(
        store,
        TOPO,
        relay_metrics(CollectorRegistry(), ["product.liked"]),
        params=pika.ConnectionParameters("127.0.0.1", 1),
        producer="svc",
        heartbeat_name="svc-relay",
        **kw,
    )
    worker.publisher = publisher
    return worker


def test_a_batch_is_published_in_id_order_and_confirmed_rows_are_marked():
    store, publisher = FakeStore([row(3), row(1), row(2)]), FakePublisher()
    worker = make_relay(store, publisher)
    assert worker.run_once() == 3
    assert [m.event_id for m in publisher.batches[0]] == ["e1", "e2", "e3"]
    assert store.published == [1, 2, 3] and store.retried == {}
    assert worker.metrics.published.labels(type="product.liked")._value.get() == 3


def test_nacked_and_returned_rows_are_retried_later_and_the_rest_is_marked():
    store, publisher = FakeStore([row(1), row(2, attempts=2), row(3)]), FakePublisher()
    publisher.outcomes = {"e1": "nacked by broker", "e2": "returned by broker: 312 NO_ROUTE"}
    make_relay(store, publisher).run_once()
    assert store.published == [3]
    assert store.retried == {1: (1.0, "nacked by broker"), 2: (4.0, "returned by broker: 312 NO_ROUTE")}


def test_a_batch_the_broker_nacks_whole_stays_pending_and_the_relay_reconnects():
    # A quorum queue whose leader died nacks a channel opened before the election: the rows are not
    # to blame, so they keep their attempts and wait for the reconnect, not for their own backoff.
    store, publisher = FakeStore([row(1), row(2, attempts=2)]), FakePublisher()
    publisher.outcomes = {"e1": "nacked by broker", "e2": "nacked by broker"}
    with pytest.raises(BrokerUnavailable, match="nacked all 2 messages"):
        make_relay(store, publisher).run_once()
    assert store.published == [] and store.retried == {}
    assert sorted(store.pending) == [1, 2] and store.pending[2].attempts == 2


def test_rows_whose_fate_is_unknown_stay_pending_untouched():
    # The broker went away after confirming the first row: the rest is neither marked nor backed off.
    store, publisher = FakeStore([row(1), row(2), row(3)]), FakePublisher()
    publisher.lose_after = 1
    with pytest.raises(BrokerUnavailable):
        make_relay(store, publisher).run_once()
    assert store.published == [1]
    assert store.retried == {} and sorted(store.pending) == [2, 3]


def test_the_fault_hold_sits_between_the_confirms_and_the_marks(monkeypatch):
    # Fault tests only (tests/faults/test_relay.py): the relay holds a confirmed batch before marking
    # it sent, so a SIGKILL lands between the two every time. Read once, when the relay is built.
    monkeypatch.setenv(relay.HOLD_MARK_ENV, "2.5")
    store, publisher = FakeStore([row(1), row(2)]), FakePublisher()
    worker = make_relay(store, publisher)
    monkeypatch.delenv(relay.HOLD_MARK_ENV)
    held = []

    def sleep(seconds):
        # The broker has confirmed the whole batch; no row is marked yet.
        assert [m.event_id for m in publisher.batches[0]] == ["e1", "e2"]
        assert store.published == [] and sorted(store.pending) == [1, 2]
        held.append(seconds)

    worker.sleep = sleep
    assert worker.run_once() == 2
    assert held == [2.5]
    assert store.published == [1, 2]


def test_without_the_fault_setting_the_relay_never_holds(monkeypatch):
    monkeypatch.delenv(relay.HOLD_MARK_ENV, raising=False)
    store = FakeStore([row(1)])
    worker = make_relay(store, FakePublisher())
    assert worker.hold_mark == 0
    worker.sleep = lambda seconds: pytest.fail("held without the fault setting")
    assert worker.run_once() == 1 and store.published == [1]


def test_retry_delays_double_up_to_five_minutes():
    assert [relay.retry_delay(n) for n in (1, 2, 3, 20)] == [1.0, 2.0, 4.0, 300.0]


def test_housekeeping_beats_sets_the_gauges_and_prunes_in_chunks(monkeypatch):
    monkeypatch.setattr(relay, "PRUNE_CHUNK", 2)
    store = FakeStore([row(1)])
    store.to_prune = {"outbox": 5, "inbox": 1}
    metrics = relay_metrics(CollectorRegistry(), ["product.liked"])
    keeper = relay.Housekeeper(
        store,
        metrics,
        "svc-relay",
        StopSignal(),
        outbox_retention=dt.timedelta(hours=1),
        inbox_retention=dt.timedelta(hours=2),
    )
    keeper.once()
    assert store.beats == ["svc-relay"]
    assert metrics.pending._value.get() == 1 and metrics.oldest_age._value.get() > 0
    assert store.pruned == [("outbox", 2), ("outbox", 2), ("outbox", 1), ("inbox", 1)]
    keeper.once()  # the next prune is a minute away
    assert len(store.pruned) == 4


def test_housekeeping_survives_a_database_error():
    store = FakeStore()
    store.heartbeat = lambda name: (_ for _ in ()).throw(ConnectionError("down"))
    keeper = relay.Housekeeper(
        store,
        relay_metrics(CollectorRegistry(), []),
        "svc-relay",
        StopSignal(),
        outbox_retention=dt.timedelta(hours=1),
        inbox_retention=dt.timedelta(hours=1),
    )
    keeper.once()
    assert store.resets == 1


def test_under_load_a_batch_waits_for_the_rest_of_the_busy_interval_and_a_lone_row_goes_at_once():
    store, publisher = FakeStore([row(1)]), FakePublisher()
    worker = make_relay(store, publisher, busy_interval=0.05, batch_size=3)

    def step():
        worker._step(None, BrokerWait([]), Backoff(), Backoff())

    step()  # one row after a quiet spell: no pause
    store.pending.update({2: row(2), 3: row(3)})  # the last batch found one row: no pause
    step()
    assert store.published == [1, 2, 3] and not getattr(publisher, "pauses", [])
    store.pending[4] = row(4)  # the last batch found two rows: under load
    step()
    assert store.published == [1, 2, 3, 4]
    assert len(publisher.pauses) == 1 and 0 < publisher.pauses[0] <= 0.05

    store.pending.update({i: row(i) for i in range(5, 10)})
    step()  # the last batch found one row: no pause; this one is full (3) ...
    step()  # ... which means a backlog: the next batch goes at once too
    assert store.published == list(range(1, 10))
    assert len(publisher.pauses) == 1
    assert [len(batch) for batch in publisher.batches] == [1, 2, 1, 3, 2]


def _run_in_thread(worker):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", worker.run()))
    thread.start()
    return thread, result


def test_the_process_publishes_retries_a_database_outage_and_stops_cleanly():
    store = FakeStore([row(1), row(2)])
    store.fail_claims = 2
    publishers = []

    def factory(params, topology, wake_socket=None):
        publishers.append(FakePublisher())
        return publishers[-1]

    stop = StopSignal()
    worker = make_relay(store, publisher_factory=factory, stop=stop)
    thread, result = _run_in_thread(worker)
    deadline = time.monotonic() + 20
    while store.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.request()
    thread.join(10)
    assert result == {"rc": 0}
    assert store.published == [1, 2] and store.resets >= 2 and len(publishers) == 1


def test_a_lost_broker_means_a_new_connection():
    store = FakeStore([row(1), row(2)])
    publishers = []

    def factory(params, topology, wake_socket=None):
        publisher = FakePublisher()
        if not publishers:
            publisher.lose_after = 0  # the first connection dies on its first batch
        publishers.append(publisher)
        return publisher

    stop = StopSignal()
    worker = make_relay(store, publisher_factory=factory, stop=stop)
    thread, result = _run_in_thread(worker)
    deadline = time.monotonic() + 20
    while store.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.request()
    thread.join(10)
    assert result == {"rc": 0} and store.published == [1, 2] and len(publishers) == 2


def test_an_unrecoverable_broker_error_ends_the_process_non_zero():
    class Refused(FakePublisher):
        def connect(self):
            raise Unrecoverable("the broker refused us")

    worker = make_relay(FakeStore(), publisher_factory=Refused)
    thread, result = _run_in_thread(worker)
    thread.join(20)
    assert result == {"rc": 1}


def test_the_message_carries_the_agreed_properties_and_only_the_trace_headers():
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    message = to_message(row(7, headers=json.dumps({"traceparent": traceparent, "secret": "x"})), "svc")
    props = message.properties
    assert (message.routing_key, props.message_id, props.type, props.app_id) == (
        "product.liked",
        "e7",
        "product.liked",
        "svc",
    )
    assert (props.content_type, props.delivery_mode) == ("application/json", 2)
    assert props.timestamp == int(dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC).timestamp())
    assert props.headers == {"traceparent": traceparent}
    assert to_message(row(8, headers="not json"), "svc").properties.headers == {}


def test_the_confirm_tracker_handles_multiple_acks_nacks_and_returns():
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


def test_an_unusable_wakeup_address_falls_back_to_polling():
    assert open_wakeup_socket("256.1.1.1:notaport") is None
    assert open_wakeup_socket("") is None


# -- the publisher against a real broker --------------------------------------------------------------
def test_the_publisher_confirms_a_batch_and_reports_unroutable_rows(rabbit):
    topo = Topology(service=f"pub{uuid.uuid4().hex[:6]}", source_exchange="x.events", binding_keys=("a.#",))
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        topo.declare_publisher(channel)
        channel.queue_declare("pub-probe", exclusive=True)
        channel.queue_bind("pub-probe", topo.events_exchange, routing_key="product.#")
        wake = open_wakeup_socket("127.0.0.1:0")
        publisher = AmqpPublisher(rabbit.params(), topo, wake_socket=wake)
        try:
            publisher.connect()
            routed = [to_message(row(i), "svc") for i in range(1, 4)]
            lost = to_message(
                OutboxRow(9, "e9", "nobody.listens", "{}", None, dt.datetime.now(dt.UTC), 0), "svc"
            )
            outcomes = publisher.publish_batch([*routed, lost])
            assert outcomes["e1"] is None and outcomes["e2"] is None and outcomes["e3"] is None
            assert outcomes["e9"].startswith("returned by broker: 312")
            assert channel.queue_declare("pub-probe", passive=True).method.message_count == 3

            # A wake-up datagram ends an idle wait at once.
            publisher.clear_wakeups()
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            threading.Timer(0.1, lambda: sender.sendto(b"wake", wake.getsockname())).start()
            started = time.monotonic()
            publisher.wait(10, lambda: False)
            assert time.monotonic() - started < 5
            sender.close()
        finally:
            publisher.close()
            wake.close()


class ConfirmsWithheld(AmqpPublisher):
    """A channel that never hears its confirms, as one sending to a dead quorum-queue leader."""

    def _on_confirm(self, frame) -> None:
        pass


def test_confirms_that_stop_coming_give_the_batch_up_long_before_the_overall_timeout(rabbit):
    topo = Topology(service=f"st{uuid.uuid4().hex[:6]}", source_exchange="x.events", binding_keys=("a.#",))
    publisher = ConfirmsWithheld(rabbit.params(), topo, confirm_timeout=30, confirm_stall=0.5)
    try:
        publisher.connect()
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="no confirm for"):
            publisher.publish_batch([to_message(row(1), "svc"), to_message(row(2), "svc")])
        assert 0.4 < time.monotonic() - started < 5
        with pytest.raises(BrokerUnavailable):  # the relay reconnects: this channel is done
            publisher.publish_batch([to_message(row(3), "svc")])
    finally:
        publisher.close()


def test_a_slow_prune_never_holds_up_publishing():
    # Pruning a large inbox can take long; it runs beside the publishing loop, not in it.
    store = FakeStore()
    store.to_prune = {"outbox": 1, "inbox": 0}
    pruning, release = threading.Event(), threading.Event()
    real_prune = store.prune

    def slow_prune(table, older_than, limit):
        pruning.set()
        release.wait(20)
        return real_prune(table, older_than, limit)

    store.prune = slow_prune
    stop = StopSignal()
    worker = make_relay(store, publisher_factory=FakePublisher, stop=stop)
    thread, result = _run_in_thread(worker)
    try:
        assert pruning.wait(10), "housekeeping never pruned"
        store.pending.update({1: row(1), 2: row(2)})  # written while the prune runs
        deadline = time.monotonic() + 10
        while store.pending and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.published == [1, 2], "publishing waited for the prune"
    finally:
        release.set()
        stop.request()
        thread.join(10)
    assert result == {"rc": 0}


def test_the_publisher_takes_the_next_address_when_one_is_down(rabbit):
    down = pika.ConnectionParameters("127.0.0.1", _closed_port(), connection_attempts=1)
    topo = Topology(service=f"fo{uuid.uuid4().hex[:6]}", source_exchange="x.events", binding_keys=("a.#",))
    brokers = Brokers([down, rabbit.params(connection_attempts=1)], start=0)  # the dead one first
    publisher = AmqpPublisher(brokers, topo)
    try:
        publisher.connect()
        outcome = publisher.publish_batch([to_message(row(1), "svc")])
        assert outcome["e1"].startswith("returned by broker: 312")  # it answered: nothing is bound
    finally:
        publisher.close()
    # The next connection starts one address further on.
    assert [p.port for p in brokers.order()] == [rabbit.amqp_port, down.port]

    nowhere = AmqpPublisher(Brokers([down, down]), topo, connect_timeout=5)
    with pytest.raises(BrokerUnavailable):
        nowhere.connect()


def test_credentials_refused_by_every_address_are_unrecoverable(rabbit):
    wrong = pika.ConnectionParameters(
        "127.0.0.1",
        rabbit.amqp_port,
        credentials=pika.PlainCredentials("guest", "wrong"),
        connection_attempts=1,
    )
    topo = Topology(service="refused", source_exchange="x.events", binding_keys=("a.#",))
    with pytest.raises(Unrecoverable):
        AmqpPublisher([wrong, wrong], topo).connect()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
