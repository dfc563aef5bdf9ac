"""A 1,000-product catalogue in a real Chromium: the admin table's search, sort and pages, the
gallery's search, sort and pages, a new product first and highlighted, a shopper's like seen in the
admin table, axe-core on every page (desktop and phone), and the README's screenshots.

The products are created through admin's API, reach main over RabbitMQ, and are deleted again
after the module so the rest of the session sees the stack as it was.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from faults.support import Shop
from playwright.sync_api import BrowserContext, Page, expect

from harness.polling import eventually
from harness.services import ServiceSet

from .conftest import SCREENSHOTS, AdminApi, assert_accessible, image_url
from .test_spa import card, sign_in

NewContext = Callable[..., BrowserContext]

MATERIALS = ("Walnut", "Ceramic", "Brass", "Linen", "Glass", "Copper", "Oak", "Wool", "Marble", "Cotton")
ITEMS = ("tray", "mug", "lamp", "throw", "vase", "kettle", "stool", "blanket", "bowl", "towel")
SIZE = 1000
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


def catalogue_title(i: int) -> str:
    """Return the i-th seeded title: every material x item pair ten times, "Walnut tray no. 1".."no. 10"."""
    return f"{MATERIALS[i % 10]} {ITEMS[(i // 10) % 10]} no. {i // 100 + 1}"


@pytest.fixture(scope="module")
def catalogue(stack: ServiceSet) -> Iterator[list[dict]]:
    """Create 1,000 products through admin's API, wait until main shows all of them, delete them after."""
    api = AdminApi(stack.admin_url)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        products = list(
            pool.map(
                lambda i: api.create(catalogue_title(i), image_url(f"{ITEMS[(i // 10) % 10]}-{i % 10}")),
                range(SIZE),
            )
        )
    print(f"catalogue: {SIZE} products created in {time.monotonic() - started:.1f} s")
    ids = {p["id"] for p in products}
    shop = Shop(stack.main_url)
    eventually(
        lambda: ids <= {p["id"] for p in shop.products()},
        timeout=120,
        interval=1,
        message=f"main shows all {SIZE} catalogue products",
    )
    print(f"catalogue: all in main after {time.monotonic() - started:.1f} s")
    yield products
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: api.delete(p["id"]), products))
    api.close()


def wait_for_visible_images(page: Page) -> None:
    """Wait until every shown image in the viewport has loaded (lazy or hidden ones never start)."""
    page.wait_for_function(
        "Array.from(document.images).filter((img) => { const r = img.getBoundingClientRect();"
        " return r.width > 0 && r.top < innerHeight }).every((img) => img.complete)"
    )


def query_of(page: Page) -> dict[str, list[str]]:
    """Return the page URL's query parameters."""
    return parse_qs(urlsplit(page.url).query)


def row_titles(page: Page) -> list[str]:
    """Return the titles in the admin table, top to bottom."""
    return page.locator("table.products-table tbody tr td.title-cell").all_inner_texts()


def test_the_admin_table_searches_sorts_and_pages_a_thousand_products(
    new_context: NewContext, catalogue: list[dict]
) -> None:
    page = new_context(**DESKTOP).new_page()
    sign_in(page)
    summary = page.get_by_test_id("list-summary")
    expect(summary).to_have_text(re.compile(r"^1–25 of [\d,]+ products\.$"))
    total = int(re.search(r"of ([\d,]+)", summary.inner_text()).group(1).replace(",", ""))
    assert total >= SIZE
    expect(page.locator("table.products-table tbody tr")).to_have_count(25)
    assert_accessible(page, "admin products (desktop)")

    page.get_by_role("searchbox", name="Search products").fill("no. 7")
    expect(summary).to_have_text("1–25 of 100 products match “no. 7”.")
    assert query_of(page) == {"q": ["no. 7"]}

    page.get_by_role("button", name=re.compile(r"^Title")).click()
    expect(page.get_by_role("columnheader", name=re.compile("Title"))).to_have_attribute(
        "aria-sort", "ascending"
    )
    expect(page.locator("table.products-table tbody tr").first).to_contain_text("Brass blanket no. 7")
    page.get_by_role("button", name=re.compile(r"^Title")).click()
    expect(page.locator("table.products-table tbody tr").first).to_contain_text("Wool vase no. 7")
    assert query_of(page) == {"q": ["no. 7"], "ordering": ["-title"]}

    page.get_by_role("link", name="Next page").click()
    expect(summary).to_have_text("26–50 of 100 products match “no. 7”.")
    page.get_by_role("link", name="Page 4").click()
    expect(summary).to_have_text("76–100 of 100 products match “no. 7”.")
    assert row_titles(page)[-1] == "Brass blanket no. 7"
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)  # the last page

    page.go_back()
    expect(summary).to_have_text("26–50 of 100 products match “no. 7”.")
    page.reload()  # the URL alone holds the state: a shared link opens the same page
    expect(summary).to_have_text("26–50 of 100 products match “no. 7”.")
    expect(page.get_by_role("searchbox", name="Search products")).to_have_value("no. 7")

    page.get_by_label("Rows per page").select_option("100")
    expect(page.locator("table.products-table tbody tr")).to_have_count(100)
    assert query_of(page) == {"q": ["no. 7"], "ordering": ["-title"], "size": ["100"]}


