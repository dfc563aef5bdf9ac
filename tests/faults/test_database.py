"""MariaDB crashes and restarts under load: every service recovers and the two sides converge."""

from __future__ import annotations

import signal
import time

from faults.support import (
    Background,
    assert_converged,
    assert_no_event_lost,
    hold_back,
    like_crowd,
    new_products,
    query,
    wait_visible_in_main,
)


def test_mariadb_killed_and_restarted_under_load_converges(fs):
    ids = new_products(fs.admin, 3, "db-crash")
    wait_visible_in_main(fs.shop, ids)

    crowd = Background(like_crowd, fs.shop, ids, shoppers=300, workers=8)
    deadline = time.monotonic() + 60
    while (
        query(fs.ep.main_db, "SELECT COUNT(*) FROM product_like WHERE product_id IN (%s,%s,%s)", ids)[0][0]
        < 60
    ):
        assert time.monotonic() < deadline, "likes never started"
        time.sleep(0.05)
    # admin's consumer frozen for a moment: likes pile up in its queue and its hands.
    in_flight = hold_back(fs.services, "admin-consumer", fs.ep)
    fs.mariadb.kill9()
    fs.services.procs["admin-consumer"].signal_group(signal.SIGCONT)  # it meets the outage holding them
    down_at = time.monotonic()
    assert in_flight > 0, "the database died with nothing in flight: nothing was tested"
    fs.mariadb.start()
    print(f"MariaDB killed with {in_flight} events in flight, back after {time.monotonic() - down_at:.1f}s")
    result = crowd.join()

    assert result.statuses[200] >= 60, result.statuses
    # During the outage main may answer 5xx; it must never answer 200 for a like it did not keep.
    assert set(result.statuses) <= {200, 500, 503, "ConnectionError", "ReadTimeout"}, result.statuses
    assert_converged(fs.ep, timeout=90, services=fs.services)
    assert_no_event_lost(fs.ep)
    counts = {p["id"]: p["likes"] for p in fs.shop.products() if p["id"] in ids}
    attempted = {pid: len(range(i, 300, 3)) for i, pid in enumerate(ids)}
    for pid in ids:
        assert result.accepted[pid] <= counts[pid] <= attempted[pid], (pid, counts, dict(result.accepted))
    # Workers retry through the outage instead of dying.
    for name, proc in fs.services.procs.items():
        assert proc.running, f"{name} exited after the database restart:\n{proc.log_tail()}"
