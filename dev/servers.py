"""Local servers run as child processes: a common life cycle, and a RabbitMQ node.

`make run` starts its broker with these (``python -m dev.broker``); the test harness
(``tests/harness/servers.py``) builds its throwaway servers on the same base. Every server runs in
its own process group, is stopped by the PID recorded at start, and an atexit hook stops whatever
a crashed program left running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# Not /usr/sbin/rabbitmq-server: that one su's to the rabbitmq user.
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = "/usr/bin/epmd"

_LIVE: set[ManagedServer] = set()


class ServerError(RuntimeError):
    """A server could not be started or stopped."""


class ServerNotInstalled(ServerError):
    """A server binary is missing on this machine."""


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


# Every port free_port() returned in this process: a test session starts many servers, and two
# that are given the same still-unbound port would collide when the second one binds it.
_GIVEN: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port on 127.0.0.1 that is free right now (TCP by default, UDP with SOCK_DGRAM).

    Picked below the kernel's ephemeral range: a server restarted on its port (a fault test) then
    never finds it taken by an outgoing connection's source port, nor by a client that, retrying
    against the stopped server, connected to itself (TCP's simultaneous open on loopback).
    """
    low = min(_ephemeral_range()[0], 65536)
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20001, low))
        if port in _GIVEN:  # handed out already: its server may just not have bound it yet
            continue
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _GIVEN.add(port)
            return port
    with socket.socket(socket.AF_INET, kind) as s:  # a crowded range: let the kernel pick
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path | str, lines: int = 40) -> str:
    """Return the last lines of a text file, or a note that it does not exist."""
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: ask the kernel for SIGTERM when our parent dies.
    # PR_SET_PDEATHSIG = 1. A SIGKILLed test run then still stops its servers cleanly.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def popen_kwargs() -> dict:
    """Return Popen options for a managed server: own session, and SIGTERM if this process dies.

    The parent-death signal fires when the spawning *thread* exits, so it is only used from the
    main thread (fixtures run there).
    """
    kwargs: dict = {"start_new_session": True}
    if threading.current_thread() is threading.main_thread():
        kwargs["preexec_fn"] = _set_pdeathsig
    return kwargs


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


@atexit.register
def _stop_leftovers() -> None:
    # Safety net for programs (test sessions, the dev broker) that die without stopping their servers.
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=15)


