"""The pool pings a connection only after it sat idle, and replaces one that died meanwhile."""

import time

from sqlalchemy import create_engine, text

from app.db_pool import PING_AFTER_IDLE_SECONDS, ping_after_idle
from app.extensions import db


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def counting_pings(engine):
    calls = []
    original = engine.dialect.do_ping

    def do_ping(dbapi_connection):
        calls.append(dbapi_connection)
        return original(dbapi_connection)

    engine.dialect.do_ping = do_ping
    return calls


def test_only_an_idle_connection_is_pinged(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/pool.sqlite3")
    clock = FakeClock()
    ping_after_idle(engine, idle_seconds=1.0, clock=clock)
    pings = counting_pings(engine)

    with engine.connect() as conn:  # a new connection: nothing to check
        conn.execute(text("SELECT 1"))
    clock.now += 0.5
    with engine.connect() as conn:  # used half a second ago: no round trip
        conn.execute(text("SELECT 1"))
    assert pings == []

    clock.now += 1.0
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(pings) == 1
    engine.dispose()


def test_a_connection_that_died_while_idle_is_replaced_before_use(app):
    # create_app installs the idle ping. The engine is SQLite, or MariaDB when TEST_DATABASE_URL
    # points at one (the cross-service suite runs this suite on the session's MariaDB).
    with app.app_context():
        with db.engine.connect() as conn:
            dead = conn.connection.dbapi_connection
        dead.close()  # what a database restart does to every pooled connection
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.1)

        with db.engine.connect() as conn:
            assert conn.connection.dbapi_connection is not dead
            assert conn.execute(text("SELECT 1")).scalar() == 1
