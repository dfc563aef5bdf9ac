"""`make run` as a newcomer meets it: the embedded default (SQLite per service, a local broker).

The fixture runs the real `make run` (its prepare steps and the Procfile's process set under honcho)
on free ports in a temporary RUN_DIR, and reads everything it prints. The tests then check the
start is quiet and drive the mix of writes a first session produces, all at once, through the
same routes the SPA uses.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from faults.support import AdminApi, Endpoints, assert_converged

from harness.servers import free_port, tail
from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME, base_env

ROOT = Path(__file__).resolve().parents[2]
PORT_VARS = (
    "ADMIN_PORT",
    "MAIN_PORT",
    "SPA_PORT",
    "DEV_RABBITMQ_PORT",
    "DEV_RABBITMQ_MANAGEMENT_PORT",
    "DEV_RABBITMQ_PROMETHEUS_PORT",
    "DEV_RABBITMQ_EPMD_PORT",
    "ADMIN_CONSUMER_METRICS_PORT",
    "ADMIN_RELAY_METRICS_PORT",
    "DRIFT_METRICS_PORT",
    "MAIN_CONSUMER_METRICS_PORT",
    "MAIN_RELAY_METRICS_PORT",
)
BROKER_CLIENTS = ("admin-consumer", "admin-relay", "main-consumer", "main-relay")
# How long the load runs; MAKE_RUN_LOAD_SECONDS=60 gives well over 1,000 writes here.
LOAD_SECONDS = float(os.environ.get("MAKE_RUN_LOAD_SECONDS", "20"))
IMAGE = "https://img.example.com/load.png"
LOUD = re.compile(r'"level": "(ERROR|CRITICAL)"|\bERROR\b|\bCRITICAL\b|Traceback')


@dataclass
class RunningApp:
    """A `make run` in progress: its process, ports, data folder and everything it printed."""

    proc: subprocess.Popen
    run_dir: Path
    log_path: Path
    ports: dict[str, int]
    marker: str
    healthy_after: float = 0.0
    output_until_healthy: str = ""

    def url(self, var: str) -> str:
        """Return http://127.0.0.1:<port> for a port variable (ADMIN_PORT, MAIN_PORT, SPA_PORT)."""
        return f"http://127.0.0.1:{self.ports[var]}"

    def output(self) -> str:
        """Return everything `make run` has printed so far."""
        return self.log_path.read_text(errors="replace")

    def database_url(self, service: str) -> str:
        """Return the SQLite URL a service runs on."""
        return f"sqlite:///{self.run_dir / f'{service}.sqlite3'}"

    def leftover_pids(self) -> list[int]:
        """Return the PIDs of processes this run started that are still alive (found by an env marker)."""
        found = []
        needle = f"MAKE_RUN_TEST_ID={self.marker}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found


def _get(url: str, timeout: float = 3) -> int:
    try:
        return requests.get(url, timeout=timeout).status_code
    except requests.RequestException:
        return 0


