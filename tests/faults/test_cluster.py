"""A three-node RabbitMQ cluster loses a node under load: the workers fail over, nothing is lost or doubled.

Both services run with RABBITMQ_URL naming the three nodes. Every relay and consumer is first
brought onto the node that will die, so that each of them has to fail over. While an admin creates
and edits products and shoppers like them through the HTTP APIs, that node is killed (kill -9)
with both consumers frozen for a moment, so that unacknowledged deliveries are in the queues when
it dies; the load goes on for OUTAGE_SECONDS, then the node comes back. First the node that leads
the quorum queue `main` (and `admin`, when it leads both): new leaders must be elected; then a node
that leads neither (a follower).

Afterwards: every accepted like is counted exactly once on both sides, every accepted edit is the
title on both sides, every event either side published is in the other's inbox, nothing was
dead-lettered. And no worker waited for the dead node: the longest silence of each relay (the
outbox's published_at) and each consumer (the inbox's received_at) around the kill is shorter than
the node's downtime; the figures are printed. About one run in five, RabbitMQ 3.10 nacks every
publish on a channel opened while the queue's new leader was being elected, until the dead node is
back: the relay then reconnects at once (README: How an event travels), and the nacks it met are
printed as `relay_log_lines_of_nacks`. Without that reconnect those runs were silent 11-13 s.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from faults.support import (
    AdminApi,
    Background,
    Endpoints,
    StackClients,
    assert_converged,
    assert_no_event_lost,
    hold_back,
    like_crowd,
    new_products,
    query,
    wait_visible_in_main,
)
from harness.servers import MariaDB, RabbitCluster, RabbitNode
from harness.services import ServiceSet

QUEUES = ("main", "admin")
WORKERS = ("admin-relay", "main-relay", "admin-consumer", "main-consumer")
OUTAGE_SECONDS = 10  # the load goes on this long with the node dead
RESUMED_WITHIN_SECONDS = 30  # generous: the figures printed are the real ones
STREAMS = {  # what each worker leaves behind, with a microsecond timestamp
    "admin-relay": ("admin", "SELECT published_at FROM outbox WHERE published_at >= %s"),
    "main-relay": ("main", "SELECT published_at FROM outbox WHERE published_at >= %s"),
    "admin-consumer": ("admin", "SELECT received_at FROM inbox WHERE received_at >= %s"),
    "main-consumer": ("main", "SELECT received_at FROM inbox WHERE received_at >= %s"),
}


@dataclass
class ClusterStack(StackClients):
    """admin and main on a three-node cluster, with their own databases on the session MariaDB."""

    cluster: RabbitCluster
    services: ServiceSet
    ep: Endpoints


@pytest.fixture(scope="module")
def cs(mariadb: MariaDB, tmp_path_factory) -> Iterator[ClusterStack]:
    """Start a three-node cluster and admin+main with RABBITMQ_URL naming every node."""
    cluster = RabbitCluster(3)
    services = None
    try:
        cluster.start()
        admin_db = mariadb.create_db_user("cluster_admin_db", "cluster_admin", "cluster-admin-pw")
        main_db = mariadb.create_db_user("cluster_main_db", "cluster_main", "cluster-main-pw")
        services = ServiceSet(
            cluster.urls, admin_db, main_db, log_dir=tmp_path_factory.mktemp("cluster-stack-logs")
        )
        services.start()
        yield ClusterStack(
            cluster, services, Endpoints(services.admin_url, services.main_url, admin_db, main_db)
        )
    finally:
        if services is not None:
            services.cleanup()
        cluster.cleanup()


@dataclass
class Edits:
    """An admin creating and editing products through the API; the last accepted title of each."""

    api: AdminApi
    titles: dict[int, str]
    stop: threading.Event
    answers: Counter = field(default_factory=Counter)

    def run(self) -> None:
        rng = random.Random()
        for i in itertools.count():
            if self.stop.is_set():
                return
            if i % 5 == 0:
                title = f"cluster new {rng.randrange(10**9)}"
                created = self.api.create(title, "https://example.com/c.png")  # asserts 201
                self.titles[created["id"]] = title
                self.answers[201] += 1
            else:
                pid = rng.choice(list(self.titles))
                title = f"cluster {pid} edit {i}"
                self.api.update(pid, title=title)  # asserts 202
                self.titles[pid] = title
                self.answers[202] += 1
            time.sleep(0.05)


def _logged_at(line: bytes) -> dt.datetime:
    """Return when a service logged this JSON line (naive UTC; the distant past for other lines)."""
    try:
        stamp = json.loads(line)["timestamp"]
        return dt.datetime.fromisoformat(stamp).astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, KeyError, TypeError):
        return dt.datetime.min


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # the services store naive UTC


def _stamps(cs: ClusterStack, stream: str, since: dt.datetime) -> list[dt.datetime]:
    side, sql = STREAMS[stream]
    url = cs.ep.admin_db if side == "admin" else cs.ep.main_db
    return sorted(row[0] for row in query(url, sql, (since,)))


def _longest_silence(stamps: list[dt.datetime], start: dt.datetime, end: dt.datetime) -> tuple[float, float]:
    """Return the longest time without a stamp in [start, end]: (seconds, its start after `start`)."""
    points = [start, *(t for t in stamps if start < t < end), end]
    gap, at = max(
        ((b - a).total_seconds(), (a - start).total_seconds()) for a, b in itertools.pairwise(points)
    )
    return gap, at


def _admin_likes(cs: ClusterStack, ids: list[int]) -> int:
    rows = {p["id"]: p["likes"] for p in cs.admin.products()}
    return sum(rows.get(pid, 0) for pid in ids)


def _wait_replicated(cs: ClusterStack, timeout: float = 90) -> dict[str, dict]:
    """Wait until each queue has every node as an online member; return the queues."""
    everyone = sorted(node.nodename for node in cs.cluster.nodes)
    deadline = time.monotonic() + timeout
    while True:
        queues = cs.cluster.queues()
        short = {
            name: (queues.get(name, {}).get("members"), queues.get(name, {}).get("online"))
            for name in (*QUEUES, "main.dlq", "admin.dlq")
            if sorted(queues.get(name, {}).get("online") or []) != everyone
            or sorted(queues.get(name, {}).get("members") or []) != everyone
        }
        if not short:
            return queues
        assert time.monotonic() < deadline, f"queues not on every node ({everyone}): {short}"
        time.sleep(1)


def _steer(cs: ClusterStack, victim: RabbitNode, timeout: float = 60) -> None:
    """Bring every relay's and consumer's connection onto victim, so that each of them has to fail over.

    A worker whose connection is closed reconnects starting one address further on
    (eventbus.connection.Brokers): closed at most twice, it lands on any given node of three.
    """
    deadline = time.monotonic() + timeout
    while True:
        ours = [c for c in cs.cluster.connections() if c["client"] in WORKERS]
        elsewhere = [c for c in ours if c["node"] != victim.nodename]
        if not elsewhere and {c["client"] for c in ours} == set(WORKERS):
            return
        assert time.monotonic() < deadline, f"workers not on {victim.nodename}: {ours}"
        for connection in elsewhere:
            cs.cluster.close_connection(connection["pid"], "moved by the test")
        time.sleep(1)


def _kill_under_load(cs: ClusterStack, label: str, pick_victim) -> None:
    cluster, services = cs.cluster, cs.services
    queues = _wait_replicated(cs)
    for name in QUEUES:
        assert queues[name]["type"] == "quorum", queues[name]
    leaders = {name: queues[name]["leader"] for name in QUEUES}
    victim: RabbitNode = pick_victim(leaders)

    ids = new_products(cs.admin, 6, f"cluster-{label}")
    wait_visible_in_main(cs.shop, ids)
    _steer(cs, victim)
    offsets = {n: services.procs[n].log_path.stat().st_size for n in WORKERS}
    load_start = _now()
    stop = threading.Event()
    edits = Edits(AdminApi(cs.ep.admin_url), {pid: "" for pid in ids}, stop)
    edits_thread = Background(edits.run)
    crowd = Background(like_crowd, cs.shop, ids, shoppers=5000, workers=3, stop=stop, pace=0.01)
    try:
        deadline = time.monotonic() + 60
        while _admin_likes(cs, ids) < 30:  # flowing end to end: now the fault
            assert time.monotonic() < deadline, "likes never started reaching admin"
            time.sleep(0.05)

        # Both consumers frozen for a moment: deliveries wait unacknowledged in their hands.
        services.procs["main-consumer"].signal_group(signal.SIGSTOP)
        try:
            in_flight = hold_back(services, "admin-consumer", cs.ep, at_least=30)
            killed_at = _now()
            victim.kill9()
        finally:
            for name in ("main-consumer", "admin-consumer"):
                services.procs[name].signal_group(signal.SIGCONT)
        assert in_flight > 0, "the node died with nothing in flight: nothing was tested"

        # The load goes on without the node; meanwhile the survivors elect new leaders.
        while True:
            survivors = {name: row.get("leader") for name, row in cluster.queues().items()}
            if all(survivors.get(name) not in ("", None, victim.nodename) for name in QUEUES):
                break
            assert (_now() - killed_at).total_seconds() < OUTAGE_SECONDS, f"no new leaders: {survivors}"
            time.sleep(0.2)
        led_after = {name: survivors[name] for name in QUEUES}
        elected = (_now() - killed_at).total_seconds()
        time.sleep(max(0.0, OUTAGE_SECONDS - (_now() - killed_at).total_seconds()))
        restart_at = _now()
        victim.start()
        cluster.wait_running()
        time.sleep(2)  # the load meets the node back
    finally:
        load_end = _now()
        stop.set()
    result = crowd.join()
    edits_thread.join()

    assert set(result.statuses) == {200}, f"main refused likes: {result.statuses}"
    assert set(edits.answers) <= {201, 202}
    waited = assert_converged(cs.ep, expected_likes=dict(result.accepted), timeout=120, services=services)
    assert_no_event_lost(cs.ep)
    admin_rows = {p["id"]: p for p in cs.admin.products()}
    main_rows = {p["id"]: p for p in cs.shop.products()}
    for pid, title in edits.titles.items():
        if title:
            assert admin_rows[pid]["title"] == main_rows[pid]["title"] == title, pid
    queues = _wait_replicated(cs)
    for dlq in ("main.dlq", "admin.dlq"):
        assert queues[dlq]["messages_ready"] == 0, f"events dead-lettered in {dlq}: {queues[dlq]}"

    silences, resumed = {}, {}
    for stream in STREAMS:
        stamps = _stamps(cs, stream, load_start)
        gap, at = _longest_silence(stamps, killed_at - dt.timedelta(seconds=1), load_end)
        silences[stream] = (round(gap, 2), round(at - 1, 2))
        first = next((t for t in stamps if t > killed_at), None)
        resumed[stream] = None if first is None else round((first - killed_at).total_seconds(), 2)
    dropped, nacks = 0, {}
    for name, offset in offsets.items():
        with services.procs[name].log_path.open("rb") as log:
            log.seek(offset)
            lines = log.readlines()
        dropped += sum(1 for line in lines if b'"duplicate event ' in line)
        if name.endswith("-relay"):
            nacks[name] = sum(1 for line in lines if b"nacked" in line and _logged_at(line) >= killed_at)
    print(
        f"\ncluster {label}: killed {victim.nodename}, which every relay and consumer was connected to, "
        f"with {in_flight} events in flight; leaders "
        f"before {leaders}, as the CLI showed {elected:.1f} s after the kill: {led_after}; "
        f"down {(restart_at - killed_at).total_seconds():.1f} s\n  "
        + json.dumps(
            {
                "longest_silence_s_and_its_start_after_the_kill": silences,
                "first_success_after_the_kill_s": resumed,
                "likes_accepted": sum(result.accepted.values()),
                "admin_answers": dict(edits.answers),
                "duplicates_dropped_by_inboxes": dropped,
                "relay_log_lines_of_nacks": nacks,
                "converged_after_s": round(waited, 1),
            }
        )
    )
    down = (restart_at - killed_at).total_seconds()
    for stream in STREAMS:
        # Failover, not patience: no worker waited for the node to come back. (The first success
        # after the kill alone would not show it: a consumer may still commit what it held.)
        assert silences[stream][0] < min(down, RESUMED_WITHIN_SECONDS), (
            f"{stream} was silent for {silences[stream][0]} s with the node down {down:.1f} s: {silences}"
        )


@pytest.mark.timeout(300)
def test_the_node_leading_the_queues_dies_under_load(cs):
    def leader_of_most(leaders: dict[str, str]) -> RabbitNode:
        # The node leading both queues when there is one; else the one leading `main`.
        name, _ = Counter([leaders["main"], *leaders.values()]).most_common(1)[0]
        return cs.cluster.node(name)

    _kill_under_load(cs, "leader", leader_of_most)
    queues = cs.cluster.queues()
    assert all(queues[name]["leader"] for name in QUEUES), queues


@pytest.mark.timeout(300)
def test_a_follower_dies_under_load(cs):
    def follower(leaders: dict[str, str]) -> RabbitNode:
        # Three nodes, two queues: at least one node leads neither.
        return next(node for node in cs.cluster.nodes if node.nodename not in leaders.values())

    _kill_under_load(cs, "follower", follower)
