"""Benchmark the event pipeline on real servers: propagation latency and backlog drain rate.

Run from the repository root: `.venv/bin/python tests/load/bench_pipeline.py` (or `make bench`).
Starts its own throwaway RabbitMQ, MariaDB and the six service processes, prints figures, stops all.

(a) Propagation latency at a steady rate (default 100 events/s for 20 s), each direction:
    admin product write -> applied in main, and like in main -> applied in admin.
    Per event: the consumer's inbox.received_at (set in the apply transaction) minus the producer's
    outbox.created_at (set in the write transaction), joined on the event id: both clocks are this
    machine's, stored with microseconds. A poller thread also reads main's database every 2 ms to
    time "admin answered the write -> the product is readable in main" from the outside.
(a2) The same latencies with the writes made through each service's own service layer (the same
    transaction and relay wake-up as the HTTP routes) at a steady RATE from one thread: the web
    processes cannot serve 100 writes/s on a 2-core machine, and a saturated CPU times the scheduler.
    Each direction also prints the relay's share: outbox.published_at - created_at.
(b) Drain throughput: admin's consumer stopped, N likes (default 50,000) made through main's own
    service layer (real like rows + real outbox rows), main's relay publishes them, then admin's
    consumer starts; events/s until admin's likes equal main's counts.

Targets (for the report only, no pass/fail): propagation p95 < 50 ms and p99 < 100 ms at
100 events/s; drain >= 2,000 events/s. Knobs: BENCH_RATE, BENCH_SECONDS, BENCH_DRAIN_EVENTS.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # harness, and dev (the servers)

from faults.support import AdminApi, Shop, connect_url, query  # noqa: E402

from harness.servers import MariaDB, RabbitNode  # noqa: E402
from harness.services import ADMIN_DIR, MAIN_DIR, VENV_BIN, ServiceSet  # noqa: E402

logger = logging.getLogger("bench_pipeline")

RATE = float(os.environ.get("BENCH_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
DRAIN_EVENTS = int(os.environ.get("BENCH_DRAIN_EVENTS", "50000"))


def out(text: str = "") -> None:
    """Write one line of results to stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def percentiles(values: list[float]) -> str:
    """Format count, p50/p95/p99/max of values given in seconds, as milliseconds."""
    if not values:
        return "no samples"
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return (
        f"n={len(ordered)}  p50={pick(0.50):.1f} ms  p95={pick(0.95):.1f} ms  p99={pick(0.99):.1f} ms  "
        f"max={ordered[-1] * 1000:.1f} ms  mean={statistics.fmean(ordered) * 1000:.1f} ms"
    )


def paced(rate: float, seconds: float, action, workers: int = 6) -> tuple[int, float, list[str]]:
    """Call action(i) at a steady rate from a thread pool; return (calls, achieved rate, errors)."""
    errors: list[str] = []
    total = int(rate * seconds)
    start = time.monotonic()

    def one(i: int) -> None:
        try:
            action(i)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(exc).__name__}: {exc}"[:200])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    elapsed = time.monotonic() - start
    return total, total / elapsed, errors


def event_latencies(
    src_db: str, dst_db: str, types: tuple[str, ...], since_id: int
) -> tuple[list[float], list[float]]:
    """Return (end to end, relay leg) in seconds for the outbox rows after since_id.

    End to end: the consumer's inbox.received_at - the producer's outbox.created_at. Relay leg:
    outbox.published_at - created_at, i.e. wake-up, claim, publish, confirm and marking the row
    sent; the consumer often applies the event before the relay has marked it.
    """
    marks = ",".join(["%s"] * len(types))
    rows = query(
        src_db,
        f"SELECT event_id, created_at, published_at FROM outbox WHERE id > %s AND event_type IN ({marks})",
        (since_id, *types),
    )
    got = dict(query(dst_db, "SELECT message_id, received_at FROM inbox"))
    missing = [row[0] for row in rows if row[0] not in got]
    if missing:
        out(f"    WARNING: {len(missing)} events not applied yet")
    end_to_end = [(got[eid] - created).total_seconds() for eid, created, _ in rows if eid in got]
    relay = [(published - created).total_seconds() for _, created, published in rows if published]
    return end_to_end, relay


