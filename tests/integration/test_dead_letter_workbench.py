"""The dead-letter workbench across the services: a poison lands, is understood, its cause is fixed, it is retried.

Real processes, RabbitMQ and MariaDB. main's replica is given a fault a bad deploy could leave (a
trigger refusing long titles, as a column narrowed by a migration would), admin creates a product
main cannot store, and the event is dead-lettered with why. A staff operator finds it through
main's API with a token admin signed, fixes the cause, retries the group, and the event is applied
exactly once. admin's own queue is worked through admin's API, and every action leaves an audit row.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from faults.support import AdminApi, Endpoints, Shop, publish_raw, query, queue_depth

from harness.polling import eventually

TRIGGER = "dlq_test_title_guard"


@pytest.fixture
def ep(stack, db_accounts) -> Endpoints:
    """Return the URLs and databases of the session stack."""
    return Endpoints(stack.admin_url, stack.main_url, db_accounts["admin"].url, db_accounts["main"].url)


@pytest.fixture
def admin(stack):
    """Return an admin API client logged in as the stack's staff user."""
    client = AdminApi(stack.admin_url)
    yield client
    client.close()


@pytest.fixture
def narrow_titles(ep):
    """Make main's product table refuse titles over 40 characters (MySQL's 1406), until the test fixes it."""
    query(ep.main_db, f"DROP TRIGGER IF EXISTS {TRIGGER}")
    query(
        ep.main_db,
        f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON product FOR EACH ROW "
        "BEGIN IF CHAR_LENGTH(NEW.title) > 40 THEN "
        "SIGNAL SQLSTATE '22001' SET MYSQL_ERRNO = 1406, MESSAGE_TEXT = 'Data too long for column title'; "
        "END IF; END",
    )
    yield lambda: query(ep.main_db, f"DROP TRIGGER IF EXISTS {TRIGGER}")
    query(ep.main_db, f"DROP TRIGGER IF EXISTS {TRIGGER}")


def _operator_token(admin: AdminApi) -> str:
    resp = admin.session.post(f"{admin.base}/api/auth/operator-token", timeout=15)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 900
    return body["token"]


class Workbench:
    """One service's dead-letter API."""

    def __init__(self, base: str, session: requests.Session, headers: dict | None = None):
        self.base, self.session, self.headers = base, session, headers or {}

    def get(self, path: str = "", **params) -> requests.Response:
        return self.session.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=30)

    def post(self, action: str, body: dict) -> requests.Response:
        return self.session.post(f"{self.base}/{action}", json=body, headers=self.headers, timeout=30)

    def group_of(self, message_id: str) -> dict:
        """Return the group the message is listed in (fails if it is not listed)."""
        overview = self.get(limit=200).json()
        for group in overview["groups"]:
            page = self.get(fingerprint=group["fingerprint"], limit=200).json()
            if message_id in {r["message_id"] for r in page["results"]}:
                return group
        raise AssertionError(f"{message_id} is in no group: {overview['groups']}")


def _dead_letter_ids(workbench: Workbench) -> set[str]:
    return {r["message_id"] for r in workbench.get(limit=200).json()["results"]}


def _outbox_event_id(ep: Endpoints, product_id: int) -> str:
    rows = query(
        ep.admin_db,
        "SELECT event_id, payload FROM outbox WHERE event_type = 'product.created' ORDER BY id DESC LIMIT 200",
    )
    for event_id, payload in rows:
        if json.loads(payload)["data"]["id"] == product_id:
            return event_id
    raise AssertionError(f"no product.created in admin's outbox for product {product_id}")


