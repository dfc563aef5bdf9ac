"""Operator tokens: only admin's EdDSA staff tokens for `operations`, checked with the configured JWKS."""

import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from app.config import ConfigError, load_config
from app.operator_tokens import (
    LEEWAY_SECONDS,
    InvalidKeySet,
    NotStaff,
    OperatorKeys,
    TokenRejected,
    parse_key_set,
    verify,
)
from tests.operators import OperatorKey


@pytest.fixture
def key():
    return OperatorKey()


@pytest.fixture
def keys(key):
    return parse_key_set(key.jwks())


def test_a_staff_token_of_admin_is_accepted(key, keys):
    claims = verify(key.token(sub="ops-bob"), keys)

    assert claims["sub"] == "ops-bob" and claims["staff"] is True


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"aud": "shop"}, "(?i)audience"),
        ({"iss": "main"}, "(?i)issuer"),
        ({"exp": None}, '"exp"'),
        ({"iat": None}, '"iat"'),
        ({"sub": None}, '"sub"'),
        ({"sub": "  "}, "names no operator"),
        ({"iat": int(time.time()) + 120, "exp": int(time.time()) + 400}, "not yet valid"),
    ],
)
def test_a_token_for_another_audience_issuer_or_without_its_claims_is_rejected(key, keys, claims, why):
    with pytest.raises(TokenRejected, match=why):
        verify(key.token(**claims), keys)


def test_an_expired_token_is_rejected_past_the_leeway_only(key, keys):
    now = time.time()
    within = key.token(now=now - 300 - 2)  # expired 2 s ago: clock skew
    past = key.token(now=now - 300 - 11)  # expired 11 s ago: the leeway is at most 10 s

    assert 2 < LEEWAY_SECONDS <= 10

    assert verify(within, keys)["sub"] == "ops-alice"
    with pytest.raises(TokenRejected, match="expired"):
        verify(past, keys)


def test_a_token_signed_by_another_key_under_a_trusted_kid_is_rejected(key, keys):
    forged = OperatorKey().token(kid=key.kid)

    with pytest.raises(TokenRejected, match="Signature verification failed"):
        verify(forged, keys)


def test_a_token_signed_by_a_key_main_does_not_know_is_rejected(keys):
    with pytest.raises(TokenRejected, match="unknown kid"):
        verify(OperatorKey().token(), keys)
    with pytest.raises(TokenRejected, match="unknown kid"):
        verify(OperatorKey().token(kid=None), keys)


def test_hmac_with_the_public_key_as_its_secret_is_rejected(key, keys):
    """The classic algorithm confusion: the public key is public, so it must never act as a shared secret."""
    public_raw = key.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    claims = {"iss": "admin", "aud": "operations", "sub": "x", "staff": True}
    claims |= {"iat": int(time.time()), "exp": int(time.time()) + 60}
    for secret in (public_raw, key.jwk["x"].encode()):
        forged = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key.kid})
        with pytest.raises(TokenRejected, match="alg"):
            verify(forged, keys)


def test_an_unsigned_token_is_rejected(key, keys):
    unsigned = jwt.encode(
        {"iss": "admin", "aud": "operations", "sub": "x", "staff": True, "iat": 1, "exp": 2**40},
        None,
        algorithm="none",
        headers={"kid": key.kid},
    )
    with pytest.raises(TokenRejected):
        verify(unsigned, keys)


def test_an_oversized_token_is_not_parsed_even_when_signed(key, keys):
    big = key.token(padding="x" * 4000)

    with pytest.raises(TokenRejected, match="not an operator token"):
        verify(big, keys)


@pytest.mark.parametrize("token", ["", "not.a.jwt", "x" * 5000, "a.b", "e30.e30.e30"])
def test_garbage_is_rejected(keys, token):
    with pytest.raises(TokenRejected):
        verify(token, keys)


