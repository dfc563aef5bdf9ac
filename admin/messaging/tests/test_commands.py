"""resync_products, check_drift and the dlq helpers."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.management.commands import check_drift
from messaging.models import OutboxEvent
from products.models import Product

pytestmark = pytest.mark.django_db


def make_products():
    a = Product.objects.create(title="A", image="https://x/a.png", version=3, likes=2)
    b = Product.objects.create(title="B", image="https://x/b.png", version=1)
    return a, b


def test_resync_enqueues_an_update_per_product_then_a_snapshot():
    a, b = make_products()
    call_command("resync_products", stdout=StringIO())
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [r.event_type for r in rows] == [
        "product.updated",
        "product.updated",
        "catalogue.snapshot",
    ]
    assert json.loads(rows[0].payload)["data"] == {
        "id": a.pk,
        "title": "A",
        "image": "https://x/a.png",
        "version": 3,
    }
    assert json.loads(rows[2].payload)["data"] == {"ids": [a.pk, b.pk], "max_id": b.pk}
    assert all(r.published_at is None for r in rows)


def test_resync_of_an_empty_catalogue_still_sends_a_snapshot():
    from messaging.management.commands.resync_products import highest_allocated_id

    call_command("resync_products", stdout=StringIO())
    row = OutboxEvent.objects.get()
    # Ids other tests allocated (and gave up) are still covered.
    assert json.loads(row.payload)["data"] == {"ids": [], "max_id": highest_allocated_id()}


def test_the_snapshot_covers_ids_allocated_above_the_highest_live_product():
    a, b = make_products()
    gone = Product.objects.create(title="C", image="https://x/c.png")
    # Deleted without an event reaching main (lost delete): main may still hold a replica of it.
    Product.objects.filter(pk=gone.pk).delete()
    call_command("resync_products", stdout=StringIO())
    snapshot = OutboxEvent.objects.get(event_type="catalogue.snapshot")
    assert json.loads(snapshot.payload)["data"] == {"ids": [a.pk, b.pk], "max_id": gone.pk}


def test_a_forced_resync_sends_version_2_with_force():
    a, _ = make_products()
    out = StringIO()
    call_command("resync_products", "--force", stdout=out)
    assert "product.updated events (forced)" in out.getvalue()
    first = json.loads(OutboxEvent.objects.order_by("id").first().payload)
    assert (first["version"], first["data"]) == (
        2,
        {"id": a.pk, "title": "A", "image": "https://x/a.png", "version": 3, "force": True},
    )
    snapshot = OutboxEvent.objects.get(event_type="catalogue.snapshot")
    assert json.loads(snapshot.payload)["version"] == 1


def main_view(products):
    return [
        {
            "id": p.pk,
            "title": p.title,
            "image": p.image,
            "likes": p.likes,
            "liked": False,
        }
        for p in products
    ]


def test_check_drift_passes_when_main_matches(monkeypatch):
    products = make_products()
    monkeypatch.setattr(check_drift, "fetch_main_products", lambda url, timeout: main_view(products))
    out = StringIO()
    call_command("check_drift", "--main-url", "http://main", stdout=out)
    assert "OK: 2 products" in out.getvalue()


def test_check_drift_reports_each_difference_and_fails(monkeypatch):
    a, b = make_products()
    view = main_view([a])
    view[0]["likes"] = 9
    view.append({"id": 999, "title": "ghost", "image": "", "likes": 0})
    monkeypatch.setattr(check_drift, "fetch_main_products", lambda url, timeout: view)
    out = StringIO()
    with pytest.raises(CommandError) as info:
        call_command("check_drift", "--main-url", "http://main", stdout=out)
    assert info.value.returncode == 1
    text = out.getvalue()
    assert f"product {b.pk}: in admin, missing in main" in text
    assert "product 999: in main, missing in admin" in text
    assert f"product {a.pk}: likes admin=2 main=9" in text


def positioned_view(products, **overrides):
    """main's list with the positions it reports (version, likes_seq), overridden per field."""
    return [
        {**row, "version": p.version, "likes_seq": p.likes_seq, **overrides}
        for row, p in zip(main_view(products), products, strict=True)
    ]