def test_a_poison_is_found_by_its_cause_fixed_retried_and_applied_once(stack, ep, admin, narrow_titles):
    token = _operator_token(admin)
    main_letters = Workbench(
        f"{stack.main_url}/flask/api/dead-letters", requests.Session(), {"Authorization": f"Bearer {token}"}
    )
    assert requests.get(f"{stack.main_url}/flask/api/dead-letters", timeout=15).status_code == 401
    before = main_letters.get("/depth").json()["depth"]

    # No word a later browser test looks for by label (Title, Image…): the stack is shared.
    title = f"Hand-thrown stoneware pitcher with a celadon glaze {uuid.uuid4().hex[:8]}"
    created = admin.create(title, "https://example.com/long.png")
    pid = created["id"]
    event_id = _outbox_event_id(ep, pid)
    eventually(
        lambda: event_id in _dead_letter_ids(main_letters), message=f"event {event_id} not in main.dlq"
    )
    assert main_letters.get("/depth").json()["depth"] == before + 1
    assert queue_depth(stack.rabbitmq_url, "main") == 0  # dead-lettered, not stuck at the head
    assert Shop(stack.main_url).product(pid) is None

    # The API says why: the database's error, where the handler raised it, how often.
    group = main_letters.group_of(event_id)
    assert group["reason"] == "handler_error" and group["exception_type"] == "DataError"
    assert "too long" in group["exception_message"]
    # Grouped by the first frame of main's own code, not SQLAlchemy's or the consumer loop's.
    assert group["where"] == "app.messaging.handlers:_insert_or_update"
    assert group["event_types"] == ["product.created"] and group["count"] >= 1
    detail = main_letters.get(f"/{event_id}").json()
    assert detail["payload"]["data"]["title"] == title
    assert detail["attempts"] == 1 and detail["source"] == "consumer" and detail["host"]
    assert detail["headers"]["x-failure-fingerprint"] == group["fingerprint"]
    assert main_letters.get(f"/{uuid.uuid4()}").status_code == 404

    # The cause is fixed, the group is retried: applied exactly once, gone from the queue, audited.
    narrow_titles()
    retried = main_letters.post("retry", {"fingerprint": group["fingerprint"]})
    assert retried.status_code == 200, retried.text
    assert event_id in retried.json()["message_ids"]
    eventually(
        lambda: Shop(stack.main_url).product(pid), message=f"product {pid} not in main after the retry"
    )
    assert query(ep.main_db, "SELECT COUNT(*) FROM inbox WHERE message_id = %s", (event_id,)) == [(1,)]
    assert query(ep.main_db, "SELECT title FROM product WHERE id = %s", (pid,)) == [(title,)]
    assert event_id not in _dead_letter_ids(main_letters)
    assert main_letters.post("retry", {"message_id": event_id}).status_code == 404
    audit = main_letters.get("/audit").json()["results"]
    assert any(a["action"] == "retry" and a["actor"] == "admin" for a in audit), audit
    admin.delete(pid)


def test_admin_archives_a_malformed_like_with_an_audit_record(stack, ep, admin):
    letters = Workbench(f"{stack.admin_url}/api/dead-letters", admin.session)
    assert requests.get(f"{stack.admin_url}/api/dead-letters", timeout=15).status_code in (401, 403)
    message_id = str(uuid.uuid4())
    publish_raw(
        stack.rabbitmq_url,
        "main.events",
        "product.liked",
        b'{"id": "broken',
        message_id=message_id,
        event_type="product.liked",
        app_id="main",
    )
    eventually(
        lambda: message_id in _dead_letter_ids(letters), message="the malformed like never reached admin.dlq"
    )
    group = letters.group_of(message_id)
    assert group["exception_type"] == "InvalidEvent" and group["source"] == "consumer"
    assert letters.post("archive", {"message_id": message_id}).status_code == 400  # why is required
    archived = letters.post("archive", {"message_id": message_id, "reason": "malformed by a test publisher"})
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] == 1
    assert message_id not in _dead_letter_ids(letters)
    rows = query(
        ep.admin_db,
        "SELECT action, actor, reason, body FROM dead_letter_audit WHERE message_id = %s",
        (message_id,),
    )
    assert rows == [("archive", "admin", "malformed by a test publisher", '{"id": "broken')]
