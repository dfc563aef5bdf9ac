"""GET /api/products: search, ordering, limit/offset with a total, the capped plain list, 400 on bad input."""

import datetime

import pytest
from django.utils import timezone

from products.catalogue import MAX_LIST, ORDERING_CHOICES
from products.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    """Five products with distinct titles, likes and creation times."""
    rows = [("Copper kettle", 3), ("blue mug", 9), ("Brass lamp", 0), ("Copper pan", 9), ("Oak stool", 1)]
    products = []
    for n, (title, likes) in enumerate(rows):
        product = Product.objects.create(title=title, image=f"https://example.com/{n}.png", likes=likes)
        # created_at is auto_now_add: set distinct times (the newest last) with an update.
        Product.objects.filter(pk=product.pk).update(
            created_at=timezone.now() + datetime.timedelta(minutes=n)
        )
        products.append(product)
    return products


def titles(response):
    assert response.status_code == 200, response.content
    return [product["title"] for product in response.json()]


def test_search_matches_titles_case_insensitively_and_ids(anon, catalogue):
    assert titles(anon.get("/api/products?search=copper")) == ["Copper kettle", "Copper pan"]
    assert titles(anon.get("/api/products?search=MUG")) == ["blue mug"]
    assert titles(anon.get(f"/api/products?search={catalogue[4].pk}")) == ["Oak stool"]
    nothing = anon.get("/api/products?search=zebra")
    assert nothing.json() == [] and nothing["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        # Case-insensitive on every database (SQLite alone would put "blue mug" last).
        ("title", ["blue mug", "Brass lamp", "Copper kettle", "Copper pan", "Oak stool"]),
        ("-title", ["Oak stool", "Copper pan", "Copper kettle", "Brass lamp", "blue mug"]),
        # Ties break on id in the same direction (the (likes, id) index, read backwards).
        ("-likes", ["Copper pan", "blue mug", "Copper kettle", "Oak stool", "Brass lamp"]),
        ("likes", ["Brass lamp", "Oak stool", "Copper kettle", "blue mug", "Copper pan"]),
        ("-created", ["Oak stool", "Copper pan", "Brass lamp", "blue mug", "Copper kettle"]),
        ("-id", ["Oak stool", "Copper pan", "Brass lamp", "blue mug", "Copper kettle"]),
    ],
)
def test_ordering(anon, catalogue, ordering, expected):
    assert titles(anon.get(f"/api/products?ordering={ordering}")) == expected


def test_search_sort_and_page_together_with_the_total(anon, catalogue):
    response = anon.get("/api/products?search=o&ordering=-likes&limit=2&offset=1")
    # "o" matches Copper kettle (3 likes), Copper pan (9) and Oak stool (1); the page skips one.
    assert titles(response) == ["Copper kettle", "Oak stool"]
    assert response["X-Total-Count"] == "3"
    assert "X-Result-Capped" not in response


def test_without_limit_the_plain_list_is_capped_and_says_so(anon):
    Product.objects.bulk_create(
        [Product(title=f"p{n:04}", image="https://example.com/p.png") for n in range(MAX_LIST + 5)]
    )
    response = anon.get("/api/products")
    assert len(response.json()) == MAX_LIST
    assert response["X-Total-Count"] == str(MAX_LIST + 5)
    assert response["X-Result-Capped"] == str(MAX_LIST)
    rest = anon.get(f"/api/products?limit={MAX_LIST}&offset={MAX_LIST}")
    assert len(rest.json()) == 5 and "X-Result-Capped" not in rest


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("ordering=price", "ordering"),
        ("ordering=", "ordering"),
        ("ordering=title,id", "ordering"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("limit=1e3", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("offset=-5", "offset"),
        ("offset=x", "offset"),
        ("search=" + "x" * 201, "search"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(anon, catalogue, query, parameter):
    response = anon.get(f"/api/products?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert parameter in body["fields"]
    assert body["detail"]


def test_every_ordering_choice_is_accepted(anon, catalogue):
    for choice in ORDERING_CHOICES:
        assert anon.get(f"/api/products?ordering={choice}").status_code == 200


def test_the_openapi_document_describes_the_parameters(anon):
    schema = anon.get("/api/schema?format=json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for name in ('"search"', '"ordering"', '"limit"', '"offset"', "X-Result-Capped", '"-created"'):
        assert name in text, name
