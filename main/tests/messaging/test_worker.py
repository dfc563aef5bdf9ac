"""Worker plumbing: waiting for the broker at start is one INFO line, not a wall of pika errors."""

import logging
import socket

import pika
import pytest

from app.logging_config import ContextFilter
from app.messaging.worker import BrokerWait


class Printed(logging.Handler):
    """What the stdout handler prints: its filter applied, records kept in a list."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []
        self.addFilter(ContextFilter("main"))

    def emit(self, record):
        self.records.append(record)

    def lines(self, level=logging.DEBUG):
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= level]


@pytest.fixture
def printed():
    handler = Printed()
    root = logging.getLogger()
    old_levels = root.level, logging.getLogger("pika").level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("pika").setLevel(logging.WARNING)  # as quiet_pika() leaves it in the workers
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_levels[0])
    logging.getLogger("pika").setLevel(old_levels[1])


@pytest.fixture
def closed_params():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1)


def refused(params):
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params)
    return info.value


def test_a_broker_still_booting_is_one_info_line_and_no_pika_error(printed, closed_params):
    now = [100.0]
    wait = BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(5):
        with wait.attempt():
            exc = refused(closed_params)
        assert wait.failed(exc) is True
        now[0] += 2
    wait.succeeded()
    assert printed.lines() == [
        f"INFO app.messaging.worker: waiting for the broker at 127.0.0.1:{closed_params.port}",
        f"INFO app.messaging.worker: connected to the broker at 127.0.0.1:{closed_params.port} after 10.0 s",
    ]


def test_a_long_wait_is_said_once_at_warning(printed, closed_params):
    now = [0.0]
    wait = BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(30):
        wait.failed(ConnectionRefusedError())
        now[0] += 5
    warnings = printed.lines(logging.WARNING)
    assert len(warnings) == 1 and "still waiting for the broker" in warnings[0], warnings


def test_once_connected_a_lost_broker_is_the_callers_to_log_and_pika_speaks_again(printed, closed_params):
    wait = BrokerWait(closed_params)
    wait.succeeded()
    assert printed.lines() == []  # connected at the first try: nothing to say
    with wait.attempt():
        exc = refused(closed_params)
    assert wait.failed(exc) is False
    assert any(line.startswith("ERROR pika.") for line in printed.lines())


def test_every_known_label_set_exists_from_the_start():
    # A healthy system shows 0 on the dashboards and alerts, not "No data".
    from app.messaging import contract, metrics

    def exists(name, **labels):
        return metrics.REGISTRY.get_sample_value(name, labels) is not None

    assert all(exists("events_published_total", type=t) for t in contract.PUBLISHED)
    for event_type in contract.CONSUMED:
        assert exists("events_consumed_total", type=event_type)
        assert exists("events_duplicates_total", type=event_type)
        for reason in metrics.DEAD_LETTER_REASONS:
            assert exists("events_dead_lettered_total", type=event_type, reason=reason), reason


def test_a_worker_exports_the_database_work_and_its_process_figures(app):
    # The Database and Resources dashboards plot these for main's consumer and relay too.
    from sqlalchemy import text

    from app.extensions import db
    from app.messaging import metrics

    def value(name, **labels):
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    with app.app_context():
        vendor = db.engine.dialect.name  # sqlite here, mysql when the suite runs on MariaDB
        before = value("sqlalchemy_execute_total", vendor=vendor)
        db.session.execute(text("SELECT 1"))
        db.session.execute(text("UPDATE product SET title = title WHERE id = -1"))
        db.session.rollback()
    assert value("sqlalchemy_execute_total", vendor=vendor) >= before + 2
    assert value("sqlalchemy_query_duration_seconds_count", vendor=vendor) > 0
    assert value("sqlalchemy_table_writes_total", table="product", operation="update") > 0
    assert value("process_cpu_seconds_total") > 0
