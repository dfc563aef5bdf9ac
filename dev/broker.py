"""Run the development RabbitMQ node in the foreground (the `broker` process of `make run`).

Data lives in DEV_RABBITMQ_DATA_DIR (default var/rabbitmq) and survives restarts. AMQP on
127.0.0.1:5672, management UI on 15672 and rabbitmq_prometheus on 15692 (DEV_RABBITMQ_PORT,
DEV_RABBITMQ_MANAGEMENT_PORT, DEV_RABBITMQ_PROMETHEUS_PORT, DEV_RABBITMQ_EPMD_PORT override them);
a private epmd, never the system one. SIGINT/SIGTERM stop the node cleanly and exit 0.

Run from the repository root: ``python -m dev.broker``.
Exit codes: 0 clean stop, 1 the node failed, 2 a port is taken, 3 rabbitmq-server is not installed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from dev.servers import RabbitNode, ServerError, ServerNotInstalled, tail

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("DEV_RABBITMQ_DATA_DIR") or ROOT / "var" / "rabbitmq")
NODENAME = "devbroker@localhost"  # fixed: the node name selects the data dir under mnesia/
PLUGINS = ("rabbitmq_management", "rabbitmq_prometheus")
INSTALL_HINT = (
    "rabbitmq-server is not installed. Install it as root on Debian/Ubuntu with\n"
    "    apt-get install rabbitmq-server\n"
    "(this program starts its own node; the system service may stay stopped),\n"
    "or run the whole app in containers instead: docker compose up"
)


class _Stop(BaseException):
    """Raised by the signal handler to leave start-up or the wait loop."""


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SystemExit(f"devbroker: {name}={value!r} is not a port number")
    return int(value)


def _speaks_amqp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"  # a Connection.Start method frame
    except OSError:
        return False


def _in_use(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _our_node_pid() -> int | None:
    """Return the PID of a dev node from an earlier run that is still alive, if any."""
    try:
        pid = int((DATA_DIR / "rabbit.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _port_problem(amqp: int, mgmt: int, prom: int) -> str | None:
    """Explain which configured port is already taken, and what to do about it."""
    if _in_use(amqp):
        pid = _our_node_pid()
        if pid:
            return (
                f"port {amqp} is in use by another dev broker on the same data (beam pid {pid}, {DATA_DIR}): "
                "is `make run` already running in another terminal, or is an earlier one still shutting "
                f"down? Wait a few seconds, or stop it: kill {pid}"
            )
        what = "another AMQP broker" if _speaks_amqp(amqp) else "another program"
        return (
            f"port {amqp} is already in use by {what} (e.g. the system rabbitmq-server service: "
            "`service rabbitmq-server stop`, or a `docker compose` broker). Stop it, or use another port: "
            f"DEV_RABBITMQ_PORT={amqp + 1} with RABBITMQ_URL=amqp://guest:guest@127.0.0.1:{amqp + 1}/%2F"
        )
    for port, name, var in (
        (mgmt, "management UI", "DEV_RABBITMQ_MANAGEMENT_PORT"),
        (prom, "prometheus metrics", "DEV_RABBITMQ_PROMETHEUS_PORT"),
    ):
        if _in_use(port):
            return f"port {port} (RabbitMQ {name}) is already in use; free it or set {var}"
    return None


def main() -> int:
    """Start the dev node, block until SIGINT/SIGTERM, stop it cleanly; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stdout)
    amqp = _port("DEV_RABBITMQ_PORT", 5672)
    mgmt = _port("DEV_RABBITMQ_MANAGEMENT_PORT", 15672)
    prom = _port("DEV_RABBITMQ_PROMETHEUS_PORT", 15692)
    # A fixed private epmd port: one left behind by a killed run is simply reused next time.
    epmd = _port("DEV_RABBITMQ_EPMD_PORT", 4370)

    problem = _port_problem(amqp, mgmt, prom)
    if problem:
        logger.error("%s", problem)
        return 2
    try:
        node = RabbitNode(
            DATA_DIR,
            PLUGINS,
            nodename=NODENAME,
            amqp_port=amqp,
            mgmt_port=mgmt,
            prom_port=prom,
            epmd_port=epmd,
        )
    except ServerNotInstalled:
        logger.error("%s", INSTALL_HINT)
        return 3

    def _on_signal(signum, frame):
        # Later signals are ignored: the clean stop is already under way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    started = time.monotonic()
    try:
        logger.info("starting RabbitMQ node %s (data in %s)", NODENAME, DATA_DIR)
        node.start(timeout=180)
        logger.info("ready after %.1fs", time.monotonic() - started)
        logger.info("AMQP:       %s", node.url)
        logger.info("management: %s (guest/guest)", node.management_url)
        logger.info("prometheus: %s", node.prometheus_url)
        logger.info("log file:   %s", DATA_DIR / "log" / f"{NODENAME}.log")
        while node.running:
            time.sleep(0.5)
        logger.error(
            "the RabbitMQ node exited on its own (rc=%s)\n%s",
            node.proc.returncode,
            node.diagnostics(),
        )
        return 1
    except _Stop as stop:
        logger.info("%s received: stopping the node cleanly", stop)
        node.stop(timeout=90)
        logger.info("stopped")
        return 0
    except ServerError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        node.stop(timeout=90)  # no-op after a clean stop; also kills our private epmd
        if node.proc is not None and node.proc.returncode not in (0, None):
            logger.info(
                "wrapper exit code %s; last log lines:\n%s",
                node.proc.returncode,
                tail(node.dir / "stdout.log", 10),
            )


if __name__ == "__main__":
    sys.exit(main())