def max_outbox_id(db_url: str) -> int:
    """Return the highest outbox id so far (0 when empty)."""
    return query(db_url, "SELECT COALESCE(MAX(id), 0) FROM outbox")[0][0]


def wait_applied(src_db: str, dst_db: str, since_id: int, timeout: float = 120) -> None:
    """Wait until every outbox row after since_id is in the other side's inbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sent = {r[0] for r in query(src_db, "SELECT event_id FROM outbox WHERE id > %s", (since_id,))}
        if not sent - {r[0] for r in query(dst_db, "SELECT message_id FROM inbox")}:
            return
        time.sleep(0.2)
    out("    WARNING: not every event was applied before the deadline")


class MainPoller(threading.Thread):
    """Read main's product ids every 2 ms and record when each id first became visible."""

    def __init__(self, main_db: str):
        super().__init__(daemon=True)
        self.conn = connect_url(main_db)
        self.first_seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with self.conn.cursor() as cur:
            last = 0
            while not self.stop.is_set():
                cur.execute("SELECT id FROM product WHERE id > %s", (last,))
                now = time.monotonic()
                for (pid,) in cur.fetchall():
                    self.first_seen.setdefault(pid, now)
                    last = max(last, pid)
                time.sleep(0.002)
        self.conn.close()


def bench_propagation(stack: ServiceSet, admin_db: str, main_db: str) -> None:
    """Measure admin->main and main->admin latency at a steady event rate."""
    admin, shop = AdminApi(stack.admin_url), Shop(stack.main_url)
    out(f"(a) propagation latency at {RATE:.0f} events/s for {SECONDS:.0f} s")

    # admin -> main: each event creates a product, so its arrival in main is one new row.
    since = max_outbox_id(admin_db)
    poller = MainPoller(main_db)
    poller.start()
    answered: dict[int, float] = {}

    def create(i: int) -> None:
        pid = admin.create(f"bench {i}", f"https://example.com/bench/{i}.png")["id"]
        answered[pid] = time.monotonic()

    n, achieved, errors = paced(RATE, SECONDS, create)
    wait_applied(admin_db, main_db, since)
    time.sleep(0.1)
    poller.stop.set()
    poller.join()
    lat, relay = event_latencies(admin_db, main_db, ("product.created",), since)
    out(f"  admin -> main, {n} product.created at {achieved:.0f}/s ({len(errors)} errors)")
    out(f"    outbox write -> applied in main (DB timestamps): {percentiles(lat)}")
    out(f"    of which outbox write -> marked published by admin's relay: {percentiles(relay)}")
    visible = [
        max(0.0, poller.first_seen[pid] - t) for pid, t in answered.items() if pid in poller.first_seen
    ]
    out(f"    admin HTTP answer -> row readable in main (2 ms poll): {percentiles(visible)}")
    for e in errors[:3]:
        out(f"    error: {e}")

    # main -> admin: distinct shoppers like a handful of products.
    products = [p["id"] for p in shop.products()][:20]
    since = max_outbox_id(main_db)

    def like(i: int) -> None:
        with shop.shopper() as shopper:
            resp = shop.like(shopper, products[i % len(products)])
            if resp.status_code != 200:
                raise RuntimeError(f"HTTP {resp.status_code}")

    n, achieved, errors = paced(RATE, SECONDS, like)
    wait_applied(main_db, admin_db, since)
    lat, relay = event_latencies(main_db, admin_db, ("product.liked",), since)
    out(f"  main -> admin, {n} product.liked at {achieved:.0f}/s ({len(errors)} errors)")
    out(f"    outbox write -> applied in admin (DB timestamps): {percentiles(lat)}")
    out(f"    of which outbox write -> marked published by main's relay: {percentiles(relay)}")
    for e in errors[:3]:
        out(f"    error: {e}")
    admin.close()


