"""Operator tokens: staff get a short-lived EdDSA JWT that the published JWKS verifies; nobody else does."""

import json
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts import operator_tokens
from accounts.operator_tokens import (
    OperatorKeyError,
    generate_pem,
    load_keys,
    parse_jwks,
    public_jwk,
    thumbprint,
)

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[3]


def verify(token: str, jwks: dict, **options) -> dict:
    """Verify a token as main does: the key named by the header's kid, EdDSA, aud and iss."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
    return jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience="operations", issuer="admin", **options
    )


def test_rfc_8037_thumbprint_example():
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {
        "crv": "Ed25519",
        "kty": "OKP",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",  # pragma: allowlist secret (a public key)
    }
    assert thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"  # pragma: allowlist secret
    assert thumbprint({**jwk, "kid": "ignored", "use": "sig"}) == thumbprint(jwk)


def test_a_staff_user_gets_a_token_the_jwks_verifies(staff_api, anon, signing_pem):
    before = int(time.time())
    response = staff_api.post("/api/auth/operator-token")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert response["Cache-Control"] == "no-store"
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "EdDSA"

    jwks = anon.get("/api/auth/jwks.json").json()
    assert header["kid"] == jwks["keys"][0]["kid"] == thumbprint(jwks["keys"][0])
    claims = verify(body["token"], jwks)
    assert claims["sub"] == "staff" and claims["staff"] is True
    assert claims["iss"] == "admin" and claims["aud"] == "operations"
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) == 32
    second = verify(staff_api.post("/api/auth/operator-token").json()["token"], jwks)
    assert second["jti"] != claims["jti"]


def test_the_lifetime_follows_the_setting_and_an_expired_token_fails(staff_api, anon, signing_pem, settings):
    settings.OPERATOR_TOKEN_TTL_SECONDS = 60
    body = staff_api.post("/api/auth/operator-token").json()
    assert body["expires_in"] == 60
    jwks = anon.get("/api/auth/jwks.json").json()
    claims = verify(body["token"], jwks)
    assert claims["exp"] - claims["iat"] == 60

    old = load_keys(pem=signing_pem).issue("staff", 60, now=time.time() - 120)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(old, jwks)


def test_a_token_from_another_key_does_not_verify(staff_api, anon, signing_pem):
    jwks = anon.get("/api/auth/jwks.json").json()
    forged = load_keys(pem=generate_pem()).issue("staff")
    with pytest.raises(StopIteration):  # its kid names no published key
        verify(forged, jwks)
    # The same kid, another key's signature: refused by the signature check.
    header_kid = jwt.get_unverified_header(staff_api.post("/api/auth/operator-token").json()["token"])["kid"]
    other = load_keys(pem=generate_pem()).signing_key
    forged = jwt.encode(
        {"sub": "x", "aud": "operations", "iss": "admin"}, other, "EdDSA", headers={"kid": header_kid}
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify(forged, jwks)


def test_a_session_user_needs_the_csrf_token(staff_user, signing_pem):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)  # a session, as /api/auth/login starts (axes wants a request for login())
    refused = client.post("/api/auth/operator-token")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

    csrf = client.get("/api/auth/csrf").json()["csrf_token"]
    accepted = client.post("/api/auth/operator-token", HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 200 and accepted.json()["token"]


def test_a_user_who_is_not_staff_is_refused(shopper_api, signing_pem):
    response = shopper_api.post("/api/auth/operator-token")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_an_inactive_staff_user_is_refused(staff_user, staff_api, signing_pem):
    get_user_model().objects.filter(pk=staff_user.pk).update(is_active=False)
    assert staff_api.post("/api/auth/operator-token").status_code == 401


def test_anonymous_callers_get_401(anon, signing_pem):
    response = anon.post("/api/auth/operator-token")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.post("/api/auth/operator-token").status_code == 401


def test_without_a_signing_key_tokens_are_off_and_the_jwks_is_empty(staff_api, anon, settings):
    settings.OPERATOR_JWT_PRIVATE_KEY = settings.OPERATOR_JWT_PRIVATE_KEY_FILE = (
        settings.OPERATOR_JWKS_RETIRING
    ) = ""
    response = staff_api.post("/api/auth/operator-token")
    assert response.status_code == 503
    assert response.json()["error"] == "operations_disabled"
    assert "OPERATOR_JWT_PRIVATE_KEY" in response.json()["detail"]
    assert anon.get("/api/auth/jwks.json").json() == {"keys": []}


def test_the_jwks_is_public_cacheable_and_lists_the_retiring_keys(anon, signing_pem, settings):
    retiring_key = load_keys(pem=generate_pem()).signing_key
    retiring = public_jwk(retiring_key)
    bare = {k: retiring[k] for k in ("kty", "crv", "x")}  # a JWKS from elsewhere may lack kid/alg/use
    settings.OPERATOR_JWKS_RETIRING = json.dumps(
        {"keys": [bare, public_jwk(load_keys(pem=signing_pem).signing_key)]}
    )

    response = anon.get("/api/auth/jwks.json")

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    keys = response.json()["keys"]
    current = public_jwk(load_keys(pem=signing_pem).signing_key)
    assert keys == [current, retiring]  # current first, the retiring one once, the duplicate dropped
    assert all("d" not in key for key in keys)
    # A token the retiring key signed (before the switch) still verifies during its lifetime.
    old = jwt.encode(
        {"sub": "staff", "aud": "operations", "iss": "admin", "exp": int(time.time()) + 60},
        retiring_key,
        "EdDSA",
        headers={"kid": retiring["kid"]},
    )
    assert verify(old, response.json())["sub"] == "staff"


def test_the_key_file_is_read_and_reread_when_it_changes(tmp_path, settings, staff_api, anon):
    path = tmp_path / "private.pem"
    path.write_text(generate_pem())
    settings.OPERATOR_JWT_PRIVATE_KEY, settings.OPERATOR_JWT_PRIVATE_KEY_FILE = "", str(path)
    first = anon.get("/api/auth/jwks.json").json()["keys"][0]["kid"]
    path.write_text(generate_pem())
    path.touch()
    import os

    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    second = anon.get("/api/auth/jwks.json").json()["keys"][0]["kid"]
    assert second != first
    token = staff_api.post("/api/auth/operator-token").json()["token"]
    assert jwt.get_unverified_header(token)["kid"] == second

    path.write_text("garbage")
    os.utime(path, ns=(time.time_ns() + 2 * 10**9, time.time_ns() + 2 * 10**9))
    broken = staff_api.post("/api/auth/operator-token")
    assert broken.status_code == 503 and "OPERATOR_JWT_PRIVATE_KEY_FILE" in broken.json()["detail"]
    assert anon.get("/api/auth/jwks.json").status_code == 503


def test_a_pem_on_one_line_with_escaped_newlines_is_accepted():
    pem = generate_pem()
    one_line = pem.strip().replace("\n", "\\n")
    assert public_jwk(load_keys(pem=one_line).signing_key) == public_jwk(load_keys(pem=pem).signing_key)


def _ec_pem() -> str:
    key = generate_private_key(SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _encrypted_pem() -> str:
    key = load_keys(pem=generate_pem()).signing_key
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),  # pragma: allowlist secret
    ).decode()


@pytest.mark.parametrize(
    ("settings_values", "says"),
    [
        ({"pem": "not a key at all"}, "OPERATOR_JWT_PRIVATE_KEY is unusable: it is not a PEM private key"),
        ({"pem": _ec_pem()}, "must be an Ed25519 key"),
        ({"pem": _encrypted_pem()}, "it is encrypted"),
        ({"pem": generate_pem(), "pem_file": "/x"}, "not both"),
        ({"pem_file": "/nonexistent/private.pem"}, "OPERATOR_JWT_PRIVATE_KEY_FILE cannot be read"),
        ({"retiring": "{"}, "OPERATOR_JWKS_RETIRING is not valid JSON"),
        ({"retiring": "[]"}, "must be a JWKS"),
        ({"retiring": '{"keys": [{"kty": "RSA"}]}'}, "key 0 is not an Ed25519"),
        ({"retiring": '{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "!!"}]}'}, "not a valid Ed25519"),
    ],
)
def test_unusable_key_settings_name_the_setting_never_the_value(settings_values, says):
    with pytest.raises(OperatorKeyError) as excinfo:
        load_keys(**settings_values)
    assert says in str(excinfo.value)
    for value in settings_values.values():
        if len(value) > 10:
            assert value not in str(excinfo.value)


def test_a_retiring_jwks_with_a_private_part_is_refused():
    private_jwk = jwt.algorithms.OKPAlgorithm.to_jwk(load_keys(pem=generate_pem()).signing_key, as_dict=True)
    with pytest.raises(OperatorKeyError, match="private part"):
        parse_jwks(json.dumps({"keys": [private_jwk]}))


def test_issuing_without_a_key_is_an_error():
    with pytest.raises(OperatorKeyError):
        load_keys().issue("staff")


def test_the_dev_generator_writes_a_pair_that_agrees_and_keeps_the_key(tmp_path):
    sys.path.insert(0, str(REPO))
    try:
        from dev import operator_key
    finally:
        sys.path.remove(str(REPO))
    private, jwks_path = operator_key.ensure(tmp_path / "jwt")
    assert private.stat().st_mode & 0o777 == 0o600
    keys = load_keys(pem_file=str(private))
    assert json.loads(jwks_path.read_text()) == keys.jwks()
    assert verify(keys.issue("staff"), json.loads(jwks_path.read_text()))["sub"] == "staff"

    pem = private.read_text()
    operator_key.ensure(tmp_path / "jwt")
    assert private.read_text() == pem  # generated once: a restart keeps the tokens valid


def test_configured_keys_are_cached_until_a_setting_changes(settings, signing_pem):
    first = operator_tokens.configured_keys()
    assert operator_tokens.configured_keys() is first
    settings.OPERATOR_JWT_PRIVATE_KEY = generate_pem()
    assert operator_tokens.configured_keys() is not first
