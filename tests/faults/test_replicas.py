"""Competing replicas: two consumers on each queue and two relays per service, at the same time.

Many shoppers like and unlike the same few products while two admins edit those same products;
every process has a twin competing for the same outbox rows (`SELECT … FOR UPDATE SKIP LOCKED`)
and the same queue. The version rules (a product event applies only when newer; a like count only
with a higher sequence number) must make the replicas converge exactly, whichever twin handles
which event in which order. Evidence per event: every outbox row is in the other side's inbox,
both twins did part of the work (their own metrics), and the replicas hold the newest version and
like sequence of each product.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from faults.support import (
    AdminApi,
    Endpoints,
    Shop,
    assert_converged,
    assert_no_event_lost,
    metric_sum,
    query,
    wait_visible_in_main,
)
from harness.servers import MariaDB, RabbitNode
from harness.services import PROCESS_NAMES, ServiceSet

VHOST = "replicas"
TWINS = ("admin-consumer.2", "admin-relay.2", "main-consumer.2", "main-relay.2")
LOAD_SECONDS = 15


@pytest.fixture(scope="module")
def replicas(
    rabbit: RabbitNode, mariadb: MariaDB, tmp_path_factory
) -> Iterator[tuple[ServiceSet, Endpoints]]:
    """Start admin and main with a twin of every consumer and relay, on their own vhost and databases."""
    for args in (("add_vhost", VHOST), ("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")):
        res = rabbit.ctl(*args)
        assert res.returncode == 0 or "already exists" in res.stdout + res.stderr, res.stderr
    admin_db = mariadb.create_db_user("replicas_admin_db", "replicas_admin", "replicas-admin-pw")
    main_db = mariadb.create_db_user("replicas_main_db", "replicas_main", "replicas-main-pw")
    services = ServiceSet(
        f"amqp://guest:guest@127.0.0.1:{rabbit.amqp_port}/{VHOST}",  # pragma: allowlist secret
        admin_db,
        main_db,
        log_dir=tmp_path_factory.mktemp("replica-logs"),
        processes=(*(n for n in PROCESS_NAMES if n != "drift-check"), *TWINS),
    )
    try:
        services.start()
        yield services, Endpoints(services.admin_url, services.main_url, admin_db, main_db)
    finally:
        services.cleanup()


def test_two_consumers_and_two_relays_per_service_converge_exactly(
    replicas: tuple[ServiceSet, Endpoints],
) -> None:
    services, ep = replicas
    admin, shop = AdminApi(ep.admin_url), Shop(ep.main_url)
    products = [admin.create(f"Contended {i}")["id"] for i in range(4)]
    wait_visible_in_main(shop, products)

    stop = threading.Event()
    # Each shopper belongs to one thread, so its own likes and unlikes are sequential and its final
    # state per product is known; the products are shared by every thread.
    final: dict[tuple[int, int], bool] = {}
    statuses: Counter = Counter()
    lock = threading.Lock()

    def shopper_loop(worker: int) -> None:
        rng = random.Random(worker)
        sessions = [shop.shopper() for _ in range(6)]
        while not stop.is_set():
            s = rng.randrange(len(sessions))
            pid = rng.choice(products)
            key = (worker * 100 + s, pid)
            liked = final.get(key, False)
            try:
                resp = (shop.unlike if liked else shop.like)(sessions[s], pid)
            except requests.RequestException as exc:
                with lock:
                    statuses[type(exc).__name__] += 1
                continue
            with lock:
                statuses[resp.status_code] += 1
                if resp.status_code == 200:
                    final[key] = not liked
        for session in sessions:
            session.close()

    edits: Counter = Counter()

    def editor_loop(worker: int) -> None:
        editor = AdminApi(ep.admin_url)
        n = 0
        while not stop.is_set():
            pid = products[n % len(products)]
            editor.update(pid, title=f"Contended {pid} by {worker} #{n}")
            with lock:
                edits[worker] += 1
            n += 1
        editor.close()

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(shopper_loop, w) for w in range(10)] + [
            pool.submit(editor_loop, w) for w in range(2)
        ]
        time.sleep(LOAD_SECONDS / 2)
        # The web wakes one relay address: the relay listening there claims each of admin's edits
        # within milliseconds, and its twin, polling every second, is a hot standby that rarely
        # finds a row (main's likes come fast enough for both). Stopping the listener for a while
        # makes the standby take over under load, as it would when that relay dies.
        services.stop_process("admin-relay")
        time.sleep(3)
        services.start_process("admin-relay")
        time.sleep(LOAD_SECONDS / 2)
        stop.set()
        for future in futures:
            future.result()

    # Both twins of every role did part of the work (read now: the burst below restarts relays).
    work = {
        name: metric_sum(
            services.metrics_url(name),
            "events_published_total" if "relay" in name else "events_consumed_total",
        )
        for name in ("admin-relay", "admin-relay.2", "main-relay", "main-relay.2")
        + ("admin-consumer", "admin-consumer.2", "main-consumer", "main-consumer.2")
    }
    duplicates = {
        name: metric_sum(services.metrics_url(name), "events_duplicates_total")
        for name in ("admin-consumer", "admin-consumer.2", "main-consumer", "main-consumer.2")
    }
    # A burst: with admin's relays stopped, many versions of the same two products pile up in the
    # outbox, then go out back to back, so the two main consumers get neighbouring versions of one
    # product at once and may commit them in either order: only the version rule keeps the newest.
    for name in ("admin-relay", "admin-relay.2"):
        services.stop_process(name)
    for n in range(60):
        # Two versions of a product in a row: round robin hands neighbours to different consumers.
        pid = products[(n // 2) % 2]
        admin.update(pid, title=f"Contended {pid} burst #{n}")
    backlog = query(ep.admin_db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]
    assert backlog >= 60, f"the burst should wait in the outbox: {backlog}"
    for name in ("admin-relay", "admin-relay.2"):
        services.start_process(name)

    expected = Counter(pid for (_, pid), liked in final.items() if liked)
    print(f"replicas: requests {dict(statuses)}, edits {dict(edits)}, expected likes {dict(expected)}")
    assert statuses[200] > 300 and sum(edits.values()) > 40, (statuses, edits)
    assert set(statuses) == {200}, f"every like/unlike of a known product answers 200: {statuses}"

    took = assert_converged(ep, expected_likes={pid: expected[pid] for pid in products}, services=services)
    assert_no_event_lost(ep)
    print(f"replicas: converged {took:.1f} s after the load")

    # Each replica holds the newest version and like sequence, whichever twin applied what.
    admin_rows = dict(
        (r[0], r[1:])
        for r in query(
            ep.admin_db, "SELECT id, version, likes_seq FROM products_product WHERE id IN %s", [products]
        )
    )
    main_rows = dict(
        (r[0], r[1:])
        for r in query(ep.main_db, "SELECT id, version, likes_seq FROM product WHERE id IN %s", [products])
    )
    assert admin_rows == main_rows, f"version / likes_seq: admin {admin_rows} main {main_rows}"

    print(f"replicas: events per process {work}, duplicates dropped {duplicates}")
    idle = [name for name, count in work.items() if count == 0]
    assert not idle, f"a twin did no work, so nothing competed: {idle} ({work})"
