"""The consumer: order-independent apply, dedupe, dead-lettering, ack strictly after commit."""

import json

import pytest
from eventbus.consumer import ABANDONED, DEAD_LETTERED, DUPLICATE
from eventbus.runtime import StopSignal
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.messaging import consumer as consumer_module
from app.messaging import handlers, metrics
from app.models import InboxEvent, Product
from tests.messaging.conftest import admin_event


def created(pid, version, title=None, event_type="product.created"):
    return admin_event(
        event_type,
        {
            "id": pid,
            "title": title or f"P{pid} v{version}",
            "image": "",
            "version": version,
        },
    )


def updated(pid, version, title=None):
    return created(pid, version, title, "product.updated")


def deleted(pid, version):
    return admin_event("product.deleted", {"id": pid, "version": version})


def snapshot(ids, max_id):
    return admin_event("catalogue.snapshot", {"ids": ids, "max_id": max_id})


ACKED = handlers.APPLIED


def handle(app, channel, delivery, sleep=lambda _s: None, stop=None):
    """Hand one delivery to main's consumer (eventbus.consumer over the SQLAlchemy store)."""
    worker = consumer_module.build(app, stop=stop or StopSignal())
    (outcome,) = worker.handle_batch(channel, [delivery], sleep=sleep)
    return outcome


@pytest.fixture
def consume(app, channel):
    """Return a function that delivers envelopes, one by one, to main's consumer on the fake channel."""
    sleeps = []

    def deliver(*envelopes, stop=None):
        return [handle(app, channel, channel.delivery(env), sleeps.append, stop) for env in envelopes]

    deliver.sleeps = sleeps
    return deliver


def replica(app, pid):
    with app.app_context():
        row = db.session.get(Product, pid)
        result = None if row is None else (row.title, row.version, row.deleted)
        db.session.remove()
        return result


def inbox_ids(app):
    with app.app_context():
        return set(db.session.execute(select(InboxEvent.message_id)).scalars())


