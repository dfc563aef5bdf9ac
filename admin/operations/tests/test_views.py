"""The dead-letter endpoints against a fake workbench: staff only, strict input, audit rows, 404 and 503."""

import json
import socket

import pytest
import yaml
from rest_framework.test import APIClient

from operations.models import DeadLetterAudit
from operations.tests.fakes import letter

pytestmark = pytest.mark.django_db
BASE = "/api/dead-letters"
GROUP_A, GROUP_B = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


@pytest.fixture
def three(letters):
    """Two letters in group A (one older), one in group B."""
    letters.letters = [
        letter("m-1", GROUP_A, at="2026-12-06T10:00:00+00:00"),
        letter("m-2", GROUP_A, at="2026-12-06T12:00:00+00:00"),
        letter("m-3", GROUP_B, type_="product.created", body="{not json"),
    ]
    return letters


def assert_invalid(response, *fields):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid" and body["detail"]
    for name in fields:
        assert name in body["fields"], body
    return body


# ----- who may -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", BASE, None),
        ("get", f"{BASE}/depth", None),
        ("get", f"{BASE}/m-1", None),
        ("get", f"{BASE}/audit", None),
        ("post", f"{BASE}/retry", {"message_id": "m-1"}),
        ("post", f"{BASE}/discard", {"message_id": "m-1", "reason": "x"}),
        ("post", f"{BASE}/archive", {"message_id": "m-1", "reason": "x"}),
    ],
)
def test_only_staff_may_use_the_workbench(three, anon, shopper_api, method, path, body):
    anonymous = getattr(anon, method)(path, body, format="json")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"
    shopper = getattr(shopper_api, method)(path, body, format="json")
    assert shopper.status_code == 403 and shopper.json()["error"] == "permission_denied"
    assert three.calls == [] and len(three.letters) == 3
    assert not DeadLetterAudit.objects.exists()


def test_a_session_needs_the_csrf_token_to_change_anything(three, staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get(f"{BASE}/depth").status_code == 200  # reads need none
    refused = client.post(f"{BASE}/discard", {"message_id": "m-1", "reason": "x"}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert len(three.letters) == 3

    csrf = client.get("/api/auth/csrf").json()["csrf_token"]
    done = client.post(
        f"{BASE}/discard", {"message_id": "m-1", "reason": "x"}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert done.status_code == 200 and done.json() == {"discarded": 1, "message_ids": ["m-1"]}


# ----- looking --------------------------------------------------------------------------------------
def test_depth(three, staff_api):
    response = staff_api.get(f"{BASE}/depth")
    assert response.status_code == 200
    assert response.json() == {"queue": "admin.dlq", "depth": 3}


def test_overview_groups_and_pages(three, staff_api):
    response = staff_api.get(BASE, {"fingerprint": GROUP_A, "limit": 1, "offset": 1})
    assert response.status_code == 200, response.content
    body = response.json()
    assert three.calls[-1] == ("overview", {"fingerprint": GROUP_A, "limit": 1, "offset": 1})
    assert {g["fingerprint"]: g["count"] for g in body["groups"]} == {GROUP_A: 2, GROUP_B: 1}
    assert body["count"] == 2 and [r["message_id"] for r in body["results"]] == [
        "m-1"
    ]  # newest first, page 2

    defaults = staff_api.get(f"{BASE}/")
    assert defaults.status_code == 200
    assert three.calls[-1] == ("overview", {"fingerprint": None, "limit": 50, "offset": 0})


def test_a_fingerprint_in_capitals_is_the_same_group(three, staff_api):
    staff_api.get(BASE, {"fingerprint": GROUP_A.upper()})
    assert three.calls[-1][1]["fingerprint"] == GROUP_A


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1e9"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"fingerprint": "xyz"}, "fingerprint"),
        ({"fingerprint": "g" * 16}, "fingerprint"),
        ({"fingerprint": "a" * 5000}, "fingerprint"),
        ({"fingerprnt": GROUP_A}, "fingerprnt"),  # a typo is not silently a full listing
    ],
)
def test_bad_overview_queries_are_400_naming_the_parameter(three, staff_api, query, field):
    assert_invalid(staff_api.get(BASE, query), field)
    assert three.calls == []


def test_show_one(three, staff_api):
    response = staff_api.get(f"{BASE}/m-3")
    assert response.status_code == 200
    body = response.json()
    assert body["message_id"] == "m-3" and body["payload"] is None and body["body"] == "{not json"
    assert body["headers"]["x-failure-fingerprint"] == GROUP_B and body["x_death"] == []


def test_an_unknown_message_is_404(three, staff_api):
    response = staff_api.get(f"{BASE}/no-such-id")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "no dead letter no-such-id in admin.dlq"}


