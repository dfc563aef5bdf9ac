"""Consumer: parse, dedupe through the inbox, apply, commit, then ack."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from eventbus import consumer as core
from eventbus.runtime import StopSignal
from opentelemetry import trace
from prometheus_client import REGISTRY

from messaging import consumer, handlers
from messaging.models import InboxEvent
from messaging.tests.fakes import FakeChannel, delivery, likes_envelope
from products.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    return Product.objects.create(title="Mug", image="https://example.com/mug.png")


def metric(name, **labels) -> float:
    """Sum the samples of name whose labels include these (the others, e.g. type, summed over)."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def run(channel, doc_or_body, tag=1, **kw):
    """Hand one delivery to admin's consumer (eventbus.consumer over the Django store)."""
    delivered = delivery(
        doc_or_body,
        tag,
        **{k: v for k, v in kw.items() if k in ("message_id", "amqp_type", "headers")},
    )
    stop = StopSignal()
    if kw.get("stopping"):
        stop.request()
    worker = consumer.build(stop=stop)
    (outcome,) = worker.handle_batch(channel, [delivered], sleep=kw.get("sleep", lambda s: None))
    return outcome


def test_a_like_sets_the_absolute_count_and_sequence_then_acks(product):
    channel = FakeChannel()
    before = metric("events_consumed_total", type="product.liked")
    doc = likes_envelope(product.pk, likes=5, seq=9)

    assert run(channel, doc) == handlers.APPLIED

    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (5, 9)
    assert channel.verbs == [("ack", 1, False)]
    assert InboxEvent.objects.filter(message_id=doc["id"], event_type="product.liked").exists()
    assert metric("events_consumed_total", type="product.liked") == before + 1


@pytest.mark.parametrize("event_type", ["product.unliked", "product.likes_counted"])
def test_unlike_and_recount_apply_the_same_way(product, event_type):
    channel = FakeChannel()
    run(channel, likes_envelope(product.pk, likes=0, seq=3, event_type=event_type))
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (0, 3)
    assert channel.verbs == [("ack", 1, False)]


def test_an_older_sequence_does_not_move_likes_back_but_is_acked(product):
    channel = FakeChannel()
    run(channel, likes_envelope(product.pk, likes=5, seq=9), tag=1)
    assert run(channel, likes_envelope(product.pk, likes=4, seq=8), tag=2) == handlers.STALE
    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (5, 9)
    assert channel.verbs == [("ack", 1, False), ("ack", 2, False)]


def test_a_redelivered_message_is_dropped_as_duplicate_and_acked(product):
    channel = FakeChannel()
    doc = likes_envelope(product.pk, likes=5, seq=9)
    run(channel, doc, tag=1)
    # Meanwhile a newer like was applied; the old copy must not be applied again.
    Product.objects.filter(pk=product.pk).update(likes=6, likes_seq=10)
    before = metric("events_duplicates_total", type="product.liked")

    assert run(channel, doc, tag=2) == core.DUPLICATE

    product.refresh_from_db()
    assert (product.likes, product.likes_seq) == (6, 10)
    assert channel.verbs == [("ack", 1, False), ("ack", 2, False)]
    assert InboxEvent.objects.filter(message_id=doc["id"]).count() == 1
    assert metric("events_duplicates_total", type="product.liked") == before + 1


def test_likes_for_an_unknown_product_are_acked_and_logged(caplog):
    channel = FakeChannel()
    doc = likes_envelope(4242, likes=1, seq=1)
    assert run(channel, doc) == handlers.UNKNOWN_PRODUCT
    assert channel.verbs == [("ack", 1, False)]
    warning = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning and warning[0].event_id == doc["id"]
    assert "4242" in warning[0].getMessage()


@pytest.mark.parametrize(
    ("body", "kw", "reason"),
    [
        (b"{broken", {"message_id": "m-1", "amqp_type": "product.liked"}, "bad_json"),
        (likes_envelope(type="product.exploded"), {}, "unknown_type"),
        (likes_envelope(version=9), {}, "unsupported_version"),
        (likes_envelope(data={"product_id": 1, "likes": -1, "seq": 1}), {}, "bad_data"),
        (likes_envelope(), {"message_id": None}, "missing_message_id"),
        (
            likes_envelope(),
            {"message_id": "11111111-1111-4111-8111-111111111111"},
            "mismatch",
        ),
    ],
)
def test_a_poison_message_is_dead_lettered_without_requeue(product, caplog, body, kw, reason):
    channel = FakeChannel()
    before = metric("events_dead_lettered_total", reason=reason)

    assert run(channel, body, tag=7, **kw) == core.DEAD_LETTERED

    assert channel.calls == [("reject", 7, False)]
    assert not InboxEvent.objects.exists()
    assert metric("events_dead_lettered_total", reason=reason) == before + 1
    warning = next(r for r in caplog.records if r.levelname == "WARNING")
    assert warning.reason == reason
    assert hasattr(warning, "event_id") and hasattr(warning, "event_type")


@pytest.mark.django_db(transaction=True)
def test_ack_is_sent_only_after_the_transaction_committed(product):
    channel = FakeChannel()
    doc = likes_envelope(product.pk, likes=2, seq=2)
    run(channel, doc)
    (verb, tag, multiple, seen) = channel.calls[0]
    assert (verb, tag, multiple) == ("ack", 1, False)
    # Outside any atomic block with autocommit on: the inbox row was already committed.
    assert seen == {"in_transaction": False, "inbox": {doc["id"]}}


