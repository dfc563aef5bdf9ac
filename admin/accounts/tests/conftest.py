"""Fixtures of the accounts tests: an operator signing key (the role-named ones are in admin/conftest.py)."""

import pytest

from accounts.operator_tokens import generate_pem


@pytest.fixture
def signing_pem(settings):
    """A fresh Ed25519 private key (PEM) set as OPERATOR_JWT_PRIVATE_KEY."""
    pem = generate_pem()
    settings.OPERATOR_JWT_PRIVATE_KEY = pem
    settings.OPERATOR_JWT_PRIVATE_KEY_FILE = ""
    settings.OPERATOR_JWKS_RETIRING = ""
    return pem
