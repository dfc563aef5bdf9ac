"""Broker connections: parameters, the fatal-error rule, a quiet wait for a starting broker."""

import logging
import socket
import ssl
from pathlib import Path

import certifi
import pika
import pika.exceptions
import pytest
from eventbus import connection
from eventbus.topology import Topology
from pika.adapters.utils import connection_workflow


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parameters_from_an_amqp_url():
    params = connection.parameters("amqp://u:p@broker:5673/vh", client_name="admin-relay")
    assert (params.host, params.port, params.virtual_host) == ("broker", 5673, "vh")
    assert params.connection_attempts == 1 and params.heartbeat == 30
    assert params.client_properties == {"connection_name": "admin-relay"}
    assert params.ssl_options is None
    assert connection.where(params) == "broker:5673"


def test_amqps_verifies_the_certificate_and_the_host_name():
    params = connection.parameters("amqps://u:p@broker.example.com:5671/%2F")
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert params.ssl_options.server_hostname == "broker.example.com"


# -- several broker addresses ----------------------------------------------------------------------
def test_several_addresses_give_one_parameters_each_configured_alike(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(Path(certifi.where()).read_text())
    brokers = connection.parameters(
        " amqp://u:p@rabbit-0:5672/shop ,amqps://u:p@rabbit-1.example:5671/shop,  amqp://u:p@rabbit-2/shop, ",
        str(ca),
        client_name="admin-relay",
    )
    assert isinstance(brokers, connection.Brokers) and len(brokers) == 3
    assert [(p.host, p.port, p.virtual_host) for p in brokers] == [
        ("rabbit-0", 5672, "shop"),
        ("rabbit-1.example", 5671, "shop"),
        ("rabbit-2", 5672, "shop"),
    ]
    for params in brokers:
        assert params.connection_attempts == 1 and params.heartbeat == 30
        assert params.blocked_connection_timeout == 60 and params.socket_timeout == 10
        assert params.client_properties == {"connection_name": "admin-relay"}
    tls = brokers[1].ssl_options
    assert brokers[0].ssl_options is None and brokers[2].ssl_options is None
    assert tls.server_hostname == "rabbit-1.example" and tls.context.check_hostname
    assert tls.context.get_ca_certs()  # the CA file, not only the system's
    assert connection.where(brokers) == "rabbit-0:5672, rabbit-1.example:5671, rabbit-2:5672"


def test_a_comma_inside_one_url_stays_in_it():
    # RFC 3986 allows a bare comma in a password.
    params = connection.parameters("amqp://svc:pa,ss@rabbit:5672/%2F")  # pragma: allowlist secret
    assert isinstance(params, pika.URLParameters)
    assert params.credentials.password == "pa,ss"  # pragma: allowlist secret


def test_each_connection_starts_one_address_further_on():
    brokers = connection.Brokers([pika.ConnectionParameters(h, 5672) for h in "abc"], start=1)
    starts = [brokers.order() for _ in range(4)]
    assert [[p.host for p in order] for order in starts] == [
        ["b", "c", "a"],
        ["c", "a", "b"],
        ["a", "b", "c"],
        ["b", "c", "a"],
    ]
    # From a random first address otherwise, so a fleet of workers spreads over the nodes.
    firsts = {connection.Brokers(list(brokers)).order()[0].host for _ in range(200)}
    assert firsts == {"a", "b", "c"}


def test_one_address_is_what_it_was():
    one = pika.ConnectionParameters("solo", 5672)
    brokers = connection.Brokers.of(one)
    assert list(brokers) == [one] and brokers.order() == [one] and brokers.order() == [one]
    assert connection.Brokers.of(brokers) is brokers
    assert connection.where(one) == "solo:5672"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("http://u:p@rabbit/%2F", "RABBITMQ_URL (http://u:***@rabbit/%2F) is not an AMQP URL"),
        (
            "amqp://u:s3cret@a:5672/%2F, amqp://u:s3cret@b:56x2/%2F",  # pragma: allowlist secret
            "RABBITMQ_URL address 2 of 2 (amqp://u:***@b:56x2/%2F) is not a valid AMQP URL: Port",
        ),
        (
            "amqp://u:s3cret@a:5672, b:5672",  # pragma: allowlist secret
            "RABBITMQ_URL (amqp://u:***@a:5672, b:5672) holds a comma outside its password",
        ),
        ("amqp://a/%2F, rabbit-1:5672", "holds a comma outside its password"),
        (" , ", "RABBITMQ_URL names no broker"),
    ],
)
def test_a_bad_address_is_named_without_its_password(value, said):
    with pytest.raises(connection.ConfigError) as info:
        connection.parameters(value)
    assert said in str(info.value) and "s3cret" not in str(info.value)
    assert isinstance(info.value, ValueError)  # what a malformed URL raised before


def test_a_failed_multi_address_connection_is_judged_by_its_last_attempt():
    refused = pika.exceptions.ProbableAccessDeniedError("ConnectionClosedByBroker: (530) NOT_ALLOWED")
    failed = connection_workflow.AMQPConnectionWorkflowFailed(
        [
            connection_workflow.AMQPConnectorSocketConnectError(ConnectionRefusedError()),
            connection_workflow.AMQPConnectorAMQPHandshakeError(refused),
        ]
    )
    assert connection.workflow_error(failed) is refused and connection.is_fatal(
        connection.workflow_error(failed)
    )
    socket_only = connection_workflow.AMQPConnectionWorkflowFailed(
        [connection_workflow.AMQPConnectorSocketConnectError(ConnectionRefusedError())]
    )
    assert isinstance(connection.workflow_error(socket_only), pika.exceptions.AMQPConnectionError)
    assert not connection.is_fatal(connection.workflow_error(socket_only))


