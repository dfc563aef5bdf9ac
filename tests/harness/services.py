"""Run the real admin and main processes (web, consumer, relay) against given RabbitMQ and MariaDB URLs.

Commands are exactly the Procfile's, run from the repository's .venv with cwd = the
service dir. Each process gets free ports, its own process group and a log file in a temp dir.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from dev.operator_key import ensure as ensure_operator_keys
from harness.servers import free_port, popen_kwargs, tail

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # tests/harness/services.py -> repo root
VENV_BIN = ROOT / ".venv" / "bin"
ADMIN_DIR = ROOT / "admin"
MAIN_DIR = ROOT / "main"

TEST_SECRET_KEY = "test-only-insecure-secret-key-0123456789abcdef"  # a test value, not a secret
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin-test-pw"
ADMIN_EMAIL = "admin@example.com"

PROCESS_NAMES = (
    "admin-web",
    "admin-consumer",
    "admin-relay",
    "main-web",
    "main-consumer",
    "main-relay",
    "drift-check",
)
# The Procfile runs the drift check every 60 s; here often enough for tests to see its gauges.
DRIFT_CHECK_EVERY_SECONDS = 5

_LIVE: set[ServiceSet] = set()


class StackError(RuntimeError):
    """The services could not be migrated, started or made ready."""


@dataclass
class Proc:
    """One managed service process: its command, cwd, env, log file and the running Popen."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """Return True while the process is alive."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        """Return the PID of the process (gunicorn: the master)."""
        return self.popen.pid if self.popen else None

    def start(self) -> None:
        """Start the process in its own session, appending to its log file."""
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {self.name}: {' '.join(self.argv)} =====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **popen_kwargs(),
            )

    def signal_group(self, sig: int) -> None:
        """Send sig to the process group (gunicorn workers included)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait for exit; return False on timeout."""
        if self.popen is None:
            return True
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, timeout: float = 15) -> None:
        """Stop with SIGTERM to the group, then SIGKILL after timeout."""
        if self.popen is None:
            return
        if self.running:
            self.signal_group(signal.SIGTERM)
            if not self.wait(timeout):
                logger.warning("%s ignored SIGTERM for %ss; killing it", self.name, timeout)
        # Whatever is left in the group (stray gunicorn workers, children) dies now.
        self.signal_group(signal.SIGKILL)
        self.wait(10)

    def kill9(self) -> None:
        """SIGKILL the whole process group (a crash)."""
        self.signal_group(signal.SIGKILL)
        self.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of this process's log."""
        return tail(self.log_path, lines)


def _free_udp_addr() -> str:
    return f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"


def _http_json(url: str, timeout: float = 3) -> tuple[int, object]:
    """GET url and return (status, parsed JSON or text); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, ValueError) as exc:
        return 0, repr(exc)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")[:500]


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment shared by every service process (no leaking of the caller's app config)."""
    drop = {
        "DATABASE_URL",
        "RABBITMQ_URL",
        "RABBITMQ_CA_FILE",
        "DB_SECRET_NAME",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "PROMETHEUS_MULTIPROC_DIR",
        "prometheus_multiproc_dir",
        "PORT",
        "METRICS_PORT",
        "OUTBOX_WAKEUP_ADDR",
        "WEB_CONCURRENCY",
        "DJANGO_SETTINGS_MODULE",
        "FLASK_APP",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        # Operator tokens: each ServiceSet makes its own key pair (service_env).
        "OPERATOR_JWT_PRIVATE_KEY",
        "OPERATOR_JWT_PRIVATE_KEY_FILE",
        "OPERATOR_JWKS",
        "OPERATOR_JWKS_FILE",
        "OPERATOR_JWKS_RETIRING",
    }
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    env.update(
        PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
        VIRTUAL_ENV=str(ROOT / ".venv"),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        APP_ENV="development",
        LOG_LEVEL="INFO",
        SECRET_KEY=TEST_SECRET_KEY,
        ADMIN_USERNAME=ADMIN_USERNAME,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        ADMIN_EMAIL=ADMIN_EMAIL,
        ALLOWED_HOSTS="localhost,127.0.0.1",
        CORS_ALLOWED_ORIGINS="",
        # The cross-service tests like thousands of times from 127.0.0.1 to load the pipeline;
        # tests/deploy/test_edge.py runs the real budgets through nginx and a shared Redis.
        LIKES_RATE_LIMIT="1000000 per minute",
        NEW_SHOPPER_RATE_LIMIT="1000000 per minute",
    )
    env.update(extra or {})
    return env


