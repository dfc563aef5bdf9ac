"""What the workers export: every known label set from the start, the database's work, the process."""


def test_every_known_label_set_exists_from_the_start():
    # A healthy system shows 0 on the dashboards and alerts, not "No data".
    from app.messaging import contract, metrics

    def exists(name, **labels):
        return metrics.REGISTRY.get_sample_value(name, labels) is not None

    assert all(exists("events_published_total", type=t) for t in contract.PUBLISHED)
    for event_type in contract.CONSUMED:
        assert exists("events_consumed_total", type=event_type)
        assert exists("events_duplicates_total", type=event_type)
        for reason in metrics.DEAD_LETTER_REASONS:
            assert exists("events_dead_lettered_total", type=event_type, reason=reason), reason


def test_a_worker_exports_the_database_work_and_its_process_figures(app):
    # The Database and Resources dashboards plot these for main's consumer and relay too.
    from sqlalchemy import text

    from app.extensions import db
    from app.messaging import metrics

    def value(name, **labels):
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    with app.app_context():
        vendor = db.engine.dialect.name  # sqlite here, mysql when the suite runs on MariaDB
        before = value("sqlalchemy_execute_total", vendor=vendor)
        db.session.execute(text("SELECT 1"))
        db.session.execute(text("UPDATE product SET title = title WHERE id = -1"))
        db.session.rollback()
    assert value("sqlalchemy_execute_total", vendor=vendor) >= before + 2
    assert value("sqlalchemy_query_duration_seconds_count", vendor=vendor) > 0
    assert value("sqlalchemy_table_writes_total", table="product", operation="update") > 0
    assert value("process_cpu_seconds_total") > 0
