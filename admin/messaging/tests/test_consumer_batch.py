"""Batched consumption: one transaction per batch, dedupe, poison isolation, ack after commit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import OperationalError
from eventbus import consumer as core
from eventbus.runtime import StopSignal
from prometheus_client import REGISTRY

from messaging import consumer, handlers
from messaging.models import InboxEvent
from messaging.tests.fakes import FakeChannel, delivery, likes_envelope
from products.models import Product

pytestmark = pytest.mark.django_db


def make_product(title="Mug") -> Product:
    return Product.objects.create(title=title, image="https://example.com/mug.png")


def metric(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def deliveries(*docs, first_tag=1):
    return [delivery(doc, first_tag + i) for i, doc in enumerate(docs)]


def run_batch(channel, batch, **kw):
    """Hand a batch of deliveries to admin's consumer (eventbus.consumer over the Django store)."""
    stop = StopSignal()
    if kw.get("stopping"):
        stop.request()
    return consumer.build(stop=stop).handle_batch(channel, batch, sleep=kw.get("sleep", lambda s: None))


def test_a_batch_applies_the_highest_seq_per_product_and_acks_once():
    a, b = make_product("a"), make_product("b")
    docs = [
        likes_envelope(a.pk, likes=3, seq=3),
        likes_envelope(a.pk, likes=1, seq=1),
        likes_envelope(b.pk, likes=7, seq=7),
        likes_envelope(a.pk, likes=2, seq=2, event_type="product.unliked"),
    ]
    channel = FakeChannel()
    outcomes = run_batch(channel, deliveries(*docs))
    assert outcomes == [handlers.APPLIED, handlers.STALE, handlers.APPLIED, handlers.STALE]
    assert channel.verbs == [("ack", 4, True)]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.likes, a.likes_seq, b.likes, b.likes_seq) == (3, 3, 7, 7)
    assert InboxEvent.objects.count() == 4


def test_a_batch_never_moves_likes_back_below_the_stored_seq():
    product = make_product()
    Product.objects.filter(pk=product.pk).update(likes=9, likes_seq=9)
    channel = FakeChannel()
    outcomes = run_batch(channel, deliveries(likes_envelope(product.pk, likes=4, seq=4)))
    assert outcomes == [handlers.STALE]
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (9, 9)
    assert channel.verbs == [("ack", 1, False)]


def forced(product_id, likes, seq):
    """product.likes_counted version 2 with force (`flask resync-likes --force`)."""
    return likes_envelope(
        product_id,
        event_type="product.likes_counted",
        version=2,
        data={"product_id": product_id, "likes": likes, "seq": seq, "force": True},
    )


def test_a_forced_count_lands_between_the_likes_before_and_after_it_in_one_batch():
    # main was restored from a backup: its seq went back from 50 to 10. The forced resync count
    # (seq 10) must win over admin's 50, and a like main published after it (seq 11) must win over
    # the forced count, in one batch as one by one.
    product = make_product()
    Product.objects.filter(pk=product.pk).update(likes=50, likes_seq=50)
    docs = [
        likes_envelope(product.pk, likes=49, seq=49),  # published before the restore: stale
        forced(product.pk, likes=3, seq=10),
        likes_envelope(product.pk, likes=4, seq=11),
    ]
    channel = FakeChannel()
    outcomes = run_batch(channel, deliveries(*docs))
    assert outcomes == [handlers.STALE, handlers.APPLIED, handlers.APPLIED]
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (4, 11)
    assert channel.verbs == [("ack", 3, True)]


def test_an_unforced_count_below_the_stored_seq_changes_nothing():
    product = make_product()
    Product.objects.filter(pk=product.pk).update(likes=50, likes_seq=50)
    run_batch(
        FakeChannel(),
        deliveries(likes_envelope(product.pk, likes=3, seq=10, event_type="product.likes_counted")),
    )
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (50, 50)


def test_an_equal_seq_is_applied_like_the_single_path():
    product = make_product()
    Product.objects.filter(pk=product.pk).update(likes=5, likes_seq=5)
    run_batch(FakeChannel(), deliveries(likes_envelope(product.pk, likes=6, seq=5)))
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (6, 5)


