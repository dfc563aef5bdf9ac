"""Consumers crash between commit and ack, and duplicates arrive: the inbox keeps every effect single."""

from __future__ import annotations

import contextlib
import json
import time

from faults.support import (
    assert_converged,
    assert_no_event_lost,
    envelope_of,
    like_crowd,
    metric_sum,
    new_products,
    publish_raw,
    query,
    queue_depth,
    wait_visible_in_main,
)


def _wait_outbox_drained(db_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while query(db_url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]:
        assert time.monotonic() < deadline, "outbox not drained by the relay"
        time.sleep(0.1)


def _unapplied(src_db: str, dst_db: str) -> int:
    """Return how many events the source published that the destination has not applied yet."""
    sent = query(src_db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL")[0][0]
    return sent - query(dst_db, "SELECT COUNT(*) FROM inbox")[0][0]


HOLD_ACK_SECONDS = "0.3"


def _dropped_duplicates(log_text: str) -> set[str]:
    """Return the ids of the events the consumer logged as dropped duplicates."""
    ids = set()
    for line in log_text.splitlines():
        if '"duplicate event ' in line:
            with contextlib.suppress(ValueError):
                ids.add(json.loads(line)["event_id"])
    return ids


def _crash_repeatedly_while_draining(
    fs, process: str, src_db: str, dst_db: str, kills: int
) -> tuple[int, set]:
    """Start `process` and SIGKILL it each time it has just committed a batch, while work remains.

    The consumer runs with its acknowledgements held 0.3 s after each commit (the core's fault
    hook), and the kill comes as soon as the inbox grows: it lands after a commit and before the
    ack, so the broker redelivers events that are already applied. Returns the number of kills
    that hit a process with work left, and the ids the inbox then dropped as duplicates.
    """
    services = fs.services
    proc = services.procs[process]
    env, log_start = proc.env, proc.log_path.stat().st_size
    proc.env = {**env, "EVENTBUS_FAULT_HOLD_ACK_SECONDS": HOLD_ACK_SECONDS}
    in_inbox_at_kills: set[str] = set()
    made = 0
    try:
        for _ in range(kills):
            seen = query(dst_db, "SELECT COUNT(*) FROM inbox")[0][0]
            services.start_process(process)
            deadline = time.monotonic() + 60
            while query(dst_db, "SELECT COUNT(*) FROM inbox")[0][0] <= seen:
                assert proc.running, proc.log_tail()
                assert time.monotonic() < deadline, f"{process} applied nothing in 60 s"
                time.sleep(0.005)
            services.kill9_process(process)
            in_inbox_at_kills |= {row[0] for row in query(dst_db, "SELECT message_id FROM inbox")}
            if _unapplied(src_db, dst_db) <= 0:
                break  # it had finished: this kill hit an idle consumer
            made += 1
    finally:
        proc.env = env
    services.start_process(process)
    deadline = time.monotonic() + 60
    while _unapplied(src_db, dst_db) > 0:
        assert time.monotonic() < deadline, f"{process} did not drain after the kills"
        time.sleep(0.1)
    with proc.log_path.open("rb") as log:
        log.seek(log_start)
        dropped = _dropped_duplicates(log.read().decode("utf-8", "replace"))
    # Per event: every copy the inbox dropped was of an event applied before a kill.
    assert dropped <= in_inbox_at_kills, dropped - in_inbox_at_kills
    return made, dropped


def test_admin_consumer_killed_repeatedly_while_draining_counts_every_like_once(fs):
    ids = new_products(fs.admin, 3, "consumer-crash")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("admin-consumer")

    # Admin's consumer applies up to 500 events per transaction: the backlog must span several
    # batches for a kill to land while work remains.
    result = like_crowd(fs.shop, ids, shoppers=1500, workers=12)
    assert result.statuses == {200: 1500}, result.statuses
    _wait_outbox_drained(fs.ep.main_db)
    assert queue_depth(fs.amqp_url, "admin") >= 1500

    kills, dropped = _crash_repeatedly_while_draining(
        fs, "admin-consumer", fs.ep.main_db, fs.ep.admin_db, kills=3
    )
    assert kills >= 1, "the backlog drained before any crash: nothing was tested"
    assert dropped, "no kill landed between a commit and its ack: the inbox was not tested"

    assert_converged(fs.ep, expected_likes=dict(result.accepted), services=fs.services)
    assert_no_event_lost(fs.ep)


def test_main_consumer_killed_repeatedly_while_draining_applies_the_latest_version(fs):
    ids = new_products(fs.admin, 2, "consumer-crash-main")
    wait_visible_in_main(fs.shop, ids)
    fs.services.stop_process("main-consumer")
    for i in range(300):  # three batches of 100 at least
        fs.admin.update(ids[i % 2], title=f"v{i}")
    doomed = new_products(fs.admin, 1, "doomed")[0]
    fs.admin.delete(doomed)
    _wait_outbox_drained(fs.ep.admin_db)

    kills, dropped = _crash_repeatedly_while_draining(
        fs, "main-consumer", fs.ep.admin_db, fs.ep.main_db, kills=2
    )
    assert kills >= 1, "the backlog drained before any crash: nothing was tested"
    assert dropped, "no kill landed between a commit and its ack: the inbox was not tested"

    assert_converged(fs.ep, services=fs.services)
    assert_no_event_lost(fs.ep)
    titles = {p["id"]: p["title"] for p in fs.shop.products()}
    assert (titles[ids[0]], titles[ids[1]]) == ("v298", "v299")
    assert doomed not in titles


def _wait_metric(url: str, name: str, labels: dict, minimum: float, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = metric_sum(url, name, labels)
        if value >= minimum:
            return value
        assert time.monotonic() < deadline, f"{name}{labels} stayed at {value} < {minimum} at {url}"
        time.sleep(0.2)


def test_a_duplicate_like_event_is_dropped_by_admin(fs):
    (pid,) = new_products(fs.admin, 1, "duplicate-like")
    wait_visible_in_main(fs.shop, [pid])
    with fs.shop.shopper() as shopper:
        assert fs.shop.like(shopper, pid).status_code == 200
        assert fs.shop.like(fs.shop.shopper(), pid).status_code == 200
        assert fs.shop.unlike(shopper, pid).status_code == 200
    assert_converged(fs.ep, expected_likes={pid: 1})

    # Re-deliver main's first event (likes=1, seq=1) and its second (likes=2, seq=2) with their real ids.
    rows = query(
        fs.ep.main_db,
        "SELECT event_id FROM outbox WHERE event_type='product.liked' AND payload LIKE %s ORDER BY id",
        (f'%"product_id":{pid},%',),
    )
    assert len(rows) == 2, rows
    metrics = fs.services.metrics_url("admin-consumer")
    before = metric_sum(metrics, "events_duplicates_total", {"type": "product.liked"})
    for (event_id,) in rows:
        env, headers = envelope_of(fs.ep.main_db, event_id)
        publish_raw(
            fs.amqp_url,
            "main.events",
            env["type"],
            json.dumps(env).encode(),
            message_id=event_id,
            event_type=env["type"],
            app_id="main",
            headers=headers,
        )

    _wait_metric(metrics, "events_duplicates_total", {"type": "product.liked"}, before + 2)
    assert_converged(fs.ep, expected_likes={pid: 1})
    assert (
        query(
            fs.ep.admin_db,
            "SELECT COUNT(*) FROM inbox WHERE message_id IN (%s, %s)",
            (rows[0][0], rows[1][0]),
        )[0][0]
        == 2
    )


def test_a_duplicate_product_event_is_dropped_by_main(fs):
    (pid,) = new_products(fs.admin, 1, "duplicate-product")
    fs.admin.update(pid, title="renamed once")
    wait_visible_in_main(fs.shop, [pid])
    assert_converged(fs.ep)
    (event_id,) = query(
        fs.ep.admin_db,
        "SELECT event_id FROM outbox WHERE event_type='product.created' AND payload LIKE %s",
        (f'%"id":{pid},%',),
    )[0]
    metrics = fs.services.metrics_url("main-consumer")
    before = metric_sum(metrics, "events_duplicates_total", {"type": "product.created"})
    env, headers = envelope_of(fs.ep.admin_db, event_id)
    publish_raw(
        fs.amqp_url,
        "admin.events",
        env["type"],
        json.dumps(env).encode(),
        message_id=event_id,
        event_type=env["type"],
        app_id="admin",
        headers=headers,
    )

    _wait_metric(metrics, "events_duplicates_total", {"type": "product.created"}, before + 1)
    assert_converged(fs.ep)
    assert fs.shop.product(pid)["title"] == "renamed once"
