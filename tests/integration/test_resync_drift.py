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


def _wait_consumed(src_db: str, dst_db: str, event_type: str, timeout: float = 60) -> int:
    """Wait until the destination's inbox holds every event of this type the source enqueued; return how many."""
    ids = {row[0] for row in query(src_db, "SELECT event_id FROM outbox WHERE event_type=%s", (event_type,))}
    deadline = time.monotonic() + timeout
    while True:
        seen = {
            row[0] for row in query(dst_db, "SELECT message_id FROM inbox WHERE event_type=%s", (event_type,))
        }
        if ids <= seen:
            return len(ids)
        assert time.monotonic() < deadline, f"{len(ids - seen)} {event_type} events never consumed"
        time.sleep(0.1)


def test_after_a_restore_only_a_forced_resync_repairs_a_replica_ahead_of_its_source(stack, db_accounts):
    ep = Endpoints(stack.admin_url, stack.main_url, db_accounts["admin"].url, db_accounts["main"].url)
    admin, shop = AdminApi(stack.admin_url), Shop(stack.main_url)
    pid = admin.create("Restored", "https://example.com/restored.png")["id"]
    admin.update(pid, title="Restored v2")
    admin.update(pid, title="Restored v3")
    deadline = time.monotonic() + 30
    while (shop.product(pid) or {}).get("title") != "Restored v3":
        assert time.monotonic() < deadline, "the product never reached main"
        time.sleep(0.05)
    with shop.shopper() as s1, shop.shopper() as s2:
        assert shop.like(s1, pid).status_code == 200
        assert shop.like(s2, pid).status_code == 200
    assert_converged(ep, expected_likes={pid: 2}, timeout=30)

    # Each database restored from an older backup: main's like counter and admin's product version
    # went back, so each replica is now ahead of its source and refuses what the source sends.
    query(ep.main_db, "UPDATE product SET likes=1, likes_seq=1 WHERE id=%s", (pid,))
    query(ep.main_db, "DELETE FROM product_like WHERE product_id=%s LIMIT 1", (pid,))
    query(ep.admin_db, "UPDATE products_product SET version=1, title='Restored' WHERE id=%s", (pid,))
    assert _check_drift(stack).returncode == 1

    # The ordinary resyncs are consumed, and change nothing: the version and seq rules refuse them.
    stack.command("admin", "resync_products")
    stack.command("main", "resync-likes")
    _wait_consumed(ep.admin_db, ep.main_db, "product.updated")
    _wait_consumed(ep.main_db, ep.admin_db, "product.likes_counted")
    still = _check_drift(stack)
    assert still.returncode == 1, still.stdout
    assert f"product {pid}: likes_seq admin=2 main=1" in still.stdout
    assert f"product {pid}: version admin=1 main=3" in still.stdout

    # Forced, the source's state wins.
    stack.command("admin", "resync_products", "--force")
    stack.command("main", "resync-likes", "--force")
    deadline = time.monotonic() + 60
    while (result := _check_drift(stack)).returncode != 0:
        assert time.monotonic() < deadline, f"still drifting after the forced resync:\n{result.stdout}"
        time.sleep(0.5)
    assert query(ep.admin_db, "SELECT likes, likes_seq FROM products_product WHERE id=%s", (pid,)) == [(1, 1)]
    assert shop.product(pid)["title"] == "Restored"

    # And the ordinary flow goes on from the restored positions.
    admin.update(pid, title="After the restore")
    with shop.shopper() as s3:
        assert shop.like(s3, pid).status_code == 200
    assert_converged(ep, expected_likes={pid: 2}, timeout=30)
    assert shop.product(pid)["title"] == "After the restore"