def test_likes_for_an_unknown_product_in_a_batch_are_acked_and_logged(caplog):
    product = make_product()
    channel = FakeChannel()
    outcomes = run_batch(
        channel,
        deliveries(likes_envelope(999_999, likes=1, seq=1), likes_envelope(product.pk, likes=2, seq=2)),
    )
    assert outcomes == [handlers.UNKNOWN_PRODUCT, handlers.APPLIED]
    assert channel.verbs == [("ack", 2, True)]
    assert "unknown product 999999" in caplog.text


def test_duplicates_inside_a_batch_and_across_batches_are_dropped():
    product = make_product()
    first = likes_envelope(product.pk, likes=1, seq=1)
    second = likes_envelope(product.pk, likes=2, seq=2)
    channel = FakeChannel()
    before = metric("events_duplicates_total", type="product.liked")

    assert run_batch(channel, deliveries(first, first, second)) == [
        handlers.STALE,
        core.DUPLICATE,
        handlers.APPLIED,
    ]
    # Redelivered in a later batch (e.g. after a crash before the ack): dropped, still acked.
    third = likes_envelope(product.pk, likes=3, seq=3)
    assert run_batch(channel, deliveries(second, third, first_tag=4)) == [
        core.DUPLICATE,
        handlers.APPLIED,
    ]

    assert channel.verbs == [("ack", 3, True), ("ack", 5, True)]
    assert InboxEvent.objects.count() == 3
    assert metric("events_duplicates_total", type="product.liked") - before == 2
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (3, 3)


def test_a_poison_message_in_a_batch_goes_alone_to_the_dlq():
    product = make_product()
    good1 = likes_envelope(product.pk, likes=1, seq=1)
    bad = likes_envelope(product.pk, data={"product_id": "x"})
    good2 = likes_envelope(product.pk, likes=2, seq=2)
    batch = deliveries(good1, bad, good2) + [
        delivery(b"{not json", 4, message_id="m-4", amqp_type="product.liked")
    ]
    channel = FakeChannel()

    outcomes = run_batch(channel, batch)

    assert outcomes == [handlers.STALE, core.DEAD_LETTERED, handlers.APPLIED, core.DEAD_LETTERED]
    # Poison rejected (no requeue) before the commit, the good ones acked after it; tag 4 is
    # settled by its reject, so the multiple ack of tag 3 covers exactly 1 and 3.
    assert channel.calls[:2] == [("reject", 2, False), ("reject", 4, False)]
    assert channel.verbs[2:] == [("ack", 3, True)]
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {good1["id"], good2["id"]}
    product.refresh_from_db()
    assert product.likes == 2


@pytest.mark.django_db(transaction=True)
def test_the_batch_is_acked_only_after_its_transaction_committed():
    product = make_product()
    docs = [likes_envelope(product.pk, likes=i, seq=i) for i in (1, 2, 3)]
    channel = FakeChannel()
    run_batch(channel, deliveries(*docs))
    [(verb, tag, multiple, seen)] = channel.calls
    assert (verb, tag, multiple) == ("ack", 3, True)
    assert seen == {"in_transaction": False, "inbox": {d["id"] for d in docs}}


@pytest.mark.django_db(transaction=True)
def test_an_event_that_breaks_the_batch_is_found_alone_and_dead_lettered(monkeypatch):
    product = make_product()
    good1 = likes_envelope(product.pk, likes=1, seq=1)
    culprit = likes_envelope(product.pk, likes=5, seq=5)
    good2 = likes_envelope(product.pk, likes=2, seq=2)
    real = handlers.handle_batch

    def breaks_on_the_culprit(events):
        if any(event.id == culprit["id"] for event in events):
            raise RuntimeError("bad event")
        return real(events)

    monkeypatch.setattr(handlers, "handle_batch", breaks_on_the_culprit)
    channel = FakeChannel()

    outcomes = run_batch(channel, deliveries(good1, culprit, good2))

    assert outcomes == [handlers.APPLIED, core.DEAD_LETTERED, handlers.APPLIED]
    assert channel.verbs == [("ack", 1, False), ("reject", 2, False), ("ack", 3, False)]
    assert set(InboxEvent.objects.values_list("message_id", flat=True)) == {good1["id"], good2["id"]}
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (2, 2)