@pytest.fixture(scope="module")
def make_run() -> Iterator[RunningApp]:
    """Start `make run` on free ports in a temporary RUN_DIR; stop it (as Ctrl-C would) afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix="make-run-"))
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(PORT_VARS) + 2:  # distinct, the two wake-up ports included
        ports = {var: free_port() for var in (*PORT_VARS, "ADMIN_WAKEUP", "MAIN_WAKEUP")}
    wakeups = ports.pop("ADMIN_WAKEUP"), ports.pop("MAIN_WAKEUP")
    marker = uuid.uuid4().hex
    env = base_env()
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "CORS_ALLOWED_ORIGINS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)  # the Makefile's own development defaults, as a newcomer's shell has them
    env.update({var: str(port) for var, port in ports.items()})
    env.update(
        RUN_DIR=str(run_dir),
        ADMIN_WAKEUP_ADDR=f"127.0.0.1:{wakeups[0]}",
        MAIN_WAKEUP_ADDR=f"127.0.0.1:{wakeups[1]}",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        MAKE_RUN_TEST_ID=marker,
    )
    log_path = run_dir / "make-run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = RunningApp(proc, run_dir, log_path, ports, marker)
    started = time.monotonic()
    try:
        checks = {
            "admin ready": f"{app.url('ADMIN_PORT')}/api/ready",
            "main ready": f"{app.url('MAIN_PORT')}/flask/api/ready",
            "SPA": f"{app.url('SPA_PORT')}/",
            "admin through the SPA": f"{app.url('SPA_PORT')}/api/health",
            "main through the SPA": f"{app.url('SPA_PORT')}/flask/api/health",
        }
        deadline = started + 300
        while checks:
            if proc.poll() is not None:
                pytest.fail(
                    f"`make run` exited (rc={proc.returncode}) before it was healthy; "
                    f"{first_failure(app.output())}\n{tail(log_path, 80)}"
                )
            checks = {name: url for name, url in checks.items() if _get(url) != 200}
            if checks and time.monotonic() > deadline:
                pytest.fail(
                    f"`make run` not healthy after 300 s ({', '.join(checks)}):\n{tail(log_path, 80)}"
                )
            time.sleep(0.25)
        app.healthy_after = time.monotonic() - started
        app.output_until_healthy = app.output()
        yield app
    finally:
        _stop(app)


def first_failure(output: str) -> str:
    """Name the process that stopped `make run` first, with its last lines (honcho then stops the rest)."""
    exited = re.search(r"^\S+ system\s+\| (\S+?)\.1 stopped \(rc=(-?\d+)\)", output, re.M)
    if not exited:
        return "no process exited on its own"
    name = exited.group(1)
    own = [line for line in output.splitlines() if re.match(rf"^\S+ {re.escape(name)}\.1\s+\|", line)]
    return f"{name} exited first (code {exited.group(2)}); its last lines:\n" + "\n".join(own[-15:])


def _stop(app: RunningApp) -> None:
    """Stop `make run` as Ctrl-C does (SIGINT to its process group); SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.proc.pid, signal.SIGINT)
    try:
        app.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(app.proc.pid, signal.SIGKILL)
        app.proc.wait(timeout=10)
    deadline = time.monotonic() + 60
    while app.leftover_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in app.leftover_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(app.run_dir)


# ----- a quiet start ---------------------------------------------------------------------------------------
def test_make_run_starts_without_an_error_line(make_run: RunningApp) -> None:
    """From `make run` to healthy, nothing is logged at ERROR, no traceback; broker waits say so once."""
    out = make_run.output_until_healthy
    loud = [line for line in out.splitlines() if LOUD.search(line)]
    assert not loud, "`make run` printed these before it was healthy:\n" + "\n".join(loud[:30])
    waits = {
        name: len(re.findall(rf"{name}\.1 .*waiting for the broker at ", out)) for name in BROKER_CLIENTS
    }
    assert all(count <= 1 for count in waits.values()), f"one 'waiting for the broker' line each: {waits}"
    # The broker takes seconds to boot and the Python processes do not: someone must have waited,
    # or this test did not see the start it is about.
    assert sum(waits.values()) >= 1, f"no process waited for the broker:\n{out[-4000:]}"
    print(f"\n`make run` healthy after {make_run.healthy_after:.1f} s; broker waits: {waits}")