@pytest.mark.django_db(transaction=True)
def test_a_handler_failure_rolls_back_the_inbox_row_and_dead_letters(product, monkeypatch):
    def boom(event):
        raise RuntimeError("bug")

    monkeypatch.setitem(handlers.HANDLERS, "product.liked", boom)
    channel = FakeChannel()
    assert run(channel, likes_envelope(product.pk)) == core.DEAD_LETTERED
    assert channel.calls == [("reject", 1, False)]
    assert not InboxEvent.objects.exists()


def test_a_transient_database_error_is_retried_in_place_with_backoff(product, monkeypatch):
    real = handlers.HANDLERS["product.liked"]
    failures = []

    def flaky(event):
        if len(failures) < 3:
            failures.append(1)
            raise OperationalError("server has gone away")
        return real(event)

    monkeypatch.setitem(handlers.HANDLERS, "product.liked", flaky)
    monkeypatch.setattr(consumer.runtime, "reset_db_connection", lambda: None)
    slept = []
    channel = FakeChannel()

    outcome = run(channel, likes_envelope(product.pk, likes=3, seq=3), sleep=slept.append)

    assert outcome == handlers.APPLIED
    # 0.5, 1, 2 s, each less up to a fifth of jitter (eventbus.runtime.Backoff)
    assert [0.8 * base <= d <= base for d, base in zip(slept, (0.5, 1.0, 2.0), strict=True)] == [True] * 3
    assert channel.verbs == [("ack", 1, False)]  # never nacked, never requeued
    product.refresh_from_db()
    assert product.likes == 3


def test_a_stop_during_database_retries_leaves_the_message_unacked(product, monkeypatch):
    def down(event):
        raise OperationalError("down")

    monkeypatch.setitem(handlers.HANDLERS, "product.liked", down)
    monkeypatch.setattr(consumer.runtime, "reset_db_connection", lambda: None)
    channel = FakeChannel()
    assert run(channel, likes_envelope(product.pk), stopping=lambda: True) == core.ABANDONED
    assert channel.calls == []


def test_the_apply_span_is_a_child_of_the_producer_trace(product, monkeypatch):
    seen = {}

    def spy(event):
        seen["ctx"] = trace.get_current_span().get_span_context()
        return handlers.APPLIED

    monkeypatch.setitem(handlers.HANDLERS, "product.liked", spy)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    run(FakeChannel(), likes_envelope(product.pk), headers=headers)
    assert format(seen["ctx"].trace_id, "032x") == trace_id


def test_every_consumed_type_has_a_handler():
    from messaging import contract

    assert set(handlers.HANDLERS) == set(contract.CONSUMED)


def test_the_consumer_retries_an_unreachable_broker_and_stops_cleanly():
    import threading

    import pika

    from messaging.tests.rabbit import free_port

    closed = pika.ConnectionParameters("127.0.0.1", free_port(), connection_attempts=1)
    worker = consumer.build(params=closed)
    threading.Timer(0.3, worker.stop.request).start()
    assert worker.run() == 0
    assert metric("consumer_up") == 0


def test_an_unrecoverable_broker_error_ends_the_consumer_non_zero(monkeypatch):
    import pika.exceptions

    def refuse(*args, **kwargs):
        raise pika.exceptions.ProbableAccessDeniedError(
            "ConnectionClosedByBroker: (530) \"NOT_ALLOWED - access to vhost 'shop' refused for user 'admin'\""
        )

    monkeypatch.setattr(consumer.core.pika, "BlockingConnection", refuse)
    assert consumer.build().run() == 1


def test_a_schema_error_is_retried_in_place_loudly_and_never_blamed_on_the_message(
    product, monkeypatch, caplog
):
    # Migrations not run yet: the message is held and retried (never dead-lettered, never sent back
    # to the queue, where a crash loop would spend its delivery limit) until the schema is there.
    from django.db import ProgrammingError

    real = handlers.HANDLERS["product.liked"]
    attempts = []

    def missing_table_then_migrated(event):
        attempts.append(1)
        if len(attempts) <= 2:
            raise ProgrammingError("(1146, \"Table 'admin_db.products_product' doesn't exist\")")
        return real(event)

    monkeypatch.setitem(handlers.HANDLERS, "product.liked", missing_table_then_migrated)
    monkeypatch.setattr(consumer.runtime, "reset_db_connection", lambda: None)
    channel = FakeChannel()
    assert run(channel, likes_envelope(product.pk, likes=4, seq=4)) == handlers.APPLIED
    assert channel.verbs == [("ack", 1, False)]
    assert any(
        r.levelname == "ERROR" and "holding them and retrying" in r.getMessage() for r in caplog.records
    )
    product.refresh_from_db()
    assert product.likes == 4


def test_every_known_label_set_exists_from_the_start():
    # A healthy system shows 0 on the dashboards and alerts, not "No data".
    from messaging import contract, relay  # noqa: F401 - the relay's counters are created on import

    for event_type in contract.CONSUMED:
        for name in ("events_consumed_total", "events_duplicates_total"):
            assert REGISTRY.get_sample_value(name, {"type": event_type}) is not None, (name, event_type)
        for reason in consumer.DEAD_LETTER_REASONS:
            labels = {"type": event_type, "reason": reason}
            assert REGISTRY.get_sample_value("events_dead_lettered_total", labels) is not None, labels
    for event_type in contract.PUBLISHED:
        assert REGISTRY.get_sample_value("events_published_total", {"type": event_type}) is not None
