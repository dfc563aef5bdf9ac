"""GET /flask/api/products: search, sort (id, newest, liked), keyset pages, the capped plain list, 400s."""

import pytest

from app import services

URL = "/flask/api/products"


@pytest.fixture
def gallery(add_product):
    rows = [
        (1, "Copper kettle", 3),
        (2, "blue mug", 9),
        (3, "Brass lamp", 0),
        (4, "Copper pan", 9),
        (5, "Oak_stool 100%", 1),
    ]
    for product_id, title, likes in rows:
        add_product(product_id, title=title, likes=likes)
    add_product(6, title="Copper ghost", deleted=True)


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [product["id"] for product in response.get_json()]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [1, 2, 3, 4, 5]),
        ("?sort=id", [1, 2, 3, 4, 5]),
        ("?sort=newest", [5, 4, 3, 2, 1]),
        ("?sort=liked", [4, 2, 1, 5, 3]),  # ties (9 likes): newest first
        ("?search=copper", [1, 4]),  # the deleted one is not listed
        ("?search=MUG", [2]),
        ("?search=100%25", [5]),  # % is a character, not a wildcard
        ("?search=_", [5]),
        ("?search=k_ttle", []),
        ("?search=copper&sort=liked", [4, 1]),
    ],
)
def test_search_and_sort(client, gallery, query, expected):
    assert ids(client.get(URL + query)) == expected


@pytest.mark.parametrize("sort", ["id", "newest", "liked"])
def test_keyset_pages_cover_the_list_once_in_order(client, gallery, sort):
    whole = ids(client.get(f"{URL}?sort={sort}"))
    seen, cursor = [], None
    for _ in range(10):
        response = client.get(f"{URL}?sort={sort}&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += ids(response)
        cursor = response.headers.get("X-Next-Cursor")
        assert "X-Result-Capped" not in response.headers
        if not cursor:
            break
    assert seen == whole


def test_a_like_between_pages_neither_repeats_nor_skips_a_product(client, gallery, add_product):
    first = client.get(f"{URL}?sort=newest&limit=2")
    add_product(7, title="Brand new")  # newer than the cursor: belongs before it, not repeated
    rest = ids(client.get(f"{URL}?sort=newest&limit=10&cursor={first.headers['X-Next-Cursor']}"))
    assert ids(first) == [5, 4] and rest == [3, 2, 1]


def test_without_limit_the_list_stops_at_the_cap_and_says_so(client, add_product, monkeypatch):
    monkeypatch.setattr(services, "MAX_GALLERY_LIST", 3)
    for product_id in range(1, 6):
        add_product(product_id)
    response = client.get(URL)
    assert ids(response) == [1, 2, 3]
    assert response.headers["X-Result-Capped"] == "3"
    assert "X-Next-Cursor" not in response.headers
    assert "X-Result-Capped" not in client.get(URL + "?search=Product 1").headers


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?sort=price", "sort"),
        ("?sort=", "sort"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=-3", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=+5", "limit"),
        ("?limit=1_0", "limit"),
        ("?limit=%C2%B2", "limit"),  # "²": a digit to str.isdigit, not to int()
        ("?limit=%D9%A1", "limit"),  # Arabic-Indic one
        ("?cursor=garbage!!", "cursor"),
        ("?cursor=" + "A" * 300, "cursor"),
        ("?cursor=WyJpZCIsMV0=", "cursor"),  # padded: this list gives cursors out without "="
        ("?search=" + "x" * 201, "search"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(client, gallery, query, parameter):
    response = client.get(URL + query)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_parameter" and parameter in body["fields"]


@pytest.mark.parametrize(
    ("query", "parameter", "message"),
    [
        ("?sort=price", "sort", "Must be one of id, newest, liked."),
        ("?limit=0", "limit", "Must be a whole number, 1..1000."),
        ("?cursor=garbage!!", "cursor", "Not a cursor this list gave out: start again without it."),
        ("?cursor=" + "!" * 300, "cursor", "Not a cursor this list gave out: start again without it."),
        ("?search=" + "x" * 201, "search", "At most 200 characters."),
    ],
)
def test_a_bad_parameter_is_named_with_one_message(client, gallery, query, parameter, message):
    body = client.get(URL + query).get_json()
    assert body == {
        "error": "bad_parameter",
        "detail": f"{parameter}: {message}",
        "fields": {parameter: [message]},
    }


def test_every_bad_parameter_is_named_at_once(client, gallery):
    body = client.get(URL + "?sort=price&limit=0&search=" + "x" * 201).get_json()
    assert body["fields"] == {
        "search": ["At most 200 characters."],
        "sort": ["Must be one of id, newest, liked."],
        "limit": ["Must be a whole number, 1..1000."],
    }
    assert body["detail"] == (
        "search: At most 200 characters. sort: Must be one of id, newest, liked. limit: Must be a whole number, 1..1000."
    )


def test_search_is_trimmed_before_its_length_is_checked(client, gallery):
    assert ids(client.get(URL + "?search=%20Copper%20k%20")) == [1]
    assert client.get(URL + "?search=" + "x" * 200 + "%20%20").status_code == 200


def test_a_cursor_of_another_sort_or_forged_is_refused(client, gallery):
    cursor = client.get(f"{URL}?sort=liked&limit=2").headers["X-Next-Cursor"]
    assert client.get(f"{URL}?sort=newest&limit=2&cursor={cursor}").status_code == 400
    import base64

    forged = base64.urlsafe_b64encode(b'["id", true]').decode().rstrip("=")
    assert client.get(f"{URL}?limit=2&cursor={forged}").status_code == 400
    huge = base64.urlsafe_b64encode(b'["id", 99999999999999999999999]').decode().rstrip("=")
    assert client.get(f"{URL}?limit=2&cursor={huge}").status_code == 400
