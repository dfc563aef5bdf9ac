"""Helpers for cross-service tests: API clients, shopper crowds, AMQP injection, convergence checks.

Everything goes through the public surfaces (admin's and main's HTTP APIs, the broker, each
service's own database) so a test reads like what an operator would do.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pika
import pymysql
import requests
from requests.adapters import HTTPAdapter

from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME

logger = logging.getLogger(__name__)

LIKE_TYPES = ("product.liked", "product.unliked", "product.likes_counted")
PRODUCT_TYPES = ("product.created", "product.updated", "product.deleted", "catalogue.snapshot")


# ----- HTTP clients ----------------------------------------------------------------------------------
_TOKENS: dict[tuple[str, str], str] = {}


class AdminApi:
    """The admin API as a staff user: an API token from POST /api/auth/token, else HTTP Basic auth.

    The token matters for speed: Basic auth runs Django's password hasher (PBKDF2) on every request,
    about 0.3 s of CPU each on this machine.
    """

    def __init__(self, base_url: str, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(pool_maxsize=32))
        key = (self.base, username)
        if key not in _TOKENS:
            resp = requests.post(
                f"{self.base}/api/auth/token", json={"username": username, "password": password}, timeout=15
            )
            if resp.status_code == 200 and resp.json().get("token"):
                _TOKENS[key] = resp.json()["token"]
        if key in _TOKENS:
            self.session.headers["Authorization"] = f"Token {_TOKENS[key]}"
        else:
            self.session.auth = (username, password)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def create(self, title: str, image: str = "https://example.com/p.png") -> dict:
        """Create a product and return its JSON (asserts 201)."""
        resp = self.session.post(
            f"{self.base}/api/products", json={"title": title, "image": image}, timeout=15
        )
        assert resp.status_code == 201, f"create product: HTTP {resp.status_code} {resp.text[:500]}"
        return resp.json()

    def update(self, product_id: int, **fields) -> dict:
        """PATCH a product and return its JSON (asserts 202)."""
        resp = self.session.patch(f"{self.base}/api/products/{product_id}", json=fields, timeout=15)
        assert resp.status_code == 202, (
            f"update product {product_id}: HTTP {resp.status_code} {resp.text[:500]}"
        )
        return resp.json()

    def delete(self, product_id: int) -> None:
        """Delete a product (asserts 204)."""
        resp = self.session.delete(f"{self.base}/api/products/{product_id}", timeout=15)
        assert resp.status_code == 204, (
            f"delete product {product_id}: HTTP {resp.status_code} {resp.text[:500]}"
        )

    def get(self, product_id: int) -> requests.Response:
        """GET one product (the raw response)."""
        return self.session.get(f"{self.base}/api/products/{product_id}", timeout=15)

    def products(self) -> list[dict]:
        """Return every product, a page of 1,000 at a time (the plain list stops at 1,000)."""
        products: list[dict] = []
        while True:
            resp = self.session.get(
                f"{self.base}/api/products", params={"limit": 1000, "offset": len(products)}, timeout=30
            )
            resp.raise_for_status()
            page = resp.json()
            products.extend(page)
            if len(products) >= int(resp.headers["X-Total-Count"]) or not page:
                return products


class Shop:
    """main's public API; each shopper is its own requests.Session (the signed cookie is kept)."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")

    def shopper(self) -> requests.Session:
        """Return a new shopper (a fresh cookie jar)."""
        return requests.Session()

    def products(self, shopper: requests.Session | None = None) -> list[dict]:
        """Return main's live products, a page of 1,000 at a time (the plain list stops at 1,000)."""
        products: list[dict] = []
        cursor = None
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            resp = (shopper or requests).get(f"{self.base}/flask/api/products", params=params, timeout=30)
            resp.raise_for_status()
            products.extend(resp.json())
            cursor = resp.headers.get("X-Next-Cursor")
            if not cursor:
                return products

    def product(self, product_id: int) -> dict | None:
        """Return one live product from main's list, or None."""
        return next((p for p in self.products() if p["id"] == product_id), None)

    def like(self, shopper: requests.Session, product_id: int) -> requests.Response:
        """POST a like as shopper."""
        return shopper.post(f"{self.base}/flask/api/products/{product_id}/like", timeout=30)

    def unlike(self, shopper: requests.Session, product_id: int) -> requests.Response:
        """DELETE a like as shopper."""
        return shopper.delete(f"{self.base}/flask/api/products/{product_id}/like", timeout=30)


