"""Fixtures of the operations tests: a fake workbench (the role-named ones are in admin/conftest.py)."""

import pytest

from operations import services
from operations.tests.fakes import FakeDeadLetters


@pytest.fixture
def letters(monkeypatch):
    """The workbench the views get: an in-memory fake of eventbus.workbench.DeadLetters."""
    fake = FakeDeadLetters()
    monkeypatch.setattr(services, "DeadLetters", fake.bind)
    return fake
