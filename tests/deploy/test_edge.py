"""The production edge: frontend/nginx.conf in Debian's nginx, behind a TLS proxy, in front of the webs.

The layout of a deployment that terminates TLS at a load balancer:

    client --https--> outer TLS proxy (127.0.0.2) --http--> frontend nginx --> admin / main gunicorns

The outer proxy is a few lines of nginx with a throwaway certificate; the frontend nginx runs the
production template, rendered as the image's entrypoint renders it, trusting 127.0.0.2 only; both
services run with APP_ENV=production and HTTPS_ONLY=1, main's like budgets in a real Redis. Then:
no redirect loop over HTTPS; HSTS, CSP and the other headers; every cookie Secure; a client that is
not the proxy cannot claim HTTPS; nginx's own like and login limits answer 429 with Retry-After;
the like budget holds across two gunicorn workers (a shared store, not one per worker); and a
real Chromium likes a product in the gallery through all of it, without a CSP violation.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from e2e.conftest import CHROMIUM, CHROMIUM_FLAGS
from playwright.sync_api import expect, sync_playwright

from harness.pki import make_ca, make_server_cert, pem_key
from harness.servers import MariaDB, Nginx, RabbitNode, Redis, free_port
from harness.services import ADMIN_PASSWORD, ADMIN_USERNAME, ServiceSet

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "frontend" / "nginx.conf"
DIST = ROOT / "frontend" / "dist"
PROXY_ADDRESS = "127.0.0.2"  # the outer proxy's source address: the only one nginx trusts
STRONG_KEY = "edge-test-key-5f8a1c9e2b7d4f6a0c3e8b1d7f2a9c4e6b0d5f8a"  # pragma: allowlist secret


def _capture(function, failures: list[BaseException]) -> None:
    """Run function, keeping what it raises for the calling thread."""
    try:
        function()
    except BaseException as exc:  # noqa: BLE001 - re-raised in the test's own thread
        failures.append(exc)


def render_template(text: str, values: dict[str, str]) -> str:
    """Replace ${NAME} for the given names only, as the nginx image's envsubst step does."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass
class Edge:
    """The running edge: URLs and the pieces behind them."""

    https_url: str  # through the TLS proxy
    plain_url: str  # the frontend nginx directly, as an untrusted client on 127.0.0.1
    ca_file: Path
    services: ServiceSet
    redis: Redis

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment overrides verify
        session.verify = str(self.ca_file)
        return session


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, mariadb: MariaDB, rabbit: RabbitNode) -> Iterator[Edge]:
    d = tmp_path_factory.mktemp("edge")
    ca_key, ca_cert = make_ca("Edge test CA")
    server_key, server_cert = make_server_cert(ca_key, ca_cert, ["localhost"])
    ca_file, cert_file, key_file = d / "ca.pem", d / "server.pem", d / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(pem_key(server_key))

    redis = Redis(d / "redis").start()
    services = ServiceSet(
        rabbit.url,
        mariadb.create_db_user("edge_admin_db", "edge_admin", "edge-admin-test-pw"),
        mariadb.create_db_user("edge_main_db", "edge_main", "edge-main-test-pw"),
        log_dir=d / "logs",
        web_concurrency=2,
        processes=("admin-web", "main-web"),
        extra_env={
            "APP_ENV": "production",
            "SECRET_KEY": STRONG_KEY,
            "HTTPS_ONLY": "1",
            "SECURE_SSL_REDIRECT": "1",
            "SECURE_PROXY_SSL_HEADER": "1",
            "SESSION_COOKIE_SECURE": "1",
            "CSRF_COOKIE_SECURE": "1",
            "CSRF_TRUSTED_ORIGINS": "https://localhost",
            "DJANGO_ADMIN_URL": "django-admin/",  # as docker-compose.yml sets it
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "TRUSTED_PROXY_HOPS": "1",
            "RATE_LIMIT_STORAGE_URI": redis.url,
            # The production budgets (docker-compose.yml), not the harness's raised ones.
            "LIKES_RATE_LIMIT": "60 per minute",
            "NEW_SHOPPER_RATE_LIMIT": "10 per minute",
        },
    )
    frontend_port, proxy_port = free_port(), free_port()
    frontend = Nginx(
        render_template(
            TEMPLATE.read_text(),
            {
                "ADMIN_UPSTREAM": services.admin_url.removeprefix("http://"),
                "MAIN_UPSTREAM": services.main_url.removeprefix("http://"),
                "NGINX_RESOLVER": "127.0.0.1",
                "TRUSTED_PROXY_CIDR": f"{PROXY_ADDRESS}/32",
            },
        )
        .replace("listen 8080;", f"listen 127.0.0.1:{frontend_port};")
        .replace("root /usr/share/nginx/html;", f"root {DIST};"),
        base=d / "frontend-nginx",
    )
    outer = Nginx(
        f"""
server {{
    listen 127.0.0.1:{proxy_port} ssl;
    server_name localhost;
    ssl_certificate {cert_file};
    ssl_certificate_key {key_file};
    location / {{
        proxy_pass http://127.0.0.1:{frontend_port};
        proxy_bind {PROXY_ADDRESS};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;
    }}
}}
""",
        base=d / "outer-nginx",
    )
    try:
        services.start(wait_ready=False)  # webs only: no relay or consumer to be ready with
        frontend.start(frontend_port)
        outer.start(proxy_port)
        yield Edge(
            f"https://localhost:{proxy_port}", f"http://127.0.0.1:{frontend_port}", ca_file, services, redis
        )
    finally:
        outer.cleanup()
        frontend.cleanup()
        services.stop()
        redis.cleanup()


