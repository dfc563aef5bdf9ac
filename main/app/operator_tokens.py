"""Operator tokens: admin signs short-lived JWTs for its staff; main verifies them (README: Dead letters).

main has no users of its own. admin gives a signed-in staff member a token (EdDSA over Ed25519,
`iss` admin, `aud` operations, a few minutes of life) and publishes its public keys as a JWKS.
main is given that JWKS in its settings, OPERATOR_JWKS (the JSON text) or OPERATOR_JWKS_FILE (a
file, read again whenever its modification time changes), and never fetches it from admin: an
admin outage cannot stop verification, and nothing on the network can change whom main trusts.

Only Ed25519 public keys that carry a `kid` are kept, and only EdDSA is accepted, whatever the
token's header says (no `none`, no HMAC with a public key as the secret). Key rotation: admin
publishes the new public key beside the old one (OPERATOR_JWKS_RETIRING), main is given the JWKS
with both, admin then signs with the new key, and the old one is dropped once the last token it
signed has expired (README: Dead letters, Rotating the operator key).
"""

from __future__ import annotations

import json
import logging
import os
import threading

import jwt

logger = logging.getLogger(__name__)

ALGORITHMS = ["EdDSA"]
AUDIENCE = "operations"
ISSUER = "admin"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
# Clock skew between admin's and main's hosts; a token lives for minutes, so seconds are plenty.
LEEWAY_SECONDS = 5
# admin's tokens are ~400 bytes; anything far larger is not one of them and is not parsed.
MAX_TOKEN_LENGTH = 4096


class InvalidKeySet(ValueError):
    """The JWKS text cannot be used to verify operator tokens."""


class TokenRejected(Exception):
    """The token is missing, malformed, expired, or not signed by a key main trusts (401)."""


class NotStaff(Exception):
    """The token is valid but does not say its holder is staff (403)."""


def parse_key_set(text: str) -> dict[str, jwt.PyJWK]:
    """Return the Ed25519 public keys of a JWKS, by kid; InvalidKeySet when it has none."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidKeySet(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise InvalidKeySet('not a JWKS: expected {"keys": [...]}')
    if any(isinstance(key, dict) and "d" in key for key in document["keys"]):
        # A private key has no business here: main only verifies.
        raise InvalidKeySet("it holds a private key: give only the public keys (admin's jwks.json)")
    try:
        key_set = jwt.PyJWKSet.from_dict(document)
    except jwt.PyJWTError as exc:
        raise InvalidKeySet(str(exc)) from None
    keys = {
        key.key_id: key
        for key in key_set.keys
        if key.algorithm_name == "EdDSA"
        and isinstance(key.key_id, str)
        and key.key_id
        and key.public_key_use in (None, "sig")
    }
    if not keys:
        raise InvalidKeySet("no Ed25519 public key with a kid")
    return keys


class OperatorKeys:
    """The keys that verify operator tokens: the inline JWKS, or the file's, re-read when it changes."""

    def __init__(self, inline: str | None = None, path: str | None = None):
        self.path = None if inline else path
        self._keys = parse_key_set(inline) if inline else None
        self._stamp = None
        self._lock = threading.Lock()

    def current(self) -> dict[str, jwt.PyJWK] | None:
        """Return the keys by kid, or None when none are configured (operations are then disabled)."""
        if self.path is None:
            return self._keys
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            with self._lock:
                if self._stamp != "missing":
                    logger.error(
                        "OPERATOR_JWKS_FILE %s cannot be read (%s): operations are disabled", self.path, exc
                    )
                self._stamp, self._keys = "missing", None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._load()
            return self._keys

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                keys = parse_key_set(handle.read())
        except (OSError, UnicodeDecodeError, InvalidKeySet) as exc:
            # A half-written or broken file must not lock operators out: the last good keys stay.
            logger.error(
                "OPERATOR_JWKS_FILE %s is not usable (%s); %s",
                self.path,
                exc,
                "keeping the keys read before" if self._keys else "operations are disabled",
            )
            return
        logger.info("operator token keys loaded from %s: %s", self.path, ", ".join(sorted(keys)))
        self._keys = keys


def verify(token: str, keys: dict[str, jwt.PyJWK]) -> dict:
    """Return the claims of a valid staff token; TokenRejected (401) or NotStaff (403) otherwise."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("not an operator token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("not an operator token") from None
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenRejected("signed by a key main does not trust (unknown kid): get a new token from admin")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("the token has expired: get a new one from admin") from None
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"the token is not valid here: {exc}") from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"].strip():
        raise TokenRejected("the token names no operator (sub)")
    if claims.get("staff") is not True:
        raise NotStaff(f"{claims['sub']} is not staff")
    return claims
