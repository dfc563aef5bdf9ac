"""The main service: a Flask app that owns likes and keeps a replica of admin's products."""

import logging
import os

from flask import Flask
from flask.sessions import SessionInterface

from app import db_metrics
from app.config import engine_options, load_config, normalise_database_url
from app.db_pool import ping_after_idle
from app.extensions import db, migrate
from app.logging_config import configure_logging
from app.sqlite import use_immediate_transactions

logger = logging.getLogger(__name__)


class NoSessionInterface(SessionInterface):
    """No Flask session: shoppers are identified by their own signed cookie (app.api.shopper)."""

    def open_session(self, app, request):
        """Return no session (flask.session becomes a NullSession)."""
        return None

    def save_session(self, app, session, response):
        """Save nothing."""


def create_app(test_config=None):
    """Create and configure the Flask app; test_config overrides the environment settings."""
    configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    app = Flask(__name__, static_folder=None)
    app.config.update(load_config())
    if test_config:
        app.config.update(test_config)
        if "SQLALCHEMY_DATABASE_URI" in test_config:
            url = normalise_database_url(test_config["SQLALCHEMY_DATABASE_URI"])
            app.config["SQLALCHEMY_DATABASE_URI"] = url
            app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
                **engine_options(url),
                **test_config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
            }
    logging.getLogger().setLevel(app.config["LOG_LEVEL"])
    app.json.sort_keys = False
    # Building Flask's signed-cookie session costs a serializer per request; nothing here uses it.
    app.session_interface = NoSessionInterface()

    from app import models  # noqa: F401 - register the tables with the metadata (migrations)

    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        ping_after_idle(db.engine)
        use_immediate_transactions(db.engine)
        db_metrics.instrument(db.engine, tables=db.metadata.tables)
    from app.api.dead_letters import MessageIdConverter
    from app.api.dead_letters import bp as dead_letters_bp
    from app.api.errors import register_error_handlers
    from app.api.guard import limiter
    from app.api.routes import ProductIdConverter, bp

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client address and scheme the proxy saw: rate limits key on the first, Secure
        # cookies follow the second. Only as many hops as there are proxies in front of us.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    limiter.init_app(app)

    app.url_map.converters["product_id"] = ProductIdConverter
    app.url_map.converters["message_id"] = MessageIdConverter
    register_error_handlers(app)
    app.register_blueprint(bp)
    app.register_blueprint(dead_letters_bp)

    if app.config["CORS_ALLOWED_ORIGINS"]:
        from flask_cors import CORS

        # Credentials on: the shopper cookie must travel with cross-origin likes. The operator
        # routes authenticate by the Authorization header alone (a bearer token, never a cookie),
        # so their preflight names exactly the headers and methods they take.
        CORS(
            app,
            resources={
                r"/flask/api/dead-letters*": {
                    "allow_headers": ["Authorization", "Content-Type"],
                    "methods": ["GET", "POST"],
                    "max_age": 600,
                },
                r"/*": {},
            },
            origins=app.config["CORS_ALLOWED_ORIGINS"],
            supports_credentials=True,
            expose_headers=["X-Next-Cursor", "X-Result-Capped"],
        )

    from app.observability import init_metrics, init_tracing

    init_metrics(app)
    init_tracing(app)

    from app.cli import register_cli

    register_cli(app)
    logger.info(
        "main app created (env=%s, database source=%s)",
        app.config["APP_ENV"],
        app.config["DATABASE_SOURCE"],
    )
    return app
