"""The OpenAPI document matches the app's routes, and the docs page works offline."""

import re

from openapi_spec_validator import validate

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def app_operations(app):
    operations = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            operations.add((path, method.lower()))
    return operations


def document_operations(document):
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_document_is_valid_openapi_3(client):
    document = client.get("/flask/api/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_route_is_documented_and_every_documented_route_exists(app, client):
    document = client.get("/flask/api/openapi.json").get_json()
    assert app_operations(app) == document_operations(document)


def test_docs_page_loads_swagger_ui_from_this_service(client):
    page = client.get("/flask/api/docs")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/flask/api/openapi.json" in html
    for asset in re.findall(r'(?:src|href)="(/flask/api/docs/assets/[^"]+)"', html):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.data) > 1000
        response.close()


def test_docs_assets_refuse_paths_outside_the_bundle(client):
    assert client.get("/flask/api/docs/assets/../__init__.py").status_code == 404
    assert client.get("/flask/api/docs/assets/nope.js").status_code == 404
