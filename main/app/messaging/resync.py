"""Resync admin's like counts: one product.likes_counted per live replica product."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.extensions import db
from app.messaging import contract
from app.messaging.outbox import enqueue, wake_relay
from app.models import Product

logger = logging.getLogger(__name__)

_product = Product.__table__


def resync_likes(app, force: bool = False) -> int:
    """Enqueue product.likes_counted {product_id, likes, seq} for every live product in one transaction.

    force: send version 2 with force=true, which admin applies whatever seq it holds: the remedy
    after main's database was restored from a backup (its seqs went back, so admin's are ahead).
    """
    with app.app_context():
        session = db.session
        try:
            rows = session.execute(
                select(_product.c.id, _product.c.likes, _product.c.likes_seq)
                .where(_product.c.deleted.is_(False))
                .order_by(_product.c.id)
            ).all()
            for row in rows:
                data = {"product_id": row.id, "likes": row.likes, "seq": row.likes_seq}
                if force:
                    enqueue(session, contract.PRODUCT_LIKES_COUNTED, {**data, "force": True}, version=2)
                else:
                    enqueue(session, contract.PRODUCT_LIKES_COUNTED, data)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.remove()
        wake_relay(app.config.get("OUTBOX_WAKEUP_ADDR"))
    logger.info("enqueued product.likes_counted for %s products%s", len(rows), " (forced)" if force else "")
    return len(rows)