# The same writes as the HTTP routes (service layer, one transaction with the outbox row, then the
# relay's wake-up), paced at a steady rate from one thread: this machine's web processes cannot
# serve 100 writes/s, and a saturated CPU would time the scheduler, not the pipeline.
_PACED = r"""
import sys, time
count, rate = int(sys.argv[1]), float(sys.argv[2])
write = setup()
start = time.monotonic()
for i in range(count):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    write(i)
print(count / (time.monotonic() - start))
"""
_ADMIN_WRITER = r"""
import django
django.setup()
from products import services
def setup():
    return lambda i: services.create_product(title=f"paced {i}", image=f"https://example.com/paced/{i}.png")
"""
_MAIN_WRITER = r"""
import json, os, uuid
from app import create_app, services
from app.messaging.outbox import wake_relay
app = create_app()
products = json.loads(os.environ["BENCH_PRODUCTS"])
def setup():
    app.app_context().push()
    def like(i):
        services.like(str(uuid.uuid4()), products[i % len(products)])
        wake_relay(app.config["OUTBOX_WAKEUP_ADDR"])
    return like
"""


def paced_writes(stack: ServiceSet, service: str, count: int, extra_env: dict[str, str]) -> float:
    """Run count writes through service's own service layer at RATE; return the achieved rate."""
    env = {**stack.service_env(service), "LOG_LEVEL": "WARNING", **extra_env}
    writer = _ADMIN_WRITER if service == "admin" else _MAIN_WRITER
    if service == "admin":
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", writer + _PACED, str(count), str(RATE)],
        cwd=ADMIN_DIR if service == "admin" else MAIN_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def bench_paced_propagation(stack: ServiceSet, admin_db: str, main_db: str) -> None:
    """Measure both directions with writes made through the service layers at a steady RATE."""
    count = int(RATE * SECONDS)
    out(
        f"(a2) propagation latency, writes through the service layers at {RATE:.0f} events/s for {SECONDS:.0f} s"
    )
    since = max_outbox_id(admin_db)
    achieved = paced_writes(stack, "admin", count, {})
    wait_applied(admin_db, main_db, since)
    lat, relay = event_latencies(admin_db, main_db, ("product.created",), since)
    out(f"  admin -> main, {count} product.created at {achieved:.0f}/s")
    out(f"    outbox write -> applied in main (DB timestamps): {percentiles(lat)}")
    out(f"    of which outbox write -> marked published by admin's relay: {percentiles(relay)}")

    products = [row[0] for row in query(main_db, "SELECT id FROM product WHERE deleted = 0 LIMIT 20")]
    since = max_outbox_id(main_db)
    achieved = paced_writes(stack, "main", count, {"BENCH_PRODUCTS": json.dumps(products)})
    wait_applied(main_db, admin_db, since)
    lat, relay = event_latencies(main_db, admin_db, ("product.liked",), since)
    out(f"  main -> admin, {count} product.liked at {achieved:.0f}/s")
    out(f"    outbox write -> applied in admin (DB timestamps): {percentiles(lat)}")
    out(f"    of which outbox write -> marked published by main's relay: {percentiles(relay)}")


# Runs inside main's environment: the real service layer writes like rows and outbox rows.
_LIKE_SCRIPT = r"""
import json, sys, uuid
from concurrent.futures import ThreadPoolExecutor
from app import create_app
from app import services
products, count, workers = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
app = create_app()
def chunk(k):
    with app.app_context():
        for i in range(k, count, workers):
            services.like(str(uuid.uuid4()), products[i % len(products)])
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(chunk, range(workers)))
"""


