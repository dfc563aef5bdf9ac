"""django-prometheus's MySQL backend, starting each transaction with one BEGIN.

Django enters transaction.atomic() by turning autocommit off and leaves it by turning it back on:
with PyMySQL that is `SET AUTOCOMMIT = 0` before the first statement and `SET AUTOCOMMIT = 1`
after the COMMIT, two round trips to the server around every product write, like batch and relay
claim. A `BEGIN` under autocommit starts the same transaction in one: the COMMIT or ROLLBACK ends
it and the session is in autocommit again, so turning autocommit back on sends nothing (PyMySQL
reads the mode from the server's status flags). Django's hook for this is the one its SQLite
backend uses for `BEGIN IMMEDIATE`; everything else, the query metrics included, is unchanged.
https://dev.mysql.com/doc/refman/8.0/en/commit.html

And django-prometheus builds a new cursor class for every cursor (every statement): the class,
the same each time, is built once per connection instead.
"""

from django.db.backends.utils import debug_transaction
from django.utils.functional import cached_property
from django_prometheus.db.backends.mysql import base
from django_prometheus.db.common import ExportingCursorWrapper


class DatabaseFeatures(base.DatabaseFeatures):
    """The same features as django-prometheus's (and Django's) MySQL backend."""


class DatabaseWrapper(base.DatabaseWrapper):
    """django-prometheus's MySQL DatabaseWrapper whose atomic blocks begin with BEGIN."""

    @cached_property
    def _exporting_cursor_class(self):
        return ExportingCursorWrapper(self.CURSOR_CLASS, self.alias, self.vendor)

    def create_cursor(self, name=None):
        """Return a cursor that counts its statements (django_db_*), as django-prometheus's does."""
        return self._exporting_cursor_class(self.connection.cursor())

    def _start_transaction_under_autocommit(self):
        """Start a transaction with BEGIN, leaving the session's autocommit mode as it is."""
        with debug_transaction(self, "BEGIN"), self.wrap_database_errors:
            self.connection.begin()