@atexit.register
def _stop_leftovers() -> None:
    # Safety net when a session dies without fixture teardown.
    for stack in list(_LIVE):
        with contextlib.suppress(Exception):
            stack.stop()


class ServiceSet:
    """The processes of admin and main (the Procfile's, the SPA aside), wired to one broker and two databases.

    Usage: ``ServiceSet(rabbitmq_url, admin_db_url, main_db_url).start()`` ... ``.stop()``.
    """

    def __init__(
        self,
        rabbitmq_url: str,
        admin_database_url: str,
        main_database_url: str,
        *,
        log_dir: str | Path | None = None,
        web_concurrency: int = 2,
        extra_env: dict[str, str] | None = None,
        process_env: dict[str, dict[str, str]] | None = None,
        processes: tuple[str, ...] = PROCESS_NAMES,
    ) -> None:
        self._owns_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="stack-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.rabbitmq_url = rabbitmq_url
        self.database_urls = {"admin": admin_database_url, "main": main_database_url}
        self.admin_port = free_port()
        self.main_port = free_port()
        # A replica is named after its process with a suffix ("admin-consumer.2"): same command,
        # its own metrics port and log.
        self.metrics_ports = {
            name: free_port()
            for name in dict.fromkeys((*PROCESS_NAMES, *processes))
            if not name.endswith("-web")
        }
        self.wakeup_addrs = {"admin": _free_udp_addr(), "main": _free_udp_addr()}
        # The operator-token key pair, made as `make run` makes it: admin signs, main verifies.
        self.operator_private_key, self.operator_jwks = ensure_operator_keys(self.log_dir / "operator-jwt")
        self._extra_env = dict(extra_env or {})
        self.procs: dict[str, Proc] = {}
        for name in processes:
            self.procs[name] = self._make_proc(name, web_concurrency, (process_env or {}).get(name, {}))

    def __repr__(self) -> str:
        return f"ServiceSet(admin={self.admin_url}, main={self.main_url}, logs={self.log_dir})"

    # ----- configuration -----------------------------------------------------------------------------
    def service_env(self, service: str) -> dict[str, str]:
        """Return the environment of a service ("admin" or "main") without process-specific ports."""
        env = base_env(self._extra_env)
        env.update(
            RABBITMQ_URL=self.rabbitmq_url,
            DATABASE_URL=self.database_urls[service],
            OUTBOX_WAKEUP_ADDR=self.wakeup_addrs[service],
            METRICS_PORT="0",
        )
        if service == "main":
            env["FLASK_APP"] = "app"
            env.setdefault("OPERATOR_JWKS_FILE", str(self.operator_jwks))  # extra_env may override
        else:
            env.setdefault("OPERATOR_JWT_PRIVATE_KEY_FILE", str(self.operator_private_key))
        return env

    def _make_proc(self, name: str, web_concurrency: int, overrides: dict[str, str]) -> Proc:
        base = name.split(".", 1)[0]
        service, role = ("admin", "drift-check") if base == "drift-check" else base.split("-", 1)
        env = self.service_env(service)
        if role == "web":
            env["PORT"] = str(self.admin_port if service == "admin" else self.main_port)
            env["WEB_CONCURRENCY"] = str(web_concurrency)
            multiproc = self.log_dir / f"{name}-prometheus"
            multiproc.mkdir(exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
        else:
            env["METRICS_PORT"] = str(self.metrics_ports[name])
        env.update(overrides)
        argv = {
            "admin-web": [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "config.wsgi:application",
            ],
            "admin-consumer": [str(VENV_BIN / "python"), "manage.py", "consume"],
            "admin-relay": [str(VENV_BIN / "python"), "manage.py", "relay_outbox"],
            "main-web": [
                str(VENV_BIN / "gunicorn"),
                "-c",
                "gunicorn.conf.py",
                "app:create_app()",
            ],
            "main-consumer": [str(VENV_BIN / "flask"), "--app", "app", "consume"],
            "main-relay": [str(VENV_BIN / "flask"), "--app", "app", "relay-outbox"],
            "drift-check": [
                str(VENV_BIN / "python"),
                "manage.py",
                "check_drift",
                "--main-url",
                self.main_url,
                "--every",
                str(DRIFT_CHECK_EVERY_SECONDS),
                "--metrics-port",
                str(self.metrics_ports.get("drift-check", 0)),
            ],
        }[base]
        cwd = ADMIN_DIR if service == "admin" else MAIN_DIR
        return Proc(
            name=name,
            argv=argv,
            cwd=cwd,
            env=env,
            log_path=self.log_dir / f"{name}.log",
        )

    @property
    def admin_url(self) -> str:
        """Return the base URL of the admin web process (no trailing slash)."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def main_url(self) -> str:
        """Return the base URL of the main web process (no trailing slash)."""
        return f"http://127.0.0.1:{self.main_port}"

    def metrics_url(self, name: str) -> str:
        """Return the /metrics URL of a process (web: its HTTP port; consumer/relay: METRICS_PORT)."""
        if name == "admin-web":
            return f"{self.admin_url}/metrics"
        if name == "main-web":
            return f"{self.main_url}/metrics"
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def log_path(self, name: str) -> Path:
        """Return the log file of a process (or of a command run via run_command, e.g. "admin-migrate")."""
        return self.log_dir / f"{name}.log"

    def log_text(self, name: str) -> str:
        """Return the whole log of a process."""
        path = self.log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def env(self, name: str) -> dict[str, str]:
        """Return a copy of the environment a process runs with."""
        return dict(self.procs[name].env)

    # ----- one-shot commands ---------------------------------------------------------------------------
    def command(
        self,
        service: str,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run a one-shot command of a service with its env.

        admin: ``command("admin", "dlq", "list")`` runs ``python manage.py dlq list`` in admin/;
        main: ``command("main", "dlq", "list")`` runs ``flask --app app dlq list`` in main/.
        """
        if service == "admin":
            argv, cwd = [str(VENV_BIN / "python"), "manage.py", *args], ADMIN_DIR
        else:
            argv, cwd = [str(VENV_BIN / "flask"), "--app", "app", *args], MAIN_DIR
        full_env = {**self.service_env(service), **(env or {})}
        res = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        with open(self.log_dir / f"{service}-commands.log", "a") as log:
            log.write(f"===== {' '.join(argv)} (rc={res.returncode})\n{res.stdout}\n{res.stderr}\n")
        if check and res.returncode != 0:
            raise StackError(
                f"{service}: `{' '.join(args)}` failed (rc={res.returncode}).\n"
                f"--- stdout\n{res.stdout[-3000:]}\n--- stderr\n{res.stderr[-3000:]}"
            )
        return res

    def migrate(self, timeout: float = 240) -> None:
        """Run both services' migrations concurrently (admin: manage.py migrate; main: flask db upgrade)."""
        for service, path in (
            ("admin", ADMIN_DIR / "manage.py"),
            ("main", MAIN_DIR / "app" / "__init__.py"),
        ):
            if not path.exists():
                raise StackError(f"{service} service not found: {path} is missing")
        jobs = {
            "admin": (
                [str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput"],
                ADMIN_DIR,
            ),
            "main": (
                [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"],
                MAIN_DIR,
            ),
        }
        running = {}
        for service, (argv, cwd) in jobs.items():
            log = open(self.log_path(f"{service}-migrate"), "wb")  # noqa: SIM115 - closed below
            running[service] = (
                subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=self.service_env(service),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **popen_kwargs(),
                ),
                log,
            )
        failures = []
        for service, (popen, log) in running.items():
            try:
                rc = popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
                rc = "timeout"
            log.close()
            if rc != 0:
                failures.append(
                    f"{service} migrations failed (rc={rc}); "
                    f"--- {self.log_path(f'{service}-migrate')}\n{tail(self.log_path(f'{service}-migrate'))}"
                )
        if failures:
            raise StackError("\n".join(failures))

    # ----- life cycle --------------------------------------------------------------------------------
    def start(
        self,
        *,
        migrate: bool = True,
        superuser: bool = True,
        wait_ready: bool = True,
        timeout: float = 120,
    ) -> ServiceSet:
        """Migrate, create the superuser, start every process and wait for health (and readiness)."""
        _LIVE.add(self)
        try:
            if migrate:
                self.migrate()
            for proc in self.procs.values():
                proc.start()
            if superuser:  # while the processes boot
                self.command("admin", "ensure_superuser")
            self.wait_healthy(timeout=timeout, ready=wait_ready)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15) -> None:
        """Stop every process: SIGTERM to all at once, then wait, then SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.running:
                proc.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            proc.wait(max(0.1, deadline - time.monotonic()))
            proc.stop(timeout=0.1)
        _LIVE.discard(self)

    def cleanup(self) -> None:
        """Stop everything and remove the log dir (only when the harness created it)."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def start_process(self, name: str, wait: bool = True, timeout: float = 60) -> None:
        """Start one process (same ports and env as before); for web processes wait for /health."""
        self.procs[name].start()
        _LIVE.add(self)
        if wait and name.endswith("-web"):
            self.wait_healthy(timeout=timeout, ready=False, only=(name,))

    def stop_process(self, name: str, timeout: float = 15) -> None:
        """Stop one process gracefully (SIGTERM, SIGKILL after timeout)."""
        self.procs[name].stop(timeout)

    def kill9_process(self, name: str) -> None:
        """SIGKILL one process and its group (e.g. a relay crashing mid-batch)."""
        self.procs[name].kill9()

    def restart_process(self, name: str, timeout: float = 60) -> None:
        """Stop then start one process."""
        self.stop_process(name)
        self.start_process(name, timeout=timeout)

    def ensure_running(self, timeout: float = 60) -> None:
        """Start every process that is not running (after a fault test) and wait for health."""
        dead = [name for name, proc in self.procs.items() if not proc.running]
        for name in dead:
            self.procs[name].start()
        if any(name.endswith("-web") for name in dead):
            self.wait_healthy(timeout=timeout, ready=False)

    # ----- health --------------------------------------------------------------------------------------
    def health_urls(self, ready: bool) -> dict[str, str]:
        """Return the URLs that must answer 200: /health, plus /ready when ready=True."""
        urls = {}
        if "admin-web" in self.procs:
            urls["admin-web"] = f"{self.admin_url}/api/health"
            if ready:
                urls["admin-web ready"] = f"{self.admin_url}/api/ready"
        if "main-web" in self.procs:
            urls["main-web"] = f"{self.main_url}/flask/api/health"
            if ready:
                urls["main-web ready"] = f"{self.main_url}/flask/api/ready"
        return urls

    def wait_healthy(
        self,
        timeout: float = 120,
        ready: bool = True,
        only: tuple[str, ...] | None = None,
    ) -> None:
        """Poll health (and ready) URLs until all answer 200; on failure raise with every log's tail."""
        pending = {k: v for k, v in self.health_urls(ready).items() if only is None or k.split()[0] in only}
        last: dict[str, tuple[int, object]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            dead = [name for name, proc in self.procs.items() if proc.popen is not None and not proc.running]
            if dead:
                raise StackError(
                    f"process(es) exited during start: {', '.join(dead)}\n{self.diagnostics(last)}"
                )
            for key, url in list(pending.items()):
                last[key] = _http_json(url)
                if last[key][0] == 200:
                    del pending[key]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise StackError(
                    f"not healthy after {timeout}s: {', '.join(pending)}\n{self.diagnostics(last)}"
                )
            time.sleep(0.2)

    def diagnostics(self, last: dict | None = None) -> str:
        """Return process states, last health answers and the tail of every log file."""
        lines = [f"log dir: {self.log_dir}"]
        for key, (status, body) in (last or {}).items():
            lines.append(f"{key}: HTTP {status} {body!r}"[:800])
        for name, proc in self.procs.items():
            state = (
                "running" if proc.running else f"exited rc={proc.popen.returncode if proc.popen else None}"
            )
            lines.append(f"--- {name} ({state}) {proc.log_path}\n{proc.log_tail(30)}")
        return "\n".join(lines)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


Stack = ServiceSet
