"""HTTP API of the main service, mounted under /flask/api."""

from app.api.routes import bp

__all__ = ["bp"]
