"""Abuse guards of the like routes: per-client rate limits and a refusal of cross-site writes.

A like costs nothing but a request, and any request without a valid cookie is a new shopper, so
without limits one script could add a like per request and any web page could make its visitors'
browsers like products. Three controls, all per client address (the proxy's X-Forwarded-For once
TRUSTED_PROXY_HOPS says how many proxies to trust):

- LIKES_RATE_LIMIT (default 60 per minute): likes and unlikes together, by client address.
- NEW_SHOPPER_RATE_LIMIT (default 10 per minute): new shopper identities minted, by client
  address. Over it, the gallery is served without a cookie and a like without a cookie gets 429.
- Cross-site likes get 403: a browser says where a request comes from (Sec-Fetch-Site, else
  Origin); only the page's own origin and CORS_ALLOWED_ORIGINS may like. A client that sends
  neither header (curl, a script) is not a browser acting for someone else; the limits hold it.

The counters live in RATE_LIMIT_STORAGE_URI, shared by every worker and replica (Redis in
production; `memory://`, per process, is the development default). If that store fails, the
limits fall back to per-process memory and say so in the log: a like never fails on the limiter.
nginx adds its own per-address limit in front (frontend/nginx.conf).
"""

import functools
import logging
import time
from urllib.parse import urlsplit

from flask import current_app, request
from flask_limiter import Limiter
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

logger = logging.getLogger(__name__)


def client_address():
    """Return the client's address (after ProxyFix, the first untrusted hop)."""
    return request.remote_addr or "unknown"


limiter = Limiter(
    key_func=client_address,
    headers_enabled=True,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    key_prefix="main",
)

likes_limit = limiter.shared_limit(
    lambda: current_app.config["LIKES_RATE_LIMIT"],
    scope="likes",
    error_message="Too many likes from your address: wait a moment and try again.",
)


class NewShopperLimited(TooManyRequests):
    """A request with no shopper cookie from an address that minted too many identities lately."""

    def __init__(self, retry_after):
        super().__init__(
            "Too many new shoppers from your address: load the gallery again in "
            f"{retry_after} s, with cookies enabled.",
            retry_after=retry_after,
        )


@functools.lru_cache(maxsize=8)
def _parsed(spec):
    """Return the rate limits a limits-notation string names, parsed once per string."""
    return tuple(parse_many(spec))


def may_mint_shopper():
    """Count one new shopper identity for this client; return 0 if allowed, else seconds to wait."""
    if not limiter.enabled:
        return 0
    limits = _parsed(current_app.config["NEW_SHOPPER_RATE_LIMIT"])
    address = client_address()
    try:
        strategy = limiter.limiter
        for item in limits:
            if not strategy.hit(item, "main/new-shopper", address):
                reset_at, _ = strategy.get_window_stats(item, "main/new-shopper", address)
                return max(1, int(reset_at - time.time()) + 1)
    except Exception as exc:  # noqa: BLE001 - the limiter's store failing must not fail the like
        logger.warning("new-shopper limit not checked: %s: %s", type(exc).__name__, exc)
    return 0


def _allowed_hosts():
    hosts = {request.host.lower()}
    for origin in current_app.config["CORS_ALLOWED_ORIGINS"]:
        hosts.add(urlsplit(origin).netloc.lower())
    return hosts


def cross_site_refusal():
    """Return why this write comes from another site, or None when it may proceed.

    Sec-Fetch-Site is set by every current browser and cannot be set by a page's script:
    same-origin passes, cross-site and same-site (a sibling subdomain) pass only when their Origin
    is allowed. Without it, an Origin naming another host is refused. Neither header: not a browser.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").lower()
    origin = request.headers.get("Origin", "")
    if fetch_site in ("same-origin", "none"):
        return None
    origin_host = urlsplit(origin).netloc.lower() if origin and origin != "null" else ""
    if fetch_site:
        if origin_host and origin_host in _allowed_hosts():
            return None
        return f"a {fetch_site} request from {origin or 'an unknown origin'}"
    if origin and origin_host not in _allowed_hosts():
        return f"a request from {origin}"
    return None
