"""The MySQL backend (config/mysql): a transaction is BEGIN ... COMMIT, its statements still counted."""

import sys
from pathlib import Path
from unittest import mock

import pytest
from django.db import transaction

from config.mysql.base import DatabaseWrapper

SETTINGS = {
    "ENGINE": "config.mysql",
    "NAME": "shop",
    "USER": "app",
    "PASSWORD": "pw",  # pragma: allowlist secret
    "HOST": "127.0.0.1",
    "PORT": "3306",
    "OPTIONS": {},
    "TIME_ZONE": None,
    "CONN_MAX_AGE": 0,
    "CONN_HEALTH_CHECKS": False,
    "AUTOCOMMIT": True,
    "ATOMIC_REQUESTS": False,
    "TEST": {},
}


@pytest.fixture
def wrapper():
    """The backend over a stand-in PyMySQL connection in autocommit mode."""
    db = DatabaseWrapper(dict(SETTINGS), alias="fake")
    db.connection = mock.Mock(name="pymysql")
    db.connection.cursor.return_value = mock.Mock(name="cursor")
    db.autocommit = True
    db.ensure_connection = lambda: None  # connected already (and pytest-django's guard stays out)
    return db


def test_an_atomic_block_begins_with_one_begin_and_never_turns_autocommit_off(wrapper):
    with (
        mock.patch.object(transaction, "get_connection", return_value=wrapper),
        transaction.atomic(using="fake"),
    ):
        wrapper.connection.begin.assert_called_once_with()
    wrapper.connection.commit.assert_called_once_with()
    assert mock.call(False) not in wrapper.connection.autocommit.call_args_list


def test_a_failed_block_rolls_back(wrapper):
    with (
        mock.patch.object(transaction, "get_connection", return_value=wrapper),
        pytest.raises(RuntimeError),
        transaction.atomic(using="fake"),
    ):
        raise RuntimeError
    wrapper.connection.rollback.assert_called_once_with()
    wrapper.connection.commit.assert_not_called()


def test_cursors_share_one_class_and_count_their_statements(wrapper):
    first, second = wrapper.create_cursor(), wrapper.create_cursor()
    assert type(first) is type(second)
    assert type(first).__name__ == "CursorWrapper"
    assert hasattr(type(first), "executemany")


@pytest.fixture(scope="module")
def mariadb_backend():
    """The backend connected to a throwaway MariaDB (the repository's test harness), not a stand-in."""
    root = Path(__file__).resolve().parents[3]
    sys.path[:0] = [str(root / "tests"), str(root)]
    from harness.servers import MariaDB

    server = MariaDB().start()
    try:
        server.create_db_user("backend_check", "backend_check", "backend-check-pw")
        settings = {
            **SETTINGS,
            "NAME": "backend_check",
            "USER": "backend_check",
            "PASSWORD": "backend-check-pw",  # pragma: allowlist secret
            "PORT": str(server.port),
        }
        yield DatabaseWrapper(settings, alias="mariadb")
    finally:
        server.cleanup()


def _counters(db) -> dict[str, int]:
    with db.cursor() as cursor:
        cursor.execute(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_begin', 'Com_commit', 'Com_set_option')"
        )
        return {name: int(value) for name, value in cursor.fetchall()}


def test_on_mariadb_a_transaction_is_begin_to_commit_with_no_autocommit_switches(
    mariadb_backend, django_db_blocker
):
    db = mariadb_backend
    with django_db_blocker.unblock(), mock.patch.object(transaction, "get_connection", return_value=db):
        db.ensure_connection()
        with db.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS lamp (id INT AUTO_INCREMENT PRIMARY KEY)")
        before = _counters(db)
        with transaction.atomic(using="mariadb"), db.cursor() as cursor:
            cursor.execute("INSERT INTO lamp VALUES (NULL)")
            cursor.execute("SELECT @@in_transaction")
            assert cursor.fetchone() == (1,)
        after = _counters(db)
        assert {name: after[name] - before[name] for name in before} == {
            "Com_begin": 1,
            "Com_commit": 1,
            "Com_set_option": 0,
        }
        assert db.connection.get_autocommit()

        with pytest.raises(RuntimeError), transaction.atomic(using="mariadb"), db.cursor() as cursor:
            cursor.execute("INSERT INTO lamp VALUES (NULL)")
            raise RuntimeError
        with db.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM lamp")
            assert cursor.fetchone() == (1,)  # the failed block's row is gone
        db.close()
