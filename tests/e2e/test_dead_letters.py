"""The dead-letter workbench end to end: poison events land in both services' dead-letter queues
through the real broker, and a staff user handles them on /admin/dead-letters in a real Chromium
(the SPA served by `vite preview` in front of the session's admin and main services).

Each test starts from empty dead-letter queues (earlier tests in the session, the fault tests
above all, leave poison behind on purpose), so the groups and counts on the page are this test's.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
from faults.support import amqp_connection, publish_raw, queue_depth
from playwright.sync_api import BrowserContext, Locator, Page, expect

from harness.polling import eventually
from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME, ServiceSet

from .conftest import SCREENSHOTS, AdminApi, assert_accessible

NewContext = Callable[..., BrowserContext]

DLQS = ("admin.dlq", "main.dlq")
# Without motion, axe never measures a button's colours halfway through Bootstrap's hover transition.
DESKTOP = {"reduced_motion": "reduce"}
PHONE = {**DESKTOP, "viewport": {"width": 375, "height": 740}, "is_mobile": True, "has_touch": True}
# A contract error (a product id that is not a number) groups under its reason on both sides.
GROUP = "InvalidEvent: bad_data"


def _purge(amqp_url: str) -> None:
    with contextlib.closing(amqp_connection(amqp_url)) as conn:
        channel = conn.channel()
        for queue in DLQS:
            channel.queue_purge(queue)


@pytest.fixture
def empty_dlqs(stack: ServiceSet, rabbitmq_url: str) -> Iterator[str]:
    """Empty both dead-letter queues before and after the test; return the AMQP URL."""
    _purge(rabbitmq_url)
    yield rabbitmq_url
    _purge(rabbitmq_url)


def poison_for_main(amqp_url: str) -> str:
    """Publish a product.updated main can never apply (admin -> main); return its message id."""
    return _poison(amqp_url, "admin.events", "product.updated", "admin", {"id": "not-a-number", "title": "x"})


def poison_for_admin(amqp_url: str) -> str:
    """Publish a product.liked admin can never apply (main -> admin); return its message id."""
    return _poison(
        amqp_url, "main.events", "product.liked", "main", {"product_id": "not-a-number", "likes": 1}
    )


def _poison(amqp_url: str, exchange: str, event_type: str, producer: str, data: dict) -> str:
    event = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": "2026-11-22T03:00:00.123456Z",
        "producer": producer,
        "data": data,
    }
    publish_raw(
        amqp_url,
        exchange,
        event_type,
        json.dumps(event).encode(),
        message_id=event["id"],
        event_type=event_type,
        app_id=producer,
    )
    return event["id"]


def wait_dead_lettered(amqp_url: str, queue: str, depth: int) -> None:
    """Wait until the consumer has dead-lettered the poison (the queue holds `depth` messages)."""
    eventually(lambda: queue_depth(amqp_url, queue) == depth, timeout=30, message=f"{queue} depth == {depth}")


def sign_in(page: Page, start: str = "/admin/dead-letters") -> None:
    """Open an admin page, get sent to /login, sign in and come back."""
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill(ADMIN_USERNAME)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


def panel(page: Page, service: str) -> Locator:
    """Return one service's part of the workbench ("Admin service" or "Main service")."""
    return page.get_by_role("region", name=service, exact=True)


def group(page: Page, service: str, title: str = GROUP) -> Locator:
    """Return a group of dead letters in a service's panel."""
    return panel(page, service).get_by_role("article", name=title, exact=True)


def check_accessible(page: Page, where: str) -> None:
    """Run axe-core with the pointer off the page, so no hover colours are measured."""
    page.mouse.move(0, 0)
    assert_accessible(page, where)


def dialog(page: Page, title: str) -> Locator:
    """Return the open confirmation dialog."""
    return page.get_by_role("alertdialog", name=title, exact=True)


