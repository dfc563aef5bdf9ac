"""Self-tests of the harness: the throwaway RabbitMQ and MariaDB behave like real, durable servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pymysql
import pytest

from harness.polling import eventually
from harness.servers import MariaDB, RabbitNode, free_port, port_open
from harness.wait_for import wait_for

TESTS = Path(__file__).resolve().parents[1]


def _message_count(node: RabbitNode, queue: str) -> int:
    with node.connection() as conn:
        return conn.channel().queue_declare(queue, passive=True).method.message_count


def test_rabbit_round_trip_with_publisher_confirms(rabbit: RabbitNode) -> None:
    queue = f"harness.{uuid.uuid4().hex}"
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url))
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.confirm_delivery()
        ch.basic_publish(
            "",
            queue,
            b"hello",
            pika.BasicProperties(delivery_mode=2, message_id="m1"),
            mandatory=True,
        )
        with pytest.raises(pika.exceptions.UnroutableError):
            ch.basic_publish("", f"{queue}.missing", b"lost", mandatory=True)
        method, props, body = next(ch.consume(queue, inactivity_timeout=10))
        assert (body, props.message_id) == (b"hello", "m1")
        ch.basic_ack(method.delivery_tag)
        ch.cancel()
        ch.queue_delete(queue)
    finally:
        conn.close()


@contextlib.contextmanager
def squatted_port() -> Iterator[int]:
    """Hold a port bound but not listening: like the source port of someone's outgoing connection."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        yield squatter.getsockname()[1]


@pytest.mark.parametrize("booting", [False, True], ids=["start", "start-then-wait_ready"])
def test_rabbit_first_start_moves_off_a_port_taken_meanwhile(tmp_path: Path, booting: bool) -> None:
    """free_port() only says a port was free: if it is taken before the node binds it, the node moves.

    The session fixture boots the node without waiting (start(wait=False)), then calls wait_ready().
    """
    node = RabbitNode(tmp_path / "rmq")
    with squatted_port() as taken:
        # What the race looks like: the port picked at construction is someone else's by start().
        node.amqp_port = taken
        node._write_config()
        try:
            if booting:
                node.start(wait=False).wait_ready()
            else:
                node.start()
            assert node.amqp_port != taken
            with node.connection() as conn:
                assert conn.is_open
        finally:
            node.cleanup()


def test_mariadb_first_start_moves_off_a_port_taken_meanwhile(tmp_path: Path) -> None:
    """The same race for MariaDB."""
    server = MariaDB(tmp_path / "mdb")
    with squatted_port() as taken:
        server.port = taken
        try:
            assert server.start().port != taken
            with server.root() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                assert cur.fetchone() == (1,)
        finally:
            server.cleanup()


