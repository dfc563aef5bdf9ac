"""Throwaway real servers for tests: RabbitMQ, MariaDB and Prometheus in temp dirs on free ports.

The life cycle (own process group, stop by the recorded PID, an atexit safety net) and the RabbitMQ
node are app tooling in ``dev/servers.py``, shared with `make run`'s broker; MariaDB and Prometheus
are only ever needed by tests, so they live here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from dev.servers import (  # noqa: F401 - re-exported: the harness's one import point for servers
    RABBIT_BIN,
    ManagedServer,
    RabbitCluster,
    RabbitNode,
    ServerError,
    ServerNotInstalled,
    free_port,
    popen_kwargs,
    port_open,
    tail,
)


class MariaDB(ManagedServer):
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

        # By module, not as pymysql.err: where pymysql stands in for MySQLdb (admin), Django's import
        # of MySQLdb.err rebinds the package's `err` to a second copy with its own classes.
        from pymysql.err import OperationalError

        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                self._forget()
                raise ServerError(
                    f"mariadbd exited (rc={self.proc.returncode}).\n{tail(self.dir / 'error.log')}"
                )
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
                return
            except OperationalError as exc:
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
        """Return the DATABASE_URL the services read (mysql://user:pw@127.0.0.1:port/db)."""
        q = urllib.parse.quote
        return f"mysql://{q(user, safe='')}:{q(password, safe='')}@127.0.0.1:{self.port}/{db}"


class Prometheus(ManagedServer):
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
                self._forget()
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


class Redis(ManagedServer):
    """A Redis server (Debian's redis-server) on a free loopback port, nothing persisted."""

    def __init__(self, base: str | Path | None = None) -> None:
        if not shutil.which("redis-server"):
            raise ServerNotInstalled("redis-server not installed: run `apt-get install redis-server` as root")
        super().__init__(base, "redis-")
        self.port = free_port()

    def __repr__(self) -> str:
        return f"Redis(port={self.port}, dir={self.dir})"

    @property
    def url(self) -> str:
        """Return the redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> Redis:
        """Start redis-server and wait until it answers PING."""
        self._spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if not self.running or time.monotonic() > deadline:
                self.kill9()
                raise ServerError(f"redis-server did not start.\n{tail(self.dir / 'stdout.log')}")
            time.sleep(0.05)
        return self

    def client(self):
        """Return a redis-py client of database 0 (the package main's limiter uses)."""
        import redis  # noqa: PLC0415 - only the tests that start a Redis need the package

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, decode_responses=True)

    def ping(self) -> bool:
        """Return True when the server answers PING."""
        import redis  # noqa: PLC0415

        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


class Nginx(ManagedServer):
    """Debian's nginx with one http-level config file (server blocks, maps, zones) in a temp prefix."""

    def __init__(self, http_config: str, base: str | Path | None = None) -> None:
        if not Path("/usr/sbin/nginx").exists() and not shutil.which("nginx"):
            raise ServerNotInstalled("nginx not installed: run `apt-get install nginx` as root")
        super().__init__(base, "nginx-")
        for sub in ("logs", "tmp"):
            (self.dir / sub).mkdir(exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "server.conf").write_text(http_config)
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.dir}/nginx.pid;\nerror_log {self.dir}/logs/error.log info;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            f"    access_log {self.dir}/logs/access.log;\n"
            f"    client_body_temp_path {self.dir}/tmp/body;\n"
            f"    proxy_temp_path {self.dir}/tmp/proxy;\n"
            f"    fastcgi_temp_path {self.dir}/tmp/fastcgi;\n"
            f"    uwsgi_temp_path {self.dir}/tmp/uwsgi;\n"
            f"    scgi_temp_path {self.dir}/tmp/scgi;\n"
            f"    include {self.dir}/server.conf;\n"
            "}\n"
        )

    def __repr__(self) -> str:
        return f"Nginx(dir={self.dir})"

    def _argv(self, *extra: str) -> list[str]:
        binary = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
        return [
            binary,
            "-p",
            str(self.dir),
            "-c",
            str(self.dir / "nginx.conf"),
            "-e",
            str(self.dir / "logs/error.log"),
            *extra,
        ]

    def check(self) -> None:
        """Run `nginx -t` on the config; ServerError with nginx's message when it is refused."""
        result = subprocess.run(self._argv("-t"), capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise ServerError(f"nginx -t refused the config:\n{result.stderr}")

    def start(self, port: int, timeout: float = 30) -> Nginx:
        """Check the config, start nginx in the foreground and wait until port accepts connections."""
        self.check()
        self._spawn(self._argv("-g", "daemon off;"))
        deadline = time.monotonic() + timeout
        while not port_open(port):
            if not self.running or time.monotonic() > deadline:
                self.kill9()
                raise ServerError(f"nginx did not start.\n{tail(self.dir / 'logs/error.log')}")
            time.sleep(0.05)
        return self