def bench_drain(stack: ServiceSet, admin_db: str, main_db: str) -> None:
    """Measure how fast admin drains a backlog of like events."""
    admin = AdminApi(stack.admin_url)
    out(f"(b) drain: {DRAIN_EVENTS} likes queued while admin's consumer is stopped")
    products = [admin.create(f"drain {i}", f"https://example.com/drain/{i}.png")["id"] for i in range(50)]
    deadline = time.monotonic() + 60
    while set(products) - {r[0] for r in query(main_db, "SELECT id FROM product")}:
        assert time.monotonic() < deadline, "drain products never reached main"
        time.sleep(0.1)
    stack.stop_process("admin-consumer")
    inbox_before = query(admin_db, "SELECT COUNT(*) FROM inbox")[0][0]

    start = time.monotonic()
    env = {**stack.service_env("main"), "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [str(VENV_BIN / "python"), "-c", _LIKE_SCRIPT, json.dumps(products), str(DRAIN_EVENTS), "4"],
        cwd=MAIN_DIR,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    made = time.monotonic() - start
    out(
        f"  {DRAIN_EVENTS} likes written through main's service layer in {made:.1f} s "
        f"({DRAIN_EVENTS / made:.0f}/s, like rows + outbox rows in one transaction each)"
    )

    # The relay runs meanwhile; wait until it has published everything.
    while query(main_db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]:
        time.sleep(0.2)
    published = time.monotonic() - start
    out(
        f"  main's relay had published all of them {published - made:.1f} s after the last write "
        f"(relay rate over the whole run >= {DRAIN_EVENTS / published:.0f}/s)"
    )

    main_counts = dict(
        query(main_db, "SELECT id, likes FROM product WHERE id IN ({})".format(",".join(map(str, products))))
    )
    start = time.monotonic()
    stack.start_process("admin-consumer")
    first = None
    while True:
        applied = query(admin_db, "SELECT COUNT(*) FROM inbox")[0][0] - inbox_before
        if applied and first is None:
            first = time.monotonic()
        rows = dict(
            query(
                admin_db,
                "SELECT id, likes FROM products_product WHERE id IN ({})".format(
                    ",".join(map(str, products))
                ),
            )
        )
        if rows == main_counts:
            break
        if time.monotonic() - start > 600:
            out("  WARNING: admin did not catch up within 600 s")
            break
        time.sleep(0.05)
    done = time.monotonic()
    # admin's likes equal main's as soon as the last event of each product lands; the rest are
    # older events skipped by likes_seq. Count the events consumed by then from the inbox.
    applied = query(admin_db, "SELECT COUNT(*) FROM inbox")[0][0] - inbox_before
    span = query(
        admin_db, "SELECT MIN(received_at), MAX(received_at) FROM inbox WHERE event_type='product.liked'"
    )[0]
    out(
        f"  admin consumer: counts equal to main's {done - start:.1f} s after its start "
        f"(incl. ~process start-up), {applied} events applied by then"
    )
    if first is not None and done > first:
        out(f"  drain rate from first applied event to equal counts: {applied / (done - first):.0f} events/s")
    if span[0] and span[1] and span[1] > span[0]:
        out(
            f"  (inbox timestamps: first..last liked event applied over {(span[1] - span[0]).total_seconds():.1f} s "
            f"in total across the benchmark)"
        )
    admin.close()


def main() -> int:
    """Start the servers and services, run both benchmarks, stop everything."""
    logging.basicConfig(level=logging.WARNING)
    rabbit, mariadb, stack = RabbitNode(), MariaDB(), None
    try:
        t0 = time.monotonic()
        rabbit.start()
        mariadb.start()
        admin_db = mariadb.create_db_user("bench_admin", "bench_admin", "bench-admin-pw")
        main_db = mariadb.create_db_user("bench_main", "bench_main", "bench-main-pw")
        stack = ServiceSet(rabbit.url, admin_db, main_db)
        stack.start()
        out(
            f"servers and services up in {time.monotonic() - t0:.1f} s "
            f"(RabbitMQ {rabbit.amqp_port}, MariaDB {mariadb.port}, logs {stack.log_dir}); {os.cpu_count()} CPUs"
        )
        bench_propagation(stack, admin_db, main_db)
        bench_paced_propagation(stack, admin_db, main_db)
        bench_drain(stack, admin_db, main_db)
        out("targets: propagation p95 < 50 ms, p99 < 100 ms at 100 events/s; drain >= 2,000 events/s")
        return 0
    finally:
        if stack is not None:
            stack.cleanup()
        mariadb.cleanup()
        rabbit.cleanup()


if __name__ == "__main__":
    sys.exit(main())
