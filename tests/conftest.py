"""Session fixtures for cross-service tests: a real RabbitMQ node, a real MariaDB, the service processes.

Servers start lazily (only when a test asks for them), once per session, and stop at the end even
when tests fail or the run is interrupted (Ctrl-C, SIGTERM); an atexit hook in the harness is the
last safety net.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness.servers import MariaDB, RabbitNode
from harness.services import ServiceSet

collect_ignore = ["load"]  # benchmarks, run by `make bench`

_FOLDER_MARKERS = {
    "integration",
    "faults",
    "e2e",
    "contract",
    "deploy",
    "observability",
}


@dataclass(frozen=True)
class DbAccount:
    """A service's database, user and password on the session MariaDB, and its DATABASE_URL."""

    db: str
    user: str
    password: str
    url: str


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM into KeyboardInterrupt so fixture teardown stops the servers; keep pika's chatter out."""
    logging.getLogger("pika").setLevel(logging.WARNING)  # its INFO lines drown a failing test's log
    if threading.current_thread() is threading.main_thread():

        def _interrupt(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the name of its top folder (integration, faults, e2e, ...)."""
    root = Path(__file__).parent
    for item in items:
        try:
            folder = Path(item.fspath).relative_to(root).parts[0]
        except ValueError:
            continue
        if folder in _FOLDER_MARKERS:
            item.add_marker(getattr(pytest.mark, folder))


# ----- servers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _rabbit_booting() -> Iterator[RabbitNode]:
    """Spawn the session RabbitMQ node without waiting, so other servers can start meanwhile."""
    node = RabbitNode()
    try:
        node.start(wait=False)
        yield node
    finally:
        node.cleanup()


@pytest.fixture(scope="session")
def rabbit(_rabbit_booting: RabbitNode) -> RabbitNode:
    """Return a running throwaway RabbitMQ node (no plugins); `rabbit.url` is its AMQP URL."""
    _rabbit_booting.wait_ready()
    return _rabbit_booting


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    """Return a running throwaway MariaDB with admin_db/admin_user and main_db/main_user."""
    server = MariaDB()
    try:
        server.start()
        for account in _ACCOUNTS.values():
            server.create_db_user(*account)
        yield server
    finally:
        server.cleanup()


_ACCOUNTS = {
    "admin": ("admin_db", "admin_user", "admin-db-test-pw"),
    "main": ("main_db", "main_user", "main-db-test-pw"),
}


@pytest.fixture(scope="session")
def db_accounts(mariadb: MariaDB) -> dict[str, DbAccount]:
    """Return {"admin": DbAccount, "main": DbAccount}; query with mariadb.connect(db, user, password)."""
    return {
        svc: DbAccount(db, user, pw, mariadb.url(db, user, pw)) for svc, (db, user, pw) in _ACCOUNTS.items()
    }


@pytest.fixture(scope="session")
def rabbitmq_url(rabbit: RabbitNode) -> str:
    """Return the AMQP URL of the session broker (guest, default vhost)."""
    return rabbit.url


@pytest.fixture(scope="session")
def admin_database_url(db_accounts: dict[str, DbAccount]) -> str:
    """Return admin's DATABASE_URL (mysql://admin_user:...@127.0.0.1:port/admin_db)."""
    return db_accounts["admin"].url


@pytest.fixture(scope="session")
def main_database_url(db_accounts: dict[str, DbAccount]) -> str:
    """Return main's DATABASE_URL (mysql://main_user:...@127.0.0.1:port/main_db)."""
    return db_accounts["main"].url


@pytest.fixture(scope="session")
def stack(
    _rabbit_booting: RabbitNode,
    admin_database_url: str,
    main_database_url: str,
    rabbitmq_url: str,
) -> Iterator[ServiceSet]:
    """Return the service processes, migrated, started and ready (/api/ready and /flask/api/ready 200)."""
    # Argument order matters: the broker boots while MariaDB starts (pytest sets fixtures up in order).
    services = ServiceSet(rabbitmq_url, admin_database_url, main_database_url)
    try:
        services.start()
        yield services
    finally:
        services.cleanup()


@pytest.fixture(autouse=True)
def _restore_servers(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that stopped or killed a server or process, bring it back for the next test."""
    yield
    names = request.fixturenames
    if "rabbit" in names:
        node = request.getfixturevalue("rabbit")
        if not node.running:
            node.start()
    if "mariadb" in names:
        server = request.getfixturevalue("mariadb")
        if not server.running:
            server.start()
    if "stack" in names:
        request.getfixturevalue("stack").ensure_running()


# ----- helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def http() -> Iterator[requests.Session]:
    """Return a fresh requests.Session (own cookie jar) closed after the test."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def admin_url(stack: ServiceSet) -> str:
    """Return the admin web base URL, e.g. http://127.0.0.1:PORT (API under /api)."""
    return stack.admin_url


@pytest.fixture
def main_url(stack: ServiceSet) -> str:
    """Return the main web base URL, e.g. http://127.0.0.1:PORT (API under /flask/api)."""
    return stack.main_url
