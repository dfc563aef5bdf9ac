"""Compare admin's products with main's public gallery and report any drift.

Once (default): print each difference and exit 1 on drift. With `--every SECONDS` the
command keeps checking until SIGTERM/SIGINT and, with `--metrics-port`, serves the result
as Prometheus gauges (`replica_drift{kind=...}`) for the ReplicaDrift alert.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import urllib.parse
import urllib.request

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

logger = logging.getLogger(__name__)

KINDS = ("missing_in_main", "extra_in_main", "fields", "likes")
# Not drift: products whose replica is behind its source (an event in flight), for context.
IN_FLIGHT = "in_flight"

# A registry of its own: this process exposes drift figures only, and tests can read it.
REGISTRY = CollectorRegistry()
REPLICA_DRIFT = Gauge(
    "replica_drift",
    "Products whose replica in main differs from admin, by kind of difference.",
    ["kind"],
    registry=REGISTRY,
)
IN_FLIGHT_GAUGE = Gauge(
    "replica_in_flight",
    "Products whose replica is behind its source by an event in flight (not drift).",
    registry=REGISTRY,
)
LAST_CHECK = Gauge(
    "replica_drift_last_check_timestamp_seconds",
    "Unix time of the last completed drift check.",
    registry=REGISTRY,
)
CHECK_ERRORS = Counter(
    "replica_drift_check_errors",
    "Drift checks that could not complete (main or the database unreachable).",
    registry=REGISTRY,
)


MAIN_PAGE_SIZE = 1000


def fetch_main_products(main_url: str, timeout: float = 10.0) -> list[dict]:
    """GET {main}/flask/api/products page by page (id order, X-Next-Cursor) and return every product."""
    base = products_url(main_url)
    products: list[dict] = []
    cursor = None
    while True:
        query = {"sort": "id", "limit": MAIN_PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
        url = f"{base}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310
            payload = json.loads(response.read().decode("utf-8"))
            cursor = response.headers.get("X-Next-Cursor")
        if not isinstance(payload, list):
            raise CommandError(f"{url} did not return a JSON list")
        products.extend(payload)
        if not cursor:
            return products


def products_url(main_url: str) -> str:
    """Return main's gallery URL; refuse anything but http(s)."""
    url = main_url.rstrip("/") + "/flask/api/products"
    # Only http(s): urlopen would also read file:// URLs.
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--main-url must be http(s): {main_url!r}")
    return url


def _field_state(ours: dict, theirs: dict) -> str:
    """Return "same", "behind" (main has not applied admin's latest version yet) or "drift" for title/image.

    Compared at equal versions only: at a lower version main is waiting for an event in flight;
    at equal versions, or ahead of admin, a difference is drift.
    """
    differs = any(ours.get(f) != theirs.get(f) for f in ("title", "image"))
    mine, replica = ours.get("version"), theirs.get("version")
    if mine is None or replica is None:  # a main that does not say its version: compare values
        return "drift" if differs else "same"
    if replica < mine:
        return "behind"
    return "drift" if differs or replica > mine else "same"


def _likes_state(ours: dict, theirs: dict) -> str:
    """Return "same", "behind" (admin has not applied main's latest like yet) or "drift" for likes.

    Compared at equal like sequence numbers only; admin's row was read before main's list, so
    an admin seq below main's is a like in flight, and one above it means main's counter went back.
    """
    differs = ours.get("likes") != theirs.get("likes")
    mine, source = ours.get("likes_seq"), theirs.get("likes_seq")
    if mine is None or source is None:
        return "drift" if differs else "same"
    if mine < source:
        return "behind"
    return "drift" if differs or mine > source else "same"


def compare(admin_rows: dict[int, dict], main_rows: dict[int, dict]) -> list[str]:
    """Return one line per difference that is drift (empty when none); events in flight are not drift."""
    problems = []
    for pid in sorted(set(admin_rows) - set(main_rows)):
        problems.append(f"product {pid}: in admin, missing in main")
    for pid in sorted(set(main_rows) - set(admin_rows)):
        problems.append(f"product {pid}: in main, missing in admin")
    for pid in sorted(set(admin_rows) & set(main_rows)):
        ours, theirs = admin_rows[pid], main_rows[pid]
        if _field_state(ours, theirs) == "drift":
            for field in ("title", "image", "version"):
                if ours.get(field) != theirs.get(field):
                    problems.append(
                        f"product {pid}: {field} admin={ours.get(field)!r} main={theirs.get(field)!r}"
                    )
        if _likes_state(ours, theirs) == "drift":
            for field in ("likes", "likes_seq"):
                if ours.get(field) != theirs.get(field):
                    problems.append(
                        f"product {pid}: {field} admin={ours.get(field)!r} main={theirs.get(field)!r}"
                    )
    return problems