def sample(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def dead_lettered(reason):
    """Return the dead-letter count for reason, over every event type."""
    return sum(
        s.value
        for metric in metrics.REGISTRY.collect()
        for s in metric.samples
        if s.name == "events_dead_lettered_total" and s.labels.get("reason") == reason
    )


def test_create_inserts_the_replica_and_acks(app, consume, channel):
    env = created(1, 1, "Mug")

    assert consume(env) == [ACKED]

    assert replica(app, 1) == ("Mug", 1, False)
    assert channel.acked == [1] and channel.rejected == []
    assert inbox_ids(app) == {env["id"]}


def test_update_before_create_keeps_the_newer_version(app, consume):
    consume(updated(1, 2, "new"), created(1, 1, "old"))

    assert replica(app, 1) == ("new", 2, False)


def test_updates_in_any_order_end_at_the_highest_version(app, consume):
    consume(created(1, 1), updated(1, 4, "v4"), updated(1, 3, "v3"), updated(1, 2, "v2"))

    assert replica(app, 1) == ("v4", 4, False)


def test_same_version_is_applied_again(app, consume):
    consume(created(1, 1, "a"), updated(1, 1, "b"))

    assert replica(app, 1) == ("b", 1, False)


def test_late_update_after_delete_does_not_resurrect(app, consume, channel):
    consume(created(1, 1), deleted(1, 3), updated(1, 2, "late"))

    assert replica(app, 1) == ("P1 v1", 3, True)
    assert channel.acked == [1, 2, 3]


def test_delete_before_create_leaves_a_tombstone_that_blocks_the_create(app, consume):
    consume(deleted(1, 2), created(1, 1), updated(1, 2, "same version"))

    assert replica(app, 1) == ("", 2, True)


def test_newer_update_than_the_tombstone_brings_the_product_back(app, consume):
    consume(created(1, 1), deleted(1, 2), updated(1, 3, "re-created"))

    assert replica(app, 1) == ("re-created", 3, False)


def test_delete_older_than_the_replica_is_ignored(app, consume):
    consume(updated(1, 5, "current"), deleted(1, 4))

    assert replica(app, 1) == ("current", 5, False)


def test_delete_keeps_likes_rows_and_counts(app, consume, add_product):
    add_product(1, likes=3, version=1)

    consume(deleted(1, 2))

    with app.app_context():
        row = db.session.get(Product, 1)
        assert (row.deleted, row.version, row.likes) == (True, 2, 3)


def test_create_onto_an_existing_row_updates_it_and_keeps_its_likes(app, consume, add_product):
    # product.created tries the INSERT first; the existing row makes it fall back to the update.
    add_product(1, likes=4, version=1)

    consume(created(1, 2, "created again"), created(1, 1, "older create"))

    with app.app_context():
        row = db.session.get(Product, 1)
        assert (row.title, row.version, row.likes, row.deleted) == ("created again", 2, 4, False)


def test_update_does_not_touch_likes(app, consume, add_product):
    add_product(1, likes=4, version=1)

    consume(updated(1, 2, "renamed"))

    with app.app_context():
        row = db.session.get(Product, 1)
        assert (row.title, row.likes) == ("renamed", 4)


def test_snapshot_tombstones_products_admin_no_longer_has(app, consume, add_product):
    for pid in (1, 2, 3, 4, 9):
        add_product(pid, version=2)

    consume(snapshot([1, 3], max_id=4))

    assert [replica(app, pid)[2] for pid in (1, 2, 3, 4, 9)] == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert replica(app, 2)[1] == handlers.SNAPSHOT_TOMBSTONE_VERSION


def test_nothing_older_brings_back_a_product_a_snapshot_tombstoned(app, consume, add_product):
    # admin deleted product 2 at version 4; main missed the delete (it holds version 2), and the
    # resync's snapshot tombstoned it. Then an older update arrives: a dead letter redriven, or
    # a message delayed past the resync. The gallery must not show the product again.
    add_product(2, version=2)
    consume(snapshot([], max_id=2))

    consume(updated(2, 3, "redriven"), created(2, 1, "late create"))

    assert replica(app, 2)[2] is True


def forced_update(pid, version, title):
    """product.updated version 2 with force (`manage.py resync_products --force`)."""
    event = updated(pid, version, title)
    return {**event, "version": 2, "data": {**event["data"], "force": True}}


def test_a_forced_update_wins_over_a_newer_replica_and_a_tombstone(app, consume, add_product):
    # admin was restored from a backup: its versions went back below main's.
    add_product(1, title="ahead", version=9)
    add_product(2, version=2)
    consume(snapshot([1], max_id=2))  # product 2 tombstoned, final for ordinary events

    consume(updated(1, 3, "ordinary"), forced_update(1, 3, "restored"), forced_update(2, 1, "back"))

    assert replica(app, 1) == ("restored", 3, False)
    assert replica(app, 2) == ("back", 1, False)
    consume(updated(1, 4, "next edit"))  # and the ordinary flow goes on from there
    assert replica(app, 1) == ("next edit", 4, False)


def test_snapshot_with_many_ids_works_in_chunks(app, consume, add_product, monkeypatch):
    monkeypatch.setattr(handlers, "_SNAPSHOT_CHUNK", 2)
    for pid in range(1, 8):
        add_product(pid)

    consume(snapshot([4], max_id=7))

    assert [replica(app, pid)[2] for pid in range(1, 8)] == [
        True,
        True,
        True,
        False,
        True,
        True,
        True,
    ]


def test_duplicate_is_acked_counted_and_not_applied_again(app, consume, channel):
    first = created(1, 1, "first")
    again = dict(first, data={**first["data"], "title": "changed"})
    before = sample("events_duplicates_total", type="product.created")

    assert consume(first, again) == [ACKED, DUPLICATE]

    assert replica(app, 1) == ("first", 1, False)
    assert channel.acked == [1, 2]
    assert sample("events_duplicates_total", type="product.created") == before + 1


@pytest.mark.parametrize(
    ("delivery", "reason"),
    [
        ({"body": b"{not json", "message_id": "m-1"}, "bad_json"),
        (
            {"body": b'{"id": "x"}', "message_id": "x", "amqp_type": "product.created"},
            "bad_envelope",
        ),
        ({"env": admin_event("product.exploded", {})}, "unknown_type"),
        ({"env": admin_event("product.created", {"id": 1})}, "bad_data"),
        ({"env": created(1, 1), "message_id": None}, "missing_message_id"),
        (
            {
                "env": created(1, 1),
                "message_id": "00000000-0000-4000-8000-000000000000",
            },
            "mismatch",
        ),
    ],
)
def test_poison_is_rejected_without_requeue(app, channel, delivery, reason, caplog):
    env = delivery.pop("env", None)
    before = dead_lettered(reason)
    outcome = handle(app, channel, channel.delivery(env, **delivery))

    assert outcome == DEAD_LETTERED
    assert channel.rejected == [(1, False)] and channel.acked == []
    assert inbox_ids(app) == set()
    assert replica(app, 1) is None
    assert dead_lettered(reason) == before + 1
    warning = next(r for r in caplog.records if "dead-letter" in r.getMessage())
    assert warning.reason == reason
    if env is not None:
        assert warning.event_type == env["type"]


def test_ack_comes_only_after_the_commit(app, channel):
    with app.app_context():
        # The engine's commit event fires on the real COMMIT only (not on savepoint releases).
        sa_event.listen(db.engine, "commit", lambda _conn: channel.log.append(("commit",)))
    handle(app, channel, channel.delivery(created(1, 1)))
    handle(app, channel, channel.delivery(updated(1, 2)))

    assert channel.log == [("commit",), ("ack", 1), ("commit",), ("ack", 2)]


def test_no_ack_when_the_commit_fails(app, channel, monkeypatch):
    # A constraint that fails only at COMMIT is the event's: nothing acked, the event alone dead-lettered.
    def broken_commit(conn):
        conn.connection.rollback()  # as a server does when its COMMIT fails
        raise IntegrityError("COMMIT", {}, Exception("constraint failed at commit"))

    with app.app_context():
        sa_event.listen(db.engine, "commit", broken_commit)
    try:
        outcome = handle(app, channel, channel.delivery(created(1, 1)))
    finally:
        with app.app_context():
            sa_event.remove(db.engine, "commit", broken_commit)

    assert outcome == DEAD_LETTERED
    assert channel.acked == [] and channel.rejected == [(1, False)]
    assert replica(app, 1) is None
    assert inbox_ids(app) == set()


def test_transient_database_error_is_retried_in_place(app, consume, channel, monkeypatch):
    real_apply = handlers.apply
    failures = []

    def flaky(session, event):
        if len(failures) < 3:
            failures.append(1)
            raise OperationalError("UPDATE product", {}, Exception("server has gone away"))
        return real_apply(session, event)

    monkeypatch.setattr(handlers, "apply", flaky)
    env = created(1, 1)

    assert consume(env) == [ACKED]

    assert len(consume.sleeps) == 3
    assert consume.sleeps == sorted(consume.sleeps)  # backing off
    assert channel.acked == [1] and channel.rejected == []
    assert replica(app, 1) == ("P1 v1", 1, False)
    assert inbox_ids(app) == {env["id"]}


def test_retry_stops_without_ack_or_reject_when_asked_to_stop(app, consume, channel, monkeypatch):
    def down(session, event):
        raise OperationalError("UPDATE product", {}, Exception("server has gone away"))

    monkeypatch.setattr(handlers, "apply", down)
    stop = StopSignal()
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            stop.request()

    assert handle(app, channel, channel.delivery(created(1, 1)), sleep, stop) == ABANDONED

    assert len(sleeps) == 2
    assert channel.acked == [] and channel.rejected == []
    assert inbox_ids(app) == set()


def test_a_missing_table_is_retried_in_place_and_never_dead_letters_the_event(
    app, channel, monkeypatch, caplog
):
    # Migrations not run yet (MySQL's 1146 is a ProgrammingError): hold the event, say so loudly, retry.
    from sqlalchemy.exc import ProgrammingError

    real_apply = handlers.apply
    attempts = []

    def missing_then_migrated(session, event):
        attempts.append(1)
        if len(attempts) <= 2:
            raise ProgrammingError(
                "UPDATE product", {}, Exception("(1146, \"Table 'main_db.product' doesn't exist\")")
            )
        return real_apply(session, event)

    monkeypatch.setattr(handlers, "apply", missing_then_migrated)
    assert handle(app, channel, channel.delivery(created(1, 1))) == ACKED
    assert channel.rejected == [] and channel.acked == [1]
    assert any(
        r.levelname == "ERROR" and "holding them and retrying" in r.getMessage() for r in caplog.records
    )
    assert replica(app, 1) == ("P1 v1", 1, False)


def test_handler_bug_dead_letters_and_rolls_back(app, consume, channel, monkeypatch):
    def bug(session, event):
        raise KeyError("oops")

    monkeypatch.setattr(handlers, "apply", bug)
    with app.app_context():
        pool = db.engine.pool

    assert consume(created(1, 1)) == [DEAD_LETTERED]
    assert channel.rejected == [(1, False)]
    assert inbox_ids(app) == set()
    with app.app_context():
        # A bug in a handler says nothing about the connections: the pool stays as it was.
        assert db.engine.pool is pool


def test_consumed_metrics_count_applied_events(app, consume):
    before = sample("events_consumed_total", type="product.updated")
    age_count = sample("event_apply_age_seconds_count", type="product.updated")

    consume(updated(1, 1), updated(2, 1))

    assert sample("events_consumed_total", type="product.updated") == before + 2
    assert sample("event_apply_age_seconds_count", type="product.updated") == age_count + 2


def test_consumer_span_is_a_child_of_the_producer_trace(app, consume):
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = "00f067aa0ba902b7"
    env = created(1, 1)

    with app.app_context():
        from tests.messaging.conftest import FakeChannel

        ch = FakeChannel()
        delivered = ch.delivery(env, headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    handle(app, ch, delivered)

    span = next(
        s for s in exporter.get_finished_spans() if s.attributes.get("messaging.message.id") == env["id"]
    )
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent
    assert span.kind == trace.SpanKind.CONSUMER


def test_whose_fault_an_error_is():
    from sqlalchemy.exc import ProgrammingError

    store = consumer_module.SqlInboxStore(engine=None)
    assert store.classify(OperationalError("x", {}, Exception("gone"))) == "retry"
    assert store.classify(ProgrammingError("x", {}, Exception("1146 no such table"))) == "retry"
    assert store.classify(IntegrityError("x", {}, Exception("dup"))) == "reject"
    assert store.classify(KeyError("a handler bug")) == "reject"


def test_events_round_trip_through_json(app, consume):
    # The envelope as admin writes it (separators and all) is accepted verbatim.
    env = created(3, 1)
    raw = json.dumps(env, separators=(",", ":")).encode()
    from tests.messaging.conftest import FakeChannel

    ch = FakeChannel()
    method, props, _ = ch.delivery(env)
    assert handle(app, ch, (method, props, raw)) == ACKED
