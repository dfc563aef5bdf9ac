"""GET /flask/api/products."""

URL = "/flask/api/products"


def test_lists_live_products_in_id_order_with_likes_and_liked(client, add_product):
    add_product(3, title="Third", image="http://img/3.png", likes=7)
    add_product(1, title="First")
    add_product(2, title="Gone", deleted=True)

    response = client.get(URL)

    assert response.status_code == 200
    assert response.get_json() == [
        {"id": 1, "title": "First", "image": "", "likes": 0, "liked": False, "version": 1, "likes_seq": 0},
        {
            "id": 3,
            "title": "Third",
            "image": "http://img/3.png",
            "likes": 7,
            "liked": False,
            "version": 1,
            "likes_seq": 0,
        },
    ]


def test_liked_is_per_shopper(app, client, add_product):
    add_product(1)
    add_product(2)
    assert client.post("/flask/api/products/2/like").status_code == 200

    mine = {p["id"]: p for p in client.get(URL).get_json()}
    other = {p["id"]: p for p in app.test_client().get(URL).get_json()}

    assert (mine[1]["liked"], mine[2]["liked"], mine[2]["likes"]) == (False, True, 1)
    assert (other[1]["liked"], other[2]["liked"], other[2]["likes"]) == (
        False,
        False,
        1,
    )


def test_empty_replica_lists_nothing(client):
    response = client.get(URL)
    assert response.status_code == 200
    assert response.get_json() == []
