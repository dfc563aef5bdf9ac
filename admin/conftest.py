"""Fixtures every admin test package shares: the role-named clients, a throwaway RabbitMQ node, a channel."""

from __future__ import annotations

import pika
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from messaging import topology
from messaging.tests.rabbit import RabbitNode
from products.tests.conftest import (  # noqa: F401 -- fixtures, defined beside the products tests
    _fast_password_hashing,
    _fresh_broker_cache,
    anon,
    plain_user,
    staff_user,
)


def token_client(user) -> APIClient:
    """Return an API client sending the user's DRF token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    return client


@pytest.fixture
def staff_api(staff_user):  # noqa: F811 -- the fixture imported above
    """A staff user's client, authenticated with a DRF token."""
    return token_client(staff_user)


@pytest.fixture
def shopper_api(plain_user):  # noqa: F811 -- the fixture imported above
    """A non-staff user's client, authenticated with a DRF token."""
    return token_client(plain_user)


@pytest.fixture(scope="module")
def rabbit():
    """Return a RabbitMQ node of the test module's own (a test may stop or kill it)."""
    node = RabbitNode()
    try:
        node.start()
        yield node
    finally:
        node.stop()
        node.remove()


@pytest.fixture
def channel(rabbit):
    """Return a channel on which admin's topology, and main's exchange it consumes from, are declared."""
    connection = pika.BlockingConnection(rabbit.params())
    ch = connection.channel()
    ch.exchange_declare(exchange="main.events", exchange_type="topic", durable=True)  # main's relay's
    topology.TOPOLOGY.declare_all(ch)
    yield ch
    if connection.is_open:
        connection.close()
