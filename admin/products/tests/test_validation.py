"""Bad input is a 4xx JSON answer with field errors, never a 500 and never a silent change."""

import json

import pytest

from messaging.models import OutboxEvent
from products.models import Product

pytestmark = pytest.mark.django_db

GOOD = {"title": "Lamp", "image": "https://example.com/lamp.png"}


def post_json(client, body, path="/api/products"):
    return client.generic("POST", path, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": GOOD["image"]}, "title"),
        ({**GOOD, "title": ""}, "title"),
        ({**GOOD, "title": "   "}, "title"),
        ({**GOOD, "title": "x" * 201}, "title"),
        ({**GOOD, "title": 42}, "title"),
        ({**GOOD, "title": 4.2}, "title"),
        ({**GOOD, "title": True}, "title"),
        ({**GOOD, "title": None}, "title"),
        ({**GOOD, "title": ["a"]}, "title"),
        ({**GOOD, "title": {"a": 1}}, "title"),
        ({**GOOD, "title": "nul\x00char"}, "title"),
        ({"title": "Lamp"}, "image"),
        ({**GOOD, "image": ""}, "image"),
        ({**GOOD, "image": "not a url"}, "image"),
        ({**GOOD, "image": "ftp://example.com/x.png"}, "image"),
        ({**GOOD, "image": "javascript:alert(1)"}, "image"),
        ({**GOOD, "image": "https://example.com/" + "a" * 500}, "image"),
        ({**GOOD, "image": 7}, "image"),
        ({**GOOD, "likes": 5}, "likes"),
        ({**GOOD, "id": 99}, "id"),
        ({**GOOD, "version": 9}, "version"),
        ({**GOOD, "colour": "red"}, "colour"),
    ],
)
def test_invalid_create_is_400_with_field_error(staff, body, field):
    response = post_json(staff, body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert field in payload["fields"]
    assert not Product.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_title_of_exactly_200_chars_is_fine(staff):
    assert post_json(staff, {**GOOD, "title": "x" * 200}).status_code == 201


def test_lone_surrogate_title_is_400(staff):
    raw = '{"title": "\\ud800", "image": "https://example.com/x.png"}'
    response = staff.generic("POST", "/api/products", raw, content_type="application/json")
    assert response.status_code == 400
    assert "title" in response.json()["fields"]


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_400(staff, body):
    response = staff.generic("POST", "/api/products", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"title": "a",}', b"\xff\xfe", b"[" * 5000, b'{"title": NaN}'],
)
def test_malformed_json_is_400(staff, raw):
    response = staff.generic("POST", "/api/products", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_non_json_content_type_is_415(staff):
    response = staff.generic(
        "POST",
        "/api/products",
        "title=a&image=b",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_huge_body_is_413(staff, settings):
    body = json.dumps({**GOOD, "title": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    response = staff.generic("POST", "/api/products", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert not Product.objects.exists()


def test_invalid_update_changes_nothing_and_writes_no_event(staff, product):
    before = OutboxEvent.objects.count()
    response = staff.patch(f"/api/products/{product.pk}", {"likes": 100}, format="json")
    assert response.status_code == 400
    assert "likes" in response.json()["fields"]
    product.refresh_from_db()
    assert (product.likes, product.version) == (0, 1)
    assert OutboxEvent.objects.count() == before


def test_put_with_bad_image_is_400(staff, product):
    response = staff.put(f"/api/products/{product.pk}", {"title": "ok", "image": "nope"}, format="json")
    assert response.status_code == 400
    assert "image" in response.json()["fields"]