# ----- the embedded default under a first session's load ------------------------------------------------
@dataclass
class Tally:
    """What every request of the load got: status counts and latencies per kind, and every 5xx."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)

    def call(
        self, kind: str, send: Callable[..., requests.Response], *args, **kwargs
    ) -> requests.Response | None:
        """Send one request (send(*args, **kwargs)), record it under kind; return the response or None."""
        started = time.monotonic()
        try:
            resp = send(*args, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.statuses[kind]["no answer"] += 1
                self.failures.append(f"{kind}: no answer ({type(exc).__name__}: {exc})")
            return None
        with self.lock:
            self.statuses[kind][resp.status_code] += 1
            self.latencies[kind].append(time.monotonic() - started)
            if resp.status_code >= 500:
                self.failures.append(
                    f"{kind}: HTTP {resp.status_code} {resp.request.method} {resp.url} {resp.text[:300]!r}"
                )
        return resp

    def note(self, kind: str) -> None:
        """Count one outcome that is not a request of its own (e.g. a login that really worked)."""
        with self.lock:
            self.statuses[kind]["yes"] += 1

    def count(self, kind: str, status: int | str | None = None) -> int:
        """Return how many requests of kind got status (any status when None)."""
        counts = self.statuses[kind]
        return sum(counts.values()) if status is None else counts[status]


WRITES = ("create", "edit", "delete", "session create", "django-admin add", "like", "unlike")


def _products_writer(app: RunningApp, tally: Tally, live: list[int], stop: threading.Event) -> None:
    """An API client with a token: create, edit and now and then delete products."""
    api = AdminApi(app.url("ADMIN_PORT"))
    base = f"{app.url('ADMIN_PORT')}/api/products"
    n = 0
    while not stop.is_set():
        n += 1
        resp = tally.call(
            "create", api.session.post, base, json={"title": f"load {n}", "image": IMAGE}, timeout=30
        )
        if resp is None or resp.status_code != 201:
            continue
        pid = resp.json()["id"]
        tally.call("edit", api.session.patch, f"{base}/{pid}", json={"title": f"load {n} edited"}, timeout=30)
        if n % 3 == 0:
            tally.call("delete", api.session.delete, f"{base}/{pid}", timeout=30)
        else:
            live.append(pid)
    api.close()


def _spa_login(app: RunningApp, tally: Tally, stop: threading.Event) -> None:
    """The SPA's session login with CSRF through the same-origin routing, a write, then logout."""
    spa = app.url("SPA_PORT")
    headers = {"Origin": spa, "Referer": f"{spa}/admin/products"}
    while not stop.is_set():
        with requests.Session() as browser:
            resp = tally.call("csrf", browser.get, f"{spa}/api/auth/csrf", timeout=30)
            if resp is None or resp.status_code != 200:
                continue
            creds = {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
            csrf = {"X-CSRFToken": browser.cookies.get("csrftoken", ""), **headers}
            resp = tally.call(
                "login", browser.post, f"{spa}/api/auth/login", json=creds, headers=csrf, timeout=30
            )
            if resp is None or resp.status_code != 200:
                continue
            csrf = {"X-CSRFToken": resp.json()["csrf_token"], **headers}
            tally.call("me", browser.get, f"{spa}/api/auth/me", timeout=30)
            tally.call(
                "session create",
                browser.post,
                f"{spa}/api/products",
                json={"title": "from the SPA", "image": IMAGE},
                headers=csrf,
                timeout=30,
            )
            tally.call("logout", browser.post, f"{spa}/api/auth/logout", headers=csrf, timeout=30)


def _django_admin(app: RunningApp, tally: Tally, stop: threading.Event) -> None:
    """An operator in the Django admin: log in, add a product, look at the list."""
    spa = app.url("SPA_PORT")
    admin = f"{spa}/django-admin"
    token = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
    while not stop.is_set():
        with requests.Session() as browser:
            page = tally.call("django-admin page", browser.get, f"{admin}/login/", timeout=30)
            if page is None or not token.search(page.text):
                continue
            form = {
                "csrfmiddlewaretoken": token.search(page.text)[1],
                "username": ADMIN_USERNAME,
                "password": ADMIN_PASSWORD,
            }
            resp = tally.call(
                "django-admin login",
                browser.post,
                f"{admin}/login/?next=/django-admin/",
                data=form,
                headers={"Referer": f"{admin}/login/"},
                timeout=30,
            )
            if resp is None or resp.status_code != 200 or "/login/" in resp.url:
                continue  # a refused login answers 200 with the form again
            tally.note("django-admin logged in")
            page = tally.call("django-admin page", browser.get, f"{admin}/products/product/add/", timeout=30)
            if page is None or not token.search(page.text):
                continue
            form = {
                "csrfmiddlewaretoken": token.search(page.text)[1],
                "title": "from the Django admin",
                "image": IMAGE,
            }
            resp = tally.call(
                "django-admin add",
                browser.post,
                f"{admin}/products/product/add/",
                data=form,
                headers={"Referer": page.url},
                timeout=30,
            )
            if (
                resp is not None
                and resp.status_code == 200
                and resp.url.rstrip("/").endswith("/products/product")
            ):
                tally.note("django-admin added")  # saved, and redirected to the list
            tally.call("django-admin page", browser.get, f"{admin}/products/product/", timeout=30)


def _shopper(
    app: RunningApp, tally: Tally, live: list[int], stop: threading.Event, rng: random.Random
) -> None:
    """Anonymous shoppers in the gallery: each a new cookie, a like, and now and then an unlike."""
    spa = app.url("SPA_PORT")
    while not stop.is_set():
        with requests.Session() as shopper:
            if not live or rng.random() < 0.1:
                resp = tally.call("gallery", shopper.get, f"{spa}/flask/api/products", timeout=30)
                if resp is not None and resp.status_code == 200 and not live:
                    live.extend(p["id"] for p in resp.json())
                if not live:
                    time.sleep(0.05)
                    continue
            pid = rng.choice(live)
            like = f"{spa}/flask/api/products/{pid}/like"
            resp = tally.call("like", shopper.post, like, timeout=30)
            if resp is not None and resp.status_code == 200 and rng.random() < 0.4:
                tally.call("unlike", shopper.delete, like, timeout=30)


def test_the_default_stack_never_answers_5xx_under_a_first_sessions_load(make_run: RunningApp) -> None:
    """Creates, edits, deletes, SPA and Django-admin logins, likes and unlikes at once: no 5xx; replicas agree."""
    tally, live, stop = Tally(), [], threading.Event()
    rng = random.Random(12)
    workers = [
        *(threading.Thread(target=_products_writer, args=(make_run, tally, live, stop)) for _ in range(3)),
        *(threading.Thread(target=_spa_login, args=(make_run, tally, stop)) for _ in range(2)),
        threading.Thread(target=_django_admin, args=(make_run, tally, stop)),
        *(
            threading.Thread(target=_shopper, args=(make_run, tally, live, stop, random.Random(rng.random())))
            for _ in range(3)
        ),
    ]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    time.sleep(LOAD_SECONDS)
    stop.set()
    for worker in workers:
        worker.join(timeout=120)
    elapsed = time.monotonic() - started
    assert not any(worker.is_alive() for worker in workers), "a load worker hung"

    writes = sum(tally.count(kind) for kind in WRITES)
    lines = [f"{len(workers)} clients for {elapsed:.1f} s: {writes} writes ({writes / elapsed:.0f}/s)"]
    for kind in sorted(tally.statuses):
        lat = sorted(tally.latencies[kind]) or [0.0]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        lines.append(
            f"  {kind:20} {dict(tally.statuses[kind])}  p50 {statistics.median(lat) * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms"
        )
    print("\n" + "\n".join(lines))

    assert not tally.failures, f"{len(tally.failures)} requests failed:\n" + "\n".join(tally.failures[:25])
    # Each kind of traffic must really have happened, or the load proves nothing.
    for kind, status, least in (
        ("create", 201, 20),
        ("edit", 202, 20),
        ("delete", 204, 5),
        ("login", 200, 5),
        ("session create", 201, 5),
        ("django-admin logged in", "yes", 2),
        ("django-admin added", "yes", 2),
        ("like", 200, 30),
        ("unlike", 200, 5),
    ):
        assert tally.count(kind, status) >= least, (
            f"only {tally.count(kind, status)} {kind} answered {status}"
        )

    ep = Endpoints(
        make_run.url("ADMIN_PORT"),
        make_run.url("MAIN_PORT"),
        make_run.database_url("admin"),
        make_run.database_url("main"),
    )
    took = assert_converged(ep, timeout=90)
    print(f"admin and main agreed {took:.1f} s after the load")
    locked = [line for line in make_run.output().splitlines() if "database is locked" in line]
    assert not locked, "\n".join(locked[:10])


def test_ctrl_c_stops_every_process_of_make_run(make_run: RunningApp) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) stops the whole set, the broker included."""
    assert make_run.leftover_pids(), "the marker finds no process: this test would prove nothing"
    os.killpg(make_run.proc.pid, signal.SIGINT)
    make_run.proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while make_run.leftover_pids() and time.monotonic() < deadline:
        time.sleep(0.5)
    left = {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
        for pid in make_run.leftover_pids()
    }
    assert not left, f"still running after Ctrl-C: {left}"
    ports = [var for var, port in make_run.ports.items() if _get(f"http://127.0.0.1:{port}/", timeout=0.5)]
    assert not ports, f"still answering: {ports}"
