"""A relay dies mid-batch (published, not yet marked): it re-publishes, and consumers drop the copies."""

from __future__ import annotations

import contextlib
import json
import time

from faults.support import (
    QueueWatch,
    assert_converged,
    assert_no_event_lost,
    like_crowd,
    new_products,
    peek_message_ids,
    query,
    wait_visible_in_main,
)

# The core's fault hook (eventbus.relay.HOLD_MARK_ENV): the relay holds each confirmed batch this
# long before marking its rows sent. The kill comes as soon as the messages reach the queue, well
# within the hold; the hold only bounds how long a relay that was not killed would wait.
HOLD_MARK_ENV = "EVENTBUS_FAULT_HOLD_MARK_SECONDS"
HOLD_MARK_SECONDS = "5"


def _pending(db_url: str) -> int:
    return query(db_url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]


def _kill_mid_batch(fs, relay: str, db_url: str, queue: str, rounds: int) -> set[str]:
    """Start the relay and SIGKILL it as soon as its messages reach the queue; return the caught event ids.

    The relay runs with the core's fault hook holding each confirmed batch before it marks the rows
    sent (HOLD_MARK_SECONDS), so the kill lands between publish and mark every time, however fast
    the relay is. The downstream consumer is stopped, so a message in the queue proves the relay
    published it; an event both in the queue and in a row still unmarked after the kill was caught
    between publish and mark: the relay must publish it again, and the consumer's inbox must drop
    the copy. The relay is started at the end without the hook.
    """
    caught: set[str] = set()
    proc = fs.services.procs[relay]
    env = proc.env
    proc.env = {**env, HOLD_MARK_ENV: HOLD_MARK_SECONDS}
    try:
        with QueueWatch(fs.amqp_url) as watch:
            for _ in range(rounds):
                pending, queued = _pending(db_url), watch.depth(queue)
                if pending == 0:
                    break
                fs.services.start_process(relay)
                deadline = time.monotonic() + 60
                while watch.depth(queue) == queued:
                    assert proc.running, proc.log_tail()
                    assert time.monotonic() < deadline, f"{relay} published nothing in 60 s"
                    time.sleep(0.002)
                fs.services.kill9_process(relay)
                queued_ids = set(peek_message_ids(fs.amqp_url, queue, limit=10_000))
                unmarked = {
                    row[0] for row in query(db_url, "SELECT event_id FROM outbox WHERE published_at IS NULL")
                }
                caught |= queued_ids & unmarked
                print(
                    f"{relay} killed: {len(queued_ids)} queued, {len(unmarked)} unmarked, "
                    f"{len(queued_ids & unmarked)} both"
                )
    finally:
        proc.env = env
    fs.services.start_process(relay)
    return caught


def _dropped_duplicates(fs, consumer: str, since: int) -> set[str]:
    """Return the ids the consumer logged as dropped duplicates since the log offset `since`."""
    dropped = set()
    with fs.services.procs[consumer].log_path.open("rb") as log:
        log.seek(since)
        for line in log:
            if b'"duplicate event ' in line:
                with contextlib.suppress(ValueError):
                    dropped.add(json.loads(line)["event_id"])
    return dropped


def test_main_relay_killed_mid_batch_republishes_and_admin_counts_each_like_once(fs):
    ids = new_products(fs.admin, 3, "relay-crash")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("main-relay")
    fs.services.stop_process("admin-consumer")

    result = like_crowd(fs.shop, ids, shoppers=400, workers=12)
    assert result.statuses == {200: 400}, result.statuses
    assert _pending(fs.ep.main_db) >= 400

    caught = _kill_mid_batch(fs, "main-relay", fs.ep.main_db, "admin", rounds=3)
    assert caught, "no kill landed between publish and mark: the re-publish was not tested"

    since = fs.services.procs["admin-consumer"].log_path.stat().st_size
    fs.services.start_process("admin-consumer")
    assert_converged(fs.ep, expected_likes=dict(result.accepted), services=fs.services)
    assert_no_event_lost(fs.ep)
    # Per event: the copies the relay published again were dropped by admin's inbox.
    assert caught <= _dropped_duplicates(fs, "admin-consumer", since), "a re-published event was not dropped"


def test_admin_relay_killed_mid_batch_main_ends_with_the_latest_version(fs):
    ids = new_products(fs.admin, 2, "relay-crash-admin")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("admin-relay")
    fs.services.stop_process("main-consumer")
    for i in range(40):
        fs.admin.update(ids[i % 2], title=f"r{i}")

    caught = _kill_mid_batch(fs, "admin-relay", fs.ep.admin_db, "main", rounds=3)
    assert caught, "no kill landed between publish and mark: the re-publish was not tested"

    since = fs.services.procs["main-consumer"].log_path.stat().st_size
    fs.services.start_process("main-consumer")
    assert_converged(fs.ep, services=fs.services)
    assert_no_event_lost(fs.ep)
    assert caught <= _dropped_duplicates(fs, "main-consumer", since), "a re-published event was not dropped"
    titles = {p["id"]: p["title"] for p in fs.shop.products()}
    assert (titles[ids[0]], titles[ids[1]]) == ("r38", "r39")
