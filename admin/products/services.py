"""The one place where a product change and its outbox event are saved together."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import Http404

from messaging import contract
from messaging.outbox import enqueue
from products.models import Product

logger = logging.getLogger(__name__)

EDITABLE_FIELDS = ("title", "image")


def _product_data(product: Product) -> dict:
    return {
        "id": product.pk,
        "title": product.title,
        "image": product.image,
        "version": product.version,
    }


def _locked(product_id: int) -> Product:
    try:
        # Lock the row so version bumps and concurrent like updates serialise (no-op on SQLite).
        return Product.objects.select_for_update().get(pk=product_id)
    except Product.DoesNotExist:
        raise Http404("No Product matches the given query.") from None


def create_product(*, title: str, image: str) -> Product:
    """Create a product (version 1) and its product.created event in one transaction."""
    with transaction.atomic():
        product = Product.objects.create(title=title, image=image, version=1)
        enqueue(contract.PRODUCT_CREATED, _product_data(product))
    logger.info("product created", extra={"product_id": product.pk})
    return product


def update_product(product_id: int, **changes) -> Product:
    """Apply title/image changes, bump version and write product.updated in one transaction."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        product = _locked(product_id)
        for name, value in changes.items():
            setattr(product, name, value)
        product.version += 1
        # Never write likes/likes_seq here: the consumer owns them.
        product.save(update_fields=[*changes, "version", "updated_at"])
        enqueue(contract.PRODUCT_UPDATED, _product_data(product))
    logger.info("product updated", extra={"product_id": product.pk})
    return product


def delete_product(product_id: int) -> int:
    """Delete the product and write product.deleted (version + 1) in one transaction."""
    with transaction.atomic():
        product = _locked(product_id)
        version = product.version + 1
        product.delete()
        enqueue(contract.PRODUCT_DELETED, {"id": product_id, "version": version})
    logger.info("product deleted", extra={"product_id": product_id})
    return version


def apply_likes(product_id: int, likes: int, seq: int) -> bool:
    """Set likes and likes_seq unless a newer sequence was applied; return whether a row matched."""
    # One conditional UPDATE: concurrent or out-of-order deliveries cannot move likes backwards.
    matched = Product.objects.filter(pk=product_id, likes_seq__lte=seq).update(likes=likes, likes_seq=seq)
    return matched > 0


def force_likes(product_id: int, likes: int, seq: int) -> bool:
    """Set likes and likes_seq whatever seq the product holds (a forced resync); return whether it exists."""
    return Product.objects.filter(pk=product_id).update(likes=likes, likes_seq=seq) > 0


def apply_likes_batch(latest: dict[int, tuple[int, int]]) -> dict[int, str]:
    """Apply the newest (likes, seq) per product in one UPDATE; return product id -> applied/stale/unknown."""
    from django.db import connection

    if not latest:
        return {}
    qn = connection.ops.quote_name
    table, pk = qn(Product._meta.db_table), qn(Product._meta.pk.column)
    likes_col, seq_col = qn("likes"), qn("likes_seq")
    when = " ".join(["WHEN %s THEN %s"] * len(latest))
    ids = list(latest)
    likes_params = [v for pid in ids for v in (pid, latest[pid][0])]
    seq_params = [v for pid in ids for v in (pid, latest[pid][1])]
    # One conditional UPDATE, the seq rule per row in SQL: out-of-order or concurrent batches
    # cannot move likes backwards, and the rows it matched stay locked until the commit. Raw SQL:
    # building the same CASE through the ORM cost more than running it.
    # Identifiers come from the model, every value is a parameter.
    sql = (
        f"UPDATE {table} SET {likes_col} = CASE {pk} {when} END, {seq_col} = CASE {pk} {when} END "  # noqa: S608  # nosec B608 - quoted model identifiers, values are parameters
        f"WHERE {pk} IN ({', '.join(['%s'] * len(ids))}) AND {seq_col} <= CASE {pk} {when} END"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*likes_params, *seq_params, *ids, *seq_params])
        matched = cursor.rowcount
    if matched == len(latest):
        return dict.fromkeys(latest, "applied")
    # Rare path: tell the stale products from the unknown ones. A matched row now has
    # likes_seq == our seq; an unmatched one has a higher seq (newer count kept) or is missing.
    stored = dict(Product.objects.filter(pk__in=ids).values_list("pk", "likes_seq"))
    outcome: dict[int, str] = {}
    for product_id, (_likes, seq) in latest.items():
        if product_id not in stored:
            outcome[product_id] = "unknown"
        elif stored[product_id] > seq:
            outcome[product_id] = "stale"
        else:
            outcome[product_id] = "applied"
    return outcome
