"""gunicorn config for bench_likes.py's floor pass: main's own config, the like's transaction stubbed out.

The like route then still parses the request, mints and signs the shopper cookie, records its
OpenTelemetry span and Prometheus metrics, nudges the relay and writes the JSON access log; only
services.like (the database transaction) answers at once. What it serves is the most a like can
serve on this machine with this worker setup, whatever the database work costs.
"""

import runpy
from pathlib import Path

globals().update(runpy.run_path(str(Path(__file__).resolve().parents[2] / "main" / "gunicorn.conf.py")))


def post_worker_init(worker):
    """Replace the like transaction in this worker by an immediate answer."""
    from app import services

    services.like = lambda shopper_id, product_id: {"id": product_id, "likes": 1, "liked": True}