@pytest.mark.parametrize("staff", [False, None, "true", 1])
def test_a_valid_token_without_staff_true_is_refused_as_not_staff(key, keys, staff):
    with pytest.raises(NotStaff):
        verify(key.token(staff=staff), keys)


def test_a_jwks_keeps_only_ed25519_signing_keys_with_a_kid(key):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa"}
    no_kid = OKPAlgorithm.to_jwk(OperatorKey().private.public_key(), as_dict=True)
    encryption = {**OperatorKey().jwk, "kid": "enc", "use": "enc"}
    secret = {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}  # pragma: allowlist secret
    number_kid = {**OperatorKey().jwk, "kid": 7}  # a token's kid is a string: it could never match

    document = {"keys": [rsa_jwk, no_kid, encryption, secret, number_kid, key.jwk, "junk"]}

    assert list(parse_key_set(json.dumps(document))) == [key.kid]
    with pytest.raises(InvalidKeySet, match="no Ed25519"):
        parse_key_set(json.dumps({"keys": [rsa_jwk, secret]}))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ("[]", "not a JWKS"),
        ('{"keys": {}}', "not a JWKS"),
        ('{"keys": []}', "did not contain any keys"),
    ],
)
def test_a_jwks_that_is_not_one_is_refused(text, why):
    with pytest.raises(InvalidKeySet, match=why):
        parse_key_set(text)


def test_a_jwks_with_a_private_key_is_refused(key):
    private = OKPAlgorithm.to_jwk(key.private, as_dict=True)

    with pytest.raises(InvalidKeySet, match="private key"):
        parse_key_set(json.dumps({"keys": [{**private, "kid": key.kid}]}))


def test_operator_jwks_is_checked_when_the_settings_load(key):
    assert load_config({"OPERATOR_JWKS": key.jwks()})["OPERATOR_JWKS"] == key.jwks()
    assert load_config({})["OPERATOR_JWKS"] is None
    assert load_config({"OPERATOR_JWKS_FILE": " /run/jwks.json "})["OPERATOR_JWKS_FILE"] == "/run/jwks.json"
    with pytest.raises(ConfigError, match="OPERATOR_JWKS: no Ed25519"):
        load_config({"OPERATOR_JWKS": '{"keys": [{"kty": "oct", "k": "eA", "kid": "h"}]}'})


def _write(path, text, mtime):
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_the_jwks_file_is_read_again_when_it_changes(tmp_path, key):
    path = tmp_path / "jwks.json"
    new = OperatorKey()
    keys = OperatorKeys(path=str(path))

    assert keys.current() is None  # no file yet: operations disabled
    _write(path, key.jwks(), 1_000_000)
    assert verify(key.token(), keys.current())["sub"] == "ops-alice"

    _write(path, new.jwks(key), 1_000_100)  # rotation: the new key beside the old
    assert set(keys.current()) == {key.kid, new.kid}

    _write(path, new.jwks(), 1_000_200)  # the old key retired
    with pytest.raises(TokenRejected, match="unknown kid"):
        verify(key.token(), keys.current())
    assert verify(new.token(), keys.current())


def test_a_broken_jwks_file_keeps_the_last_good_keys(tmp_path, key, caplog):
    path = tmp_path / "jwks.json"
    _write(path, key.jwks(), 1_000_000)
    keys = OperatorKeys(path=str(path))
    assert set(keys.current()) == {key.kid}

    _write(path, '{"keys": [', 1_000_100)  # half written

    assert set(keys.current()) == {key.kid}
    assert "keeping the keys read before" in caplog.text

    path.unlink()
    assert keys.current() is None


def test_a_jwks_file_that_is_never_good_leaves_operations_disabled(tmp_path):
    path = tmp_path / "jwks.json"
    _write(path, "{}", 1_000_000)

    assert OperatorKeys(path=str(path)).current() is None


def test_inline_keys_win_over_the_file(tmp_path, key):
    keys = OperatorKeys(inline=key.jwks(), path=str(tmp_path / "absent.json"))

    assert set(keys.current()) == {key.kid}