def test_a_message_id_too_long_is_400(three, staff_api):
    assert_invalid(staff_api.get(f"{BASE}/{'x' * 256}"), "message_id")
    assert three.calls == []


# ----- retry ------------------------------------------------------------------------------------------
def test_retry_one_writes_an_audit_row_with_its_type_and_group(three, staff_api):
    response = staff_api.post(f"{BASE}/retry", {"message_id": "m-3"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"matched": 1, "retried": 1, "depth": 3, "message_ids": ["m-3"]}
    row = DeadLetterAudit.objects.get()
    assert (row.action, row.message_id, row.event_type, row.fingerprint, row.actor, row.reason) == (
        "retry",
        "m-3",
        "product.created",
        GROUP_B,
        "staff",
        "",
    )
    assert row.body is None and row.headers is None


def test_retry_a_group_writes_a_row_per_message(three, staff_api):
    response = staff_api.post(
        f"{BASE}/retry", {"fingerprint": GROUP_A, "reason": "bug fixed in 1.4"}, format="json"
    )
    assert response.status_code == 200
    assert sorted(response.json()["message_ids"]) == ["m-1", "m-2"]
    rows = DeadLetterAudit.objects.order_by("message_id")
    assert [(r.action, r.message_id, r.fingerprint, r.reason) for r in rows] == [
        ("retry", "m-1", GROUP_A, "bug fixed in 1.4"),
        ("retry", "m-2", GROUP_A, "bug fixed in 1.4"),
    ]
    assert [x["message_id"] for x in three.letters] == ["m-3"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ("message_id", "fingerprint")),
        ({"message_id": "m-1", "fingerprint": GROUP_A}, ("message_id", "fingerprint")),
        ({"message_id": 123}, ("message_id",)),
        ({"message_id": None}, ("message_id",)),
        ({"message_id": ["m-1"]}, ("message_id",)),
        ({"message_id": {"$ne": ""}}, ("message_id",)),
        ({"message_id": ""}, ("message_id",)),
        ({"message_id": "x" * 256}, ("message_id",)),
        ({"fingerprint": True}, ("fingerprint",)),
        ({"fingerprint": "not-hex-at-all!!"}, ("fingerprint",)),
        ({"message_id": "m-1", "reason": 5}, ("reason",)),
        ({"message_id": "m-1", "reason": "r" * 501}, ("reason",)),
        ({"message_id": "m-1", "force": True}, ("force",)),
        ([{"message_id": "m-1"}], ("non_field_errors",)),
        ("m-1", ("non_field_errors",)),
    ],
)
def test_bad_retry_bodies_are_400_and_touch_nothing(three, staff_api, body, fields):
    assert_invalid(staff_api.post(f"{BASE}/retry", body, format="json"), *fields)
    assert three.calls == [] and len(three.letters) == 3
    assert not DeadLetterAudit.objects.exists()


