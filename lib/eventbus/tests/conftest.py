"""Fixtures: a throwaway RabbitMQ node (dev/servers.py, the same code as `make run`'s broker)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root: dev/

from dev.servers import RabbitNode  # noqa: E402


@pytest.fixture(scope="session")
def rabbit():
    """Return a running RabbitMQ node on free ports in a temp dir (stopped at the end)."""
    node = RabbitNode().start()
    yield node
    node.cleanup()
