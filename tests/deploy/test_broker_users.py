"""The compose stack's broker users have least privilege (grafana-prometheus/rabbitmq/provision-users.sh).

The script itself runs (`--provision-only`) against a throwaway node, with rabbitmqctl pointed at
that node through the environment, so a change to the script is what this test checks. Then each
service's own topology code declares what it touches as its own user, and the test proves what
each user may and may not do.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pika
import pytest

from harness.servers import RABBIT_BIN, RabbitNode
from harness.services import ADMIN_DIR, MAIN_DIR, ROOT, base_env

SCRIPT = ROOT / "grafana-prometheus" / "rabbitmq" / "provision-users.sh"
USERS = {
    "admin": ("admin-svc", "admin-amqp-test-pw"),
    "main": ("main-svc", "main-amqp-test-pw"),
}


def _load(name: str, path: Path) -> ModuleType:
    # admin's `messaging` and main's `app.messaging` are different packages: load each file by path.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOPOLOGIES = {
    "admin": _load("users_test_admin_topology", ADMIN_DIR / "messaging" / "topology.py"),
    "main": _load("users_test_main_topology", MAIN_DIR / "app" / "messaging" / "topology.py"),
}
OTHER = {"admin": "main", "main": "admin"}
# Each service's real `dlq redrive` command (README: Operations), run as that service's user.
REDRIVE_COMMANDS = {
    "admin": (ADMIN_DIR, ["python", "manage.py", "dlq", "redrive"]),
    "main": (MAIN_DIR, ["flask", "--app", "app", "dlq", "redrive"]),
}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _run_script(node: RabbitNode, marker: Path) -> subprocess.CompletedProcess:
    env = node.env()
    env.update(
        PATH=f"{RABBIT_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        ADMIN_AMQP_USER=USERS["admin"][0],
        ADMIN_AMQP_PASSWORD=USERS["admin"][1],
        MAIN_AMQP_USER=USERS["main"][0],
        MAIN_AMQP_PASSWORD=USERS["main"][1],
        PROVISION_MARKER=str(marker),
    )
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), "--provision-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """Return a throwaway node provisioned by the script (run twice: it must be idempotent)."""
    node = RabbitNode()
    marker = tmp_path_factory.mktemp("provision") / "users-provisioned"
    try:
        node.start()
        for _ in range(2):
            res = _run_script(node, marker)
            assert res.returncode == 0, f"provision-users.sh failed:\n{res.stdout}\n{res.stderr}"
            assert marker.exists(), res.stdout
        yield node
    finally:
        node.cleanup()


def _url(node: RabbitNode, service: str) -> str:
    user, password = USERS[service]
    return f"amqp://{user}:{password}@127.0.0.1:{node.amqp_port}/%2F"


def _connect(node: RabbitNode, service: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(TOPOLOGIES[service].connection_parameters(_url(node, service), None))


def _depth(channel, queue: str) -> int:
    return channel.queue_declare(queue, passive=True).method.message_count


def _wait_for_depth(channel, queue: str, depth: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _depth(channel, queue)) != depth:
        assert time.monotonic() < deadline, f"{queue} holds {seen} message(s), expected {depth}"
        channel.connection.process_data_events(time_limit=0.1)


@pytest.fixture(scope="module")
def declared(provisioned: RabbitNode) -> RabbitNode:
    """Let each service declare its own topology as its own user (what relay and consumer do at start).

    The relays first (each declares its own exchange), then the consumers, which only look the
    other service's exchange up.
    """
    for service in ("admin", "main"):
        with _connect(provisioned, service) as conn:
            TOPOLOGIES[service].TOPOLOGY.declare_publisher(conn.channel())
    for service in ("admin", "main"):
        with _connect(provisioned, service) as conn:
            TOPOLOGIES[service].TOPOLOGY.declare_consumer(conn.channel())
    return provisioned


def test_guest_is_deleted(provisioned: RabbitNode) -> None:
    res = provisioned.ctl("list_users", "--formatter", "json")
    assert res.returncode == 0, res.stderr
    assert "guest" not in res.stdout
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        provisioned.connection(connection_attempts=1)


def test_service_users_are_not_administrators(provisioned: RabbitNode) -> None:
    res = provisioned.ctl("list_users")
    assert res.returncode == 0, res.stderr
    tags = {line.split("\t")[0]: line.split("\t", 1)[1] for line in res.stdout.splitlines() if "\t" in line}
    assert tags[USERS["admin"][0]].strip("[] ") == ""
    assert tags[USERS["main"][0]].strip("[] ") == ""


def test_a_wrong_password_is_refused(provisioned: RabbitNode) -> None:
    url = f"amqp://{USERS['admin'][0]}:wrong@127.0.0.1:{provisioned.amqp_port}/%2F"
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(TOPOLOGIES["admin"].connection_parameters(url, None))


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_service_publishes_to_its_exchange_and_consumes_its_queue(
    declared: RabbitNode, service: str
) -> None:
    own, other = TOPOLOGIES[service], TOPOLOGIES[OTHER[service]]
    with _connect(declared, OTHER[service]) as pub_conn, _connect(declared, service) as conn:
        # The other service publishes an event that lands in this service's queue ...
        pub = pub_conn.channel()
        pub.confirm_delivery()
        pub.basic_publish(other.TOPOLOGY.events_exchange, "product.updated", b"{}", mandatory=True)
        # ... and this one publishes to its own exchange and consumes its own queue.
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(own.TOPOLOGY.events_exchange, "product.updated", b"{}")
        method, _, _ = channel.basic_get(own.TOPOLOGY.queue, auto_ack=True)
        assert method is not None, f"nothing in queue {own.TOPOLOGY.queue}"
        # Its dead letters are its own to list.
        channel.queue_declare(own.TOPOLOGY.dead_letter_queue, passive=True)
        channel.basic_get(own.TOPOLOGY.dead_letter_queue, auto_ack=False)


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_service_cannot_consume_the_other_services_queue(declared: RabbitNode, service: str) -> None:
    other = TOPOLOGIES[OTHER[service]]
    for queue in (other.TOPOLOGY.queue, other.TOPOLOGY.dead_letter_queue):
        with _connect(declared, service) as conn:
            channel = conn.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                channel.basic_consume(queue, lambda *a: None)
            assert info.value.reply_code == 403, info.value


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_service_cannot_reconfigure_the_other_services_queue(declared: RabbitNode, service: str) -> None:
    other = TOPOLOGIES[OTHER[service]]
    with _connect(declared, service) as conn:
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            channel.queue_delete(other.TOPOLOGY.queue)
        assert info.value.reply_code == 403, info.value


@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_service_cannot_delete_or_redeclare_the_other_services_exchanges(
    declared: RabbitNode, service: str
) -> None:
    """main's user cannot delete admin.events, nor admin's main.events: configure covers only its own."""
    other = TOPOLOGIES[OTHER[service]].TOPOLOGY
    for exchange in (other.events_exchange, other.dead_letter_exchange, other.redrive_exchange):
        with _connect(declared, service) as conn:
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                conn.channel().exchange_delete(exchange)
            assert info.value.reply_code == 403, f"{service} deleted {exchange}: {info.value}"
        with _connect(declared, service) as conn:
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                conn.channel().exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
            assert info.value.reply_code == 403, f"{service} declared {exchange}: {info.value}"
    with _connect(declared, "admin") as conn:  # still there for its owner
        conn.channel().exchange_declare(exchange=TOPOLOGIES["admin"].TOPOLOGY.events_exchange, passive=True)


# Where a service might publish into the other's flow: its events exchange; the default exchange,
# which routes to every queue by name (a grant on it would reach them all); its redrive exchange.
PUBLISH_TARGETS = {
    "events exchange": lambda other: (other.TOPOLOGY.events_exchange, "product.updated"),
    "default exchange by queue name": lambda other: ("", other.TOPOLOGY.queue),
    "redrive exchange": lambda other: (other.TOPOLOGY.redrive_exchange, "product.updated"),
}


@pytest.mark.parametrize("target", list(PUBLISH_TARGETS))
@pytest.mark.parametrize("service", ["admin", "main"])
def test_a_service_cannot_publish_into_the_other_services_flow(
    declared: RabbitNode, service: str, target: str
) -> None:
    exchange, routing_key = PUBLISH_TARGETS[target](TOPOLOGIES[OTHER[service]])
    with _connect(declared, service) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            channel.basic_publish(exchange, routing_key, b"{}", mandatory=True)
        assert info.value.reply_code == 403, info.value
        assert "ACCESS_REFUSED" in info.value.reply_text


@pytest.mark.parametrize("service", ["admin", "main"])
def test_dlq_redrive_puts_a_dead_letter_back_through_the_services_own_redrive_exchange(
    declared: RabbitNode, service: str, tmp_path: Path
) -> None:
    own, other = TOPOLOGIES[service], TOPOLOGIES[OTHER[service]]
    event_id = str(uuid.uuid4())
    with _connect(declared, OTHER[service]) as pub_conn, _connect(declared, service) as conn:
        channel = conn.channel()
        channel.queue_purge(own.TOPOLOGY.queue)
        channel.queue_purge(own.TOPOLOGY.dead_letter_queue)
        # The other service's event reaches this service's queue, which rejects it into its DLQ.
        pub = pub_conn.channel()
        pub.confirm_delivery()
        pub.basic_publish(
            other.TOPOLOGY.events_exchange,
            "product.updated",
            b'{"probe": true}',
            pika.BasicProperties(
                message_id=event_id,
                type="product.updated",
                delivery_mode=2,
                headers={"traceparent": TRACEPARENT},
            ),
            mandatory=True,
        )
        method, _, _ = channel.basic_get(own.TOPOLOGY.queue, auto_ack=False)
        assert method is not None, f"nothing in queue {own.TOPOLOGY.queue}"
        channel.basic_nack(method.delivery_tag, requeue=False)
        _wait_for_depth(channel, own.TOPOLOGY.dead_letter_queue, 1)

        # The service's own `dlq redrive`, as its own least-privileged user.
        cwd, command = REDRIVE_COMMANDS[service]
        env = base_env(
            {
                "RABBITMQ_URL": _url(declared, service),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'redrive.sqlite3'}",
            }
        )
        res = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert res.returncode == 0, f"{service} dlq redrive failed:\n{res.stdout}\n{res.stderr}"

        _wait_for_depth(channel, own.TOPOLOGY.queue, 1)
        assert _depth(channel, own.TOPOLOGY.dead_letter_queue) == 0
        method, props, body = channel.basic_get(own.TOPOLOGY.queue, auto_ack=True)
        assert method is not None, f"nothing redriven into {own.TOPOLOGY.queue}"
        assert method.exchange == own.TOPOLOGY.redrive_exchange
        assert method.routing_key == "product.updated"
        assert (props.message_id, props.type, body) == (event_id, "product.updated", b'{"probe": true}')
        assert props.headers["traceparent"] == TRACEPARENT
        assert "x-death" not in props.headers
