"""The committed migrations build exactly the models' schema, with the real unique constraint."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.extensions import db


def migrated_app(database_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t"})
    with app.app_context():
        upgrade()
    return app


def assert_upgrade_matches_the_models(database_url):
    app = migrated_app(database_url)
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == []
    with app.app_context():
        uniques = {
            tuple(u["column_names"]) for u in inspect(db.engine).get_unique_constraints("product_like")
        }
    assert ("shopper_id", "product_id") in uniques


def test_upgrade_matches_the_models(database_url):
    assert_upgrade_matches_the_models(database_url)


@pytest.mark.mysql
def test_upgrade_on_mariadb_matches_the_models(mysql_database_url):
    assert_upgrade_matches_the_models(mysql_database_url)


def test_product_like_has_a_real_unique_constraint(database_url):
    app = migrated_app(database_url)
    with app.app_context():
        inspector = inspect(db.engine)
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("product_like")}
        assert ("shopper_id", "product_id") in uniques
        assert set(inspector.get_table_names()) >= {
            "product",
            "product_like",
            "outbox",
            "inbox",
            "worker_heartbeat",
            "dead_letter_audit",
        }


def test_downgrade_removes_everything(database_url):
    app = migrated_app(database_url)
    with app.app_context():
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