@dataclass
class CrowdResult:
    """What a crowd of shoppers got back: status counts and the likes accepted per product."""

    statuses: Counter = field(default_factory=Counter)
    accepted: Counter = field(default_factory=Counter)  # product id -> likes answered 200
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Return the number of requests made."""
        return sum(self.statuses.values())


def like_crowd(
    shop: Shop,
    product_ids: list[int],
    shoppers: int,
    workers: int = 12,
    stop: threading.Event | None = None,
    pace: float = 0.0,
) -> CrowdResult:
    """Let `shoppers` distinct shoppers each like one product (round robin over product_ids) in parallel."""
    result = CrowdResult()
    lock = threading.Lock()

    def one(i: int) -> None:
        if stop is not None and stop.is_set():
            return
        pid = product_ids[i % len(product_ids)]
        with shop.shopper() as shopper:
            try:
                status = shop.like(shopper, pid).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
        with lock:
            result.statuses[status] += 1
            if status == 200:
                result.accepted[pid] += 1
        if pace:
            time.sleep(pace)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(shoppers)))
    return result


class Background:
    """Run a function in a thread and hand back its result (or re-raise its exception) on join()."""

    def __init__(self, fn: Callable, *args, **kwargs):
        self.value = None
        self.error: BaseException | None = None

        def run():
            try:
                self.value = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 300):
        """Wait for the thread and return its result."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background work did not finish in time"
        if self.error is not None:
            raise self.error
        return self.value


# ----- databases -------------------------------------------------------------------------------------
def connect_url(database_url: str):
    """Open an autocommit PyMySQL connection from a mysql:// DATABASE_URL."""
    parts = urllib.parse.urlsplit(database_url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=urllib.parse.unquote(parts.username or ""),
        password=urllib.parse.unquote(parts.password or ""),
        database=parts.path.lstrip("/"),
        autocommit=True,
        connect_timeout=5,
        read_timeout=30,
        write_timeout=30,
    )


def query(database_url: str, sql: str, args: Iterable | None = None) -> list[tuple]:
    """Run one statement on a service's database (mysql:// or sqlite:///) and return its rows."""
    if database_url.startswith("sqlite:///"):
        # Read-only, so a check never takes the write lock the services' processes contend for.
        path = urllib.parse.quote(database_url[len("sqlite:///") :])
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)) as conn:
            return list(conn.execute(sql.replace("%s", "?"), tuple(args or ())).fetchall())
    with contextlib.closing(connect_url(database_url)) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


# ----- AMQP ------------------------------------------------------------------------------------------
def amqp_connection(amqp_url: str) -> pika.BlockingConnection:
    """Open a blocking connection to the broker."""
    params = pika.URLParameters(amqp_url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


def publish_raw(
    amqp_url: str,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None = None,
    event_type: str | None = None,
    app_id: str | None = None,
    headers: dict | None = None,
) -> None:
    """Publish one persistent message with confirms, like a relay would (fields may be omitted on purpose)."""
    with contextlib.closing(amqp_connection(amqp_url)) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(
                message_id=message_id,
                type=event_type,
                content_type="application/json",
                delivery_mode=2,
                app_id=app_id,
                timestamp=int(time.time()),
                headers=headers or {},
            ),
            mandatory=True,
        )


def queue_depth(amqp_url: str, queue: str) -> int:
    """Return the number of ready messages in a queue (passive declare)."""
    with contextlib.closing(amqp_connection(amqp_url)) as conn:
        return conn.channel().queue_declare(queue, passive=True).method.message_count


