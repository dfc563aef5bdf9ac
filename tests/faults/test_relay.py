"""A relay dies mid-batch (published, not yet marked): it re-publishes, and consumers drop the copies."""

from __future__ import annotations

import time

from faults.support import (
    QueueWatch,
    assert_converged,
    assert_no_event_lost,
    like_crowd,
    new_products,
    query,
    wait_visible_in_main,
)


def _pending(db_url: str) -> int:
    return query(db_url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]


def _kill_mid_batch(fs, relay: str, db_url: str, queue: str, rounds: int) -> list[tuple[int, int]]:
    """Start the relay and SIGKILL it as soon as its messages reach the queue; return (queued, unmarked) per kill.

    The downstream consumer is stopped, so a message in the queue proves the relay published it; rows
    still unmarked at that moment are what it must publish again after the crash.
    """
    observed = []
    with QueueWatch(fs.amqp_url) as watch:
        for _ in range(rounds):
            pending, queued = _pending(db_url), watch.depth(queue)
            if pending == 0:
                break
            fs.services.start_process(relay)
            deadline = time.monotonic() + 60
            while watch.depth(queue) == queued:
                assert fs.services.procs[relay].running, fs.services.procs[relay].log_tail()
                assert time.monotonic() < deadline, f"{relay} published nothing in 60 s"
                time.sleep(0.002)
            fs.services.kill9_process(relay)
            observed.append((watch.depth(queue) - queued, _pending(db_url)))
    fs.services.start_process(relay)
    return observed


def test_main_relay_killed_mid_batch_republishes_and_admin_counts_each_like_once(fs):
    ids = new_products(fs.admin, 3, "relay-crash")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("main-relay")
    fs.services.stop_process("admin-consumer")

    result = like_crowd(fs.shop, ids, shoppers=400, workers=12)
    assert result.statuses == {200: 400}, result.statuses
    assert _pending(fs.ep.main_db) >= 400

    observed = _kill_mid_batch(fs, "main-relay", fs.ep.main_db, "admin", rounds=3)
    assert observed, "the relay was never killed"
    # Evidence the crash hit between publish and mark (the re-publish case), e.g. [(100, 400), ...].
    print("main-relay kills (messages queued, rows still unmarked):", observed)

    fs.services.start_process("admin-consumer")
    assert_converged(fs.ep, expected_likes=dict(result.accepted), services=fs.services)
    assert_no_event_lost(fs.ep)


def test_admin_relay_killed_mid_batch_main_ends_with_the_latest_version(fs):
    ids = new_products(fs.admin, 2, "relay-crash-admin")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("admin-relay")
    fs.services.stop_process("main-consumer")
    for i in range(40):
        fs.admin.update(ids[i % 2], title=f"r{i}")

    observed = _kill_mid_batch(fs, "admin-relay", fs.ep.admin_db, "main", rounds=3)
    assert observed, "the relay was never killed"
    print("admin-relay kills (messages queued, rows still unmarked):", observed)

    fs.services.start_process("main-consumer")
    assert_converged(fs.ep, services=fs.services)
    assert_no_event_lost(fs.ep)
    titles = {p["id"]: p["title"] for p in fs.shop.products()}
    assert (titles[ids[0]], titles[ids[1]]) == ("r38", "r39")
