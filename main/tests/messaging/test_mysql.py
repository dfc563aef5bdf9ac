"""Messaging on MariaDB: version rules, dedupe and SKIP LOCKED claims between two relays."""

import threading
import time

import pytest
from eventbus.consumer import DUPLICATE
from sqlalchemy import select

from app.extensions import db
from app.messaging import consumer, relay
from app.messaging.handlers import APPLIED, STALE
from app.messaging.outbox import enqueue
from app.models import Product
from tests.conftest import make_app
from tests.messaging.conftest import FakeChannel, admin_event

pytestmark = pytest.mark.mysql


@pytest.fixture
def mysql_app(mysql_database_url):
    app = make_app(mysql_database_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def product_event(event_type, pid, version, title="t"):
    return admin_event(event_type, {"id": pid, "title": title, "image": "", "version": version})


def test_apply_rules_hold_on_mariadb(mysql_app):
    channel = FakeChannel()
    create = product_event("product.created", 1, 1, "old")
    events = [
        product_event("product.updated", 1, 2, "new"),
        create,
        create,
        admin_event("product.deleted", {"id": 2, "version": 2}),
        product_event("product.created", 2, 1),
        product_event("product.updated", 3, 1, "same"),
        product_event("product.updated", 3, 1, "same"),  # identical values, new id
    ]
    worker = consumer.build(mysql_app)
    outcomes = [worker.handle_batch(channel, [channel.delivery(env)])[0] for env in events]
    with mysql_app.app_context():
        rows = {p.id: (p.title, p.version, p.deleted) for p in db.session.execute(select(Product)).scalars()}

    assert outcomes == [APPLIED, STALE, DUPLICATE, APPLIED, STALE, APPLIED, APPLIED]
    assert rows == {1: ("new", 2, False), 2: ("", 2, True), 3: ("same", 1, False)}
    assert channel.acked == [1, 2, 3, 4, 5, 6, 7]


def test_two_relays_never_claim_the_same_rows(mysql_app):
    with mysql_app.app_context():
        ids = [
            enqueue(db.session, "product.liked", {"product_id": i + 1, "likes": 1, "seq": 1}).event_id
            for i in range(6)
        ]
        db.session.commit()
        db.session.remove()

    first_claimed = threading.Event()
    second_done = threading.Event()
    seen = {}

    class Publisher:
        def __init__(self, name, hold):
            self.name, self.hold = name, hold

        def publish_batch(self, messages):
            seen[self.name] = [ids.index(m.event_id) + 1 for m in messages]
            if self.hold:
                # Keep the rows locked until the other relay has made its claim.
                first_claimed.set()
                assert second_done.wait(30)
            return {m.event_id: None for m in messages}

    errors = []

    def run(name, hold):
        try:
            worker = relay.build(mysql_app, batch_size=3, wakeup_addr=None)
            worker.publisher = Publisher(name, hold)
            worker.run_once()
        except Exception as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)
        finally:
            if not hold:
                second_done.set()

    a = threading.Thread(target=run, args=("a", True))
    a.start()
    assert first_claimed.wait(30)
    b = threading.Thread(target=run, args=("b", False))
    b.start()
    b.join(30)
    a.join(30)

    assert errors == []
    assert seen == {"a": [1, 2, 3], "b": [4, 5, 6]}


def test_a_database_that_stops_answering_fails_the_statement_within_the_timeout(mysql_database_url):
    # A half-open socket (the server gone without a FIN) looks like a server that never answers:
    # SLEEP stands in for it. Without read_timeout PyMySQL would wait for the full 30 s.
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from app.config import engine_options, normalise_database_url

    url = normalise_database_url(mysql_database_url)
    engine = create_engine(url, **engine_options(url, {"read_timeout": 2, "write_timeout": 2}))
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="2013|Lost connection"), engine.connect() as conn:
            conn.execute(text("SELECT SLEEP(30)"))
        assert time.monotonic() - started < 10
    finally:
        engine.dispose()