def test_over_https_there_is_no_redirect_loop_and_every_header_is_there(edge: Edge) -> None:
    with edge.session() as http:
        for path in ("/api/products", "/django-admin/login/", "/flask/api/products", "/", "/admin/products"):
            response = http.get(edge.https_url + path, allow_redirects=False, timeout=10)
            assert response.status_code == 200, (
                f"{path}: {response.status_code} {response.headers.get('Location')}"
            )
            headers = response.headers
            assert headers["Strict-Transport-Security"].startswith("max-age="), path
            assert "," not in headers["Strict-Transport-Security"], f"{path}: HSTS sent twice"
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["Referrer-Policy"], path
            assert headers["X-Frame-Options"] == "DENY", path
        spa = http.get(edge.https_url + "/", timeout=10).headers["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ):
            assert directive in spa


def test_every_cookie_is_secure_over_https(edge: Edge) -> None:
    with edge.session() as http:
        shop = http.get(edge.https_url + "/flask/api/products", timeout=10)
        assert "Secure" in shop.headers["Set-Cookie"], shop.headers["Set-Cookie"]
        http.get(edge.https_url + "/api/auth/csrf", timeout=10)
        login = http.post(
            edge.https_url + "/api/auth/login",
            json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
            headers={"X-CSRFToken": http.cookies.get("csrftoken", ""), "Referer": edge.https_url + "/login"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        cookies = {cookie.name: cookie for cookie in http.cookies}
        assert {"csrftoken", "sessionid", "shopper"} <= set(cookies)
        assert all(cookie.secure for cookie in cookies.values()), {c.name: c.secure for c in cookies.values()}


def test_a_client_that_is_not_the_proxy_cannot_claim_https(edge: Edge) -> None:
    # Straight to the frontend nginx from 127.0.0.1, which is not TRUSTED_PROXY_CIDR.
    response = requests.get(
        edge.plain_url + "/api/products",
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")
    assert "Strict-Transport-Security" not in response.headers


def test_nginx_limits_likes_and_logins_per_address_with_retry_after(edge: Edge) -> None:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def burst(path: str, method: str, count: int) -> None:
        with edge.session() as http:
            for _ in range(count):
                response = http.request(method, edge.https_url + path, timeout=10)
                with lock:
                    statuses[response.status_code] += 1
                if response.status_code == 429 and "Retry-After" not in response.headers:
                    statuses[-1] += 1

    threads = [
        threading.Thread(target=burst, args=("/flask/api/products/999999/like", "POST", 15)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 60 likes at once: the burst of 20 (plus what 5 r/s refills meanwhile) reach main, the rest 429.
    assert statuses[429] >= 30, statuses
    assert statuses[-1] == 0, "a 429 without Retry-After"
    assert not [status for status in statuses if status >= 500], statuses

    statuses.clear()
    burst("/api/auth/token", "POST", 12)
    assert statuses[429] >= 5, statuses  # 10 a minute, bursts of 5


def test_the_like_budget_is_shared_by_every_worker(edge: Edge, mariadb: MariaDB) -> None:
    """500 cookie-less likes from one client within 10 s, straight to main's two workers: 10 accepted."""
    with mariadb.connect("edge_main_db", "edge_main", "edge-main-test-pw") as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO product (id, title, image, version, likes, likes_seq, deleted, updated_at)"
            " VALUES (4242, 'Edge budget', '', 1, 0, 0, 0, NOW())"
        )
        conn.commit()
    like_url = f"{edge.services.main_url}/flask/api/products/4242/like"
    client = "198.51.100.23"  # as main's one trusted proxy names the client (X-Forwarded-For)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    started = time.monotonic()

    def hammer(count: int) -> None:
        with requests.Session() as http:
            for _ in range(count):
                http.cookies.clear()  # a script that throws every cookie away
                response = http.post(like_url, headers={"X-Forwarded-For": client}, timeout=10)
                with lock:
                    statuses[response.status_code] += 1

    threads = [threading.Thread(target=hammer, args=(125,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started

    assert elapsed < 10, f"500 likes took {elapsed:.1f} s"
    assert statuses[200] == 10, statuses  # NEW_SHOPPER_RATE_LIMIT, once for both workers together
    assert statuses[429] == 490, statuses
    with mariadb.connect("edge_main_db", "edge_main", "edge-main-test-pw") as conn, conn.cursor() as cur:
        cur.execute("SELECT likes FROM product WHERE id = 4242")
        assert cur.fetchone()[0] == 10
    with edge.redis.client() as store:
        keys = store.keys("*new-shopper*")
    assert keys, "no new-shopper limiter key in Redis: the workers counted in their own memory"


def test_a_real_browser_likes_through_the_edge_without_a_csp_violation(edge: Edge, mariadb: MariaDB) -> None:
    title = "Edge kettle"
    with mariadb.connect("edge_main_db", "edge_main", "edge-main-test-pw") as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO product (id, title, image, version, likes, likes_seq, deleted, updated_at)"
            " VALUES (4343, %s, '', 1, 0, 0, 0, NOW())",
            (title,),
        )
        conn.commit()
    problems: list[str] = []
    like_statuses: list[int] = []

    def shop() -> None:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            try:
                context = browser.new_context(base_url=edge.https_url, ignore_https_errors=True)
                page = context.new_page()
                page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda exc: problems.append(str(exc)))
                page.goto("/")
                item = page.get_by_role("article", name=title, exact=True)
                expect(item.get_by_test_id("like-count")).to_have_text("0 likes", timeout=30_000)
                # The count moves at once (optimistic): wait for the server's answer itself, or a
                # reload could come first and the response event never be seen.
                with page.expect_response(lambda r: r.url.endswith("/4343/like"), timeout=30_000) as liked:
                    item.get_by_role("button", name=f"Like {title}").click()
                like_statuses.append(liked.value.status)
                expect(item.get_by_test_id("like-count")).to_have_text(re.compile(r"^1 like"))
                page.reload()
                expect(item.get_by_role("button", name=f"Unlike {title}")).to_be_visible(timeout=30_000)
                cookie = next(c for c in context.cookies() if c["name"] == "shopper")
                assert cookie["secure"] and cookie["httpOnly"]
            finally:
                browser.close()

    # Its own thread: in a full run the e2e suite's session browser owns this thread's event loop,
    # and Playwright's sync API refuses a second one there.
    failure: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(shop, failure))
    thread.start()
    thread.join(timeout=180)
    assert not thread.is_alive(), "the browser hung"
    if failure:
        raise failure[0]
    assert like_statuses == [200]
    assert not problems, problems
