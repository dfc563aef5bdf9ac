"""The API documentation works without internet access."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_swagger_ui_page_loads_its_assets_from_this_service(anon):
    page = anon.get("/api/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.content.decode())
    assert assets, "the Swagger UI page names no script or stylesheet"
    for url in assets:
        assert url.startswith("/static/"), f"{url} would need a CDN"
        assert anon.get(url).status_code == 200, url


def test_openapi_schema_is_served(anon):
    response = anon.get("/api/schema", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