# -- the fatal rule, on what pika really raises (checked against RabbitMQ 3.10 in test_real_broker) --
WRONG_PASSWORD = pika.exceptions.ProbableAuthenticationError(
    "ConnectionClosedByBroker: (403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN.'"
)
NO_VHOST_ACCESS = pika.exceptions.ProbableAccessDeniedError(
    "ConnectionClosedByBroker: (530) \"NOT_ALLOWED - access to vhost 'x' refused for user 'u'\""
)
HANDSHAKE_CUT = pika.exceptions.ProbableAuthenticationError(
    "StreamLostError: (\"Stream connection lost: ConnectionResetError(104, 'Connection reset by peer')\",)"
)


@pytest.mark.parametrize(
    ("exc", "fatal"),
    [
        (WRONG_PASSWORD, True),
        (NO_VHOST_ACCESS, True),
        (HANDSHAKE_CUT, False),  # a broker starting or stopping cuts the handshake: retry
        (
            pika.exceptions.ChannelClosedByBroker(
                406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'"
            ),
            True,
        ),
        (pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED - configure access to queue"), True),
        (
            pika.exceptions.ChannelClosedByBroker(
                406, "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out"
            ),
            False,  # RabbitMQ's consumer timeout: reconnect and go on
        ),
        (
            pika.exceptions.ConnectionClosedByBroker(
                320, "CONNECTION_FORCED - broker forced connection closure"
            ),
            False,
        ),
        (pika.exceptions.AMQPConnectionError("refused"), False),
        (pika.exceptions.StreamLostError("lost"), False),
        (ValueError("not a broker error"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_only_what_retrying_cannot_fix_is_fatal(exc, fatal):
    assert connection.is_fatal(exc) is fatal


# -- waiting for a broker that is still starting ------------------------------------------------------
class Printed(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    def lines(self, level=logging.DEBUG):
        return [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records if r.levelno >= level]


@pytest.fixture
def printed():
    handler = Printed()
    root, pika_logger = logging.getLogger(), logging.getLogger("pika")
    old = root.level, pika_logger.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    pika_logger.setLevel(logging.WARNING)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old[0])
    pika_logger.setLevel(old[1])


@pytest.fixture
def closed_params():
    return pika.ConnectionParameters("127.0.0.1", closed_port(), connection_attempts=1)


def refused(params):
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params)
    return info.value


def test_a_broker_still_booting_is_one_info_line_and_no_pika_error(printed, closed_params):
    now = [100.0]
    wait = connection.BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(5):
        with wait.attempt():
            exc = refused(closed_params)
        assert wait.failed(exc) is True
        now[0] += 2
    wait.succeeded()
    assert printed.lines() == [
        f"INFO eventbus.connection: waiting for the broker at 127.0.0.1:{closed_params.port}",
        f"INFO eventbus.connection: connected to the broker at 127.0.0.1:{closed_params.port} after 10.0 s",
    ]


def test_a_long_wait_is_said_once_at_warning(printed, closed_params):
    now = [0.0]
    wait = connection.BrokerWait(closed_params, clock=lambda: now[0])
    for _ in range(30):
        wait.failed(ConnectionRefusedError())
        now[0] += 5
    warnings = printed.lines(logging.WARNING)
    assert len(warnings) == 1 and "still waiting for the broker" in warnings[0], warnings


def test_once_connected_a_lost_broker_is_the_callers_to_log_and_pika_speaks_again(printed, closed_params):
    wait = connection.BrokerWait(closed_params)
    wait.succeeded()
    assert printed.lines() == []  # connected at the first try: nothing to say
    with wait.attempt():
        exc = refused(closed_params)
    assert wait.failed(exc) is False
    assert any(line.startswith("ERROR pika.") for line in printed.lines())


def test_quiet_pika_nests_and_restores_the_level():
    pika_logger = logging.getLogger("pika")
    pika_logger.setLevel(logging.WARNING)
    with connection.quiet_pika():
        with connection.quiet_pika():
            assert not pika_logger.isEnabledFor(logging.CRITICAL)
        assert not pika_logger.isEnabledFor(logging.CRITICAL)
    assert pika_logger.level == logging.WARNING


def test_probe_reports_the_class_name_only(closed_params, printed):
    params = connection.parameters(f"amqp://guest:s3cret@127.0.0.1:{closed_port()}/%2F")
    result = connection.probe(params)
    assert result == {"ok": False, "error": "AMQPConnectionError"}
    assert "s3cret" not in str(result)
    assert printed.lines(logging.ERROR) == []


# -- against a real broker ---------------------------------------------------------------------------
def test_the_rule_holds_on_a_real_broker(rabbit):
    wrong = connection.parameters(f"amqp://guest:wrong@127.0.0.1:{rabbit.amqp_port}/%2F")
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(wrong)
    assert connection.is_fatal(info.value), repr(info.value)

    assert connection.probe(connection.parameters(rabbit.url)) == {"ok": True}
    down = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"  # pragma: allowlist secret
    assert connection.probe(connection.parameters(f"{down},{rabbit.url},{down}")) == {"ok": True}
    assert connection.probe(connection.parameters(f"{down}, {down}")) == {
        "ok": False,
        "error": "AMQPConnectionError",
    }
    topo = Topology(service="probe-svc", source_exchange="probe-src.events", binding_keys=("x.#",))
    with pika.BlockingConnection(rabbit.params()) as conn:
        channel = conn.channel()
        channel.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
        channel.queue_declare(queue=topo.queue, durable=True, arguments={"x-queue-type": "classic"})
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as declared:
            topo.declare_consumer(conn.channel())
        assert declared.value.reply_code == 406 and connection.is_fatal(declared.value)
        conn.channel().queue_delete(topo.queue)
