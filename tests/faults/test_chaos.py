"""Chaos with a ledger: random crashes under steady traffic, then every accepted change checked per event.

For CHAOS_SECONDS (120 in `make test`; e.g. CHAOS_SECONDS=1800 for the long run) admins create,
edit and delete products and shoppers like and unlike them through the HTTP APIs, while a fault
thread kills at random a relay, a consumer or a web process (kill -9, then a restart), the broker
(kill -9, restart) or the database (kill -9, restart). Every request the services accepted goes
into a ledger; a request whose answer was lost (a crash, a 5xx) is marked unknown and settled
after the chaos by a request whose answer is kept. Then, once the pipeline is quiet, per event
and per shopper:
- every event either service published is in the other's inbox (nothing lost), and main's like
  rows equal its counts and the ledger exactly (nothing double-counted);
- admin equals main (titles, images, likes), and both equal the ledger;
- no good event is in a dead-letter queue; the drift check is clean.
It prints what it killed and when, and what the inboxes absorbed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import requests

from faults.support import (
    AdminApi,
    assert_converged,
    assert_no_event_lost,
    new_products,
    peek_message_ids,
    query,
    wait_visible_in_main,
)

CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS", "120"))
SEED = int(os.environ.get("CHAOS_SEED", "0")) or random.SystemRandom().randrange(1, 10**9)
PROCESSES = ("admin-relay", "main-relay", "admin-consumer", "main-consumer", "admin-web", "main-web")
FAULTS = (*PROCESSES, "broker", "database")
SHOPPERS = 60
SHOPPER_THREADS = 3
UNKNOWN = None


@dataclass
class Ledger:
    """What the services accepted. Likes: (shopper, product) -> True/False/UNKNOWN; titles: product -> title."""

    likes: dict[tuple[int, int], bool | None] = field(default_factory=dict)
    titles: dict[int, str | None] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    unknown_deletes: set[int] = field(default_factory=set)
    answers: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, kind: str, status) -> None:
        with self.lock:
            self.answers[f"{kind} {status}"] += 1

    def live(self) -> list[int]:
        with self.lock:
            return [pid for pid in self.titles if pid not in self.deleted and pid not in self.unknown_deletes]


def _status(call) -> int | str:
    try:
        return call().status_code
    except requests.RequestException as exc:
        return type(exc).__name__


class Shoppers(threading.Thread):
    """One thread's own shoppers (each a cookie jar), liking and unliking at random."""

    def __init__(self, base: str, ledger: Ledger, ids: range, rng: random.Random, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.ledger, self.ids, self.rng, self.stop = base, ledger, ids, rng, stop
        self.sessions = {i: requests.Session() for i in ids}

    def warm_up(self) -> None:
        """Give every shopper its signed cookie before the chaos: a lost first answer would lose the identity."""
        for session in self.sessions.values():
            session.get(f"{self.base}/flask/api/products", timeout=30).raise_for_status()
            assert session.cookies, "main set no shopper cookie"

    def act(self, shopper: int, pid: int, like: bool) -> int | str:
        session, url = self.sessions[shopper], f"{self.base}/flask/api/products/{pid}/like"
        status = _status(lambda: (session.post if like else session.delete)(url, timeout=10))
        with self.ledger.lock:
            if status == 200:
                self.ledger.likes[(shopper, pid)] = like
            elif like and status == 400:  # already_liked: an earlier answer was lost
                self.ledger.likes[(shopper, pid)] = True
            elif status == 404:
                if not like:  # not_liked (or a deleted product, which the checks leave out)
                    self.ledger.likes[(shopper, pid)] = False
                # a like of a product main does not show (deleted, or not arrived yet): refused
            else:
                self.ledger.likes[(shopper, pid)] = UNKNOWN
        return status

    def run(self) -> None:
        while not self.stop.is_set():
            live = self.ledger.live()
            if not live:
                time.sleep(0.05)
                continue
            shopper, pid = self.rng.choice(self.ids), self.rng.choice(live)
            like = not self.ledger.likes.get((shopper, pid))
            self.ledger.answer("like" if like else "unlike", self.act(shopper, pid, like))
            time.sleep(self.rng.uniform(0, 0.02))


class Admins(threading.Thread):
    """One admin creating, editing and deleting products through the API."""

    def __init__(self, api: AdminApi, ledger: Ledger, rng: random.Random, stop: threading.Event):
        super().__init__(daemon=True)
        self.api, self.ledger, self.rng, self.stop = api, ledger, rng, stop
        self.edits = 0

    def _call(self, method: str, path: str, **kw):
        return getattr(self.api.session, method)(f"{self.api.base}{path}", timeout=10, **kw)

    def step(self) -> None:
        live = self.ledger.live()
        roll = self.rng.random()
        if roll < 0.08 or len(live) < 4:
            title = f"chaos new {self.rng.randrange(10**9)}"
            try:
                resp = self._call(
                    "post", "/api/products", json={"title": title, "image": "https://e.com/c.png"}
                )
            except requests.RequestException as exc:
                self.ledger.answer("create", type(exc).__name__)
                return  # an unknown create: admin and main must still agree on it
            self.ledger.answer("create", resp.status_code)
            if resp.status_code == 201:
                with self.ledger.lock:
                    self.ledger.titles[resp.json()["id"]] = title
        elif roll < 0.12 and len(live) > 6:
            pid = self.rng.choice(live)
            status = _status(lambda: self._call("delete", f"/api/products/{pid}"))
            self.ledger.answer("delete", status)
            with self.ledger.lock:
                (self.ledger.deleted if status in (204, 404) else self.ledger.unknown_deletes).add(pid)
        else:
            pid = self.rng.choice(live)
            self.edits += 1
            title = f"chaos {pid} edit {self.edits}"
            status = _status(lambda: self._call("patch", f"/api/products/{pid}", json={"title": title}))
            self.ledger.answer("edit", status)
            with self.ledger.lock:
                self.ledger.titles[pid] = title if status == 202 else UNKNOWN

    def run(self) -> None:
        while not self.stop.is_set():
            self.step()
            time.sleep(self.rng.uniform(0.02, 0.1))


def _backlog(fs, fault: str) -> int:
    """What the process about to be killed has to do: its outbox backlog (relay), or the events
    published to it and not yet applied (consumer)."""
    service = fault.split("-")[0]
    try:
        if fault.endswith("-relay"):
            db = fs.ep.admin_db if service == "admin" else fs.ep.main_db
            return query(db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]
        if fault.endswith("-consumer"):
            # Published by the other side, not yet in this side's inbox: queued or in the consumer's hands.
            src, dst = (
                (fs.ep.main_db, fs.ep.admin_db) if service == "admin" else (fs.ep.admin_db, fs.ep.main_db)
            )
            sent = query(src, "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL")[0][0]
            return max(0, sent - query(dst, "SELECT COUNT(*) FROM inbox")[0][0])
    except Exception:  # noqa: BLE001 - a server may be down
        return 0
    return 0


def _inject(fs, fault: str, rng: random.Random) -> int:
    """Inject one fault; return the work that was in flight in what it killed."""
    if fault == "broker":
        fs.rabbit.kill9()
        time.sleep(rng.uniform(0.5, 3))
        fs.rabbit.start()
        return 0
    if fault == "database":
        fs.mariadb.kill9()
        time.sleep(rng.uniform(0.5, 2))
        fs.mariadb.start()
        return 0
    proc = fs.services.procs[fault]
    in_flight = 0
    if fault.endswith(("-relay", "-consumer")):
        # Frozen for a moment, the worker meets a backlog when it thaws: the kill then lands in the
        # middle of a big batch (between publish and mark, or apply and ack) instead of an idle loop.
        proc.signal_group(signal.SIGSTOP)
        time.sleep(rng.uniform(1, 2))
        in_flight = _backlog(fs, fault)
        proc.signal_group(signal.SIGCONT)
        time.sleep(rng.uniform(0.005, 0.06))
    fs.services.kill9_process(fault)
    time.sleep(rng.uniform(0.2, 2))
    fs.services.start_process(fault)
    return in_flight


def _settle_unknowns(fs, ledger: Ledger, shoppers: list[Shoppers]) -> int:
    """Turn every UNKNOWN into a known state with requests whose answers are kept; return how many."""
    api = AdminApi(fs.ep.admin_url)
    settled = 0
    for pid in sorted(ledger.unknown_deletes):
        resp = api.session.delete(f"{api.base}/api/products/{pid}", timeout=30)
        assert resp.status_code in (204, 404), resp.text
        ledger.deleted.add(pid)
        settled += 1
    for pid, title in sorted(ledger.titles.items()):
        if pid in ledger.deleted:
            continue
        if title is UNKNOWN:
            title = f"chaos {pid} settled"
            api.update(pid, title=title)
            ledger.titles[pid] = title
            settled += 1
    for group in shoppers:
        for (shopper, pid), state in list(ledger.likes.items()):
            if state is UNKNOWN and shopper in group.sessions:
                status = group.act(shopper, pid, like=True)  # liked afterwards, whatever it was
                assert status in (200, 400, 404), f"settling a like of {pid}: {status}"
                settled += 1
    return settled


def _dropped_duplicates(fs, offsets: dict[str, int]) -> int:
    dropped = 0
    for name in ("admin-consumer", "main-consumer"):
        with fs.services.procs[name].log_path.open("rb") as log:
            log.seek(offsets[name])
            dropped += sum(1 for line in log if b'"duplicate event ' in line)
    return dropped


@pytest.mark.timeout(CHAOS_SECONDS + 600)  # the chaos, then settling and the checks
def test_chaos_with_a_ledger(fs):
    rng = random.Random(SEED)
    print(f"\nchaos: {CHAOS_SECONDS:.0f} s, seed {SEED} (CHAOS_SEED={SEED} replays the choices)")
    ids = new_products(fs.admin, 8, "chaos")
    wait_visible_in_main(fs.shop, ids)
    ledger = Ledger(titles={p["id"]: p["title"] for p in fs.admin.products() if p["id"] in ids})
    dead_before = {q: set(peek_message_ids(fs.amqp_url, q)) for q in ("admin.dlq", "main.dlq")}
    offsets = {n: fs.services.procs[n].log_path.stat().st_size for n in ("admin-consumer", "main-consumer")}
    events_before = {
        side: query(url, "SELECT COUNT(*) FROM outbox")[0][0]
        for side, url in (("admin", fs.ep.admin_db), ("main", fs.ep.main_db))
    }

    stop = threading.Event()
    per = SHOPPERS // SHOPPER_THREADS
    shoppers = [
        Shoppers(fs.ep.main_url, ledger, range(i * per, (i + 1) * per), random.Random(rng.random()), stop)
        for i in range(SHOPPER_THREADS)
    ]
    for group in shoppers:
        group.warm_up()
    admins = Admins(AdminApi(fs.ep.admin_url), ledger, random.Random(rng.random()), stop)
    for worker in (*shoppers, admins):
        worker.start()

    started = time.monotonic()
    kills: list[tuple[float, str, int, float]] = []
    try:
        time.sleep(3)  # traffic first
        cycle: list[str] = []
        while time.monotonic() - started < CHAOS_SECONDS:
            if not cycle:  # every kind of fault once per round, in a random order
                cycle = rng.sample(FAULTS, len(FAULTS))
            fault = cycle.pop()
            at = time.monotonic()
            in_flight = _inject(fs, fault, rng)
            kills.append((at - started, fault, in_flight, time.monotonic() - at))
            print(
                f"  t={at - started:6.1f}s kill -9 {fault:<15} {in_flight:5} events in its hands, "
                f"back after {time.monotonic() - at:.1f}s"
            )
            time.sleep(rng.uniform(2, 6))
    finally:
        stop.set()
        for worker in (*shoppers, admins):
            worker.join(timeout=60)
        if not fs.rabbit.running:
            fs.rabbit.start()
        if not fs.mariadb.running:
            fs.mariadb.start()
        fs.services.ensure_running()

    settled = _settle_unknowns(fs, ledger, shoppers)
    expected_likes = Counter(
        pid for (_, pid), state in ledger.likes.items() if state and pid not in ledger.deleted
    )
    live = [pid for pid in ledger.titles if pid not in ledger.deleted]
    waited = assert_converged(
        fs.ep,
        expected_likes={pid: expected_likes.get(pid, 0) for pid in live},
        timeout=180,
        services=fs.services,
    )
    assert_no_event_lost(fs.ep)

    # The ledger, per product: admin and main hold exactly what was accepted.
    main_rows = {p["id"]: p for p in fs.shop.products()}
    admin_rows = {p["id"]: p for p in fs.admin.products()}
    for pid in live:
        assert admin_rows[pid]["title"] == main_rows[pid]["title"] == ledger.titles[pid], pid
    for pid in ledger.deleted:
        assert pid not in admin_rows and pid not in main_rows, f"deleted product {pid} is back"
    # No good event among the dead letters: nothing new arrived in either dead-letter queue.
    for queue, before in dead_before.items():
        new = set(peek_message_ids(fs.amqp_url, queue)) - before
        assert not new, f"{len(new)} events dead-lettered in {queue} during the chaos: {sorted(new)[:5]}"
    drift = fs.services.command("admin", "check_drift", "--main-url", fs.ep.main_url, check=False)
    assert drift.returncode == 0, drift.stdout + drift.stderr

    events = {
        side: query(url, "SELECT COUNT(*) FROM outbox")[0][0] - events_before[side]
        for side, url in (("admin", fs.ep.admin_db), ("main", fs.ep.main_db))
    }
    dropped = _dropped_duplicates(fs, offsets)
    accepted = sum(n for key, n in ledger.answers.items() if key.split()[1] in ("200", "201", "202", "204"))
    summary = {
        "seconds": round(time.monotonic() - started),
        "faults": dict(Counter(fault for _, fault, _, _ in kills)),
        "requests": sum(ledger.answers.values()),
        "accepted": accepted,
        "answers": dict(sorted(ledger.answers.items())),
        "unknown_settled": settled,
        "events_published": events,
        "duplicates_dropped_by_inboxes": dropped,
        "converged_after_s": round(waited, 1),
    }
    print("chaos summary: " + json.dumps(summary))
    assert len(kills) >= 3, "the chaos ran too short to kill anything"
    assert any(n for _, fault, n, _ in kills if fault.endswith("-relay")), (
        "no relay was killed with a backlog"
    )
    assert any(n for _, fault, n, _ in kills if fault.endswith("-consumer")), (
        "no consumer was killed with a backlog"
    )
    assert events["admin"] > 0 and events["main"] > 0
