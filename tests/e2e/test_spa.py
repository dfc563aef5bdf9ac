"""The SPA end to end: a real Chromium drives the built app, served by `vite preview` in front of
the real admin and main services (MariaDB, RabbitMQ). Outcomes that travel over the broker are
polled with a deadline."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from harness.polling import eventually
from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME

from .conftest import AdminApi, image_url

NewContext = Callable[..., BrowserContext]
MakeProduct = Callable[[str, str], dict]


def unique(title: str) -> str:
    """Return a product title no other test (or earlier run on the same databases) uses."""
    return f"{title} {uuid.uuid4().hex[:6]}"


def card(page: Page, title: str):
    """Return the gallery card of a product."""
    return page.get_by_role("article", name=title, exact=True)


def admin_likes(admin_api: AdminApi, product_id: int) -> int:
    """Return the like count the admin service has for a product."""
    resp = admin_api.get(product_id)
    resp.raise_for_status()
    return resp.json()["likes"]


def sign_in(page: Page, start: str = "/admin/products") -> None:
    """Open an admin page, get sent to /login, sign in and come back."""
    page.goto(start)
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill(ADMIN_USERNAME)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(start) + "$"))


def test_a_shoppers_like_reaches_the_admin_count(
    new_context: NewContext, admin_api: AdminApi, make_product: MakeProduct
) -> None:
    title = unique("Copper kettle")
    product = make_product(title, image_url("kettle"))
    page = new_context().new_page()
    page.goto("/")

    item = card(page, title)
    expect(item).to_be_visible()  # arrived in the shop over RabbitMQ, shown by polling
    expect(item.get_by_test_id("like-count")).to_have_text("0 likes")
    item.get_by_role("button", name=f"Like {title}").click()

    expect(item.get_by_test_id("like-count")).to_have_text(re.compile(r"^1 like"))
    expect(item.get_by_role("button", name=f"Unlike {title}")).to_be_visible()
    eventually(
        lambda: admin_likes(admin_api, product["id"]) == 1,
        timeout=30,
        message="admin likes == 1",
    )

    # The like belongs to this shopper: after a reload it is still shown as liked, still 1.
    page.reload()
    expect(card(page, title).get_by_role("button", name=f"Unlike {title}")).to_be_visible()
    expect(card(page, title).get_by_test_id("like-count")).to_have_text(re.compile(r"^1 like"))
    assert admin_likes(admin_api, product["id"]) == 1


def test_a_second_shopper_makes_the_count_two(
    new_context: NewContext, admin_api: AdminApi, make_product: MakeProduct
) -> None:
    title = unique("Linen apron")
    product = make_product(title, image_url("apron"))

    for shopper in range(2):
        page = new_context().new_page()  # a new browser context is a new shopper cookie
        page.goto("/")
        item = card(page, title)
        expect(item.get_by_role("button", name=f"Like {title}")).to_be_visible()
        item.get_by_role("button", name=f"Like {title}").click()
        expect(item.get_by_role("button", name=f"Unlike {title}")).to_be_visible()
        expected = shopper + 1
        eventually(
            lambda expected=expected: admin_likes(admin_api, product["id"]) == expected,
            timeout=30,
            message=f"admin likes == {expected}",
        )

    # Anyone opening the gallery now sees both likes.
    page = new_context().new_page()
    page.goto("/")
    expect(card(page, title).get_by_test_id("like-count")).to_have_text("2 likes")


def test_an_admin_creates_edits_and_deletes_a_product(new_context: NewContext, admin_api: AdminApi) -> None:
    context = new_context()
    admin = context.new_page()
    sign_in(admin)

    # A shopper watching the gallery, never reloading.
    gallery = new_context().new_page()
    gallery.goto("/")
    expect(gallery.get_by_role("heading", name="Products")).to_be_visible()

    title = unique("Walnut tray")
    admin.get_by_role("link", name="New product").first.click()
    admin.get_by_label("Title").fill(title)
    admin.get_by_label("Image URL").fill(image_url("tray"))
    admin.get_by_role("button", name="Create product").click()
    expect(admin.get_by_text(f"Created “{title}”.")).to_be_visible()
    expect(admin).to_have_url(re.compile(r"/admin/products$"))
    expect(admin.get_by_role("cell", name=title, exact=True)).to_be_visible()
    expect(card(gallery, title)).to_be_visible()

    renamed = unique("Oak tray")
    admin.get_by_role("link", name=f"Edit {title}").click()
    expect(admin.get_by_label("Title")).to_have_value(title)
    admin.get_by_label("Title").fill(renamed)
    admin.get_by_role("button", name="Save changes").click()
    expect(admin.get_by_text(f"Saved “{renamed}”.", exact=False)).to_be_visible()
    expect(admin.get_by_role("cell", name=renamed, exact=True)).to_be_visible()
    expect(card(gallery, renamed)).to_be_visible()
    expect(card(gallery, title)).to_have_count(0)
    product = admin_api.find(renamed)
    assert product is not None and product["version"] == 2

    admin.get_by_role("button", name=f"Delete {renamed}").click()
    dialog = admin.get_by_role("alertdialog", name="Delete product?")
    expect(dialog).to_contain_text(renamed)
    dialog.get_by_role("button", name="Delete").click()
    expect(admin.get_by_text(f"Deleted “{renamed}”.")).to_be_visible()
    expect(admin.get_by_role("cell", name=renamed, exact=True)).to_have_count(0)
    assert admin_api.get(product["id"]).status_code == 404
    expect(card(gallery, renamed)).to_have_count(0)
    # Disappearing is not an error.
    expect(gallery.get_by_role("alert")).to_have_count(0)

    admin.get_by_role("button", name="Sign out").click()
    expect(admin).to_have_url(re.compile(r"/login$"))
    admin.goto("/admin/products")
    expect(admin).to_have_url(re.compile(r"/login$"))


def test_invalid_product_input_shows_the_errors(new_context: NewContext, admin_api: AdminApi) -> None:
    page = new_context().new_page()
    sign_in(page, "/admin/products/create")

    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_text("Title is required.")).to_be_visible()
    expect(page.get_by_text("Image URL is required.")).to_be_visible()
    expect(page.get_by_label("Title")).to_be_focused()

    page.get_by_label("Title").fill("x" * 201)
    page.get_by_label("Image URL").fill("ftp://files.example.com/a.png")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_text("Title must be at most 200 characters (it has 201).")).to_be_visible()
    expect(page.get_by_text("Enter a full http:// or https:// URL.")).to_be_visible()

    # The browser accepts a host without a dot; Django's URL validator does not: its message shows.
    title = unique("Rejected")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Image URL").fill("http://intranet/picture.png")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_label("Image URL")).to_have_attribute("aria-invalid", "true")
    # The message is the server's (the client's own wording is "Enter a full http:// ...").
    expect(page.get_by_text(re.compile(r"^Enter a valid (http or https )?URL\.$"))).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/admin/products/create$"))
    assert admin_api.find(title) is None


def page_width(page: Page) -> int:
    """Return how wide the document is, to catch horizontal scrolling."""
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_pages_fit_a_phone_screen(new_context: NewContext, make_product: MakeProduct) -> None:
    title = unique("Pocket knife")
    make_product(title, image_url("knife"))
    page = new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True).new_page()

    page.goto("/")
    expect(card(page, title)).to_be_visible()
    assert page_width(page) <= 375

    sign_in(page)
    expect(page.get_by_role("cell", name=title, exact=True)).to_be_visible()
    assert page_width(page) <= 375
    page.get_by_role("link", name=f"Edit {title}").click()
    expect(page.get_by_label("Title")).to_have_value(title)
    assert page_width(page) <= 375