def test_an_integrity_error_on_the_inbox_insert_falls_back_to_one_by_one(monkeypatch):
    product = make_product()
    docs = [likes_envelope(product.pk, likes=i, seq=i) for i in (1, 2)]
    # A concurrent consumer committed docs[0] after this batch's duplicate SELECT ran (each
    # SELECT misses it once: the batch's, then the lone retry's).
    InboxEvent.objects.create(message_id=docs[0]["id"], event_type="product.liked")
    monkeypatch.setattr(consumer, "_already_seen", lambda ids: set())
    channel = FakeChannel()

    assert run_batch(channel, deliveries(*docs)) == [core.DUPLICATE, handlers.APPLIED]

    assert channel.verbs == [("ack", 1, False), ("ack", 2, False)]
    assert InboxEvent.objects.count() == 2
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (2, 2)


def test_a_transient_error_retries_the_whole_batch_in_place(monkeypatch):
    import products.services

    product = make_product()
    real = products.services.apply_likes_batch
    failures = []

    def flaky(latest):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("lock wait timeout")
        return real(latest)

    monkeypatch.setattr(products.services, "apply_likes_batch", flaky)
    monkeypatch.setattr(consumer.runtime, "reset_db_connection", lambda: None)
    slept = []
    channel = FakeChannel()
    docs = [likes_envelope(product.pk, likes=i, seq=i) for i in (1, 2)]

    assert run_batch(channel, deliveries(*docs), sleep=slept.append) == [handlers.STALE, handlers.APPLIED]
    # 0.5 then 1 s, each less up to a fifth of jitter (eventbus.runtime.Backoff)
    assert [0.8 * base <= d <= base for d, base in zip(slept, (0.5, 1.0), strict=True)] == [True, True]
    assert channel.verbs == [("ack", 2, True)]  # never rejected, never requeued
    assert InboxEvent.objects.count() == 2


def test_a_stop_during_batch_retries_leaves_the_batch_unacked(monkeypatch):
    import products.services

    def down(latest):
        raise OperationalError("down")

    monkeypatch.setattr(products.services, "apply_likes_batch", down)
    monkeypatch.setattr(consumer.runtime, "reset_db_connection", lambda: None)
    product = make_product()
    channel = FakeChannel()
    docs = [likes_envelope(product.pk, seq=i) for i in (1, 2)]
    assert run_batch(channel, deliveries(*docs), stopping=lambda: True) == [core.ABANDONED] * 2
    assert channel.calls == []
    assert not InboxEvent.objects.exists()


class FakeConnection:
    """Hands queued deliveries to the consumer callback a few per process_data_events call."""

    def __init__(self, worker, pending, per_call):
        self.worker, self.pending, self.per_call = worker, pending, per_call

    def process_data_events(self, time_limit=0):
        for _ in range(min(self.per_call, len(self.pending))):
            self.worker._on_message(None, *self.pending.pop(0))

    def sleep(self, seconds):
        self.process_data_events()


def test_the_consumer_collects_buffered_deliveries_into_batches(monkeypatch):
    product = make_product()
    docs = [likes_envelope(product.pk, likes=i, seq=i) for i in range(1, 8)]
    monkeypatch.setattr(consumer.runtime, "beat", lambda name: None)
    worker = consumer.build(batch_size=4)
    batches = []
    real = worker.handle_batch

    def spy(channel, batch, **kw):
        batches.append([m.delivery_tag for m, _, _ in batch])
        return real(channel, batch, **kw)

    worker.handle_batch = spy
    worker.channel = FakeChannel()
    worker.connection = FakeConnection(worker, deliveries(*docs), per_call=2)

    for _ in range(2):  # two wake-ups of the consumer loop
        worker.connection.process_data_events(time_limit=1)
        worker._drain()

    assert batches == [[1, 2, 3, 4], [5, 6, 7]]
    assert worker.channel.verbs == [("ack", 4, True), ("ack", 7, True)]
    product.refresh_from_db()
    assert product.likes == 7


def test_a_lone_delivery_is_processed_at_once(monkeypatch):
    monkeypatch.setattr(consumer.runtime, "beat", lambda name: None)
    product = make_product()
    worker = consumer.build()
    worker.channel = FakeChannel()
    worker.connection = FakeConnection(
        worker, deliveries(likes_envelope(product.pk, likes=1, seq=1)), per_call=1
    )
    worker.connection.process_data_events(time_limit=1)
    worker._drain()
    assert worker.channel.verbs == [("ack", 1, False)]
    assert worker._buffer == []


def test_a_reconnect_forgets_buffered_deliveries_of_the_old_channel():
    worker = consumer.build()
    worker._buffer = [SimpleNamespace()]
    worker._disconnect()
    assert worker._buffer == []
