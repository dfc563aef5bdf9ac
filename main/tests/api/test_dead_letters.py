"""/flask/api/dead-letters: operator tokens only, bad input is a 400, the broker's answers and the audit trail.

The workbench (eventbus.workbench.DeadLetters) is replaced by a fake holding dead letters in memory;
tests/messaging/test_dead_letters_broker.py runs the same routes against a real RabbitMQ.
"""

import json

import pytest
from eventbus import workbench
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.api.guard import limiter
from app.extensions import db
from app.messaging import topology
from tests.conftest import make_app
from tests.operators import OperatorKey, bearer

BASE = "/flask/api/dead-letters"
FINGERPRINT = "0123456789abcdef"  # pragma: allowlist secret
OTHER_FINGERPRINT = "fedcba9876543210"  # pragma: allowlist secret


def letter(message_id, fingerprint=FINGERPRINT, event_type="product.created", **extra):
    """Return a dead letter's detail as the workbench gives it."""
    return {
        "message_id": message_id,
        "type": event_type,
        "routing_key": event_type,
        "source": "consumer",
        "reason": "handler_error",
        "exception_type": "IntegrityError",
        "exception_message": "boom",
        "where": "app.messaging.handlers:apply",
        "fingerprint": fingerprint,
        "attempts": 1,
        "first_failed_at": "2026-12-06T16:40:00.123456+00:00",
        "last_failed_at": "2026-12-06T16:40:00.123456+00:00",
        "host": "main-1",
        "queue": "main",
        "retried": 0,
        "payload": {"id": message_id},
        "body": json.dumps({"id": message_id}),
        "headers": {"x-failure-reason": "handler_error"},
        "x_death": [],
        **extra,
    }


class FakeWorkbench:
    """What eventbus.workbench.DeadLetters does, in memory; records each call and can be told the broker is down."""

    def __init__(self, app):
        self.app = app
        self.letters = []
        self.calls = []
        self.built_with = []
        self.down = False
        self.committed_at_ack = []

    def __call__(self, params, topology):
        self.built_with.append((params, topology))
        return _FakeDeadLetters(self)


class _FakeDeadLetters:
    def __init__(self, bench):
        self.bench = bench

    def _enter(self, name, **kwargs):
        self.bench.calls.append((name, kwargs))
        if self.bench.down:
            raise workbench.BrokerUnavailable(
                "the broker is unreachable; the dead letters are safe in main.dlq"
            )

    def _match(self, message_id, fingerprint):
        if (message_id is None) == (fingerprint is None):
            raise ValueError("give exactly one of message_id or fingerprint")
        key, value = ("message_id", message_id) if message_id is not None else ("fingerprint", fingerprint)
        chosen = [x for x in self.bench.letters if x[key] == value]
        if not chosen:
            raise workbench.NotFound(f"no dead letter matches {value} in main.dlq")
        return chosen

    def depth(self):
        self._enter("depth")
        return {"queue": "main.dlq", "depth": len(self.bench.letters)}

    def overview(self, fingerprint=None, limit=50, offset=0):
        self._enter("overview", fingerprint=fingerprint, limit=limit, offset=offset)
        chosen = [x for x in self.bench.letters if fingerprint in (None, x["fingerprint"])]
        return {
            "queue": "main.dlq",
            "depth": len(self.bench.letters),
            "scanned": len(self.bench.letters),
            "capped": False,
            "oldest_at": None,
            "groups": [],
            "count": len(chosen),
            "results": chosen[offset : offset + limit],
        }

    def show(self, message_id):
        self._enter("show", message_id=message_id)
        return {**self._match(message_id, None)[0], "copies": 1}

    def retry(self, message_id=None, fingerprint=None, *, record=None):
        self._enter("retry", message_id=message_id, fingerprint=fingerprint)
        chosen = self._match(message_id, fingerprint)
        for x in chosen:
            self.bench.letters.remove(x)
            if record is not None:
                record(x)
        ids = [x["message_id"] for x in chosen]
        return {"matched": len(ids), "retried": len(ids), "depth": len(ids), "message_ids": ids}

    def remove(self, message_id=None, fingerprint=None, *, record):
        self._enter("remove", message_id=message_id, fingerprint=fingerprint)
        removed = []
        for x in self._match(message_id, fingerprint):
            record({**x, "archived_headers": workbench.archived_headers(x)})
            # The audit row must be committed before the message is acked: look from another connection.
            with db.engine.connect() as conn:
                self.bench.committed_at_ack.append(
                    conn.execute(text("SELECT count(*) FROM dead_letter_audit")).scalar_one()
                )
            self.bench.letters.remove(x)
            removed.append(x)
        return removed