class QueueWatch:
    """One long-lived connection for polling queue depths in a tight loop."""

    def __init__(self, amqp_url: str):
        self.conn = amqp_connection(amqp_url)
        self.channel = self.conn.channel()

    def depth(self, queue: str) -> int:
        """Return the number of ready messages in queue."""
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def close(self) -> None:
        """Close the connection."""
        with contextlib.suppress(Exception):
            self.conn.close()

    def __enter__(self) -> QueueWatch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def peek_message_ids(amqp_url: str, queue: str, limit: int = 1000) -> list[str | None]:
    """Return the message ids in a queue without removing them (get, then requeue all at the end)."""
    ids = []
    with contextlib.closing(amqp_connection(amqp_url)) as conn:
        channel = conn.channel()
        for _ in range(limit):
            method, props, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            ids.append(props.message_id)
        # Closing the channel with unacked deliveries puts them all back in the queue.
        channel.close()
    return ids


# ----- metrics ---------------------------------------------------------------------------------------
def metric_sum(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Return the sum of every sample of a Prometheus metric (optionally matching labels) at url."""
    text = requests.get(url, timeout=5).text
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+([0-9.eE+-]+|NaN)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        if labels and not all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            continue
        total += float(match.group(2))
    return total


# ----- convergence -----------------------------------------------------------------------------------
@dataclass
class Endpoints:
    """Where one admin+main pair lives: web URLs and database URLs."""

    admin_url: str
    main_url: str
    admin_db: str
    main_db: str


class StackClients:
    """The API clients of a stack that keeps its Endpoints in `ep` (the fault suites' stacks)."""

    ep: Endpoints

    @property
    def admin(self) -> AdminApi:
        """Return an admin API client (staff user)."""
        return AdminApi(self.ep.admin_url)

    @property
    def shop(self) -> Shop:
        """Return main's public API."""
        return Shop(self.ep.main_url)


def differences(ep: Endpoints, expected_likes: dict[int, int] | None = None) -> list[str]:
    """Return every way admin and main disagree (empty when converged).

    Checks: the same live product ids with the same title and image; admin's likes equal main's count
    for each product; main's count equals its own like rows (no double counting); optional exact
    expected counts; nothing waiting in either outbox.
    """
    problems: list[str] = []
    admin_rows = {p["id"]: p for p in AdminApi(ep.admin_url).products()}
    main_rows = {p["id"]: p for p in Shop(ep.main_url).products()}
    for pid in sorted(set(admin_rows) - set(main_rows)):
        problems.append(f"product {pid} in admin, missing in main")
    for pid in sorted(set(main_rows) - set(admin_rows)):
        problems.append(f"product {pid} in main, missing in admin")
    for pid in sorted(set(admin_rows) & set(main_rows)):
        a, m = admin_rows[pid], main_rows[pid]
        for key in ("title", "image", "likes"):
            if a[key] != m[key]:
                problems.append(f"product {pid}: {key} admin={a[key]!r} main={m[key]!r}")
    like_rows = dict(query(ep.main_db, "SELECT product_id, COUNT(*) FROM product_like GROUP BY product_id"))
    for pid, row in main_rows.items():
        if row["likes"] != like_rows.get(pid, 0):
            problems.append(f"product {pid}: main likes={row['likes']} but {like_rows.get(pid, 0)} like rows")
    for pid, count in (expected_likes or {}).items():
        for side, rows in (("admin", admin_rows), ("main", main_rows)):
            got = rows.get(pid, {}).get("likes")
            if got != count:
                problems.append(f"product {pid}: {side} likes={got}, expected exactly {count}")
    for side, url in (("admin", ep.admin_db), ("main", ep.main_db)):
        pending = query(url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]
        if pending:
            problems.append(f"{side} outbox: {pending} rows not published")
    return problems


def assert_converged(
    ep: Endpoints,
    expected_likes: dict[int, int] | None = None,
    timeout: float = 90,
    interval: float = 0.5,
    services=None,
) -> float:
    """Poll until admin and main agree (see differences); return seconds taken, or fail listing what differs.

    With `services` (a ServiceSet), fail at once when one of its processes has exited, showing its log.
    """
    start = time.monotonic()
    deadline = start + timeout
    last: list[str] = ["never checked"]
    while True:
        for name, proc in services.procs.items() if services is not None else ():
            if proc.popen is not None and not proc.running:
                raise AssertionError(
                    f"{name} exited (rc={proc.popen.returncode}) while converging; "
                    f"log {proc.log_path}:\n{proc.log_tail(15)[-6000:]}"
                )
        try:
            last = differences(ep, expected_likes)
        except Exception as exc:  # noqa: BLE001 - a server may still be coming back
            last = [f"check failed: {type(exc).__name__}: {exc}"]
        if not last:
            return time.monotonic() - start
        if time.monotonic() > deadline:
            shown = "\n  ".join(last[:40])
            more = f"\n  ... and {len(last) - 40} more" if len(last) > 40 else ""
            raise AssertionError(f"admin and main did not converge within {timeout}s:\n  {shown}{more}")
        time.sleep(interval)


def assert_no_event_lost(ep: Endpoints, timeout: float = 60) -> None:
    """Poll until every event one side published is in the other side's inbox exactly once."""

    def missing() -> list[str]:
        out = []
        for src, dst, types in (
            (ep.main_db, ep.admin_db, LIKE_TYPES),
            (ep.admin_db, ep.main_db, PRODUCT_TYPES),
        ):
            marks = ",".join(["%s"] * len(types))
            sent = {
                r[0] for r in query(src, f"SELECT event_id FROM outbox WHERE event_type IN ({marks})", types)
            }
            seen = {r[0] for r in query(dst, "SELECT message_id FROM inbox")}
            out += [f"{eid} published but never applied" for eid in sorted(sent - seen)]
        return out

    deadline = time.monotonic() + timeout
    while (gone := missing()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not gone, f"{len(gone)} events lost, e.g.:\n  " + "\n  ".join(gone[:20])


def events_in_flight(ep: Endpoints) -> int:
    """Return the events not yet applied on the other side: unpublished outbox rows, plus published
    events the other side's inbox does not hold yet (in a queue or in a consumer's hands)."""
    total = 0
    for src, dst in ((ep.admin_db, ep.main_db), (ep.main_db, ep.admin_db)):
        total += query(src, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")[0][0]
        published = query(src, "SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL")[0][0]
        total += max(0, published - query(dst, "SELECT COUNT(*) FROM inbox")[0][0])
    return total


def hold_back(services, process: str, ep: Endpoints, at_least: int = 20, timeout: float = 30) -> int:
    """Freeze `process` (SIGSTOP) until at least `at_least` events are in flight; return how many.

    The caller injects its fault and then thaws the process (SIGCONT): the fault then lands on
    work in flight instead of on a pipeline that happened to be idle at that instant.
    """
    import signal

    services.procs[process].signal_group(signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while (in_flight := events_in_flight(ep)) < at_least:
        assert time.monotonic() < deadline, f"only {in_flight} events in flight with {process} frozen"
        time.sleep(0.05)
    return in_flight


def new_products(admin: AdminApi, count: int, label: str) -> list[int]:
    """Create `count` products named after the test and return their ids."""
    tag = uuid.uuid4().hex[:6]
    return [
        admin.create(f"{label} {tag} #{i}", f"https://example.com/{tag}/{i}.png")["id"] for i in range(count)
    ]


def wait_visible_in_main(shop: Shop, product_ids: Iterable[int], timeout: float = 60) -> None:
    """Poll main's API until every product id is listed."""
    wanted = set(product_ids)
    deadline = time.monotonic() + timeout
    while True:
        have = {p["id"] for p in shop.products()}
        if wanted <= have:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"products {sorted(wanted - have)} never reached main within {timeout}s")
        time.sleep(0.1)


def envelope_of(database_url: str, event_id: str) -> tuple[dict, dict]:
    """Return (envelope, headers) of an outbox row by event id."""
    payload, headers = query(
        database_url, "SELECT payload, headers FROM outbox WHERE event_id=%s", (event_id,)
    )[0]
    return json.loads(payload), json.loads(headers or "{}")
