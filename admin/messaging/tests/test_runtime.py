"""Worker plumbing: waiting for the broker at start is one INFO line, not a wall of pika errors."""

import logging

import pika
import pytest

from config.log import TraceContextFilter
from messaging import runtime


class Printed(logging.Handler):
    """What the stdout handler prints: its filter applied, records kept in a list."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(TraceContextFilter())

    def emit(self, record):
        self.records.append(record)

    def lines(self, level=logging.DEBUG):
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= level]


@pytest.fixture
def printed():
    handler = Printed()
    root, pika_logger = logging.getLogger(), logging.getLogger("pika")
    old_levels = root.level, pika_logger.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    pika_logger.setLevel(logging.WARNING)  # as config.log sets it (another test may have changed it)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_levels[0])
    pika_logger.setLevel(old_levels[1])


def refused(params):
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params)
    return info.value


@pytest.fixture
def closed_params():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1)


def test_a_broker_still_booting_is_one_info_line_and_no_pika_error(printed, closed_params):
    now = [100.0]
    wait = runtime.BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(5):
        with wait.attempt():
            exc = refused(closed_params)
        assert wait.failed(exc) is True
        now[0] += 2
    wait.succeeded()
    assert printed.lines() == [
        f"INFO messaging.runtime: waiting for the broker at 127.0.0.1:{closed_params.port}",
        f"INFO messaging.runtime: connected to the broker at 127.0.0.1:{closed_params.port} after 10.0 s",
    ]


def test_a_long_wait_is_said_once_at_warning(printed, closed_params):
    now = [0.0]
    wait = runtime.BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(30):
        wait.failed(ConnectionRefusedError())
        now[0] += 5
    warnings = printed.lines(logging.WARNING)
    assert len(warnings) == 1 and "still waiting for the broker" in warnings[0], warnings


def test_once_connected_a_lost_broker_is_the_callers_to_log_and_pika_speaks_again(printed, closed_params):
    wait = runtime.BrokerWait(closed_params)
    wait.succeeded()
    assert printed.lines() == []  # connected at the first try: nothing to say
    with wait.attempt():
        exc = refused(closed_params)
    assert wait.failed(exc) is False
    assert any(line.startswith("ERROR pika.") for line in printed.lines())
