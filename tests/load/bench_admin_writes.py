"""Benchmark admin's write path: product create and update through the API with a token, one sync worker.

Run from the repository root: `.venv/bin/python tests/load/bench_admin_writes.py` (or `make bench`).
Starts a throwaway MariaDB, migrates admin's schema into it, creates the superuser, inserts
BENCH_PRODUCTS products, starts admin under gunicorn with ONE sync worker (WEB_CONCURRENCY=1; no
broker: a write only writes the outbox and sends the relay a datagram nobody reads), asks
POST /api/auth/token for a token, then runs wrk with BENCH_CONNECTIONS connections for BENCH_SECONDS
against
  (a) POST /api/products, a new product per request (product row + product.created outbox row);
  (b) PUT /api/products/<id>, a different product per request (version bump + product.updated row);
  (c) GET /api/health on the same gunicorn setup, the trivial baseline.
Each with `Authorization: Token <key>`. Prints req/s, p50/p99, non-2xx, the worker's CPU time and
MariaDB's statement counters per request (Questions, and by kind), the server-side durations from
the access log, and this machine's speed: a bare Flask JSON endpoint (calibration_app.py) on one
sync worker. Then the floor: the same two routes with products.services' transactions stubbed out
(this file doubles as that pass's gunicorn config), the most a write can serve here whatever its
transaction costs. Then (a)-(c) again on the deploy default of two workers (BENCH_DEPLOY_WORKERS=0 skips).
Before this benchmark existed, bench_pipeline.py saw admin's web process sustain 64-81 creates/s.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent), str(Path(__file__).resolve().parent)]

REPO = TESTS.parent
ADMIN_DIR = REPO / "admin"

if __name__ == "__config__":
    # gunicorn -c tests/load/bench_admin_writes.py: the floor pass. admin's own config, and in each
    # worker products.services' create/update answer at once without touching the database. The
    # request still authenticates (token query), parses, validates, loads the product to update,
    # records its span and metrics, renders and logs: only the transaction and its wake-up are gone.
    globals().update(runpy.run_path(str(ADMIN_DIR / "gunicorn.conf.py")))

    def post_worker_init(worker):
        """Replace the write transactions in this worker by an unsaved product."""
        from django.utils import timezone

        from products import services
        from products.models import Product

        def create_product(*, title, image):
            now = timezone.now()
            return Product(pk=1, title=title, image=image, version=1, created_at=now, updated_at=now)

        def update_product(product_id, **changes):
            now = timezone.now()
            return Product(pk=product_id, version=2, created_at=now, updated_at=now, **changes)

        services.create_product = create_product
        services.update_product = update_product

else:
    from bench_likes import (  # noqa: E402 - the shared wrk, CPU and calibration helpers
        CONNECTIONS,
        REFERENCE_BARE_RPS,
        SECONDS,
        calibrate,
        cpu_seconds,
        out,
        run_wrk,
        stop_gunicorn,  # noqa: E402
        worker_pids,
    )
    from bench_likes import start_gunicorn as start_service  # noqa: E402

    from harness.servers import MariaDB, free_port  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1000"))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", "1"))
DEPLOY_WORKERS = int(os.environ.get("BENCH_DEPLOY_WORKERS", "2"))
# Another gunicorn config (path relative to admin/), e.g. one that wraps the worker in a profiler.
GUNICORN_CONF = os.environ.get("BENCH_GUNICORN_CONF", "gunicorn.conf.py")
DB = ("bench_admin", "bench_admin", "bench-admin-pw")
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", "bench-admin-pw"  # pragma: allowlist secret
# The counters printed per request: every statement, then by kind (SET AUTOCOMMIT is a set_option).
COUNTERS = (
    "Questions",
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_begin",
    "Com_commit",
    "Com_set_option",
    "Com_admin_commands",
)

CREATE_LUA = """
wrk.headers["Authorization"] = "Token %(token)s"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"title": "Bench product %%d", "image": "https://example.com/bench/%%d.png"}',
                             counter, counter)
  return wrk.format("POST", "/api/products", nil, body)
end
"""

UPDATE_LUA = """
wrk.headers["Authorization"] = "Token %(token)s"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"title": "Renamed %%d", "image": "https://example.com/renamed/%%d.png"}',
                             counter, counter)
  return wrk.format("PUT", "/api/products/" .. ((counter %% %(products)d) + 1), nil, body)
end
"""


def db_counters(mariadb: MariaDB) -> dict[str, int]:
    """Return MariaDB's global statement counters (COUNTERS)."""
    with mariadb.connect(*DB) as conn, conn.cursor() as cur:
        placeholders = ", ".join(["%s"] * len(COUNTERS))
        cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({placeholders})", COUNTERS)  # noqa: S608  # nosec B608 - placeholders only
        return {name: int(value) for name, value in cur.fetchall()}