def _drift(admin_fields: dict, main_fields: dict) -> tuple[list[str], int]:
    product = Product.objects.create(**{"title": "P", "image": "https://x/p.png", **admin_fields})
    view = positioned_view([product], **main_fields)
    admin_rows = {
        product.pk: {**main_view([product])[0], "version": product.version, "likes_seq": product.likes_seq}
    }
    main_rows = {product.pk: view[0]}
    return check_drift.compare(admin_rows, main_rows), check_drift.count_by_kind(admin_rows, main_rows)[
        "in_flight"
    ]


@pytest.mark.parametrize(
    ("admin_fields", "main_fields", "drift", "in_flight"),
    [
        # likes: compared at equal sequence numbers only
        ({"likes": 2, "likes_seq": 2}, {"likes": 3, "likes_seq": 3}, [], 1),  # a like in flight to admin
        ({"likes": 2, "likes_seq": 3}, {"likes": 3, "likes_seq": 3}, ["likes admin=2 main=3"], 0),
        (
            {"likes": 9, "likes_seq": 9},
            {"likes": 1, "likes_seq": 1},
            ["likes admin=9 main=1"],
            0,
        ),  # main went back
        # title/image: compared at equal versions only
        (
            {"version": 2, "title": "new"},
            {"version": 1, "title": "old"},
            [],
            1,
        ),  # an update in flight to main
        ({"version": 2, "title": "new"}, {"version": 2, "title": "old"}, ["title admin='new' main='old'"], 0),
        ({"version": 2}, {"version": 5}, ["version admin=2 main=5"], 0),  # admin went back
    ],
)
def test_drift_is_a_difference_at_equal_positions_not_an_event_in_flight(
    admin_fields, main_fields, drift, in_flight
):
    problems, moving = _drift(admin_fields, main_fields)
    assert [line.split(": ", 1)[1] for line in problems if any(d in line for d in drift)] == drift
    assert bool(problems) == bool(drift), problems
    assert moving == in_flight


def test_steady_likes_between_the_two_reads_are_not_drift(monkeypatch):
    # main's list is read between two reads of admin. Likes flow main -> admin, so admin's counts
    # must come from the read before main's: here two likes reach admin while main's list is read,
    # and a check that read admin afterwards would see admin ahead of main (seq 7 > 5) and cry drift.
    product = Product.objects.create(title="P", image="https://x/p.png", likes=5, likes_seq=5)
    listed = positioned_view([product])

    def fetch(url, timeout):
        Product.objects.filter(pk=product.pk).update(likes=7, likes_seq=7)
        return listed

    monkeypatch.setattr(check_drift, "fetch_main_products", fetch)
    out = StringIO()
    call_command("check_drift", "--main-url", "http://main", stdout=out)
    assert "OK: 1 products" in out.getvalue()


def test_check_drift_reads_main_over_http(monkeypatch):
    seen = {}

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __init__(self, body, next_cursor):
            self.body, self.headers = body, ({"X-Next-Cursor": next_cursor} if next_cursor else {})

        def read(self):
            return self.body

    pages = [
        (b'[{"id": 1, "title": "t", "image": "", "likes": 0}]', "c1"),
        (b'[{"id": 2, "title": "u", "image": "", "likes": 0}]', None),
    ]

    def fake_urlopen(request, timeout):
        seen.setdefault("urls", []).append(request.full_url)
        return Response(*pages[len(seen["urls"]) - 1])

    monkeypatch.setattr(check_drift.urllib.request, "urlopen", fake_urlopen)
    rows = check_drift.fetch_main_products("http://main:5000/", 3)
    # Every product, a page at a time: main's plain list stops at 1,000.
    assert seen["urls"] == [
        "http://main:5000/flask/api/products?sort=id&limit=1000",
        "http://main:5000/flask/api/products?sort=id&limit=1000&cursor=c1",
    ]
    assert [row["id"] for row in rows] == [1, 2]
    with pytest.raises(CommandError):
        check_drift.fetch_main_products("file:///etc/passwd", 3)
