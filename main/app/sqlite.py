"""SQLite shared by several processes: WAL, a busy timeout, and the write lock taken at BEGIN.

`make run` runs main's web workers, consumer and relay on one SQLite file. In a DEFERRED
transaction (sqlite3's default) that reads and then writes, the write fails at once with
"database is locked" when another process committed since the read: SQLite cannot upgrade a
stale snapshot, and the busy timeout does not help. BEGIN IMMEDIATE takes the write lock when the
transaction begins, where the busy timeout does wait, so a transaction never fails half-way;
WAL lets the file be read while one process writes. sqlite3 must then leave BEGIN to SQLAlchemy:
https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#enabling-non-legacy-sqlite-transactional-modes-with-the-sqlite3-or-aiosqlite-driver
"""

from sqlalchemy import event

# How long a transaction waits for another process's write lock before it fails; far above the
# few milliseconds any transaction of this service holds it.
BUSY_TIMEOUT_SECONDS = 20


def engine_options():
    """Return SQLAlchemy engine options for a SQLite database."""
    return {"connect_args": {"timeout": BUSY_TIMEOUT_SECONDS}}


def use_immediate_transactions(engine):
    """Make every transaction on a SQLite engine BEGIN IMMEDIATE, on a WAL journal."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        # sqlite3 would otherwise send its own deferred BEGIN before the first write.
        dbapi_connection.isolation_level = None
        # WAL is a property of the file and persists; an in-memory database answers "memory".
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
