#!/bin/sh
# Entrypoint of the main image: wait for the database, migrate when this container is the web
# role, then exec the command (web, consumer or relay) so it runs as PID 1 and gets signals.
#   DB_WAIT_TIMEOUT  seconds to wait for the database (default 60)
#   RUN_MIGRATIONS   auto (default: only for the gunicorn web command), 1 = always, 0 = never
set -eu

DB_WAIT_TIMEOUT="${DB_WAIT_TIMEOUT:-60}"
RUN_MIGRATIONS="${RUN_MIGRATIONS:-auto}"

log() {
    printf '{"level": "INFO", "service": "main", "message": "entrypoint: %s"}\n' "$1"
}

wait_for_database() {
    # create_app() resolves the credentials (DATABASE_URL or Secrets Manager) exactly as the app does.
    DB_WAIT_TIMEOUT="$DB_WAIT_TIMEOUT" python - <<'PY'
import os, sys, time
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from app import create_app
from app.extensions import db

app = create_app()
deadline = time.monotonic() + float(os.environ["DB_WAIT_TIMEOUT"])
with app.app_context():
    while True:
        try:
            with db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            break
        except SQLAlchemyError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"database not reachable after {os.environ['DB_WAIT_TIMEOUT']}s: {exc}")
            time.sleep(2)
PY
}

case "$RUN_MIGRATIONS" in
    auto) if [ "${1:-}" = "gunicorn" ]; then RUN_MIGRATIONS=1; else RUN_MIGRATIONS=0; fi ;;
esac

log "waiting up to ${DB_WAIT_TIMEOUT}s for the database"
wait_for_database

if [ "$RUN_MIGRATIONS" = "1" ]; then
    log "applying migrations"
    flask --app app db upgrade
fi

exec "$@"