def test_mariadb_query_as_service_user(mariadb: MariaDB, db_accounts) -> None:
    account = db_accounts["main"]
    assert account.url == f"mysql://main_user:{account.password}@127.0.0.1:{mariadb.port}/main_db"
    with (
        mariadb.connect(account.db, account.user, account.password) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT CURRENT_USER(), DATABASE(), @@character_set_server")
        assert cur.fetchone() == ("main_user@%", "main_db", "utf8mb4")
    # The service users are isolated: main's user cannot read admin's database.
    with pytest.raises(pymysql.err.OperationalError):
        mariadb.connect("admin_db", account.user, account.password).close()


def test_rabbit_kill9_and_restart_keeps_confirmed_messages(rabbit: RabbitNode) -> None:
    queue = f"harness.durable.{uuid.uuid4().hex}"
    with rabbit.connection() as conn:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        # RabbitMQ 3.10 / ra 2.2 loses a quorum queue hard-killed less than about 1 s after declaring it.
        time.sleep(1.5)
        ch.confirm_delivery()
        for i in range(50):
            ch.basic_publish(
                "",
                queue,
                f"m{i}".encode(),
                pika.BasicProperties(delivery_mode=2),
                mandatory=True,
            )
    rabbit.kill9()
    assert not rabbit.running
    rabbit.start()
    # Quorum leader election finishes after the AMQP listener is up: poll.
    eventually(
        lambda: _message_count(rabbit, queue) == 50,
        timeout=30,
        message="50 messages back",
    )
    with rabbit.connection() as conn:
        ch = conn.channel()
        bodies = []
        for method, _props, body in ch.consume(queue, inactivity_timeout=5):
            if method is None:
                break
            bodies.append(body.decode())
            ch.basic_ack(method.delivery_tag)
            if len(bodies) == 50:
                break
        ch.cancel()
        ch.queue_delete(queue)
    assert bodies == [f"m{i}" for i in range(50)]


def test_mariadb_kill9_and_restart_keeps_committed_rows(mariadb: MariaDB, db_accounts) -> None:
    account = db_accounts["admin"]
    table = f"harness_{uuid.uuid4().hex[:8]}"
    with (
        mariadb.connect(account.db, account.user, account.password, autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(i, f"v{i}") for i in range(100)])
    port = mariadb.port
    mariadb.kill9()
    assert not mariadb.running
    mariadb.start()
    assert mariadb.port == port
    with (
        mariadb.connect(account.db, account.user, account.password) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"SELECT COUNT(*), MAX(v) FROM {table}")
        assert cur.fetchone() == (100, "v99")
        cur.execute(f"DROP TABLE {table}")


# ----- wait_for ----------------------------------------------------------------------------------------
def test_wait_for_sees_a_live_broker_and_reports_a_dead_port(
    rabbit: RabbitNode,
) -> None:
    dead = f"tcp://127.0.0.1:{free_port()}"
    assert wait_for([rabbit.url, f"tcp://127.0.0.1:{rabbit.amqp_port}"], timeout=10) == []
    assert wait_for([rabbit.url, dead], timeout=1) == [dead]
    bad_login = rabbit.url.replace("guest:guest", "guest:wrong")
    assert wait_for([bad_login], timeout=1) == [bad_login]


def test_wait_for_cli_exit_codes(rabbit: RabbitNode) -> None:
    cmd = [sys.executable, "-m", "harness.wait_for"]
    assert subprocess.run([*cmd, rabbit.url, "--timeout", "10"], cwd=TESTS, check=False).returncode == 0
    dead = subprocess.run(
        [*cmd, f"http://127.0.0.1:{free_port()}/", "--timeout", "0.5"],
        cwd=TESTS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dead.returncode == 1
    assert "did not answer" in dead.stderr
    assert (
        subprocess.run(
            [*cmd, "nonsense", "--timeout", "1"],
            cwd=TESTS,
            capture_output=True,
            check=False,
        ).returncode
        == 2
    )


# ----- dev.broker (the `broker` process of `make run`) --------------------------------------------------
def _devbroker(tmp_path: Path, amqp_port: int, **env: str) -> subprocess.Popen:
    full_env = {
        **os.environ,
        "DEV_RABBITMQ_DATA_DIR": str(tmp_path / "rabbitmq"),
        "DEV_RABBITMQ_PORT": str(amqp_port),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dev.broker"],
        cwd=TESTS.parent,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_devbroker_refuses_a_port_taken_by_another_broker(rabbit: RabbitNode, tmp_path: Path) -> None:
    proc = _devbroker(tmp_path, rabbit.amqp_port)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2, out
    assert f"port {rabbit.amqp_port} is already in use by another AMQP broker" in out


def test_devbroker_without_rabbitmq_installed_says_how_to_install(monkeypatch, tmp_path, caplog) -> None:
    from dev import broker, servers

    monkeypatch.setattr(servers, "RABBIT_BIN", tmp_path / "missing")
    for var in (
        "DEV_RABBITMQ_PORT",
        "DEV_RABBITMQ_MANAGEMENT_PORT",
        "DEV_RABBITMQ_PROMETHEUS_PORT",
    ):
        monkeypatch.setenv(var, str(free_port()))
    assert broker.main() == 3
    assert "apt-get install rabbitmq-server" in caplog.text
    assert "docker compose up" in caplog.text


def test_devbroker_runs_in_foreground_stops_cleanly_and_keeps_data(
    tmp_path: Path,
) -> None:
    ports = {
        "amqp": free_port(),
        "mgmt": free_port(),
        "prom": free_port(),
        "epmd": free_port(),
    }
    env = {
        "DEV_RABBITMQ_MANAGEMENT_PORT": str(ports["mgmt"]),
        "DEV_RABBITMQ_PROMETHEUS_PORT": str(ports["prom"]),
        "DEV_RABBITMQ_EPMD_PORT": str(ports["epmd"]),
    }
    url = f"amqp://guest:guest@127.0.0.1:{ports['amqp']}/%2F"
    for run in (
        1,
        2,
    ):  # the second run finds the first run's data: `make run` twice works
        proc = _devbroker(tmp_path, ports["amqp"], **env)
        try:
            assert wait_for([url, f"http://127.0.0.1:{ports['prom']}/metrics"], timeout=120) == []
            with pika.BlockingConnection(pika.URLParameters(url)) as conn:
                ch = conn.channel()
                if run == 1:
                    ch.queue_declare("devbroker.persist", durable=True)
                    ch.confirm_delivery()
                    ch.basic_publish(
                        "",
                        "devbroker.persist",
                        b"kept",
                        pika.BasicProperties(delivery_mode=2),
                    )
                else:
                    assert ch.queue_declare("devbroker.persist", passive=True).method.message_count == 1
            # The node answers before devbroker has printed its URLs: read up to them first.
            printed = []
            while not any("AMQP:" in line for line in printed):
                line = proc.stdout.readline()
                assert line, "devbroker exited before printing its URLs:\n" + "".join(printed)
                printed.append(line)
            proc.send_signal(signal.SIGTERM)
            rest, _ = proc.communicate(timeout=60)
            out = "".join(printed) + rest
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert proc.returncode == 0, out
        assert "AMQP:" in out
        assert "stopping the node cleanly" in out
        assert not port_open(ports["amqp"])
        assert not port_open(ports["epmd"]), "the private epmd must be gone"
