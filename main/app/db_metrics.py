"""Database metrics of every main process, from SQLAlchemy's engine events.

They answer the questions admin's django-prometheus database metrics (django_db_*,
django_model_*) answer, so the Database dashboard shows both services: statements per second and
their duration, errors by type, new connections, and writes per table. The timing follows
SQLAlchemy's own recipe (https://docs.sqlalchemy.org/en/20/faq/performance.html#query-profiling).
"""

import re
import time

from prometheus_client import Counter, Histogram
from sqlalchemy import event

# django-prometheus's buckets for django_db_query_duration_seconds, so the two histograms compare.
BUCKETS = (
    0.0001,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    25,
    50,
    100,
)

EXECUTE = Counter("sqlalchemy_execute", "Statements sent to the database", ["vendor"])
DURATION = Histogram(
    "sqlalchemy_query_duration_seconds", "Time a statement took in the driver", ["vendor"], buckets=BUCKETS
)
ERRORS = Counter("sqlalchemy_errors", "Statements that raised, by exception type", ["vendor", "type"])
CONNECTIONS = Counter("sqlalchemy_new_connections", "Database connections opened", ["vendor"])
TABLE_WRITES = Counter(
    "sqlalchemy_table_writes", "INSERT, UPDATE and DELETE statements by table", ["table", "operation"]
)
COLLECTORS = (EXECUTE, DURATION, ERRORS, CONNECTIONS, TABLE_WRITES)

_DML = re.compile(r"\s*(INSERT|UPDATE|DELETE)\s+(?:INTO\s+|FROM\s+)?[`\"]?(\w+)", re.IGNORECASE)
_STARTED = "db_metrics_started"


def instrument(engine, tables=()):
    """Count and time every statement, error and new connection of engine."""
    vendor = engine.dialect.name
    execute, duration, connections = (
        EXECUTE.labels(vendor),
        DURATION.labels(vendor),
        CONNECTIONS.labels(vendor),
    )
    # Series exist from the start (0 on a healthy system) for the tables this service writes.
    for table in tables:
        for operation in ("insert", "update", "delete"):
            TABLE_WRITES.labels(table, operation)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        connections.inc()

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    writes_by_statement = {}  # statement text -> its table-writes child, or None (a few dozen)

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        duration.observe(time.perf_counter() - conn.info[_STARTED].pop())
        execute.inc()
        try:
            writes = writes_by_statement[statement]
        except KeyError:
            dml = _DML.match(statement)
            writes = TABLE_WRITES.labels(dml[2].lower(), dml[1].lower()) if dml else None
            if len(writes_by_statement) < 1000:  # statements use bound parameters; bound the odd one out
                writes_by_statement[statement] = writes
        if writes is not None:
            writes.inc()

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        started = context.connection.info.get(_STARTED) if context.connection is not None else None
        if started:
            started.pop()
        ERRORS.labels(vendor, type(context.original_exception).__name__).inc()
