"""Fixtures: a fresh database per test behind an app built by the factory."""

import os
import uuid

import pytest
from sqlalchemy import make_url

from app import create_app
from app.extensions import db
from app.models import Product

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _is_mysql(url):
    return url.startswith(("mysql://", "mysql+pymysql://", "mariadb"))


def _mysql_test_database(base_url):
    """Create a uniquely named database next to base_url's; return (url, drop)."""
    import pymysql

    url = make_url(base_url.replace("mysql://", "mysql+pymysql://", 1))
    name = f"test_main_{uuid.uuid4().hex[:10]}"

    def connect():
        return pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            autocommit=True,
        )

    with connect() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

    def drop():
        with connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    return url.set(database=name).render_as_string(hide_password=False), drop


def make_app(database_url, **extra):
    """Build an app for tests on database_url with its schema created."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-key",
        # No relay in unit tests; an empty address turns the wake-up off.
        "OUTBOX_WAKEUP_ADDR": "",
        # Unroutable broker: readiness reports it down without waiting long.
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:1/%2F",
        # Tests make many likes from one address; tests/api/test_guard.py tests the real budgets.
        "LIKES_RATE_LIMIT": "100000 per minute",
        "NEW_SHOPPER_RATE_LIMIT": "100000 per minute",
        **extra,
    }
    app = create_app(config)
    with app.app_context():
        db.create_all()
    return app


@pytest.fixture(scope="session")
def mysql_server_url():
    """Return a MySQL URL to create test databases with: TEST_DATABASE_URL, else a throwaway MariaDB."""
    if _is_mysql(TEST_DATABASE_URL):
        yield TEST_DATABASE_URL
        return
    from tests.mariadb import MariaDB

    server = MariaDB().start()
    try:
        yield server.root_url
    finally:
        server.cleanup()


@pytest.fixture
def mysql_database_url(mysql_server_url):
    """Return the URL of a fresh, empty MySQL database."""
    url, drop = _mysql_test_database(mysql_server_url)
    yield url
    drop()


@pytest.fixture
def database_url(tmp_path):
    """Return a fresh, empty database URL: MySQL when TEST_DATABASE_URL says so, else SQLite."""
    if _is_mysql(TEST_DATABASE_URL):
        url, drop = _mysql_test_database(TEST_DATABASE_URL)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'main.sqlite3'}"


@pytest.fixture
def app(database_url):
    """Return an app on a fresh database."""
    app = make_app(database_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    """Return a test client (it keeps cookies, like a browser)."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """Return a CLI runner for app."""
    return app.test_cli_runner()


@pytest.fixture
def add_product(app):
    """Return a function that inserts a product replica row."""

    def add(product_id, title=None, image="", likes=0, deleted=False, version=1):
        with app.app_context():
            db.session.add(
                Product(
                    id=product_id,
                    title=title or f"Product {product_id}",
                    image=image,
                    likes=likes,
                    deleted=deleted,
                    version=version,
                )
            )
            db.session.commit()
        return product_id

    return add
