"""Drift made on purpose in each service's own database is reported by check_drift and repaired by resync."""

from __future__ import annotations

import time

from faults.support import AdminApi, Endpoints, Shop, assert_converged, query


def _check_drift(stack):
    return stack.command("admin", "check_drift", "--main-url", stack.main_url, check=False)


def test_check_drift_reports_corruption_and_the_resyncs_repair_it(stack, db_accounts):
    ep = Endpoints(
        stack.admin_url,
        stack.main_url,
        db_accounts["admin"].url,
        db_accounts["main"].url,
    )
    admin, shop = AdminApi(stack.admin_url), Shop(stack.main_url)
    # The ghost comes first: a snapshot only tombstones ids up to admin's highest live id.
    gone = admin.create("Drift ghost", "https://example.com/ghost.png")["id"]
    pids = [admin.create(f"Drift {i}", f"https://example.com/drift{i}.png")["id"] for i in range(3)]
    with shop.shopper() as s1, shop.shopper() as s2:
        deadline = time.monotonic() + 30
        while not {*pids, gone} <= {p["id"] for p in shop.products()}:
            assert time.monotonic() < deadline, "products never reached main"
            time.sleep(0.05)
        for shopper in (s1, s2):
            assert shop.like(shopper, pids[1]).status_code == 200
        assert shop.like(s1, pids[2]).status_code == 200
    admin.delete(gone)
    assert_converged(ep, expected_likes={pids[0]: 0, pids[1]: 2, pids[2]: 1}, timeout=30)
    clean = _check_drift(stack)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # Corrupt both sides behind the services' backs, each through its own database.
    query(ep.main_db, "DELETE FROM product WHERE id=%s", (pids[0],))  # a lost replica row
    query(ep.main_db, "UPDATE product SET title='tampered' WHERE id=%s", (pids[2],))  # a wrong replica field
    query(ep.main_db, "UPDATE product SET deleted=0 WHERE id=%s", (gone,))  # a resurrected product
    query(ep.admin_db, "UPDATE products_product SET likes=99 WHERE id=%s", (pids[1],))  # a wrong like count

    drift = _check_drift(stack)
    assert drift.returncode == 1, drift.stdout + drift.stderr
    report = drift.stdout + drift.stderr
    for pid in (pids[0], pids[1], pids[2], gone):
        assert str(pid) in report, f"product {pid} not named in the drift report:\n{report}"

    stack.command("admin", "resync_products")
    stack.command("main", "resync-likes")

    deadline = time.monotonic() + 60
    while (result := _check_drift(stack)).returncode != 0:
        assert time.monotonic() < deadline, f"still drifting after resync:\n{result.stdout}{result.stderr}"
        time.sleep(0.5)
    assert_converged(ep, expected_likes={pids[0]: 0, pids[1]: 2, pids[2]: 1}, timeout=30)
    assert shop.product(pids[2])["title"] == "Drift 2"
    assert shop.product(gone) is None