def test_retry_of_an_unknown_group_is_404_without_audit(three, staff_api):
    response = staff_api.post(f"{BASE}/retry", {"fingerprint": "0" * 16}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not DeadLetterAudit.objects.exists()
    unknown_message = staff_api.post(f"{BASE}/retry", {"message_id": "nope"}, format="json")
    assert unknown_message.status_code == 404
    assert not DeadLetterAudit.objects.exists()


# ----- discard and archive ------------------------------------------------------------------------
def test_discard_keeps_who_and_why_but_no_copy(three, staff_api):
    response = staff_api.post(
        f"{BASE}/discard", {"fingerprint": GROUP_A, "reason": "test data"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["discarded"] == 2 and sorted(response.json()["message_ids"]) == ["m-1", "m-2"]
    rows = list(DeadLetterAudit.objects.order_by("message_id"))
    assert [(r.action, r.message_id, r.event_type, r.actor, r.reason) for r in rows] == [
        ("discard", "m-1", "product.liked", "staff", "test data"),
        ("discard", "m-2", "product.liked", "staff", "test data"),
    ]
    assert all(r.body is None and r.headers is None for r in rows)
    assert [x["message_id"] for x in three.letters] == ["m-3"]


def test_archive_keeps_the_body_and_headers_with_x_death(three, staff_api):
    three.letters[2]["x_death"] = [{"queue": "admin", "reason": "rejected", "count": 1}]
    response = staff_api.post(
        f"{BASE}/archive", {"message_id": "m-3", "reason": "kept for the post-mortem"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"archived": 1, "message_ids": ["m-3"]}
    row = DeadLetterAudit.objects.get()
    assert (row.action, row.message_id, row.fingerprint, row.reason) == (
        "archive",
        "m-3",
        GROUP_B,
        "kept for the post-mortem",
    )
    assert row.body == "{not json"
    assert row.headers["x-failure-fingerprint"] == GROUP_B
    assert row.headers["x-death"] == [{"queue": "admin", "reason": "rejected", "count": 1}]


@pytest.mark.parametrize("action", ["discard", "archive"])
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"message_id": "m-1"}, ("reason",)),
        ({"message_id": "m-1", "reason": ""}, ("reason",)),
        ({"message_id": "m-1", "reason": "   "}, ("reason",)),
        ({"message_id": "m-1", "reason": "r" * 50_000}, ("reason",)),  # huge, under the 64 KiB body limit
        ({"message_id": "m-1", "reason": ["why"]}, ("reason",)),
        ({"reason": "why"}, ("message_id", "fingerprint")),
        ({"message_id": "m-1", "fingerprint": GROUP_A, "reason": "why"}, ("message_id", "fingerprint")),
    ],
)
def test_bad_removal_bodies_are_400_and_touch_nothing(three, staff_api, action, body, fields):
    assert_invalid(staff_api.post(f"{BASE}/{action}", body, format="json"), *fields)
    assert three.calls == [] and len(three.letters) == 3
    assert not DeadLetterAudit.objects.exists()


def test_a_reason_of_500_characters_is_accepted(three, staff_api):
    response = staff_api.post(f"{BASE}/discard", {"message_id": "m-1", "reason": "r" * 500}, format="json")
    assert response.status_code == 200
    assert DeadLetterAudit.objects.get().reason == "r" * 500


def test_discard_of_an_unknown_message_is_404(three, staff_api):
    response = staff_api.post(f"{BASE}/discard", {"message_id": "gone", "reason": "x"}, format="json")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert not DeadLetterAudit.objects.exists()