def announced(page: Page) -> Locator:
    """Return the live region where the page reports what an action did."""
    return page.get_by_role("status").filter(has_text=re.compile(r"(Retried|Archived|Discarded|refreshed)"))


def operator_token(admin_api: AdminApi) -> str:
    """Return an operator token for main's operations endpoints, issued by admin to the staff user."""
    resp = admin_api.session.post(f"{admin_api.base}/api/auth/operator-token", timeout=15)
    assert resp.status_code == 200, f"operator-token: HTTP {resp.status_code} {resp.text[:300]}"
    return resp.json()["token"]


def audit(base_url: str, session: requests.Session, headers: dict | None = None) -> list[dict]:
    """Return a service's dead-letter audit rows, newest first."""
    resp = session.get(f"{base_url}/audit", params={"limit": 50}, headers=headers or {}, timeout=15)
    assert resp.status_code == 200, f"audit: HTTP {resp.status_code} {resp.text[:300]}"
    return resp.json()["results"]


def test_a_staff_user_retries_archives_and_discards_dead_letters(
    new_context: NewContext, empty_dlqs: str, admin_api: AdminApi, stack: ServiceSet
) -> None:
    amqp_url = empty_dlqs
    to_main = poison_for_main(amqp_url)
    to_admin = poison_for_admin(amqp_url)
    wait_dead_lettered(amqp_url, "main.dlq", 1)
    wait_dead_lettered(amqp_url, "admin.dlq", 1)

    page = new_context(**DESKTOP).new_page()
    sign_in(page, "/admin/products")
    # The navigation offers the workbench while a queue holds anything, with the total.
    nav = page.get_by_role("link", name=re.compile(r"^Dead letters\s*2\s*waiting$"))
    expect(nav).to_be_visible()
    nav.click()
    expect(page).to_have_url(re.compile(r"/admin/dead-letters$"))
    expect(page.get_by_role("heading", level=1, name="Dead letters")).to_be_visible()

    # Both services side by side, each with its group (main's through an operator token).
    main_group = group(page, "Main service")
    admin_group = group(page, "Admin service")
    expect(main_group).to_be_visible()
    expect(admin_group).to_be_visible()
    expect(main_group.get_by_text("1 message", exact=True)).to_be_visible()
    expect(main_group.get_by_text("product.updated", exact=True)).to_be_visible()
    expect(admin_group.get_by_text("product.liked", exact=True)).to_be_visible()
    expect(main_group.get_by_text(re.compile(r"^(just now|\d+ min ago)$")).first).to_be_visible()
    check_accessible(page, "dead letters with groups (desktop)")

    # Main's message in detail: the payload as JSON, the failure headers.
    main_group.get_by_role("button", name="Show messages").click()
    main_group.get_by_role("button", name=f"Show details of message {to_main}").click()
    payload = main_group.get_by_label("Payload")
    expect(payload).to_contain_text('"id": "not-a-number"')
    expect(main_group.get_by_label("Headers")).to_contain_text('"x-failure-reason": "bad_data"')
    check_accessible(page, "dead letter detail (desktop)")

    # Retry it: it goes back to main, still cannot be applied, and comes back with another attempt.
    main_group.get_by_role("button", name="Retry this message").click()
    retry = dialog(page, "Retry 1 message?")
    expect(retry.get_by_role("button", name="Cancel")).to_be_focused()
    check_accessible(page, "retry dialog (desktop)")
    retry.get_by_role("button", name="Retry 1 message").click()
    expect(announced(page)).to_have_text("Retried 1 message from the main service's queue.")
    expect(retry).to_have_count(0)
    wait_dead_lettered(amqp_url, "main.dlq", 1)
    page.get_by_role("button", name="Refresh").click()
    expect(main_group).to_be_visible()
    # The group stays open if the poison was back before the list refreshed.
    toggle = main_group.get_by_role("button", name=re.compile(r"^(Show|Hide) messages$"))
    if toggle.inner_text() == "Show messages":
        toggle.click()
    expect(main_group.get_by_text(re.compile(r"\b[2-9] attempts\b")).first).to_be_visible()

    # Archive main's group: a reason is required, and the count is in the question.
    main_group.get_by_role("button", name="Archive all…").click()
    archive = dialog(page, "Archive 1 message?")
    reason = archive.get_by_label("Why? (required)")
    expect(reason).to_be_focused()
    archive.get_by_role("button", name="Archive 1 message").click()
    expect(archive.get_by_text("Say why, so the audit log explains it.")).to_be_visible()
    reason.fill("e2e: a product id that is not a number can never be applied")
    archive.get_by_role("button", name="Archive 1 message").click()
    expect(announced(page)).to_have_text("Archived 1 message from the main service's queue.")
    expect(panel(page, "Main service").get_by_text(re.compile(r"^No dead letters here"))).to_be_visible()

    # Discard admin's with the keyboard only.
    admin_group.get_by_role("button", name="Discard all…").click()
    discard = dialog(page, "Discard 1 message?")
    page.keyboard.type("e2e: the like of a product that never existed")
    page.keyboard.press("Tab")  # Cancel
    page.keyboard.press("Tab")  # Discard
    page.keyboard.press("Enter")
    expect(announced(page)).to_have_text("Discarded 1 message from the admin service's queue.")
    expect(discard).to_have_count(0)

    # Healthy again: the empty state, and the navigation link is gone.
    expect(page.get_by_text("No dead letters: every event was applied.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Dead letters"))).to_have_count(0)
    check_accessible(page, "dead letters, empty (desktop)")
    assert queue_depth(amqp_url, "main.dlq") == 0
    assert queue_depth(amqp_url, "admin.dlq") == 0

    # Each service audited what was done, by whom and why.
    admin_rows = audit(f"{stack.admin_url}/api/dead-letters", admin_api.session)
    discarded = next(r for r in admin_rows if r["message_id"] == to_admin)
    assert discarded["action"] == "discard"
    assert discarded["actor"] == ADMIN_USERNAME
    assert discarded["reason"] == "e2e: the like of a product that never existed"
    with requests.Session() as session:
        main_rows = audit(
            f"{stack.main_url}/flask/api/dead-letters",
            session,
            {"Authorization": f"Bearer {operator_token(admin_api)}"},
        )
    actions = {r["action"] for r in main_rows if r["message_id"] == to_main}
    assert {"retry", "archive"} <= actions, main_rows[:5]


