"""The MySQL backend (config/mysql): a transaction is BEGIN ... COMMIT, its statements still counted."""

from unittest import mock

import pytest
from django.db import connection, transaction

from config.mysql.base import DatabaseWrapper
from products import services

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


@pytest.mark.skipif(
    connection.vendor != "mysql", reason="the suite runs on SQLite (TEST_DATABASE_URL for MariaDB)"
)
@pytest.mark.django_db(transaction=True)
def test_on_mysql_a_write_is_begin_to_commit_with_no_autocommit_switches():
    def counters():
        with connection.cursor() as cursor:
            cursor.execute(
                "SHOW SESSION STATUS WHERE Variable_name IN ('Com_begin', 'Com_commit', 'Com_set_option')"
            )
            return dict(cursor.fetchall())

    before = counters()
    services.create_product(title="Lamp", image="https://example.com/lamp.png")
    after = counters()
    changed = {name: int(after[name]) - int(before[name]) for name in before}
    assert changed == {"Com_begin": 1, "Com_commit": 1, "Com_set_option": 0}
    assert connection.connection.get_autocommit()