def measured(url: str, mariadb: MariaDB, workers: list[int], script: Path | None = None) -> dict:
    """Run wrk against url; add the worker CPU and the database statements per request."""
    cpu_before = sum(cpu_seconds(pid) for pid in workers)
    db_before = db_counters(mariadb)
    result = run_wrk(url, script)
    db_after = db_counters(mariadb)
    requests = max(1, result["total"])
    result["cpu_ms"] = (sum(cpu_seconds(pid) for pid in workers) - cpu_before) * 1000 / requests
    # Reading the counters is one statement (a select) of ours, not the service's.
    ours = {"Questions": 1, "Com_select": 1}
    result["db"] = {
        name: (db_after[name] - db_before[name] - ours.get(name, 0)) / requests for name in COUNTERS
    }
    return result


def server_side_durations(log_path: Path) -> dict[str, tuple[int, float, float]]:
    """Return {"METHOD kind": (count, p50 ms, p99 ms)} from gunicorn's JSON access lines."""
    samples: dict[str, list[float]] = {}
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") != "gunicorn.access":
            continue
        path = "/api/products/<id>" if record["path"].rstrip("/").split("/")[-1].isdigit() else record["path"]
        samples.setdefault(f"{record['method']} {path} {record['status']}", []).append(record["duration_ms"])
    result = {}
    for kind, values in samples.items():
        values.sort()
        result[kind] = (
            len(values),
            values[len(values) // 2],
            values[min(len(values) - 1, int(len(values) * 0.99))],
        )
    return result


def start_gunicorn(env: dict, workers: int, port: int, log_path: Path, conf: str = GUNICORN_CONF):
    """Start admin under gunicorn with workers sync workers on port; return once /api/health answers."""
    return start_service(
        env, workers, port, log_path, conf, app="config.wsgi:application", cwd=ADMIN_DIR, health="/api/health"
    )


def get_token(base: str) -> str:
    """Return the superuser's API token (POST /api/auth/token)."""
    request = urllib.request.Request(
        f"{base}/api/auth/token",
        data=json.dumps({"username": ADMIN_USER, "password": ADMIN_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  # nosec B310 - our own server
        return json.load(response)["token"]


def describe(name: str, result: dict) -> str:
    """Format one pass: rate, latency, errors, CPU and statements per request."""
    db = result["db"]
    kinds = ", ".join(
        f"{label} {db[counter]:.2f}"
        for label, counter in (
            ("select", "Com_select"),
            ("insert", "Com_insert"),
            ("update", "Com_update"),
            ("begin", "Com_begin"),
            ("commit", "Com_commit"),
            ("set", "Com_set_option"),
        )
        if db[counter] >= 0.005
    )
    return (
        f"  {name}: {result['rps']:8.1f} req/s  p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
        f"requests {result['total']}  non-2xx {result['non_2xx']}  socket errors {result['socket_errors']}\n"
        f"      per request: worker CPU {result['cpu_ms']:.2f} ms, statements {db['Questions']:.2f}"
        f" ({kinds or 'none'}), pings {db['Com_admin_commands']:.2f}"
    )


def write_passes(base: str, mariadb: MariaDB, workers: list[int], scripts: dict[str, Path]) -> dict:
    """Run the create and update passes; return their results."""
    return {
        "create": measured(f"{base}/api/products", mariadb, workers, scripts["create"]),
        "update": measured(f"{base}/api/products/1", mariadb, workers, scripts["update"]),
    }


def main() -> int:
    """Start MariaDB and admin, run the passes, print the figures, stop everything."""
    if not shutil.which("wrk"):
        out("wrk is not installed")
        return 2
    mariadb, gunicorn = MariaDB(), None
    workdir = Path(tempfile.mkdtemp(prefix="bench-admin-writes-"))
    try:
        mariadb.start()
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": mariadb.create_db_user(*DB),
            "SECRET_KEY": "bench-secret-bench-secret-bench-secret-bench-secret",  # pragma: allowlist secret
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",  # writes never talk to the broker  # pragma: allowlist secret
            "OUTBOX_WAKEUP_ADDR": f"127.0.0.1:{free_port()}",  # nobody listens: the datagram is dropped
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
            "LOG_LEVEL": "INFO",
            "ADMIN_USERNAME": ADMIN_USER,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
        }
        for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "DB_SECRET_NAME",
            "DJANGO_SETTINGS_MODULE",
            "WEB_CONCURRENCY",
        ):
            env.pop(name, None)
        for command in (["migrate", "--noinput"], ["ensure_superuser"]):
            subprocess.run(
                [str(VENV_BIN / "python"), "manage.py", *command],
                cwd=ADMIN_DIR,
                env=env,
                check=True,
                capture_output=True,
                timeout=240,
            )
        with mariadb.connect(*DB) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO products_product (id, title, image, likes, likes_seq, version, created_at, updated_at)"
                " VALUES (%s, %s, %s, 0, 0, 1, NOW(6), NOW(6))",
                [(i, f"Product {i}", f"https://example.com/{i}.png") for i in range(1, PRODUCTS + 1)],
            )
            conn.commit()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        gunicorn = start_gunicorn(env, WORKERS, port, workdir / "gunicorn.log")
        token = get_token(base)
        scripts = {"create": workdir / "create.lua", "update": workdir / "update.lua"}
        scripts["create"].write_text(CREATE_LUA % {"token": token})
        scripts["update"].write_text(UPDATE_LUA % {"token": token, "products": PRODUCTS})

        load_before = os.getloadavg()[0]
        out(f"calibrating: bare Flask JSON endpoint, one sync worker, wrk {CONNECTIONS} connections ...")
        bare = calibrate(workdir)
        workers = worker_pids(gunicorn.pid)
        out(f"measuring: POST create, PUT update, GET health, {SECONDS} s each ...")
        writes = write_passes(base, mariadb, workers, scripts)
        health = measured(f"{base}/api/health", mariadb, workers)

        with mariadb.connect(*DB) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM outbox), (SELECT SUM(version - 1) FROM products_product)"
                " FROM products_product"
            )
            product_rows, outbox_rows, version_bumps = cur.fetchone()

        out(
            f"admin write benchmark: gunicorn sync workers={WORKERS}, wrk {CONNECTIONS} connections x "
            f"{SECONDS}s, MariaDB {mariadb.port}, {PRODUCTS} products, token auth"
        )
        out(describe("POST /api/products     ", writes["create"]))
        out(describe("PUT /api/products/<id> ", writes["update"]))
        out(describe("GET /api/health        ", health))
        for name in ("create", "update"):
            out(f"  ratio {name}/health: {writes[name]['rps'] / health['rps']:.1%}")
        out(f"  load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
        out(f"  database: {product_rows} products, {outbox_rows} outbox rows, {version_bumps} version bumps")
        out(
            f"  this machine: bare Flask JSON on one sync worker {bare:.0f} req/s "
            f"(the targets' machine: about {REFERENCE_BARE_RPS}), speed factor {bare / REFERENCE_BARE_RPS:.2f}"
        )
        for kind, (count, p50, p99) in sorted(server_side_durations(workdir / "gunicorn.log").items()):
            out(
                f"  server-side (gunicorn access log) {kind}: {count} requests, p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
        if os.environ.get("BENCH_SHOW_LOG"):
            out((workdir / "gunicorn.log").read_text()[-3000:])
        stop_gunicorn(gunicorn)
        gunicorn = None

        out("measuring the floor: the same routes with products.services' transactions stubbed out ...")
        gunicorn = start_gunicorn(
            env, WORKERS, port, workdir / "gunicorn-floor.log", str(Path(__file__).resolve())
        )
        floor = write_passes(base, mariadb, worker_pids(gunicorn.pid), scripts)
        out(describe("floor POST /api/products    ", floor["create"]))
        out(describe("floor PUT /api/products/<id>", floor["update"]))
        for name in ("create", "update"):
            out(
                f"  the {name} transaction adds {writes[name]['cpu_ms'] - floor[name]['cpu_ms']:.2f} ms of worker CPU "
                f"and {writes[name]['db']['Questions'] - floor[name]['db']['Questions']:.2f} statements"
            )
        stop_gunicorn(gunicorn)
        gunicorn = None

        if DEPLOY_WORKERS and DEPLOY_WORKERS != WORKERS:
            out(
                f"measuring the deploy default: {DEPLOY_WORKERS} sync workers (WEB_CONCURRENCY), same passes ..."
            )
            gunicorn = start_gunicorn(env, DEPLOY_WORKERS, port, workdir / "gunicorn-deploy.log")
            workers = worker_pids(gunicorn.pid)
            deploy = write_passes(base, mariadb, workers, scripts)
            health = measured(f"{base}/api/health", mariadb, workers)
            for name, result in deploy.items():
                out(
                    f"  {DEPLOY_WORKERS} workers, {name}: {result['rps']:.1f} req/s p50 {result['p50']:.2f} ms "
                    f"p99 {result['p99']:.2f} ms (non-2xx {result['non_2xx']}), worker CPU {result['cpu_ms']:.2f} ms"
                )
            out(f"  {DEPLOY_WORKERS} workers, GET health: {health['rps']:.1f} req/s")
        return 0
    finally:
        stop_gunicorn(gunicorn)
        mariadb.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        mariadb.cleanup()


if __name__ == "__main__":
    sys.exit(main())