def count_by_kind(admin_rows: dict[int, dict], main_rows: dict[int, dict]) -> dict[str, int]:
    """Return the number of drifting products for each kind, and those with an event in flight."""
    shared = sorted(set(admin_rows) & set(main_rows))
    fields = [_field_state(admin_rows[pid], main_rows[pid]) for pid in shared]
    likes = [_likes_state(admin_rows[pid], main_rows[pid]) for pid in shared]
    return {
        "missing_in_main": len(set(admin_rows) - set(main_rows)),
        "extra_in_main": len(set(main_rows) - set(admin_rows)),
        "fields": fields.count("drift"),
        "likes": likes.count("drift"),
        "in_flight": sum(1 for f, lk in zip(fields, likes, strict=True) if "behind" in (f, lk)),
    }


def _admin_rows() -> dict[int, dict]:
    from products.models import Product

    rows = Product.objects.values("id", "title", "image", "likes", "version", "likes_seq")
    return {row["id"]: row for row in rows}


def load_rows(main_url: str, timeout: float) -> tuple[dict[int, dict], dict[int, dict]]:
    """Return (admin rows, main rows) keyed by product id, each side's replica read before its source.

    Likes flow from main to admin: admin's counts are read before main's list. Products flow from
    admin to main: admin's titles and versions are read after it. So a replica can only be behind
    its source when nothing is wrong, never ahead.
    """
    before = _admin_rows()
    main_list = fetch_main_products(main_url, timeout)
    main_rows = {row["id"]: row for row in main_list if isinstance(row, dict) and "id" in row}
    admin_rows = _admin_rows()
    for pid, row in admin_rows.items():
        if pid in before:
            row["likes"], row["likes_seq"] = before[pid]["likes"], before[pid]["likes_seq"]
    return admin_rows, main_rows


def check_once_for_metrics(main_url: str, timeout: float) -> dict[str, int] | None:
    """Run one check and update the gauges; on failure count it, keep the old values, return None."""
    try:
        admin_rows, main_rows = load_rows(main_url, timeout)
    except (OSError, ValueError, CommandError, DatabaseError) as exc:
        # main (or our database) being unreachable says nothing about drift.
        CHECK_ERRORS.inc()
        logger.warning("drift check failed, keeping the last figures: %s", exc)
        return None
    counts = count_by_kind(admin_rows, main_rows)
    in_flight = counts.pop(IN_FLIGHT)
    for kind, value in counts.items():
        REPLICA_DRIFT.labels(kind=kind).set(value)
    IN_FLIGHT_GAUGE.set(in_flight)
    LAST_CHECK.set(time.time())
    if any(counts.values()):
        logger.warning("replica drift: %s", counts)
    else:
        logger.info("no drift: %s products identical in admin and main", len(admin_rows))
    return counts


# Started beside the rest of the stack, the first check would count every product still waiting
# for a booting broker as drift: it waits until the pipeline had time to start.
FIRST_CHECK_AFTER_SECONDS = 30.0


def run_forever(main_url: str, every: float, timeout: float, stop: threading.Event) -> None:
    """Check every `every` seconds until `stop` is set (the first after min(every, 30 s))."""
    stop.wait(min(every, FIRST_CHECK_AFTER_SECONDS))
    while not stop.is_set():
        # A long-lived process: drop database connections the server may have closed.
        close_old_connections()
        check_once_for_metrics(main_url, timeout)
        stop.wait(every)


class Command(BaseCommand):
    """`python manage.py check_drift --main-url URL [--every SECONDS] [--metrics-port N]`"""

    help = (
        "Compare ids, title, image and likes with main's gallery; exit 1 on drift. "
        "With --every, keep checking and export replica_drift gauges."
    )

    def add_arguments(self, parser):
        parser.add_argument("--main-url", required=True, help="e.g. http://127.0.0.1:5000")
        parser.add_argument("--timeout", type=float, default=10.0)
        parser.add_argument(
            "--every", type=float, default=None, help="seconds between checks; run until SIGTERM"
        )
        parser.add_argument(
            "--metrics-port", type=int, default=0, help="serve /metrics on this port (0 = off)"
        )

    def handle(self, *args, **options):
        products_url(options["main_url"])  # fail fast on a bad URL, also in loop mode
        if options["every"] is not None:
            self._loop(options)
            return
        try:
            admin_rows, main_rows = load_rows(options["main_url"], options["timeout"])
        except OSError as exc:
            raise CommandError(f"cannot read main's products: {exc}") from exc
        problems = compare(admin_rows, main_rows)
        if problems:
            for line in problems:
                self.stdout.write(line)
            self.stdout.write(f"DRIFT: {len(problems)} difference(s)")
            raise CommandError("catalogues differ", returncode=1)
        self.stdout.write(f"OK: {len(admin_rows)} products identical in admin and main")

    def _loop(self, options) -> None:
        every = options["every"]
        if every <= 0:
            raise CommandError("--every must be > 0")
        if options["metrics_port"]:
            start_http_server(options["metrics_port"], registry=REGISTRY)
            logger.info("serving drift metrics on port %s", options["metrics_port"])
        stop = threading.Event()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, lambda *_: stop.set())
        logger.info("checking drift against %s every %ss", options["main_url"], every)
        try:
            run_forever(options["main_url"], every, options["timeout"], stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        logger.info("drift checker stopped")
