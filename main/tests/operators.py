"""Operator keys and tokens for tests: an Ed25519 key pair made per test, tokens signed as admin signs them."""

import base64
import hashlib
import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm


def thumbprint(jwk):
    """Return the RFC 7638 thumbprint of an OKP public JWK (the kid admin gives its key)."""
    canonical = json.dumps({name: jwk[name] for name in ("crv", "kty", "x")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class OperatorKey:
    """One Ed25519 key pair: its public JWKS, and tokens signed with its private half."""

    def __init__(self):
        self.private = Ed25519PrivateKey.generate()
        public = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.kid = thumbprint(public)
        self.jwk = {**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def jwks(self, *others):
        """Return the JWKS text with this key (and others' public keys)."""
        return json.dumps({"keys": [self.jwk, *(other.jwk for other in others)]})

    def token(self, *, kid="same", headers=None, lifetime=300, now=None, **claims):
        """Return a token as admin issues it; claims override or (None) drop the defaults."""
        issued = int(time.time() if now is None else now)
        body = {
            "iss": "admin",
            "aud": "operations",
            "sub": "ops-alice",
            "staff": True,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        body = {name: value for name, value in body.items() if value is not None}
        header = {"kid": self.kid if kid == "same" else kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(body, self.private, algorithm="EdDSA", headers=header)


def bearer(token):
    """Return the request headers that carry token."""
    return {"Authorization": f"Bearer {token}"}
