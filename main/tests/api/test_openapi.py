"""The OpenAPI document matches the app's routes, and the docs page works offline."""

import re

import pytest
from openapi_spec_validator import validate

IGNORED_METHODS = {"HEAD", "OPTIONS"}
LIKE_ANSWERS = {"200", "400", "403", "404", "405", "413", "429"}


def rule_operations(rule):
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    return {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}


def app_operations(app, blueprint=None):
    return {
        operation
        for rule in app.url_map.iter_rules()
        if blueprint is None or rule.endpoint.startswith(f"{blueprint}.")
        for operation in rule_operations(rule)
    }


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


def test_every_route_of_the_blueprint_is_an_operation_with_its_answers(app, client):
    document = client.get("/flask/api/openapi.json").get_json()
    operations = app_operations(app, blueprint="api")

    assert operations
    missing = {op for op in operations if op[1] not in document["paths"].get(op[0], {})}
    assert not missing, f"routes missing from the OpenAPI document: {sorted(missing)}"
    for path, method in operations:
        operation = document["paths"][path][method]
        assert operation["operationId"] and operation["responses"], (path, method)


def test_a_route_without_an_openapi_docstring_is_missing_from_the_document(database_url):
    from tests.conftest import make_app

    app = make_app(database_url)
    app.add_url_rule("/flask/api/undocumented", "api.undocumented", lambda: "")

    document = app.test_client().get("/flask/api/openapi.json").get_json()
    assert ("/flask/api/undocumented", "get") in app_operations(app) - document_operations(document)


def test_the_gallery_parameters_are_documented_with_their_constraints(client):
    operation = client.get("/flask/api/openapi.json").get_json()["paths"]["/flask/api/products"]["get"]
    query = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}

    assert query == {
        "search": {"type": "string", "maxLength": 200, "default": ""},
        "sort": {"type": "string", "enum": ["id", "newest", "liked"], "default": "id"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        "cursor": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9_-]+$"},
    }
    headers = operation["responses"]["200"]["headers"]
    assert set(headers) == {"Set-Cookie", "X-Next-Cursor", "X-Result-Capped"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/flask/api/products", "get", {"200", "400", "414"}),
        ("/flask/api/products/{product_id}/like", "post", LIKE_ANSWERS),
        ("/flask/api/products/{product_id}/like", "delete", LIKE_ANSWERS),
        ("/flask/api/ready", "get", {"200", "503"}),
        ("/flask/api/docs/assets/{filename}", "get", {"200", "404"}),
    ],
)
def test_each_operation_documents_its_answers(client, path, method, statuses):
    document = client.get("/flask/api/openapi.json").get_json()
    responses = document["paths"][path][method]["responses"]

    assert set(responses) == statuses
    for status, response in responses.items():
        if "$ref" in response:
            response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        if status == "429":
            assert "Retry-After" in response["headers"]
        if status.startswith("4") and status != "414":
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


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