def test_a_new_product_comes_first_highlighted_and_a_shoppers_like_reaches_the_table(
    new_context: NewContext, admin_api: AdminApi, catalogue: list[dict]
) -> None:
    title = f"Teak ladle {int(time.time() * 1000) % 10**8}"
    admin = new_context(**DESKTOP).new_page()
    sign_in(admin, "/admin/products?ordering=title&page=3")
    admin.get_by_role("link", name="New product").click()
    admin.get_by_label("Title").fill(title)
    admin.get_by_label("Image URL").fill(image_url("ladle"))
    admin.get_by_role("button", name="Create product").click()
    expect(admin).to_have_url(re.compile(r"/admin/products$"))
    first = admin.locator("table.products-table tbody tr").first
    expect(first).to_contain_text(title)
    expect(first).to_have_attribute("data-highlighted", "true")
    expect(admin.locator("tr[data-highlighted]")).to_have_count(1)
    product = admin_api.find(title)
    assert product is not None

    shopper = new_context(**DESKTOP).new_page()
    shopper.goto("/")
    item = card(shopper, title)
    expect(item).to_be_visible()  # newest first: the new product opens the gallery
    item.get_by_role("button", name=f"Like {title}").click()
    expect(item.get_by_test_id("like-count")).to_have_text(re.compile(r"^1 like\b"))

    admin.get_by_role("searchbox", name="Search products").fill(title)
    expect(admin.get_by_test_id("list-summary")).to_have_text(f"1 product matches “{title}”.")
    expect(admin.get_by_role("row").filter(has_text=title).get_by_test_id("likes")).to_have_text("1")
    admin_api.delete(product["id"])


def test_the_gallery_searches_sorts_and_loads_more(new_context: NewContext, catalogue: list[dict]) -> None:
    page = new_context(**DESKTOP).new_page()
    page.goto("/")
    cards = page.get_by_role("article")
    expect(cards).to_have_count(24)
    assert_accessible(page, "gallery (desktop)")

    page.get_by_label("Search products").fill("Copper kettle")
    expect(cards).to_have_count(10)
    expect(cards.first).to_have_accessible_name("Copper kettle no. 10")  # newest first
    assert query_of(page) == {"q": ["Copper kettle"]}

    page.get_by_label("Search products").fill("no. 3")
    expect(cards).to_have_count(24)
    page.get_by_role("button", name="Load more").click()
    # Scrolling to the button may also bring the next page in on its own: at least one more page.
    page.wait_for_function("document.querySelectorAll('article').length >= 48")
    titles = [name.get_attribute("aria-label") for name in cards.all()]
    assert len(titles) in (48, 72, 96, 100), len(titles)
    assert len(set(titles)) == len(titles) and all(t.endswith("no. 3") for t in titles), titles

    liked = titles[30]
    card(page, liked).get_by_role("button", name=f"Like {liked}").click()
    expect(card(page, liked).get_by_test_id("like-count")).to_have_text(re.compile(r"^1 like\b"))
    page.get_by_label("Sort by").select_option("liked")
    expect(cards.first).to_have_accessible_name(liked)
    assert query_of(page) == {"q": ["no. 3"], "sort": ["liked"]}
    page.go_back()
    expect(page.get_by_label("Sort by")).to_have_value("newest")

    page.get_by_label("Search products").fill("no such thing anywhere")
    expect(page.get_by_text("No products match", exact=False)).to_be_visible()
    assert_accessible(page, "gallery, no match (desktop)")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_every_page_passes_axe_and_the_readme_screenshots_are_taken(
    new_context: NewContext, catalogue: list[dict], device: str
) -> None:
    options = DESKTOP if device == "desktop" else PHONE
    width = options["viewport"]["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    shopper = new_context(**options).new_page()
    shopper.goto("/")
    expect(shopper.get_by_role("article")).to_have_count(24)
    wait_for_visible_images(shopper)
    assert shopper.evaluate("document.documentElement.scrollWidth") <= width
    like = shopper.get_by_role("button", name=re.compile(r"^Like ")).first
    box = like.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44, f"like button {box}"
    assert_accessible(shopper, f"gallery ({device})")
    shopper.screenshot(path=str(SCREENSHOTS / f"gallery-{device}.png"))

    admin = new_context(**options).new_page()
    admin.goto("/login")
    expect(admin.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(admin, f"sign-in ({device})")
    sign_in(admin)
    expect(admin.locator("table.products-table tbody tr")).to_have_count(25)
    wait_for_visible_images(admin)
    assert admin.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(admin, f"admin products ({device})")
    admin.mouse.move(0, 0)  # no row hover in the picture
    admin.screenshot(path=str(SCREENSHOTS / f"admin-products-{device}.png"))

    admin.get_by_role("link", name="New product").click()
    admin.get_by_role("button", name="Create product").click()
    expect(admin.get_by_text("Title is required.")).to_be_visible()
    assert_accessible(admin, f"new product with errors ({device})")

    product = catalogue[0]
    admin.goto(f"/admin/products/{product['id']}/edit")
    expect(admin.get_by_label("Title")).to_have_value(product["title"])
    assert_accessible(admin, f"edit product ({device})")

    admin.goto("/no/such/page")
    assert_accessible(admin, f"not found ({device})")

    for name in (f"gallery-{device}.png", f"admin-products-{device}.png"):
        data = (SCREENSHOTS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
