"""Throwaway real servers for tests: RabbitMQ, MariaDB and Prometheus in temp dirs on free ports.

The recipes (and their pitfalls) come from /work/shared/local-services.md: every server runs in its
own process group, is stopped by the PID recorded at start, and an atexit hook stops whatever a
crashed test session left running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

RABBIT_BIN = Path(
    "/usr/lib/rabbitmq/bin"
)  # not /usr/sbin/rabbitmq-server: that one su's to the rabbitmq user
EPMD = "/usr/bin/epmd"

_LIVE: set[_Server] = set()


class ServerError(RuntimeError):
    """A server could not be started or stopped."""


class ServerNotInstalled(ServerError):
    """A server binary is missing on this machine."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port on 127.0.0.1 that is free right now (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
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
    # Safety net for sessions that die without running fixture teardown.
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=15)


class _Server:
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
        _LIVE.discard(self)

    def stop(self, timeout: float = 60) -> None:
        """Stop the server cleanly (SIGTERM), escalating to SIGKILL after timeout seconds."""
        self._terminate(timeout)

    def kill9(self) -> None:
        """Kill the server's whole process group with SIGKILL (a crash, not a shutdown)."""
        if self.proc is not None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=30)
        _LIVE.discard(self)

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
        """Stop the server and remove its temp dir (only when the harness created it)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class RabbitNode(_Server):
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
        """Start the node and (unless wait=False) block until AMQP accepts a connection.

        A first start whose picked ports were taken meanwhile (eaddrinuse) moves to fresh ports.
        """
        if self.running:
            return self
        return self._start_moving_ports(lambda: self._start_once(timeout, wait), "eaddrinuse")

    def _start_once(self, timeout: float, wait: bool) -> RabbitNode:
        self._start_epmd()
        self._spawn([str(RABBIT_BIN / "rabbitmq-server")], env=self.env())
        if wait:
            self.wait_ready(timeout)
            self._started_once = True
        return self

    def _pick_ports(self) -> None:
        self.amqp_port, self.mgmt_port, self.prom_port, self.dist_port = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        )
        self._write_config()

    def wait_ready(self, timeout: float = 90) -> None:
        """Block until AMQP accepts a connection; the wrapper's exit code says nothing, so connect."""
        import pika

        logging.getLogger("pika").setLevel(logging.CRITICAL)
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                rc = self.proc.returncode if self.proc else None
                _LIVE.discard(self)
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
        """Kill this node's private epmd (never the system one on 4369)."""
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


