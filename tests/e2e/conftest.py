"""Browser fixtures: the built SPA served by `vite preview` in front of the session stack, and Chromium.

The SPA is built once if dist/ is missing or older than its sources, then served on a free port
with ADMIN_ORIGIN / MAIN_ORIGIN pointing at the stack's admin and main web processes, exactly as
`make run` serves it on 8080. Chromium is the system one (/usr/bin/chromium); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from faults.support import AdminApi as TokenAdminApi
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from harness.polling import eventually
from harness.servers import free_port, popen_kwargs, tail
from harness.services import ServiceSet

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
# Every run saves its screenshots under var/ (git-ignored); `make screenshots` sets
# UPDATE_SCREENSHOTS=1 to refresh the copies the README shows.
SCREENSHOTS = (
    FRONTEND / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else FRONTEND.parent / "var" / "screenshots"
)
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Product images in these tests live on this made-up host; every browser context answers them
# itself, so cards show real pictures without any network access.
IMAGE_HOST = "img.e2e.test"
BUILD_INPUTS = (
    "src",
    "public",
    "index.html",
    "vite.config.ts",
    "package.json",
    "package-lock.json",
    "tsconfig.app.json",
)

# Admin changes reach the shop over RabbitMQ and the gallery polls every few seconds.
expect.set_options(timeout=30_000)


def image_url(name: str) -> str:
    """Return an image URL that the test browser contexts serve themselves."""
    return f"https://{IMAGE_HOST}/{name}.svg"


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        if path.is_dir():
            for child in path.rglob("*"):
                if child.is_file():
                    newest = max(newest, child.stat().st_mtime)
        elif path.exists():
            newest = max(newest, path.stat().st_mtime)
    return newest


def _run(cmd: list[str], timeout: float) -> None:
    """Run an npm command in frontend/, failing the session with its output if it fails."""
    done = subprocess.run(cmd, cwd=FRONTEND, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def spa_dist() -> Path:
    """Return frontend/dist, installing and building first when it is missing or stale."""
    if not (FRONTEND / "node_modules" / ".package-lock.json").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund"], timeout=900)
    index = FRONTEND / "dist" / "index.html"
    sources = [FRONTEND / name for name in BUILD_INPUTS]
    if not index.exists() or index.stat().st_mtime < _newest_mtime(sources):
        _run(["npm", "run", "build"], timeout=900)
    return index.parent


@pytest.fixture(scope="session")
def spa_url(spa_dist: Path, stack: ServiceSet) -> Iterator[str]:
    """Serve the built SPA with `vite preview` (proxying to the stack) and return its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="vite-preview-", suffix=".log")[1])
    env = {**os.environ, "ADMIN_ORIGIN": stack.admin_url, "MAIN_ORIGIN": stack.main_url}
    vite = FRONTEND / "node_modules" / "vite" / "bin" / "vite.js"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                "node",
                str(vite),
                "preview",
                "--port",
                str(port),
                "--strictPort",
                "--host",
                "127.0.0.1",
            ],
            cwd=FRONTEND,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            **popen_kwargs(),
        )
    try:

        def serving() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"vite preview exited with {proc.returncode}:\n{tail(log)}")
            # Through the proxy, so the fixture is only ready when the stack is reachable too.
            return (
                requests.get(f"{url}/", timeout=2).status_code == 200
                and requests.get(f"{url}/flask/api/products", timeout=5).status_code == 200
            )

        try:
            eventually(
                serving,
                timeout=60,
                interval=0.2,
                message="vite preview serving the SPA",
            )
        except (AssertionError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n--- vite preview log\n{tail(log)}") from exc
        yield url
    finally:
        # vite runs in its own session: stop the whole group, then make sure.
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Return a headless system Chromium for the session."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _serve_image(route: Route) -> None:
    # A simple coloured picture per URL, so different products look different in screenshots.
    name = route.request.url.rsplit("/", 1)[-1].removesuffix(".svg")
    hue = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300" viewBox="0 0 400 300">'
        f'<rect width="400" height="300" fill="hsl({hue},55%,62%)"/>'
        f'<circle cx="200" cy="150" r="80" fill="hsl({(hue + 40) % 360},65%,82%)"/>'
        f'<rect x="120" y="200" width="160" height="40" rx="8" fill="hsl({(hue + 180) % 360},40%,35%)"/>'
        "</svg>"
    )
    route.fulfill(status=200, content_type="image/svg+xml", body=svg)


@pytest.fixture
def new_context(browser: Browser, spa_url: str) -> Iterator[Callable[..., BrowserContext]]:
    """Return a factory of fresh browser contexts (each a new shopper with its own cookies)."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        options.setdefault("viewport", {"width": 1200, "height": 800})
        context = browser.new_context(base_url=spa_url, **options)
        context.route(re.compile(rf"^https://{re.escape(IMAGE_HOST)}/"), _serve_image)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


class AdminApi(TokenAdminApi):
    """The admin REST API as the staff user (an API token), for arranging data and checking outcomes."""

    def __init__(self, base_url: str):
        super().__init__(base_url)

    def find(self, title: str) -> dict | None:
        """Return the product with this title, or None."""
        resp = self.session.get(
            f"{self.base}/api/products", params={"search": title, "limit": 1000}, timeout=15
        )
        resp.raise_for_status()
        return next((p for p in resp.json() if p["title"] == title), None)

    def delete(self, product_id: int) -> None:
        """Delete a product if it still exists."""
        resp = self.session.delete(f"{self.base}/api/products/{product_id}", timeout=15)
        assert resp.status_code in (204, 404), f"delete: HTTP {resp.status_code} {resp.text[:300]}"


@pytest.fixture
def admin_api(stack: ServiceSet) -> Iterator[AdminApi]:
    """Return an admin API client (staff user, HTTP Basic auth)."""
    api = AdminApi(stack.admin_url)
    yield api
    api.close()


@pytest.fixture
def make_product(admin_api: AdminApi) -> Iterator[Callable[[str, str], dict]]:
    """Return a factory that creates products through the admin API and deletes them after the test."""
    created: list[dict] = []

    def make(title: str, image: str) -> dict:
        product = admin_api.create(title, image)
        created.append(product)
        return product

    yield make
    for product in created:
        admin_api.delete(product["id"])


AXE = FRONTEND / "node_modules" / "axe-core" / "axe.min.js"
# What the e2e tests refuse; minor and moderate findings are printed, not failed.
AXE_BLOCKING = ("serious", "critical")


def axe_violations(page: Page) -> list[dict]:
    """Run axe-core (the npm package, pinned in frontend/package.json) on the page; return its violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => {
            const result = await window.axe.run(document, { resultTypes: ['violations'] })
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary),
            }))
        }"""
    )


def assert_accessible(page: Page, where: str) -> None:
    """Fail when axe-core finds a serious or critical violation on the page, naming each."""
    found = axe_violations(page)
    blocking = [v for v in found if v["impact"] in AXE_BLOCKING]
    for v in found:
        if v not in blocking:
            print(f"axe ({where}) {v['impact']}: {v['id']}: {v['help']}")
    assert not blocking, f"axe-core on {where}:\n" + "\n".join(
        f"- {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in blocking
    )