def test_the_workbench_fits_a_phone_screen(new_context: NewContext, empty_dlqs: str) -> None:
    amqp_url = empty_dlqs
    message_id = poison_for_admin(amqp_url)
    wait_dead_lettered(amqp_url, "admin.dlq", 1)
    page = new_context(**PHONE).new_page()
    sign_in(page)

    item = group(page, "Admin service")
    expect(item).to_be_visible()
    expect(panel(page, "Main service").get_by_text(re.compile(r"^No dead letters here"))).to_be_visible()
    item.get_by_role("button", name="Show messages").click()
    item.get_by_role("button", name=f"Show details of message {message_id}").click()
    expect(item.get_by_label("Payload")).to_contain_text('"product_id": "not-a-number"')
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    retry = item.get_by_role("button", name="Retry this message")
    box = retry.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44, f"retry button {box}"
    check_accessible(page, "dead letter detail (phone)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-dead-letters-phone.png"), full_page=True)

    item.get_by_role("button", name="Discard…").click()
    discard = dialog(page, "Discard 1 message?")
    discard.get_by_label("Why? (required)").fill("e2e: phone check")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    check_accessible(page, "discard dialog (phone)")
    discard.get_by_role("button", name="Discard 1 message").click()
    expect(page.get_by_text("No dead letters: every event was applied.")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    data = (SCREENSHOTS / "admin-dead-letters-phone.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