@pytest.fixture
def key():
    return OperatorKey()


@pytest.fixture
def ops_app(database_url, key):
    app = make_app(database_url, OPERATOR_JWKS=key.jwks(), CORS_ALLOWED_ORIGINS=["http://localhost:5173"])
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def bench(ops_app, monkeypatch):
    fake = FakeWorkbench(ops_app)
    monkeypatch.setattr(workbench, "DeadLetters", fake)
    return fake


@pytest.fixture
def ops(ops_app, key, bench):
    """A client that sends a staff token with every request."""
    client = ops_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key.token(sub='ops-alice')}"
    return client


def audit_rows(app):
    with app.app_context():
        rows = (
            db.session.execute(
                text(
                    "SELECT action, message_id, event_type, fingerprint, actor, reason, body, headers "
                    "FROM dead_letter_audit ORDER BY id"
                )
            )
            .mappings()
            .all()
        )
        db.session.remove()
    return [dict(row) for row in rows]


# --------------------------------------------------------------------------------------------
# Who may call
# --------------------------------------------------------------------------------------------
def operator_routes(app):
    """Return (method, path) of every route of the blueprint, with a sample message id."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("dead_letters."):
            path = rule.rule.replace("<message_id:message_id>", "m-1")
            routes += [(method, path) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


def test_every_operator_route_needs_a_token(ops_app, bench):
    client = ops_app.test_client()
    routes = operator_routes(ops_app)

    assert len(routes) == 7
    for method, path in routes:
        response = client.open(path, method=method, json={"message_id": "m-1", "reason": "x"})
        assert response.status_code == 401, (method, path)
        assert response.get_json()["error"] == "unauthorized"
        # No credentials sent: a bare challenge, no error code (RFC 6750 section 3).
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="operations"'
    assert bench.calls == []


@pytest.mark.parametrize(
    "authorization",
    ["Basic b3BzOnNlY3JldA==", "Bearer", "Bearer ", "Token abc", "bearer"],  # pragma: allowlist secret
)
def test_other_schemes_or_an_empty_bearer_are_401(ops_app, bench, authorization):
    response = ops_app.test_client().get(f"{BASE}/depth", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="operations"'  # not a bearer token at all
    assert bench.calls == []


def _refused(client, token):
    response = client.get(f"{BASE}/depth", headers=bearer(token))
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="operations", error="invalid_token"'
    return response.get_json()["detail"]


def test_an_expired_token_is_401(ops_app, key, bench):
    import time

    detail = _refused(ops_app.test_client(), key.token(now=time.time() - 3600))

    assert "expired" in detail
    assert bench.calls == []


def test_a_token_signed_by_another_key_is_401(ops_app, key, bench):
    assert "Signature" in _refused(ops_app.test_client(), OperatorKey().token(kid=key.kid))
    assert bench.calls == []


def test_a_token_of_an_unknown_kid_is_401(ops_app, bench):
    assert "unknown kid" in _refused(ops_app.test_client(), OperatorKey().token())
    assert bench.calls == []


def test_hs256_with_the_public_key_as_secret_is_401(ops_app, key, bench):
    import time

    import jwt

    claims = {"iss": "admin", "aud": "operations", "sub": "eve", "staff": True}
    claims |= {"iat": int(time.time()), "exp": int(time.time()) + 60}
    forged = jwt.encode(claims, key.jwk["x"].encode(), algorithm="HS256", headers={"kid": key.kid})

    assert "alg" in _refused(ops_app.test_client(), forged)
    assert bench.calls == []


@pytest.mark.parametrize("claims", [{"aud": "shop"}, {"iss": "evil"}, {"exp": None}, {"sub": None}])
def test_a_token_for_another_audience_or_issuer_or_missing_claims_is_401(ops_app, key, bench, claims):
    _refused(ops_app.test_client(), key.token(**claims))
    assert bench.calls == []


def test_a_non_staff_token_is_403(ops_app, key, bench):
    response = ops_app.test_client().get(f"{BASE}/depth", headers=bearer(key.token(staff=False)))

    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert bench.calls == []


def test_a_staff_token_is_200(ops_app, key, bench):
    response = ops_app.test_client().get(f"{BASE}/depth", headers=bearer(key.token()))

    assert response.status_code == 200
    assert response.get_json() == {"queue": "main.dlq", "depth": 0}


def test_without_keys_the_operations_are_disabled_and_the_shop_is_not(database_url, key, monkeypatch):
    fake = FakeWorkbench(None)
    monkeypatch.setattr(workbench, "DeadLetters", fake)
    client = make_app(database_url).test_client()

    response = client.get(f"{BASE}/depth", headers=bearer(key.token()))

    assert response.status_code == 503
    assert response.get_json()["error"] == "operations_disabled"
    assert "OPERATOR_JWKS" in response.get_json()["detail"]
    assert fake.calls == []
    assert client.get("/flask/api/products").status_code == 200


def test_a_missing_jwks_file_says_which_file(database_url, key, tmp_path):
    path = tmp_path / "jwks.json"
    client = make_app(database_url, OPERATOR_JWKS_FILE=str(path)).test_client()

    response = client.get(f"{BASE}/depth", headers=bearer(key.token()))
    assert response.status_code == 503
    assert str(path) in response.get_json()["detail"]

    path.write_text(key.jwks())  # written later (make run generates it): no restart needed
    assert client.get(f"{BASE}/audit", headers=bearer(key.token())).status_code == 200


def test_the_spa_origin_may_send_the_authorization_header(ops_app, key, bench):
    client = ops_app.test_client()
    preflight = client.options(
        f"{BASE}/retry",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-custom",
        },
    )

    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "content-type"}
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    refused = client.get(f"{BASE}/depth", headers={"Origin": "http://localhost:5173"})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"  # the SPA can read why

    other = client.options(
        f"{BASE}/depth", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in other.headers


def test_shoppers_cors_is_unchanged(ops_app):
    preflight = ops_app.test_client().options(
        "/flask/api/products/1/like",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-custom",
        },
    )

    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Access-Control-Allow-Headers"].lower() == "x-custom"


def test_operators_spend_no_shopper_budget_and_get_no_shopper_cookie(database_url, key, bench, monkeypatch):
    # The limiter is one per process: the default limit set below must not outlive this test.
    monkeypatch.setattr(limiter.limit_manager, "_default_limits", [])
    app = make_app(
        database_url,
        OPERATOR_JWKS=key.jwks(),
        LIKES_RATE_LIMIT="1 per minute",
        NEW_SHOPPER_RATE_LIMIT="1 per minute",
        # A default limit for every route, were one ever added: the operator routes stay exempt.
        RATELIMIT_DEFAULT="10 per minute",
    )
    monkeypatch.setattr(workbench, "DeadLetters", FakeWorkbench(app))
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO product (id, title, image, version, likes, likes_seq, deleted, updated_at)"
                " VALUES (1, 'One', '', 1, 0, 0, 0, '2026-01-01 00:00:00')"
            )
        )
        db.session.commit()
    client = app.test_client()
    for _ in range(30):
        response = client.get(f"{BASE}/depth", headers=bearer(key.token()))
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        assert "X-RateLimit-Limit" not in response.headers
    for _ in range(5):
        assert client.get(f"{BASE}/depth", headers=bearer("garbage")).status_code == 401

    # The one new shopper and the one like this address may have are still there.
    assert client.post("/flask/api/products/1/like").status_code == 200


# --------------------------------------------------------------------------------------------
# What the routes do
# --------------------------------------------------------------------------------------------
def test_the_workbench_is_built_on_mains_queue_with_the_consumers_broker_settings(ops, bench, ops_app):
    ops.get(f"{BASE}/depth")

    ((params, used_topology),) = bench.built_with
    assert used_topology is topology.TOPOLOGY
    assert (params.host, params.port) == ("127.0.0.1", 1)  # conftest's RABBITMQ_URL
    assert params.client_properties == {"connection_name": "main-operations"}


def test_overview_passes_the_page_and_group(ops, bench):
    bench.letters = [letter("m-1"), letter("m-2", OTHER_FINGERPRINT), letter("m-3")]

    body = ops.get(f"{BASE}?fingerprint={FINGERPRINT}&limit=1&offset=1").get_json()

    assert bench.calls == [("overview", {"fingerprint": FINGERPRINT, "limit": 1, "offset": 1})]
    assert body["count"] == 2 and [x["message_id"] for x in body["results"]] == ["m-3"]
    ops.get(BASE)
    assert bench.calls[-1] == ("overview", {"fingerprint": None, "limit": 50, "offset": 0})


def test_show_answers_one_letter_or_404(ops, bench):
    bench.letters = [letter("m-1")]

    shown = ops.get(f"{BASE}/m-1")
    missing = ops.get(f"{BASE}/m-2")

    assert shown.status_code == 200 and shown.get_json()["payload"] == {"id": "m-1"}
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"


def test_retry_answers_the_workbench_result_and_audits_each_message(ops, bench, ops_app):
    bench.letters = [letter("m-1"), letter("m-2"), letter("m-3", OTHER_FINGERPRINT)]

    response = ops.post(f"{BASE}/retry", json={"fingerprint": FINGERPRINT})

    assert response.status_code == 200
    assert response.get_json() == {"matched": 2, "retried": 2, "depth": 2, "message_ids": ["m-1", "m-2"]}
    assert bench.calls == [("retry", {"message_id": None, "fingerprint": FINGERPRINT})]
    rows = audit_rows(ops_app)
    assert [(r["action"], r["message_id"], r["fingerprint"], r["actor"]) for r in rows] == [
        ("retry", "m-1", FINGERPRINT, "ops-alice"),
        ("retry", "m-2", FINGERPRINT, "ops-alice"),
    ]
    assert {r["event_type"] for r in rows} == {"product.created"}  # from each retried letter
    assert all(r["body"] is None and r["headers"] is None for r in rows)

    again = ops.post(f"{BASE}/retry", json={"message_id": "m-3", "reason": "  handler fixed  "})
    assert again.status_code == 200
    assert audit_rows(ops_app)[-1]["reason"] == "handler fixed"


def test_retry_of_nothing_is_404_and_audits_nothing(ops, bench, ops_app):
    response = ops.post(f"{BASE}/retry", json={"message_id": "gone"})

    assert response.status_code == 404
    assert audit_rows(ops_app) == []


def test_discard_audits_who_and_why_before_each_message_is_dropped(ops, bench, ops_app):
    bench.letters = [letter("m-1"), letter("m-2"), letter("m-3", OTHER_FINGERPRINT)]

    response = ops.post(f"{BASE}/discard", json={"fingerprint": FINGERPRINT, "reason": "test data"})

    assert response.status_code == 200
    assert response.get_json() == {"discarded": 2, "message_ids": ["m-1", "m-2"]}
    assert bench.committed_at_ack == [1, 2]
    rows = audit_rows(ops_app)
    assert [(r["action"], r["message_id"], r["event_type"], r["reason"], r["actor"]) for r in rows] == [
        ("discard", "m-1", "product.created", "test data", "ops-alice"),
        ("discard", "m-2", "product.created", "test data", "ops-alice"),
    ]
    assert all(r["body"] is None and r["headers"] is None for r in rows)
    assert [x["message_id"] for x in bench.letters] == ["m-3"]


def test_archive_keeps_the_body_and_headers_with_x_death(ops, bench, ops_app):
    death = [{"reason": "delivery_limit", "queue": "main", "count": 5}]
    bench.letters = [letter("m-1", x_death=death)]

    response = ops.post(f"{BASE}/archive", json={"message_id": "m-1", "reason": "keep for the post-mortem"})

    assert response.get_json() == {"archived": 1, "message_ids": ["m-1"]}
    (row,) = audit_rows(ops_app)
    assert row["action"] == "archive" and row["body"] == json.dumps({"id": "m-1"})
    assert json.loads(row["headers"]) == {"x-failure-reason": "handler_error", "x-death": death}


def test_a_letter_without_id_or_type_is_audited_with_nulls(ops, bench, ops_app):
    bench.letters = [letter(None, event_type=None)]

    response = ops.post(f"{BASE}/discard", json={"fingerprint": FINGERPRINT, "reason": "no id"})

    assert response.get_json() == {"discarded": 1, "message_ids": [None]}
    (row,) = audit_rows(ops_app)
    assert (row["message_id"], row["event_type"]) == (None, None)


def test_a_failed_audit_write_drops_nothing(ops, bench, ops_app, monkeypatch):
    bench.letters = [letter("m-1"), letter("m-2")]
    ops_app.config["PROPAGATE_EXCEPTIONS"] = False

    def database_gone():
        raise OperationalError("COMMIT", {}, Exception("server has gone away"))

    monkeypatch.setattr(db.session, "commit", database_gone)

    response = ops.post(f"{BASE}/discard", json={"fingerprint": FINGERPRINT, "reason": "x"})

    assert response.status_code == 500
    assert [x["message_id"] for x in bench.letters] == ["m-1", "m-2"]
    assert bench.committed_at_ack == []


def test_the_audit_lists_newest_first(ops, bench, ops_app):
    bench.letters = [letter("m-1"), letter("m-2"), letter("m-3")]
    ops.post(f"{BASE}/retry", json={"message_id": "m-1"})
    ops.post(f"{BASE}/discard", json={"message_id": "m-2", "reason": "dup"})
    ops.post(f"{BASE}/archive", json={"message_id": "m-3", "reason": "keep"})

    results = ops.get(f"{BASE}/audit").get_json()["results"]

    assert [(r["action"], r["message_id"], r["archived"]) for r in results] == [
        ("archive", "m-3", True),
        ("discard", "m-2", False),
        ("retry", "m-1", False),
    ]
    assert set(results[0]) == {
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
    assert results[0]["at"].endswith("+00:00") and results[0]["actor"] == "ops-alice"
    assert len(ops.get(f"{BASE}/audit?limit=2").get_json()["results"]) == 2
    assert bench.calls[-1][0] == "remove"  # the audit list never touches the broker


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{BASE}/depth", None),
        ("GET", BASE, None),
        ("GET", f"{BASE}/m-1", None),
        ("POST", f"{BASE}/retry", {"message_id": "m-1"}),
        ("POST", f"{BASE}/discard", {"message_id": "m-1", "reason": "x"}),
        ("POST", f"{BASE}/archive", {"fingerprint": FINGERPRINT, "reason": "x"}),
    ],
)
def test_broker_down_is_503_with_what_to_do(ops, bench, ops_app, method, path, body):
    bench.down = True

    response = ops.open(path, method=method, json=body)

    assert response.status_code == 503
    assert response.get_json()["error"] == "broker_unavailable"
    assert "safe in main.dlq" in response.get_json()["detail"]
    assert response.headers["Retry-After"] == "5"
    assert audit_rows(ops_app) == []


def test_an_unusable_rabbitmq_url_is_503_not_500(database_url, key, monkeypatch):
    app = make_app(database_url, OPERATOR_JWKS=key.jwks(), RABBITMQ_URL="http://not-amqp")

    response = app.test_client().get(f"{BASE}/depth", headers=bearer(key.token()))

    assert response.status_code == 503
    assert "RABBITMQ_URL" in response.get_json()["detail"]


# --------------------------------------------------------------------------------------------
# Hostile input: a 400 that names what is wrong, the workbench never called
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1e3", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=100001", "offset"),
        ("offset=%EF%BC%91", "offset"),  # a fullwidth digit one
        ("fingerprint=XYZ", "fingerprint"),
        ("fingerprint=0123456789ABCDEF", "fingerprint"),  # pragma: allowlist secret
        ("fingerprint=" + "a" * 17, "fingerprint"),
    ],
)
def test_a_bad_list_query_is_400(ops, bench, query, field):
    response = ops.get(f"{BASE}?{query}")

    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid" and list(body["fields"]) == [field]
    assert bench.calls == []


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x"])
def test_a_bad_audit_limit_is_400(ops, bench, query):
    response = ops.get(f"{BASE}/audit?{query}")

    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == ["limit"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["non_field_errors"]),
        ({"message_id": "m-1", "fingerprint": FINGERPRINT}, ["non_field_errors"]),
        ({"message_id": 123}, ["message_id"]),
        ({"message_id": None}, ["message_id"]),
        ({"message_id": ["m-1"]}, ["message_id"]),
        ({"message_id": ""}, ["message_id"]),
        ({"message_id": "m" * 256}, ["message_id"]),
        ({"fingerprint": 1234567890123456}, ["fingerprint"]),
        ({"fingerprint": "not-a-fingerprint"}, ["fingerprint"]),
        ({"message_id": "m-1", "reason": {"why": 1}}, ["reason"]),
        ({"message_id": "m-1", "reason": "r" * 501}, ["reason"]),
        ({"message_id": "m-1", "force": True}, ["force"]),
    ],
)
def test_a_bad_retry_body_is_400(ops, bench, ops_app, body, fields):
    response = ops.post(f"{BASE}/retry", json=body)

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid"
    assert sorted(response.get_json()["fields"]) == fields
    assert bench.calls == [] and audit_rows(ops_app) == []


@pytest.mark.parametrize("action", ["discard", "archive"])
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"message_id": "m-1"}, ["reason"]),
        ({"message_id": "m-1", "reason": ""}, ["reason"]),
        ({"message_id": "m-1", "reason": "   "}, ["reason"]),
        ({"message_id": "m-1", "reason": None}, ["reason"]),
        ({"message_id": "m-1", "reason": 42}, ["reason"]),
        ({"message_id": "m-1", "reason": "r" * 10_000}, ["reason"]),
        ({"message_id": "m-1", "fingerprint": FINGERPRINT, "reason": "x"}, ["non_field_errors"]),
        ({"reason": "x"}, ["non_field_errors"]),
        ({"message_id": 7, "fingerprint": [], "reason": False}, ["fingerprint", "message_id", "reason"]),
    ],
)
def test_a_bad_removal_body_is_400(ops, bench, ops_app, action, body, fields):
    bench.letters = [letter("m-1")]

    response = ops.post(f"{BASE}/{action}", json=body)

    assert response.status_code == 400, response.get_json()
    assert sorted(response.get_json()["fields"]) == fields
    assert bench.calls == [] and audit_rows(ops_app) == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"message_id": "m-1", "reason": "x"}', "text/plain"),
        ("message_id=m-1&reason=x", "application/x-www-form-urlencoded"),
        ("{not json", "application/json"),
        ("", "application/json"),
        ("null", "application/json"),
        ('["m-1"]', "application/json"),
        ('"m-1"', "application/json"),
        ("[" * 30_000 + "]" * 30_000, "application/json"),
        (b"\xff\xfe{", "application/json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(ops, bench, data, content_type):
    response = ops.post(f"{BASE}/discard", data=data, content_type=content_type)

    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid"
    assert bench.calls == []


def test_a_huge_body_is_413(ops, bench):
    response = ops.post(f"{BASE}/discard", json={"message_id": "m-1", "reason": "r" * 100_000})

    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    assert bench.calls == []


def test_a_message_id_too_long_for_amqp_is_404_without_the_broker(ops, bench):
    response = ops.get(f"{BASE}/{'m' * 256}")

    assert response.status_code == 404
    assert bench.calls == []


def test_the_routes_are_documented_with_their_security_and_answers(ops_app):
    document = ops_app.test_client().get("/flask/api/openapi.json").get_json()

    assert document["components"]["securitySchemes"]["operatorToken"]["scheme"] == "bearer"
    for method, path in operator_routes(ops_app):
        path = path.replace("m-1", "{message_id}")
        operation = document["paths"][path][method.lower()]
        assert operation["security"] == [{"operatorToken": []}], path
        assert {"200", "401", "403", "503"} <= set(operation["responses"]), path
        if method == "POST" or "{" not in path and path != f"{BASE}/depth":
            assert "400" in operation["responses"], path
    list_query = {p["name"]: p["schema"] for p in document["paths"][BASE]["get"]["parameters"]}
    assert list_query["limit"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert list_query["fingerprint"]["pattern"] == "^[0-9a-f]{16}$"
