"""Gunicorn settings of the admin web process (PORT, WEB_CONCURRENCY, PROMETHEUS_MULTIPROC_DIR)."""

import os
import shutil
import tempfile
from pathlib import Path

bind = f"0.0.0.0:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# Heartbeat files on tmpfs: a slow disk must not make healthy workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108  # nosec B108 - a path of a tmpfs, no file created by name
timeout = 30
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
logger_class = "config.gunicorn_logging.JsonLogger"
# Several gunicorns share this machine; the control socket's fixed default path would collide.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Workers share metrics through files; the directory must exist before any worker imports
# prometheus_client, so it is chosen here, in the master, and inherited by the workers.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="admin-prometheus-")
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def on_starting(server):
    """Drop metric files left by an earlier run of the master."""
    for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker):
    """Mark a dead worker's live gauges as gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this master created for itself."""
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