class ManagedServer:
    """Common life cycle: a temp dir we may own, a Popen in its own session, registration for atexit."""

    proc: subprocess.Popen | None = None

    def __init__(self, base: str | Path | None, prefix: str) -> None:
        self._owns_dir = base is None
        self.dir = Path(base) if base else Path(tempfile.mkdtemp(prefix=prefix))
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def running(self) -> bool:
        """Return True while the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str], env: dict | None = None, log_name: str = "stdout.log") -> None:
        with open(self.dir / log_name, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen_kwargs(),
            )
        _LIVE.add(self)

    def _terminate(self, timeout: float) -> None:
        if self.running:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop within %ss; killing its process group",
                    self,
                    timeout,
                )
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._forget()

    def _forget(self) -> None:
        """Drop the server from the atexit safety net (it is stopped, or never came up)."""
        _LIVE.discard(self)

    def stop(self, timeout: float = 60) -> None:
        """Stop the server cleanly (SIGTERM), escalating to SIGKILL after timeout seconds."""
        self._terminate(timeout)

    def kill9(self) -> None:
        """Kill the server's whole process group with SIGKILL (a crash, not a shutdown)."""
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._forget()

    def restart(self, timeout: float = 90):
        """Stop cleanly and start again on the same data dir and ports."""
        self.stop()
        return self.start(timeout=timeout)

    def start(self, timeout: float = 90):  # pragma: no cover - overridden
        raise NotImplementedError

    # free_port() only says a port was free when it was picked: another process (any outgoing
    # connection's source port) may hold it by the time the server binds it. A first start with
    # ports picked here then moves to fresh ones; a restart keeps its ports, since clients know them.
    PORT_ATTEMPTS = 3
    _ports_picked_here = True
    _started_once = False

    def _start_moving_ports(self, start_once, port_taken: str):
        """Return start_once(), retried on fresh ports (_pick_ports) when it fails with port_taken."""
        for attempt in range(1, self.PORT_ATTEMPTS + 1):
            try:
                return start_once()
            except ServerError as exc:
                may_move = self._ports_picked_here and not self._started_once
                if not may_move or attempt == self.PORT_ATTEMPTS or port_taken not in str(exc):
                    raise
                logger.warning("%s: a port was taken before the server bound it; trying new ports", self)
                self._pick_ports()
        raise AssertionError("unreachable")  # pragma: no cover

    def _pick_ports(self) -> None:  # pragma: no cover - overridden where ports are picked
        raise NotImplementedError

    def cleanup(self) -> None:
        """Stop the server and remove its temp dir (only when this object created it)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class RabbitNode(ManagedServer):
    """A RabbitMQ 3.10 node with its own node name, ports, private epmd, cookie, config and data dir."""

    def __init__(
        self,
        base: str | Path | None = None,
        plugins: tuple[str, ...] | list[str] = (),
        *,
        nodename: str | None = None,
        amqp_port: int | None = None,
        mgmt_port: int | None = None,
        prom_port: int | None = None,
        epmd_port: int | None = None,
        dist_port: int | None = None,
        shared_epmd: bool = False,
    ) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise ServerNotInstalled(
                f"rabbitmq-server not installed ({RABBIT_BIN}/rabbitmq-server missing): "
                "run `apt-get install rabbitmq-server` as root on Debian/Ubuntu"
            )
        super().__init__(base, "rmq-")
        self.plugins = tuple(plugins)
        self._ports_picked_here = not (amqp_port or mgmt_port or prom_port or dist_port)
        self.amqp_port = amqp_port or free_port()
        self.dist_port = dist_port or free_port()  # explicit: the default AMQP+20000 can pass 65535
        self.epmd_port = epmd_port or free_port()
        # Nodes of one cluster register with one epmd (RabbitCluster's), which none of them stops.
        self.shared_epmd = shared_epmd
        self.mgmt_port = mgmt_port or free_port()
        self.prom_port = prom_port or free_port()
        # @localhost: no dependence on the machine's hostname resolving.
        self.nodename = nodename or f"rmqtest{self.amqp_port}@localhost"
        self._write_config()

    _epmd: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"RabbitNode({self.nodename}, amqp={self.amqp_port}, dir={self.dir})"

    def _write_config(self) -> None:
        (self.dir / "log").mkdir(exist_ok=True)
        (self.dir / "mnesia").mkdir(exist_ok=True)
        cookie = self.dir / ".erlang.cookie"  # HOME=self.dir; Erlang refuses a cookie others can read
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(20))
            cookie.chmod(0o400)
        (self.dir / "rabbitmq-env.conf").write_text("")  # keep /etc/rabbitmq/rabbitmq-env.conf out
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            "loopback_users = none\n"
            "disk_free_limit.absolute = 50MB\n"
            "management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.mgmt_port}\n"
            "prometheus.tcp.ip = 127.0.0.1\n"
            f"prometheus.tcp.port = {self.prom_port}\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (self.dir / "advanced.config").write_text("[].\n")
        (self.dir / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")

    def env(self) -> dict[str, str]:
        """Return the environment for rabbitmq-server and its CLI tools (cookie, ports, private epmd)."""
        d = str(self.dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=d,
            LANG="C.UTF-8",
            LC_ALL="C.UTF-8",
            RABBITMQ_CONF_ENV_FILE=f"{d}/rabbitmq-env.conf",
            RABBITMQ_NODENAME=self.nodename,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=f"{d}/rabbitmq.conf",
            RABBITMQ_ADVANCED_CONFIG_FILE=f"{d}/advanced.config",
            RABBITMQ_ENABLED_PLUGINS_FILE=f"{d}/enabled_plugins",
            RABBITMQ_MNESIA_BASE=f"{d}/mnesia",
            RABBITMQ_LOG_BASE=f"{d}/log",
            RABBITMQ_PID_FILE=f"{d}/rabbit.pid",
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return env

    @property
    def url(self) -> str:
        """Return the AMQP URL of the default vhost (guest works: loopback_users = none)."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    @property
    def management_url(self) -> str:
        """Return the management UI/API base URL (only served with the rabbitmq_management plugin)."""
        return f"http://127.0.0.1:{self.mgmt_port}/"

    @property
    def prometheus_url(self) -> str:
        """Return the rabbitmq_prometheus scrape URL (only served with that plugin)."""
        return f"http://127.0.0.1:{self.prom_port}/metrics"

    def params(self, **kw):
        """Return pika ConnectionParameters for this node (guest/guest)."""
        import pika

        return pika.ConnectionParameters("127.0.0.1", self.amqp_port, **kw)

    def connection(self, **kw):
        """Open a pika BlockingConnection to this node."""
        import pika

        return pika.BlockingConnection(self.params(**kw))

    def start(self, timeout: float = 90, wait: bool = True) -> RabbitNode:
        """Start the node and (unless wait=False: call wait_ready later) block until AMQP answers."""
        if self.running:
            return self
        self._spawn_node()
        if wait:
            self.wait_ready(timeout)
        return self

    def _spawn_node(self) -> None:
        self._start_epmd()
        self._spawn([str(RABBIT_BIN / "rabbitmq-server")], env=self.env())

    def _pick_ports(self) -> None:
        self.amqp_port, self.mgmt_port, self.prom_port, self.dist_port = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        )
        self._write_config()

    def wait_ready(self, timeout: float = 90) -> None:
        """Block until AMQP accepts a connection; the wrapper's exit code says nothing, so connect.

        A first start whose picked ports were taken meanwhile (eaddrinuse) moves to fresh ports.
        """
        spawned = [True]  # start() spawned the node already; a retry on new ports spawns it again

        def once() -> None:
            if not spawned[0]:
                self._spawn_node()
            spawned[0] = False
            self._wait_until_up(timeout)
            self._started_once = True

        self._start_moving_ports(once, "eaddrinuse")

    def _wait_until_up(self, timeout: float) -> None:
        import pika

        pika_logger = logging.getLogger("pika")
        level = pika_logger.level
        pika_logger.setLevel(logging.CRITICAL)  # every refused attempt is expected while it boots
        try:
            self._poll_amqp(pika, timeout)
        finally:
            pika_logger.setLevel(level)

    def _poll_amqp(self, pika, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                rc = self.proc.returncode if self.proc else None
                self._forget()
                raise ServerError(
                    f"rabbitmq-server exited (rc={rc}) before AMQP came up.\n{self.diagnostics()}"
                )
            try:
                pika.BlockingConnection(self.params(connection_attempts=1, socket_timeout=2)).close()
                return
            except pika.exceptions.AMQPError as exc:
                if time.monotonic() > deadline:
                    self.kill9()
                    raise ServerError(
                        f"RabbitMQ on port {self.amqp_port} not ready after {timeout}s ({exc!r}).\n"
                        f"{self.diagnostics()}"
                    ) from exc
                time.sleep(0.1)

    def diagnostics(self) -> str:
        """Return the tails of the node's stdout and log file, for error messages."""
        node_log = self.dir / "log" / f"{self.nodename}.log"
        return f"--- {self.dir}/stdout.log\n{tail(self.dir / 'stdout.log')}\n--- {node_log}\n{tail(node_log)}"

    def ctl(self, *args: str, tool: str = "rabbitmqctl") -> subprocess.CompletedProcess:
        """Run a RabbitMQ CLI tool (rabbitmqctl, rabbitmq-queues, ...) against this node."""
        return subprocess.run(
            [str(RABBIT_BIN / tool), "-q", "-n", self.nodename, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def beam_pid(self) -> int:
        """Return the PID of the Erlang VM (the Popen PID is only the sh wrapper)."""
        return int((self.dir / "rabbit.pid").read_text().strip())

    def kill9(self) -> None:
        """SIGKILL the Erlang VM and its wrapper (a crash; data on disk stays)."""
        if self.proc is None:
            return
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(self.beam_pid(), signal.SIGKILL)
        super().kill9()

    def stop(self, timeout: float = 60) -> None:
        """Stop cleanly (SIGTERM to the wrapper stops beam gracefully) and kill our private epmd."""
        self._terminate(timeout)
        self.kill_epmd()

    def _start_epmd(self, timeout: float = 10) -> None:
        if self.shared_epmd:
            if not port_open(self.epmd_port):
                raise ServerError(f"{self}: the shared epmd on port {self.epmd_port} is not running")
            return
        # Left to itself the node starts `epmd -daemon`, which outlives a SIGKILLed test run. Started
        # here in the foreground it is our child: same parent-death signal, stopped in stop().
        if self._epmd is not None and self._epmd.poll() is None:
            return
        if port_open(self.epmd_port):
            return  # one is already listening there (e.g. left by a killed dev broker): reuse it
        with open(self.dir / "epmd.log", "ab") as log:
            self._epmd = subprocess.Popen(
                [EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                env=self.env(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen_kwargs(),
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                raise ServerError(
                    f"epmd on port {self.epmd_port} did not start:\n{tail(self.dir / 'epmd.log')}"
                )
            time.sleep(0.02)

    def kill_epmd(self) -> None:
        """Kill this node's private epmd (never the system one on 4369, nor one it shares)."""
        if self.shared_epmd:
            return
        if self._epmd is not None:
            self._epmd.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._epmd.wait(timeout=5)
            self._epmd = None
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [EPMD, "-port", str(self.epmd_port), "-kill"],
                env=self.env(),
                capture_output=True,
                timeout=10,
                check=False,
            )

    def restart(self, timeout: float = 90) -> RabbitNode:
        """Stop cleanly and start again with the same data and ports."""
        self._terminate(60)  # keep epmd: the restarted node registers with it again
        return self.start(timeout=timeout)


class Epmd(ManagedServer):
    """A private epmd (Erlang's port mapper) on its own port, which several nodes may share."""

    def __init__(self, base: str | Path | None = None, port: int | None = None) -> None:
        super().__init__(base, "epmd-")
        self.port = port or free_port()

    def __repr__(self) -> str:
        return f"Epmd(port={self.port})"

    def start(self, timeout: float = 10) -> Epmd:
        """Start epmd in the foreground (our child) and wait until it listens."""
        if self.running:
            return self
        self._spawn([EPMD, "-port", str(self.port), "-address", "127.0.0.1"], log_name="epmd.log")
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if not self.running or time.monotonic() > deadline:
                self._forget()
                raise ServerError(f"epmd on port {self.port} did not start:\n{tail(self.dir / 'epmd.log')}")
            time.sleep(0.02)
        return self


class RabbitCluster:
    """RabbitMQ nodes joined into one cluster: one Erlang cookie, one epmd, their own ports and data.

    Each node is a RabbitNode (``cluster.nodes[i]``: its ``url``, ``kill9()``, ``start()``, ``ctl()``);
    ``urls`` joins every node's URL with commas, the way RABBITMQ_URL names several brokers. The
    nodes are named ``rmqtest<port>@localhost``; a node that restarts on its data rejoins by itself.
    """

    def __init__(self, size: int = 3, plugins: tuple[str, ...] | list[str] = ()) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="rmq-cluster-"))
        self.epmd = Epmd(self.dir / "epmd")
        cookie = secrets.token_hex(20)
        self.nodes: list[RabbitNode] = []
        for index in range(size):
            base = self.dir / f"node{index}"
            base.mkdir()
            # The same cookie everywhere, or the nodes refuse each other.
            (base / ".erlang.cookie").write_text(cookie)
            (base / ".erlang.cookie").chmod(0o400)
            self.nodes.append(RabbitNode(base, plugins, epmd_port=self.epmd.port, shared_epmd=True))

    def __repr__(self) -> str:
        return f"RabbitCluster({', '.join(node.nodename for node in self.nodes)}, dir={self.dir})"

    @property
    def urls(self) -> str:
        """Return every node's AMQP URL, comma-separated (RABBITMQ_URL for several brokers)."""
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 120) -> RabbitCluster:
        """Start every node (at once), join the others to the first, and wait until all run together."""
        self.epmd.start()
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready(timeout)
        first = self.nodes[0]
        for node in self.nodes[1:]:
            if first.nodename in self.running_nodes(node):
                continue  # joined before (a restart on the same data)
            for args in (("stop_app",), ("join_cluster", first.nodename), ("start_app",)):
                res = node.ctl(*args)
                if res.returncode != 0:
                    raise ServerError(
                        f"{node}: rabbitmqctl {' '.join(args)} failed: {res.stdout}{res.stderr}"
                    )
            node.wait_ready(timeout)
        self.wait_running(timeout=timeout)
        return self

    def running_nodes(self, via: RabbitNode | None = None) -> list[str]:
        """Return the names of the cluster's running nodes, as one node (the first running) sees them."""
        asked = via or next(node for node in self.nodes if node.running)
        res = asked.ctl("cluster_status", "--formatter", "json")
        if res.returncode != 0:
            return []
        try:
            return sorted(json.loads(res.stdout).get("running_nodes", []))
        except ValueError:
            return []

    def wait_running(self, names: list[str] | None = None, timeout: float = 60) -> None:
        """Wait until every node (or the names given) runs in the cluster."""
        wanted = sorted(names or (node.nodename for node in self.nodes))
        deadline = time.monotonic() + timeout
        while (seen := self.running_nodes()) != wanted:
            if time.monotonic() > deadline:
                raise ServerError(f"{self}: running nodes {seen}, expected {wanted}")
            time.sleep(0.2)

    def node(self, nodename: str) -> RabbitNode:
        """Return the node of that name (rmqtest<port>@localhost)."""
        return next(node for node in self.nodes if node.nodename == nodename)

    QUEUE_COLUMNS = (
        "name",
        "type",
        "leader",
        "members",
        "online",
        "messages_ready",
        "messages_unacknowledged",
    )

    def queues(self, vhost: str = "/") -> dict[str, dict]:
        """Return {queue: {column: value}} (QUEUE_COLUMNS) as a running node sees them."""
        asked = next(node for node in self.nodes if node.running)
        res = asked.ctl("list_queues", "-p", vhost, *self.QUEUE_COLUMNS, "--formatter", "json")
        if res.returncode != 0:
            raise ServerError(f"rabbitmqctl list_queues failed: {res.stdout}{res.stderr}")
        return {row["name"]: row for row in json.loads(res.stdout or "[]")}

    def leader(self, queue: str, vhost: str = "/") -> RabbitNode:
        """Return the node that leads a quorum queue."""
        return self.node(self.queues(vhost)[queue]["leader"])

    def connections(self) -> list[dict]:
        """Return the cluster's client connections: {"pid", "name", "client", "node"} each.

        `client` is the connection name the client gave (pika's client_properties), `node` the node
        it is connected to (by the port in `name`, "client ip:port -> server ip:port").
        """
        asked = next(node for node in self.nodes if node.running)
        named = asked.ctl("list_connections", "name", "client_properties", "--formatter", "json")
        # The table's pid is what close_connection takes (the JSON one is Elixir's inspect form).
        pids = asked.ctl("list_connections", "name", "pid", "--no-table-headers")
        if named.returncode != 0 or pids.returncode != 0:
            raise ServerError(f"rabbitmqctl list_connections failed: {named.stderr}{pids.stderr}")
        pid_of = dict(line.split("\t", 1) for line in pids.stdout.splitlines() if "\t" in line)
        by_port = {str(node.amqp_port): node.nodename for node in self.nodes}
        out = []
        for row in json.loads(named.stdout or "[]"):
            props = {
                p[0]: p[2] for p in row.get("client_properties") or [] if isinstance(p, list) and len(p) == 3
            }
            port = row["name"].rpartition(":")[2]
            out.append(
                {
                    "pid": pid_of.get(row["name"], "").strip(),
                    "name": row["name"],
                    "client": props.get("connection_name", ""),
                    "node": by_port.get(port, ""),
                }
            )
        return out

    def close_connection(self, pid: str, why: str = "closed by the test") -> None:
        """Close one client connection from the broker's side (the client sees CONNECTION_FORCED)."""
        asked = next(node for node in self.nodes if node.running)
        res = asked.ctl("close_connection", pid, why)
        if res.returncode != 0 and "not found" not in (res.stdout + res.stderr).lower():
            raise ServerError(f"rabbitmqctl close_connection {pid} failed: {res.stdout}{res.stderr}")

    def cleanup(self) -> None:
        """Stop every node and the shared epmd, and remove the cluster's folder."""
        stopping = [threading.Thread(target=node.stop, daemon=True) for node in self.nodes]
        for thread in stopping:  # at once: each takes seconds to stop cleanly
            thread.start()
        for thread in stopping:
            thread.join(timeout=90)
        self.epmd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RabbitCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
