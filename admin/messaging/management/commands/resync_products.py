"""Re-publish the whole catalogue so main's replica converges (product.updated + catalogue.snapshot)."""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection, transaction

from messaging import contract
from messaging.outbox import enqueue

logger = logging.getLogger(__name__)


def _prepare_id_read() -> None:
    """Make information_schema report live AUTO_INCREMENT values (MySQL 8 caches them for a day)."""
    if connection.vendor != "mysql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION information_schema_stats_expiry = 0")
    except DatabaseError:
        pass  # MariaDB has no such cache (nor the variable)


def highest_allocated_id() -> int:
    """Return the highest product id the database ever handed out (0 if unknown)."""
    from products.models import Product

    table = Product._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                [table],
            )
            row = cursor.fetchone()
            return int(row[0]) - 1 if row and row[0] else 0
        if connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            return int(row[0]) if row and row[0] else 0
    return 0


def enqueue_resync(force: bool = False) -> tuple[int, int]:
    """Enqueue product.updated for every product, then one catalogue.snapshot; return (count, max_id).

    max_id covers every id ever allocated, so a stray replica row above the highest live id
    (its delete event lost) is tombstoned too. The allocation counter is read BEFORE the locking
    read of the rows: every id it covers was allocated by then, and on MySQL the locking read
    waits for an insert still in flight, so a product created concurrently is either in `ids` or
    above max_id, and main never tombstones it.

    force: send product.updated version 2 with force=true, which main applies whatever version
    its replica holds (tombstone included): the remedy after admin's database was restored from a
    backup, when its versions went back behind main's.
    """
    from products.models import Product

    _prepare_id_read()
    with transaction.atomic():
        allocated = highest_allocated_id()
        # Lock the rows so no edit slips between an update event and the snapshot (no-op on SQLite).
        products = list(Product.objects.select_for_update().order_by("id"))
        for product in products:
            data = {
                "id": product.pk,
                "title": product.title,
                "image": product.image,
                "version": product.version,
            }
            if force:
                enqueue(contract.PRODUCT_UPDATED, {**data, "force": True}, version=2)
            else:
                enqueue(contract.PRODUCT_UPDATED, data)
        ids = [product.pk for product in products]
        max_id = max(ids[-1] if ids else 0, allocated)
        enqueue(contract.CATALOGUE_SNAPSHOT, {"ids": ids, "max_id": max_id})
    logger.info(
        "catalogue resync enqueued: %s products, max_id %s%s", len(ids), max_id, " (forced)" if force else ""
    )
    return len(ids), max_id


class Command(BaseCommand):
    """`python manage.py resync_products`"""

    help = "Enqueue product.updated for every product and a catalogue.snapshot for main's replica."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="main takes admin's products whatever version it holds (after admin's database was restored)",
        )

    def handle(self, *args, **options):
        count, max_id = enqueue_resync(force=options["force"])
        forced = " (forced)" if options["force"] else ""
        self.stdout.write(
            f"enqueued {count} product.updated events{forced} and a catalogue.snapshot (max_id={max_id})"
        )
