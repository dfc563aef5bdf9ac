"""The broker crashes or goes away: main keeps accepting likes and everything arrives once, exactly."""

from __future__ import annotations

import signal
import time

import requests

from faults.support import (
    Background,
    assert_converged,
    assert_no_event_lost,
    hold_back,
    like_crowd,
    new_products,
    wait_visible_in_main,
)


def _admin_likes(fs, ids) -> int:
    rows = {p["id"]: p["likes"] for p in fs.admin.products()}
    return sum(rows.get(pid, 0) for pid in ids)


def test_broker_killed_mid_stream_loses_and_doubles_nothing(fs):
    ids = new_products(fs.admin, 4, "broker-crash")
    wait_visible_in_main(fs.shop, ids)

    crowd = Background(like_crowd, fs.shop, ids, shoppers=300, workers=8)
    # Admin keeps editing while the broker dies: product events are in flight in the other direction too.
    edits = Background(lambda: [fs.admin.update(ids[i % 4], title=f"edited {i}") for i in range(20)])

    deadline = time.monotonic() + 60
    while _admin_likes(fs, ids) < 40:  # the pipeline is flowing end to end: now crash the broker
        assert time.monotonic() < deadline, "likes never started reaching admin"
        time.sleep(0.05)
    # admin's consumer frozen for a moment: likes pile up in its queue and its hands.
    in_flight = hold_back(fs.services, "admin-consumer", fs.ep)
    fs.rabbit.kill9()
    fs.services.procs["admin-consumer"].signal_group(signal.SIGCONT)  # it meets the outage holding them
    fs.rabbit.start()
    assert in_flight > 0, "the broker died with nothing in flight: nothing was tested"
    print(f"broker killed with {in_flight} events in flight")

    result = crowd.join()
    edits.join()
    # main writes the like and its outbox row in one transaction: the broker is not on the request path.
    assert result.statuses == {200: 300}, result.statuses
    assert_converged(fs.ep, expected_likes=dict(result.accepted), services=fs.services)
    assert_no_event_lost(fs.ep)
    assert {p["id"]: p["title"] for p in fs.shop.products() if p["id"] in ids} == {
        ids[i]: f"edited {16 + i}" for i in range(4)
    }


def test_broker_down_for_30s_while_likes_are_accepted(fs):
    ids = new_products(fs.admin, 3, "broker-down")
    wait_visible_in_main(fs.shop, ids)
    fs.rabbit.stop()

    accepted: dict[int, int] = {}
    statuses: dict = {}
    outage_end = time.monotonic() + 30
    readiness = None
    while time.monotonic() < outage_end:
        batch = like_crowd(fs.shop, ids, shoppers=30, workers=4)
        for pid, n in batch.accepted.items():
            accepted[pid] = accepted.get(pid, 0) + n
        for status, n in batch.statuses.items():
            statuses[status] = statuses.get(status, 0) + n
        if readiness is None:
            readiness = requests.get(f"{fs.ep.main_url}/flask/api/ready", timeout=10)
    assert set(statuses) == {200}, f"main refused likes while the broker was down: {statuses}"
    assert sum(accepted.values()) >= 90, f"too few likes made during the outage: {statuses}"
    # The readiness probe tells the operator the broker is gone, while the shop stays up.
    assert readiness.status_code == 503, readiness.text
    assert readiness.json()["checks"]["broker"]["ok"] is False, readiness.text

    fs.rabbit.start()
    assert_converged(fs.ep, expected_likes=accepted, timeout=90, services=fs.services)
    assert_no_event_lost(fs.ep)
