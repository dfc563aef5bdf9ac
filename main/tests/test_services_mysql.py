"""The like transaction under real concurrency on MariaDB (row locks, the unique constraint)."""

import json
import threading
import uuid

import pytest

from app import services
from app.extensions import db
from app.models import OutboxEvent, Product, ProductLike
from tests.conftest import make_app

pytestmark = pytest.mark.mysql
THREADS = 8


@pytest.fixture
def mysql_app(mysql_database_url):
    app = make_app(
        mysql_database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": THREADS, "max_overflow": 0},
    )
    with app.app_context():
        db.session.add(Product(id=1, title="Contested", image="", version=1))
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def run_together(app, calls):
    """Run the calls in threads released at the same moment; return their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        with app.app_context():
            barrier.wait()
            try:
                results[index] = call()
            except Exception as exc:  # noqa: BLE001 - collected for the assertions
                results[index] = exc

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def totals(app):
    with app.app_context():
        product = db.session.get(Product, 1)
        return (
            product.likes,
            product.likes_seq,
            db.session.query(ProductLike).count(),
            db.session.query(OutboxEvent).count(),
        )


def test_concurrent_likes_of_one_shopper_exactly_one_wins(mysql_app):
    shopper = str(uuid.uuid4())

    results = run_together(mysql_app, [lambda: services.like(shopper, 1)] * THREADS)

    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, services.AlreadyLiked)]
    assert wins == [{"id": 1, "likes": 1, "liked": True}]
    assert len(losses) == THREADS - 1, results
    assert totals(mysql_app) == (1, 1, 1, 1)


def test_concurrent_likes_of_many_shoppers_all_count_with_distinct_seqs(mysql_app):

    shoppers = [str(uuid.uuid4()) for _ in range(THREADS)]

    results = run_together(mysql_app, [lambda s=s: services.like(s, 1) for s in shoppers])

    assert sorted(r["likes"] for r in results) == list(range(1, THREADS + 1))
    assert totals(mysql_app) == (THREADS, THREADS, THREADS, THREADS)
    with mysql_app.app_context():
        seqs = [json.loads(row.payload)["data"]["seq"] for row in db.session.query(OutboxEvent)]
    assert sorted(seqs) == list(range(1, THREADS + 1))


def test_concurrent_like_and_unlike_of_one_shopper_stay_consistent(mysql_app):
    shopper = str(uuid.uuid4())
    with mysql_app.app_context():
        services.like(shopper, 1)

    results = run_together(
        mysql_app,
        [lambda: services.unlike(shopper, 1)] * 4 + [lambda: services.like(shopper, 1)] * 4,
    )

    assert not [
        r
        for r in results
        if isinstance(r, Exception) and not isinstance(r, services.AlreadyLiked | services.NotLiked)
    ], results
    likes, seq, rows, events = totals(mysql_app)
    assert likes == rows and rows in (0, 1)
    assert seq == events


def test_counts_read_back_from_the_update_are_exact(mysql_app):
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    with mysql_app.app_context():
        with pytest.raises(services.NotLiked):
            services.unlike(alice, 1)  # likes would dip to -1 inside the rolled-back transaction
        assert services.like(alice, 1) == {"id": 1, "likes": 1, "liked": True}
        assert services.like(bob, 1) == {"id": 1, "likes": 2, "liked": True}
        assert services.unlike(alice, 1) == {"id": 1, "likes": 1, "liked": False}
        with pytest.raises(services.ProductNotFound):
            services.like(alice, 2)
    assert totals(mysql_app) == (1, 3, 1, 3)
