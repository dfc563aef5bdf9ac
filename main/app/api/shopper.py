"""The anonymous shopper identity: a uuid4 in a signed cookie.

A missing, forged, tampered or oversized cookie is not an error: the request is treated as a new
shopper and gets a fresh cookie. A shopper id is only the key of its likes, so a client that
loses or breaks its cookie loses nothing but those likes, and a forged cookie gains nothing
(without the secret key it cannot name another shopper). Refusing such requests with 400 would
instead lock every browser out after a SECRET_KEY rotation.
"""

import hashlib
import uuid

from flask import current_app, g
from itsdangerous import BadSignature, Signer

from app.config import SHOPPER_COOKIE_MAX_AGE

COOKIE_NAME = "shopper"
# 36 (uuid) + 1 (separator) + 43 (base64 SHA-256): anything longer is not ours.
MAX_COOKIE_LENGTH = 100


def _signer():
    signer = current_app.extensions.get("shopper_signer")
    if signer is None:
        signer = Signer(
            current_app.config["SECRET_KEY"],
            salt="shopper",
            digest_method=hashlib.sha256,
        )
        current_app.extensions["shopper_signer"] = signer
    return signer


def sign_shopper_id(shopper_id):
    """Return the signed cookie value for shopper_id."""
    return _signer().sign(shopper_id).decode("ascii")


def verify_cookie(value):
    """Return the shopper id inside a cookie value, or None when it is not a valid signed uuid4."""
    if not value or len(value) > MAX_COOKIE_LENGTH:
        return None
    try:
        shopper_id = _signer().unsign(value).decode("ascii")
        parsed = uuid.UUID(shopper_id)
    except (BadSignature, ValueError, UnicodeDecodeError):
        return None
    return shopper_id if str(parsed) == shopper_id else None


def current_shopper(request):
    """Return this request's shopper id, minting a new one (cookie set on the response) if needed."""
    shopper_id = verify_cookie(request.cookies.get(COOKIE_NAME))
    if shopper_id is None:
        shopper_id = str(uuid.uuid4())
        g.new_shopper_cookie = sign_shopper_id(shopper_id)
    return shopper_id


def set_shopper_cookie(response):
    """Attach the cookie minted during this request, if any, to response."""
    value = g.pop("new_shopper_cookie", None)
    if value is not None:
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=SHOPPER_COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=current_app.config.get("SHOPPER_COOKIE_SECURE", False),
        )
    return response
