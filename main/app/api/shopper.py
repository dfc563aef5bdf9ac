"""The anonymous shopper identity: a uuid4 in a signed, timestamped cookie.

The cookie expires SHOPPER_COOKIE_DAYS after it was signed (default 90), in the browser
and on the server (the timestamp is signed). A shopper who keeps coming back keeps the identity:
a cookie older than a day is signed again with a fresh timestamp on the next request. A captured
cookie therefore replays for at most the maximum age; rotating SECRET_KEY ends every cookie at once.
Cookies signed before timestamps were added (no timestamp) are accepted once and re-signed.

A missing, forged, tampered or oversized cookie is not an error: the request is treated as a new
shopper and gets a fresh cookie. A shopper id is only the key of its likes, so a client that
loses or breaks its cookie loses nothing but those likes, and a forged cookie gains nothing
(without the secret key it cannot name another shopper). Refusing such requests with 400 would
instead lock every browser out after a SECRET_KEY rotation.
"""

import hashlib
import time
import uuid

from flask import current_app, g, request
from itsdangerous import BadSignature, Signer, TimestampSigner

from app.api import guard

COOKIE_NAME = "shopper"
# 36 (uuid) + 1 + 6 (timestamp) + 1 + 43 (base64 SHA-256): anything longer is not ours.
MAX_COOKIE_LENGTH = 100
# A cookie in use is signed again once it is this old, so active shoppers keep their identity.
REFRESH_AFTER_SECONDS = 24 * 3600


def _signers():
    signers = current_app.extensions.get("shopper_signers")
    if signers is None:
        key = current_app.config["SECRET_KEY"]
        signers = (
            TimestampSigner(key, salt="shopper", digest_method=hashlib.sha256),
            Signer(key, salt="shopper", digest_method=hashlib.sha256),
        )
        current_app.extensions["shopper_signers"] = signers
    return signers


def sign_shopper_id(shopper_id):
    """Return the signed, timestamped cookie value for shopper_id."""
    return _signers()[0].sign(shopper_id).decode("ascii")


def _unsign(value):
    """Return (shopper id, signed at) of a valid cookie value; signed at is 0 for a legacy cookie."""
    timestamped, legacy = _signers()
    max_age = current_app.config["SHOPPER_COOKIE_MAX_AGE"]
    if value.count(".") == 2:
        shopper_id, signed_at = timestamped.unsign(value, max_age=max_age, return_timestamp=True)
        return shopper_id, signed_at.timestamp()
    return legacy.unsign(value), 0


def verify_cookie(value, with_age=False):
    """Return the shopper id inside a cookie value, or None when it is not a valid signed uuid4.

    with_age: return (shopper id, seconds since it was signed) instead; a legacy cookie is as old
    as the refresh interval, so it is signed again at once.
    """
    shopper_id = None
    age = 0.0
    if value and len(value) <= MAX_COOKIE_LENGTH:
        try:
            raw, signed_at = _unsign(value)
            candidate = raw.decode("ascii")
            if str(uuid.UUID(candidate)) == candidate:
                shopper_id = candidate
                age = time.time() - signed_at if signed_at else REFRESH_AFTER_SECONDS
        except (BadSignature, ValueError, UnicodeDecodeError):
            shopper_id = None
    if with_age:
        return (shopper_id, age) if shopper_id else (None, 0.0)
    return shopper_id


def current_shopper(request, write=False):
    """Return this request's shopper id, minting a new one (cookie set on the response) if needed.

    Minting is limited per client address (guard.NEW_SHOPPER_RATE_LIMIT). Over the limit a read
    gets a throwaway id and no cookie (the gallery still shows, nothing marked as liked), and a
    write raises guard.NewShopperLimited (429).
    """
    shopper_id, age = verify_cookie(request.cookies.get(COOKIE_NAME), with_age=True)
    if shopper_id is not None:
        if age >= REFRESH_AFTER_SECONDS:
            g.new_shopper_cookie = sign_shopper_id(shopper_id)
        return shopper_id
    wait = guard.may_mint_shopper()
    if wait and write:
        raise guard.NewShopperLimited(wait)
    shopper_id = str(uuid.uuid4())
    if not wait:
        g.new_shopper_cookie = sign_shopper_id(shopper_id)
    return shopper_id


def set_shopper_cookie(response):
    """Attach the cookie minted during this request, if any, to response."""
    value = g.pop("new_shopper_cookie", None)
    if value is not None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=current_app.config["SHOPPER_COOKIE_MAX_AGE"],
            path="/",
            httponly=True,
            samesite="Lax",
            # Secure whenever the browser reached us over HTTPS (ProxyFix trusts the proxy's
            # X-Forwarded-Proto), or always when SHOPPER_COOKIE_SECURE says so.
            secure=current_app.config.get("SHOPPER_COOKIE_SECURE", False) or request.is_secure,
        )
    return response
