"""Operator tokens: short-lived JWTs admin signs for staff, verified by other services' operations endpoints.

admin holds an Ed25519 private key (OPERATOR_JWT_PRIVATE_KEY, a PEM, or OPERATOR_JWT_PRIVATE_KEY_FILE)
and publishes its public half at GET /api/auth/jwks.json, with the keys being rotated out
(OPERATOR_JWKS_RETIRING). A token is a JWT (RFC 7519) signed with EdDSA (RFC 8037), its header's
`kid` the key's JWK thumbprint (RFC 7638), so a verifier picks the key without trying each one.
Key rotation is described in the README (Operator tokens).

This module needs no Django settings to import: dev/operator_key.py generates `make run`'s and the
test harness's key pair with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
ISSUER = "admin"
AUDIENCE = "operations"
DEFAULT_TTL_SECONDS = 300


class OperatorKeyError(ValueError):
    """The operator key settings are unusable; the message names the setting, never the key."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict) -> str:
    """Return the RFC 7638 thumbprint of an OKP JWK: SHA-256 of its required members, sorted, no spaces."""
    # https://www.rfc-editor.org/rfc/rfc7638#section-3.2 ; OKP members: RFC 8037 section 2
    required = {name: jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey) -> dict:
    """Return the public JWK of an Ed25519 key, with its kid, alg and use."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    return {**jwk, "kid": thumbprint(jwk), "alg": ALGORITHM, "use": "sig"}


def load_private_key(pem: str | bytes, setting: str = "OPERATOR_JWT_PRIVATE_KEY") -> Ed25519PrivateKey:
    """Parse an unencrypted PEM (PKCS#8) Ed25519 private key; OperatorKeyError names `setting`."""
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    # An environment variable may carry the PEM on one line with literal \n (docker --env-file, CI).
    data = data.replace(b"\\n", b"\n").strip() + b"\n"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if "encrypted" in str(exc).lower() else "it is not a PEM private key"
        raise OperatorKeyError(f"{setting} is unusable: {reason}") from None
    except Exception:  # noqa: BLE001 -- cryptography raises UnsupportedAlgorithm and others: same answer
        raise OperatorKeyError(f"{setting} is unusable: it is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise OperatorKeyError(
            f"{setting} is unusable: it must be an Ed25519 key (EdDSA), not {type(key).__name__}"
        )
    return key


def parse_jwks(text: str, setting: str = "OPERATOR_JWKS_RETIRING") -> list[dict]:
    """Return the Ed25519 public keys of a JWKS document (JSON text), each with its kid."""
    if not text.strip():
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        raise OperatorKeyError(f"{setting} is not valid JSON") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise OperatorKeyError(f'{setting} must be a JWKS: {{"keys": [...]}}')
    result = []
    for position, jwk in enumerate(keys):
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise OperatorKeyError(f"{setting}: key {position} is not an Ed25519 (OKP) public key")
        if "d" in jwk:
            raise OperatorKeyError(
                f"{setting}: key {position} holds a private part (d): publish public keys only"
            )
        try:
            public = jwt.algorithms.OKPAlgorithm.from_jwk(jwk)
        except jwt.exceptions.InvalidKeyError:
            raise OperatorKeyError(f"{setting}: key {position} is not a valid Ed25519 public key") from None
        result.append(public_jwk(public))
    return result


@dataclass(frozen=True)
class OperatorKeys:
    """The signing key (None: operator tokens are off) and the published public keys."""

    signing_key: Ed25519PrivateKey | None = None
    retiring: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def kid(self) -> str | None:
        """Return the signing key's kid."""
        return public_jwk(self.signing_key)["kid"] if self.signing_key else None

    def jwks(self) -> dict:
        """Return the JWKS to publish: the current key first, then the retiring ones (no duplicates)."""
        keys = [public_jwk(self.signing_key)] if self.signing_key else []
        seen = {key["kid"] for key in keys}
        for key in self.retiring:
            if key["kid"] not in seen:
                keys.append(key)
                seen.add(key["kid"])
        return {"keys": keys}

    def issue(self, subject: str, ttl_seconds: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
        """Return a signed operator token for a staff user."""
        if self.signing_key is None:
            raise OperatorKeyError(
                "no operator signing key: set OPERATOR_JWT_PRIVATE_KEY or OPERATOR_JWT_PRIVATE_KEY_FILE"
            )
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "staff": True,
            "iat": issued,
            "exp": issued + int(ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.signing_key, algorithm=ALGORITHM, headers={"kid": self.kid})


def load_keys(pem: str = "", pem_file: str = "", retiring: str = "") -> OperatorKeys:
    """Build OperatorKeys from the settings' values; raise OperatorKeyError naming the broken setting."""
    if pem.strip() and pem_file.strip():
        raise OperatorKeyError("set OPERATOR_JWT_PRIVATE_KEY or OPERATOR_JWT_PRIVATE_KEY_FILE, not both")
    signing_key = None
    if pem.strip():
        signing_key = load_private_key(pem)
    elif pem_file.strip():
        try:
            data = Path(pem_file).read_bytes()
        except OSError as exc:
            raise OperatorKeyError(
                f"OPERATOR_JWT_PRIVATE_KEY_FILE cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
        signing_key = load_private_key(data, "OPERATOR_JWT_PRIVATE_KEY_FILE")
    return OperatorKeys(signing_key, tuple(parse_jwks(retiring)))


def generate_pem() -> str:
    """Return a new Ed25519 private key as unencrypted PKCS#8 PEM."""
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
        .decode("ascii")
    )


# ----- Django side -----------------------------------------------------------------------------
_cache: dict[tuple, OperatorKeys] = {}


def configured_keys() -> OperatorKeys:
    """Return the keys the settings name, re-read when a setting or the key file's mtime changes."""
    from django.conf import settings

    pem = settings.OPERATOR_JWT_PRIVATE_KEY
    pem_file = settings.OPERATOR_JWT_PRIVATE_KEY_FILE
    retiring = settings.OPERATOR_JWKS_RETIRING
    try:
        mtime = Path(pem_file).stat().st_mtime_ns if pem_file else None
    except OSError:
        mtime = None
    cache_key = (pem, pem_file, mtime, retiring)
    keys = _cache.get(cache_key)
    if keys is None:
        keys = load_keys(pem, pem_file, retiring)
        _cache.clear()
        _cache[cache_key] = keys
    return keys