def test_when_the_audit_cannot_be_written_the_message_stays(three, staff_api, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(DeadLetterAudit.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        staff_api.post(f"{BASE}/discard", {"message_id": "m-1", "reason": "x"}, format="json")
    assert len(three.letters) == 3


# ----- hostile transport ------------------------------------------------------------------------------
def test_malformed_json_is_400(three, staff_api):
    response = staff_api.post(f"{BASE}/retry", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "parse_error"


def test_a_huge_body_is_refused_before_parsing(three, staff_api):
    body = json.dumps({"message_id": "m-1", "reason": "r" * 200_000})
    response = staff_api.post(f"{BASE}/discard", body, content_type="application/json")
    assert response.status_code == 413
    assert len(three.letters) == 3


def test_a_form_body_is_415(three, staff_api):
    response = staff_api.post(f"{BASE}/retry", {"message_id": "m-1"})  # multipart
    assert response.status_code == 415


# ----- the broker down -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", BASE, None),
        ("get", f"{BASE}/depth", None),
        ("get", f"{BASE}/m-1", None),
        ("post", f"{BASE}/retry", {"fingerprint": GROUP_A}),
        ("post", f"{BASE}/archive", {"fingerprint": GROUP_A, "reason": "x"}),
    ],
)
def test_the_broker_down_is_503_saying_what_to_do(three, staff_api, method, path, body):
    three.down = True
    response = getattr(staff_api, method)(path, body, format="json")
    assert response.status_code == 503
    answer = response.json()
    assert answer["error"] == "broker_unavailable"
    assert "try again" in answer["detail"] or "safe in admin.dlq" in answer["detail"]
    assert not DeadLetterAudit.objects.exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_real_workbench_answers_503_when_nothing_listens(staff_api, settings):
    settings.RABBITMQ_URL = f"amqp://guest:guest@127.0.0.1:{_closed_port()}/%2F"  # pragma: allowlist secret
    response = staff_api.get(f"{BASE}/depth")
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
    assert "when RabbitMQ is back" in response.json()["detail"]
    assert "guest" not in response.json()["detail"]  # the URL's credentials are never shown


def test_an_unusable_rabbitmq_url_is_503(staff_api, settings):
    settings.RABBITMQ_URL = "http://not-amqp"
    response = staff_api.get(f"{BASE}/depth")
    assert response.status_code == 503
    assert "RABBITMQ_URL" in response.json()["detail"]


def test_a_selector_the_workbench_refuses_is_400(three, staff_api, monkeypatch):
    def refuse(**kwargs):
        raise ValueError("give exactly one of message_id or fingerprint")

    monkeypatch.setattr(three, "retry", refuse)
    monkeypatch.setattr(three, "show", lambda message_id: {})
    assert_invalid(staff_api.post(f"{BASE}/retry", {"message_id": "m-1"}, format="json"), "non_field_errors")


# ----- audit --------------------------------------------------------------------------------------------
def test_the_audit_lists_newest_first_with_the_archived_flag(three, staff_api):
    staff_api.post(f"{BASE}/retry", {"message_id": "m-1"}, format="json")
    staff_api.post(f"{BASE}/archive", {"message_id": "m-3", "reason": "keep"}, format="json")
    staff_api.post(f"{BASE}/discard", {"message_id": "m-2", "reason": "junk"}, format="json")

    response = staff_api.get(f"{BASE}/audit")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["action"], r["message_id"], r["archived"]) for r in rows] == [
        ("discard", "m-2", False),
        ("archive", "m-3", True),
        ("retry", "m-1", False),
    ]
    assert set(rows[0]) == {
        "id",
        "action",
        "message_id",
        "event_type",
        "fingerprint",
        "actor",
        "reason",
        "at",
        "archived",
    }
    assert "body" not in rows[1]  # the copy stays in the database

    assert [r["message_id"] for r in staff_api.get(f"{BASE}/audit", {"limit": 1}).json()["results"]] == [
        "m-2"
    ]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 201}, {"limit": "all"}, {"offset": 1}])
def test_bad_audit_queries_are_400(staff_api, query):
    assert_invalid(staff_api.get(f"{BASE}/audit", query), next(iter(query)))


# ----- the schema ---------------------------------------------------------------------------------------
def test_the_schema_documents_every_endpoint_and_its_errors(anon):
    schema = yaml.safe_load(anon.get("/api/schema").content)
    paths = schema["paths"]
    for path, method in [
        ("/api/dead-letters", "get"),
        ("/api/dead-letters/depth", "get"),
        ("/api/dead-letters/{message_id}", "get"),
        ("/api/dead-letters/retry", "post"),
        ("/api/dead-letters/discard", "post"),
        ("/api/dead-letters/archive", "post"),
    ]:
        responses = paths[path][method]["responses"]
        assert {"200", "400", "401", "403", "503"} <= set(responses), (path, responses.keys())
    assert "404" in paths["/api/dead-letters/retry"]["post"]["responses"]
    assert {"200", "401", "403", "503"} <= set(paths["/api/auth/operator-token"]["post"]["responses"])
    assert "200" in paths["/api/auth/jwks.json"]["get"]["responses"]
    names = [p["name"] for p in paths["/api/dead-letters"]["get"]["parameters"]]
    assert {"fingerprint", "limit", "offset"} <= set(names)
