"""Benchmark the dead-letter workbench on a real RabbitMQ node: how long an operator waits.

Fills a dead-letter queue with N dead letters as a consumer writes them (failure headers, three
groups), then times what the page asks for: the depth, the overview (a full scan, grouped), one
message's detail, a group's retry (publisher confirms, one ack per letter), and a group's archive
(with a record callback standing in for the audit row). Every step is bounded by the depth at its
start, so the figures grow with N; the scan stops at eventbus.workbench.SCAN_LIMIT.

    .venv/bin/python tests/load/bench_dead_letters.py            # N = 1,000 and 5,000
    BENCH_DEAD_LETTERS=200,20000 .venv/bin/python tests/load/bench_dead_letters.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "lib" / "eventbus" / "src"))

from eventbus import failures, workbench  # noqa: E402
from eventbus.topology import Topology  # noqa: E402

from dev.servers import RabbitNode  # noqa: E402

GROUPS = (ValueError("bad price"), KeyError("product 7"), TypeError("None is not a str"))


def fill(params, topo: Topology, count: int) -> None:
    """Publish count dead letters to the DLX, a third in each group, with confirms."""
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.exchange_declare(exchange=topo.source_exchange, exchange_type="topic", durable=True)
        topo.declare_consumer(ch)
        ch.confirm_delivery()
        for i in range(count):
            props = pika.BasicProperties(
                message_id=str(uuid.uuid4()), type="product.created", delivery_mode=2
            )
            props.headers = failures.failure_headers(
                props, reason="handler_error", queue=topo.queue, exc=GROUPS[i % len(GROUPS)]
            )
            ch.basic_publish(topo.dead_letter_exchange, "product.created", b'{"id": 1, "title": "x"}', props)


def timed(what: str, fn):
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    print(f"  {what:<34} {elapsed * 1000:9.1f} ms")
    return result, elapsed


def run(node: RabbitNode, count: int) -> None:
    topo = Topology(
        service=f"bench{uuid.uuid4().hex[:6]}", source_exchange="bench-src.events", binding_keys=("#",)
    )
    params = node.params()
    print(f"\n{count:,} dead letters in {topo.dead_letter_queue}")
    timed("fill (publish with confirms)", lambda: fill(params, topo, count))
    letters = workbench.DeadLetters(params, topo)
    timed("depth", letters.depth)
    overview, elapsed = timed("overview (scan, group, page)", letters.overview)
    print(
        f"  {'':<34} scanned {overview['scanned']:,} ({overview['scanned'] / elapsed:,.0f}/s), capped {overview['capped']}, {len(overview['groups'])} groups"
    )
    some = overview["results"][0]["message_id"]
    timed("show one", lambda: letters.show(some))
    groups = sorted(overview["groups"], key=lambda g: g["count"])
    result, elapsed = timed("retry a group", lambda: letters.retry(fingerprint=groups[0]["fingerprint"]))
    print(f"  {'':<34} {result['retried']:,} retried ({result['retried'] / elapsed:,.0f}/s)")
    kept = []
    removed, elapsed = timed(
        "archive a group", lambda: letters.remove(fingerprint=groups[1]["fingerprint"], record=kept.append)
    )
    print(f"  {'':<34} {len(removed):,} archived ({len(removed) / elapsed:,.0f}/s)")
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        for queue in (topo.queue, topo.dead_letter_queue):
            ch.queue_delete(queue)


def main() -> int:
    sizes = [int(n) for n in os.environ.get("BENCH_DEAD_LETTERS", "1000,5000").split(",")]
    node = RabbitNode()
    node.start()
    try:
        for size in sizes:
            run(node, size)
    finally:
        node.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
