"""Products API: routes, status codes and response shapes."""

import json
import logging

import pytest

from messaging.models import OutboxEvent
from products.models import Product, User

pytestmark = pytest.mark.django_db

PRODUCT_KEYS = {"id", "title", "image", "likes", "version", "created_at", "updated_at"}


def test_list_is_public_and_a_plain_list(anon, product):
    response = anon.get("/api/products")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert set(body[0]) == PRODUCT_KEYS
    assert body[0]["title"] == "Blue mug"


def test_list_with_trailing_slash_works_too(anon, product):
    assert anon.get("/api/products/").status_code == 200
    assert anon.get(f"/api/products/{product.pk}/").status_code == 200


def test_list_pages_only_when_limit_is_given(anon):
    for n in range(5):
        Product.objects.create(title=f"p{n}", image=f"https://example.com/{n}.png")
    everything = anon.get("/api/products")
    assert len(everything.json()) == 5
    page = anon.get("/api/products?limit=2&offset=1")
    assert page.status_code == 200
    assert [p["title"] for p in page.json()] == ["p1", "p2"]
    assert page["X-Total-Count"] == "5"
    assert anon.get("/api/products?limit=nonsense").status_code == 400


def test_create_returns_201_with_version_1(staff):
    response = staff.post(
        "/api/products",
        {"title": "Lamp", "image": "https://example.com/l.png"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == PRODUCT_KEYS
    assert (body["title"], body["likes"], body["version"]) == ("Lamp", 0, 1)
    assert Product.objects.filter(pk=body["id"]).exists()


def test_retrieve(anon, product):
    response = anon.get(f"/api/products/{product.pk}")
    assert response.status_code == 200
    assert response.json()["id"] == product.pk


def test_put_returns_202_and_bumps_version(staff, product):
    response = staff.put(
        f"/api/products/{product.pk}",
        {"title": "Red mug", "image": "https://example.com/red.png"},
        format="json",
    )
    assert response.status_code == 202
    assert (response.json()["title"], response.json()["version"]) == ("Red mug", 2)


def test_patch_returns_202_and_keeps_other_fields(staff, product):
    response = staff.patch(f"/api/products/{product.pk}", {"title": "Green mug"}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["title"], body["image"], body["version"]) == (
        "Green mug",
        "https://example.com/mug.png",
        2,
    )


def test_put_requires_every_writable_field(staff, product):
    response = staff.put(f"/api/products/{product.pk}", {"title": "Only"}, format="json")
    assert response.status_code == 400
    assert "image" in response.json()["fields"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_unknown_product_is_404_even_with_an_invalid_body(staff, method):
    response = getattr(staff, method)("/api/products/999999", {"title": 42}, format="json")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    assert not OutboxEvent.objects.exists()


def test_an_update_with_a_query_string_takes_drfs_own_path(staff, product):
    # The detail lookup applies the list's search, as DRF's update does: no match, no product.
    path = f"/api/products/{product.pk}"
    assert staff.patch(f"{path}?search=kettle", {"title": "Red mug"}, format="json").status_code == 404
    response = staff.patch(f"{path}?search=mug", {"title": "Red mug"}, format="json")
    assert (response.status_code, response.json()["version"]) == (202, 2)


def test_delete_returns_204(staff, product):
    response = staff.delete(f"/api/products/{product.pk}")
    assert response.status_code == 204
    assert not Product.objects.filter(pk=product.pk).exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_unknown_product_is_json_404(staff, method):
    response = getattr(staff, method)(
        "/api/products/999999",
        {"title": "x", "image": "https://e.com/x"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path",
    ["/api/products/abc", "/api/products/-1", "/api/products/" + "9" * 30, "/api/nope"],
)
def test_unknown_routes_are_json_404(anon, path):
    response = anon.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_handler404_answers_json_for_api_paths(rf):
    from config.api import handler404

    response = handler404(rf.get("/api/whatever"), None)
    assert response.status_code == 404
    assert json.loads(response.content)["error"] == "not_found"


def test_random_user_404_when_there_are_none(anon):
    response = anon.get("/api/user")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_random_user_returns_an_existing_id(anon):
    ids = {User.objects.create(name=f"u{n}", email=f"u{n}@example.com").pk for n in range(3)}
    response = anon.get("/api/user")
    assert response.status_code == 200
    assert response.json()["id"] in ids


def test_method_not_allowed_is_json(staff):
    response = staff.delete("/api/products")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_health(anon):
    response = anon.get("/api/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_schema_and_docs(anon):
    schema = anon.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    doc = schema.json()
    assert "/api/products" in doc["paths"]
    assert "202" in doc["paths"]["/api/products/{id}"]["put"]["responses"]
    assert "204" in doc["paths"]["/api/products/{id}"]["delete"]["responses"]
    assert anon.get("/api/docs").status_code == 200


def test_metrics(anon):
    response = anon.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


def _sample(text: str, name: str, **labels) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return None


def test_metrics_show_the_database_at_work(anon, staff, monkeypatch):
    # The Database dashboard's series: django-prometheus's backend wrapper, model mixin, migrations.
    from django.db import connection

    from config import metrics

    monkeypatch.setattr(metrics, "_next_refresh", 0.0)
    staff.post("/api/products", {"title": "A", "image": "https://e.com/a.png"}, format="json")
    text = anon.get("/metrics").content.decode()
    vendor = connection.vendor  # sqlite here, mysql when the suite runs on MariaDB
    assert _sample(text, "django_db_execute_total", vendor=vendor) > 0
    assert _sample(text, "django_db_query_duration_seconds_count", vendor=vendor) > 0
    assert _sample(text, "django_model_inserts_total", model="product") >= 1
    assert _sample(text, "django_model_inserts_total", model="outbox") >= 1
    assert _sample(text, "django_migrations_applied_total") > 0
    assert _sample(text, "django_migrations_unapplied_total") == 0


def test_a_database_that_cannot_be_read_leaves_the_migration_gauges_alone(monkeypatch, caplog):
    from django.db import OperationalError

    from config import metrics

    def unreadable(alias, executor):
        raise OperationalError("database is down")

    caplog.set_level(logging.INFO, logger="config.metrics")
    monkeypatch.setattr(metrics, "_next_refresh", 0.0)
    monkeypatch.setattr(metrics, "ExportMigrationsForDatabase", unreadable)
    metrics.refresh_migration_gauges()  # does not raise
    assert "migration gauges not refreshed: OperationalError" in caplog.text


def test_writes_through_the_api_leave_an_outbox_row_each(staff):
    created = staff.post(
        "/api/products", {"title": "A", "image": "https://e.com/a.png"}, format="json"
    ).json()
    staff.patch(f"/api/products/{created['id']}", {"title": "B"}, format="json")
    staff.delete(f"/api/products/{created['id']}")
    types = list(OutboxEvent.objects.values_list("event_type", flat=True))
    assert types == ["product.created", "product.updated", "product.deleted"]
