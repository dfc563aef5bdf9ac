#!/bin/sh
# Entrypoint of the admin image: wait for the database, migrate when this container is the web
# role, then exec the command (web, consumer or relay) so it runs as PID 1 and gets signals.
#   DB_WAIT_TIMEOUT  seconds to wait for the database (default 60)
#   RUN_MIGRATIONS   auto (default: only for the gunicorn web command), 1 = always, 0 = never
set -eu

DB_WAIT_TIMEOUT="${DB_WAIT_TIMEOUT:-60}"
RUN_MIGRATIONS="${RUN_MIGRATIONS:-auto}"

log() {
    printf '{"level": "INFO", "service": "admin", "message": "entrypoint: %s"}\n' "$1"
}

wait_for_database() {
    # Settings resolve the credentials (DATABASE_URL or Secrets Manager) exactly as the app does.
    DB_WAIT_TIMEOUT="$DB_WAIT_TIMEOUT" python - <<'PY'
import os, sys, time
import django
from django.db import connection
from django.db.utils import Error

django.setup()
deadline = time.monotonic() + float(os.environ["DB_WAIT_TIMEOUT"])
while True:
    try:
        connection.ensure_connection()
        connection.close()
        break
    except Error as exc:
        connection.close()
        if time.monotonic() > deadline:
            sys.exit(f"database not reachable after {os.environ['DB_WAIT_TIMEOUT']}s: {exc}")
        time.sleep(2)
PY
}

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings}"

case "$RUN_MIGRATIONS" in
    auto) if [ "${1:-}" = "gunicorn" ]; then RUN_MIGRATIONS=1; else RUN_MIGRATIONS=0; fi ;;
esac

log "waiting up to ${DB_WAIT_TIMEOUT}s for the database"
wait_for_database

if [ "$RUN_MIGRATIONS" = "1" ]; then
    log "applying migrations"
    python manage.py migrate --noinput
    if [ -n "${ADMIN_PASSWORD:-}" ]; then
        python manage.py ensure_superuser
    fi
fi

exec "$@"