class MariaDB(_Server):
    """A MariaDB server on a free port with its own datadir; root has no password over TCP."""

    def __init__(self, base: str | Path | None = None, fast: bool = True) -> None:
        if not shutil.which("mariadbd") or not shutil.which("mariadb-install-db"):
            raise ServerNotInstalled(
                "mariadbd not installed: run `apt-get install mariadb-server` as root on Debian/Ubuntu"
            )
        super().__init__(base, "mdb-")
        self.port = free_port()
        self.sock = str(self.dir / "mysqld.sock")
        self.fast = fast

    def __repr__(self) -> str:
        return f"MariaDB(port={self.port}, dir={self.dir})"

    def _opts(self) -> list[str]:
        # Test-only trade-offs: durability across an OS crash is not what the tests check.
        if not self.fast:
            return []
        return [
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
        ]

    def start(self, timeout: float = 60) -> MariaDB:
        """Initialise the datadir on first start, start mariadbd and wait until root can connect.

        A first start whose picked port was taken meanwhile ("Address already in use") moves to a
        fresh port.
        """
        if self.running:
            return self
        return self._start_moving_ports(lambda: self._start_once(timeout), "Address already in use")

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _start_once(self, timeout: float) -> MariaDB:
        if not (self.dir / "data" / "mysql").exists():
            # --no-defaults must come first: it keeps the system server's /etc/mysql config out.
            res = subprocess.run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={self.dir}/data",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *self._opts(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if res.returncode != 0:
                raise ServerError(
                    f"mariadb-install-db failed (rc={res.returncode}):\n{res.stdout}\n{res.stderr}"
                )
        self._spawn(
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={self.dir}/data",
                f"--socket={self.sock}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.dir}/mysqld.pid",
                f"--log-error={self.dir}/error.log",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                *self._opts(),
            ],
        )
        self.wait_ready(timeout)
        self._started_once = True
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until root can connect over TCP."""
        import pymysql

        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                _LIVE.discard(self)
                raise ServerError(
                    f"mariadbd exited (rc={self.proc.returncode}).\n{tail(self.dir / 'error.log')}"
                )
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
                return
            except pymysql.err.OperationalError as exc:
                if time.monotonic() > deadline:
                    self.kill9()
                    raise ServerError(
                        f"MariaDB on port {self.port} not ready after {timeout}s ({exc!r}).\n"
                        f"{tail(self.dir / 'error.log')}"
                    ) from exc
                time.sleep(0.05)

    def root(self, **kw):
        """Open an autocommit PyMySQL connection as root."""
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True, **kw)

    def connect(self, db: str, user: str, password: str, **kw):
        """Open a PyMySQL connection as a service user."""
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=password,
            database=db,
            **kw,
        )

    def create_db_user(self, db: str, user: str, password: str) -> str:
        """Create database db and a user with all rights on it (and on Django's test_<db>); return its URL."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
            cur.execute(f"GRANT ALL ON `{db}`.* TO %s@'%%'", (user,))
            cur.execute(f"GRANT ALL ON `test\\_{db}`.* TO %s@'%%'", (user,))
        return self.url(db, user, password)

    def url(self, db: str, user: str, password: str) -> str:
        """Return the SPEC-style DATABASE_URL (mysql://user:pw@127.0.0.1:port/db)."""
        q = urllib.parse.quote
        return f"mysql://{q(user, safe='')}:{q(password, safe='')}@127.0.0.1:{self.port}/{db}"


class Prometheus(_Server):
    """A Prometheus server with a given config (and extra files such as rule files) in a temp dir."""

    def __init__(
        self,
        config: str | Path,
        files: dict[str, str] | None = None,
        base: str | Path | None = None,
    ):
        if not shutil.which("prometheus"):
            raise ServerNotInstalled("prometheus not installed: run `apt-get install prometheus` as root")
        super().__init__(base, "prom-")
        config_path = Path(config)
        if "\n" not in str(config) and config_path.exists():
            shutil.copy(config_path, self.dir / "prometheus.yml")
        else:
            (self.dir / "prometheus.yml").write_text(str(config))
        for name, text in (files or {}).items():
            (self.dir / name).write_text(text)  # rule files are resolved relative to the config file
        self.port = free_port()

    def __repr__(self) -> str:
        return f"Prometheus(port={self.port}, dir={self.dir})"

    @property
    def url(self) -> str:
        """Return the base URL of the Prometheus HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Prometheus:
        """Start Prometheus and wait until /-/ready answers 200."""
        if self.running:
            return self
        self._spawn(
            [
                "prometheus",
                f"--config.file={self.dir}/prometheus.yml",
                f"--storage.tsdb.path={self.dir}/data",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
            ],
        )
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                _LIVE.discard(self)
                raise ServerError(
                    f"prometheus exited (rc={self.proc.returncode}).\n{tail(self.dir / 'stdout.log')}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise ServerError(f"prometheus not ready after {timeout}s.\n{tail(self.dir / 'stdout.log')}")
            time.sleep(0.05)

    def api(self, path: str, **params) -> dict:
        """GET /api/v1/<path> and return its "data" (raises on a non-success status)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            raise ServerError(f"prometheus /api/v1/{path} failed: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Run an instant PromQL query and return the result vector."""
        return self.api("query", query=expr)["result"]

    def wait_for(self, expr: str, timeout: float = 30) -> list[dict]:
        """Poll a query until it returns a non-empty result (target discovery takes ~5 s)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise ServerError(f"query {expr!r} still empty after {timeout}s")
            time.sleep(0.2)

    def reload(self) -> None:
        """Ask Prometheus to reload its config files."""
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass
