"""Benchmark main's like endpoint: one gunicorn sync worker on a real MariaDB, driven by wrk.

Run from the repository root: `.venv/bin/python tests/load/bench_likes.py` (or `make bench`).
Starts a throwaway MariaDB, migrates main's schema into it, inserts BENCH_PRODUCTS products,
starts main under gunicorn with ONE sync worker (WEB_CONCURRENCY=1), then runs wrk with
BENCH_CONNECTIONS connections for BENCH_SECONDS against
  (a) POST /flask/api/products/<id>/like, a different product id per request and no cookie, so
      every request is a new shopper's like (the full transaction: like row, counter, outbox row);
  (b) GET /flask/api/health on the same gunicorn setup, the trivial baseline.
Prints likes/s, p50/p99 latency, non-2xx count, the baseline's req/s, the ratio and the worker count,
the worker's CPU time and the database statements per request (MariaDB's own counters), and this
machine's speed: a bare Flask JSON endpoint (calibration_app.py) on the same one sync worker, so
the absolute targets can be read against the machine they were set on (about 2,700 req/s there).
Then the floor: the like route with its database transaction stubbed out (floor_gunicorn.conf.py),
the most a like can serve on this machine and worker setup. Then the like and health passes again
on the deploy default of two sync workers (BENCH_DEPLOY_WORKERS=0 skips).
Targets (README: Benchmarks; reported only): > 600 likes/s, >= 25 % of the baseline, p99 < 50 ms at 16 clients.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # harness, and dev (the servers)

from harness.servers import MariaDB, free_port  # noqa: E402

REPO = TESTS.parent
MAIN_DIR = REPO / "main"
VENV_BIN = REPO / ".venv" / "bin"
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "1000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WORKERS = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Then the same passes on the deploy default (gunicorn.conf.py: WEB_CONCURRENCY=2, one per core); 0 skips.
DEPLOY_WORKERS = int(os.environ.get("BENCH_DEPLOY_WORKERS", "2"))
# Another gunicorn config (path relative to main/), e.g. one that wraps the worker in cProfile.
GUNICORN_CONF = os.environ.get("BENCH_GUNICORN_CONF", "gunicorn.conf.py")
# The floor pass: main's config with the like's transaction stubbed out (what the route costs without it).
FLOOR_CONF = Path(__file__).with_name("floor_gunicorn.conf.py")
# What calibration_app.py served on the machine the targets were set on (README: Benchmarks).
REFERENCE_BARE_RPS = 2700

LIKE_LUA = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/flask/api/products/" .. ((counter %% %d) + 1) .. "/like")
end
"""


def out(text: str = "") -> None:
    """Write one line of results to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Poll url until it answers 200, failing early if proc dies."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def parse_ms(value: str) -> float:
    """Convert a wrk duration such as 812.00us, 3.21ms or 1.02s to milliseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url: str, script: Path | None = None) -> dict:
    """Run wrk against url and return req/s, p50/p99 (ms), total and non-2xx counts."""
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", str(script)]
    text = subprocess.run(
        [*args, url], capture_output=True, text=True, check=True, timeout=SECONDS + 60
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": parse_ms(re.search(r"\s50%\s+(\S+)", text).group(1)),
        "p99": parse_ms(re.search(r"\s99%\s+(\S+)", text).group(1)),
        "total": int(re.search(r"(\d+) requests in", text).group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
        "raw": text,
    }


def server_side_durations(log_path: Path) -> dict[str, tuple[int, float, float]]:
    """Return {path kind: (count, p50 ms, p99 ms)} from gunicorn's JSON access lines."""
    samples: dict[str, list[float]] = {}
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") != "gunicorn.access":
            continue
        kind = "like" if record["path"].endswith("/like") else record["path"]
        samples.setdefault(kind, []).append(record["duration_ms"])
    result = {}
    for kind, values in samples.items():
        values.sort()
        result[kind] = (
            len(values),
            values[len(values) // 2],
            values[min(len(values) - 1, int(len(values) * 0.99))],
        )
    return result


def cpu_seconds(pid: int) -> float:
    """Return the user+system CPU seconds pid has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pids(master: int) -> list[int]:
    """Return the gunicorn worker processes of master."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def db_counters(mariadb: MariaDB) -> dict[str, int]:
    """Return MariaDB's global counters of client statements, pings and commits."""
    with mariadb.connect("bench_main", "bench_main", "bench-main-pw") as conn, conn.cursor() as cur:
        cur.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands', 'Com_commit')"
        )
        return {name: int(value) for name, value in cur.fetchall()}


def measured(url: str, mariadb: MariaDB, workers: list[int], script: Path | None = None) -> dict:
    """Run wrk against url; add the worker CPU and the database statements per request."""
    cpu_before = sum(cpu_seconds(pid) for pid in workers)
    db_before = db_counters(mariadb)
    result = run_wrk(url, script)
    db_after = db_counters(mariadb)
    requests = max(1, result["total"])
    result["cpu_ms"] = (sum(cpu_seconds(pid) for pid in workers) - cpu_before) * 1000 / requests
    # Each counter read is one statement of ours; it is not the service's.
    result["db"] = {
        name: (db_after[name] - db_before[name] - (1 if name == "Questions" else 0)) / requests
        for name in db_after
    }
    return result


def calibrate(workdir: Path) -> float:
    """Return the req/s of the bare Flask endpoint (calibration_app.py) on one sync worker."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--workers",
            "1",
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "calibration_app:app",
        ],
        cwd=Path(__file__).parent,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "calibration.log", "w"),  # noqa: SIM115 - closed with the workdir
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc)
        return run_wrk(f"http://127.0.0.1:{port}/")["rps"]
    finally:
        stop_gunicorn(proc)


def start_gunicorn(
    env: dict,
    workers: int,
    port: int,
    log_path: Path,
    conf: str = GUNICORN_CONF,
    *,
    app: str = "app:create_app()",
    cwd: Path = MAIN_DIR,
    health: str = "/flask/api/health",
) -> subprocess.Popen:
    """Start a service (main by default) under gunicorn with workers sync workers; return once health answers."""
    log = open(log_path, "w")  # noqa: SIM115 - closed with the workdir
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-c", conf, "--bind", f"127.0.0.1:{port}", app],
        cwd=cwd,
        env={**env, "WEB_CONCURRENCY": str(workers), "PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}{health}", proc)
    except BaseException:
        stop_gunicorn(proc)
        raise
    return proc


def stop_gunicorn(proc: subprocess.Popen | None) -> None:
    """Stop a gunicorn and its workers (SIGTERM to its process group, then SIGKILL after 30 s)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    """Start MariaDB and main, run both wrk passes, print the figures, stop everything."""
    if not shutil.which("wrk"):
        out("wrk is not installed")
        return 2
    mariadb, gunicorn, workdir = MariaDB(), None, Path(tempfile.mkdtemp(prefix="bench-likes-"))
    try:
        mariadb.start()
        database_url = mariadb.create_db_user("bench_main", "bench_main", "bench-main-pw")
        port = free_port()
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret",
            "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
            "OUTBOX_WAKEUP_ADDR": f"127.0.0.1:{free_port()}",  # nobody listens: the datagram is dropped
            "PROMETHEUS_MULTIPROC_DIR": str(workdir),
            "LOG_LEVEL": "INFO",
            # Every like comes from a new shopper at 127.0.0.1: budgets this high keep the
            # limiter's cost in the figure without answering 429.
            "LIKES_RATE_LIMIT": "100000000 per minute",
            "NEW_SHOPPER_RATE_LIMIT": "100000000 per minute",
        }
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"],
            cwd=MAIN_DIR,
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        with mariadb.connect("bench_main", "bench_main", "bench-main-pw") as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO product (id, title, image, version, likes, likes_seq, deleted, updated_at)"
                " VALUES (%s, %s, '', 1, 0, 0, 0, NOW(6))",
                [(i, f"Product {i}") for i in range(1, PRODUCTS + 1)],
            )
            conn.commit()
        gunicorn = start_gunicorn(env, WORKERS, port, workdir / "gunicorn.log")
        base = f"http://127.0.0.1:{port}"
        script = workdir / "like.lua"
        script.write_text(LIKE_LUA % PRODUCTS)

        load_before = os.getloadavg()[0]
        out(f"calibrating: bare Flask JSON endpoint, one sync worker, wrk {CONNECTIONS} connections ...")
        bare = calibrate(workdir)
        workers = worker_pids(gunicorn.pid)
        out(f"measuring: POST like then GET health, {SECONDS} s each ...")
        likes = measured(f"{base}/flask/api/products/1/like", mariadb, workers, script)
        health = measured(f"{base}/flask/api/health", mariadb, workers)

        with mariadb.connect("bench_main", "bench_main", "bench-main-pw") as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*), (SELECT SUM(likes) FROM product), (SELECT COUNT(*) FROM outbox)"
                " FROM product_like"
            )
            like_rows, like_sum, outbox_rows = cur.fetchone()

        ratio = likes["rps"] / health["rps"] if health["rps"] else 0.0
        out(
            f"main like benchmark: gunicorn sync workers={WORKERS}, "
            f"wrk {CONNECTIONS} connections x {SECONDS}s, "
            f"MariaDB {mariadb.port}, {PRODUCTS} products"
        )
        out(
            f"  POST like : {likes['rps']:8.1f} likes/s  "
            f"p50 {likes['p50']:6.2f} ms  p99 {likes['p99']:6.2f} ms  "
            f"requests {likes['total']}  non-2xx {likes['non_2xx']}  socket errors {likes['socket_errors']}"
        )
        out(
            f"  GET health: {health['rps']:8.1f} req/s    "
            f"p50 {health['p50']:6.2f} ms  p99 {health['p99']:6.2f} ms"
        )
        out(f"  ratio likes/health: {ratio:.1%}")
        for name, result in (("like", likes), ("health", health)):
            db = result["db"]
            out(
                f"  per {name} request: worker CPU {result['cpu_ms']:.2f} ms, database statements "
                f"{db['Questions']:.2f} (commits {db['Com_commit']:.2f}, pings {db['Com_admin_commands']:.2f})"
            )
        # The machine is shared: a high load average means the figures understate the service.
        out(f"  load average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
        out(f"  database: {like_rows} like rows, sum(likes) {like_sum}, {outbox_rows} outbox rows")
        scale = bare / REFERENCE_BARE_RPS
        out(
            f"  this machine: bare Flask JSON on one sync worker {bare:.0f} req/s "
            f"(the targets' machine: about {REFERENCE_BARE_RPS}), speed factor {scale:.2f}"
        )
        out(
            "  targets: > 600 likes/s, ratio >= 25 %, p99 < 50 ms -> "
            + ", ".join(
                [
                    f"rate {'met' if likes['rps'] > 600 else 'NOT met'}",
                    f"ratio {'met' if ratio >= 0.25 else 'NOT met'}",
                    f"p99 {'met' if likes['p99'] < 50 else 'NOT met'}",
                ]
            )
        )
        out(
            f"  scaled by the speed factor: > {600 * scale:.0f} likes/s, p99 < {50 / scale:.0f} ms -> "
            f"rate {'met' if likes['rps'] > 600 * scale else 'NOT met'}, "
            f"p99 {'met' if likes['p99'] < 50 / scale else 'NOT met'}"
        )
        server = server_side_durations(workdir / "gunicorn.log")
        for path, (count, p50, p99) in sorted(server.items()):
            out(
                f"  server-side (gunicorn access log) {path}: {count} requests, "
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
            )
        if os.environ.get("BENCH_SHOW_LOG"):
            out((workdir / "gunicorn.log").read_text()[-3000:])
        stop_gunicorn(gunicorn)
        gunicorn = None
        out(
            f"measuring the floor: the same like route with its transaction stubbed out ({FLOOR_CONF.name}) ..."
        )
        gunicorn = start_gunicorn(env, WORKERS, port, workdir / "gunicorn-floor.log", str(FLOOR_CONF))
        floor = measured(f"{base}/flask/api/products/1/like", mariadb, worker_pids(gunicorn.pid), script)
        out(
            f"  floor, {WORKERS} worker(s): {floor['rps']:.1f} req/s p50 {floor['p50']:.2f} ms "
            f"p99 {floor['p99']:.2f} ms; worker CPU {floor['cpu_ms']:.2f} ms per request, so the "
            f"transaction adds {likes['cpu_ms'] - floor['cpu_ms']:.2f} ms of worker CPU to a like"
        )
        stop_gunicorn(gunicorn)
        gunicorn = None
        if DEPLOY_WORKERS and DEPLOY_WORKERS != WORKERS:
            out(
                f"measuring the deploy default: {DEPLOY_WORKERS} sync workers (WEB_CONCURRENCY), same passes ..."
            )
            gunicorn = start_gunicorn(env, DEPLOY_WORKERS, port, workdir / "gunicorn-deploy.log")
            workers = worker_pids(gunicorn.pid)
            likes = measured(f"{base}/flask/api/products/1/like", mariadb, workers, script)
            health = measured(f"{base}/flask/api/health", mariadb, workers)
            out(
                f"  {DEPLOY_WORKERS} workers: POST like {likes['rps']:.1f} likes/s "
                f"p50 {likes['p50']:.2f} ms p99 {likes['p99']:.2f} ms (non-2xx {likes['non_2xx']}); "
                f"GET health {health['rps']:.1f} req/s; ratio {likes['rps'] / health['rps']:.1%}; "
                f"worker CPU per like {likes['cpu_ms']:.2f} ms"
            )
        return 0
    finally:
        stop_gunicorn(gunicorn)
        mariadb.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        mariadb.cleanup()


if __name__ == "__main__":
    sys.exit(main())
