#!/bin/sh
# Entrypoint wrapper for the rabbitmq service in docker-compose.yml: start the broker as the image
# normally does and, beside it, create one user per service with least privilege (passwords come
# from the environment, never from a file in the repository), delete guest, and then write a
# marker file that the healthcheck waits for. `provision-users.sh --provision-only` only provisions
# a node that is already running (tests/deploy/test_broker_users.py).
#
# Permissions (configure / write / read regexes on vhost "/"), admin shown, main mirrors it:
#   configure  admin, admin.dlq, admin.dlx, admin.events, admin.redrive: its own objects only
#              (configure also allows deleting; the consumer only looks main.events up, passively,
#              and waits until main's relay has declared it)
#   write      admin.events (publish), admin + admin.dlq (bind), admin.redrive (`dlq redrive`),
#              admin.dlx (declaring a queue with x-dead-letter-exchange needs write on that exchange)
#   read       admin + admin.dlq (consume, `dlq list`), admin.dlx + admin.redrive + main.events (bind)
# No write on amq.default: the default exchange routes to every queue by name, so that grant would
# let admin publish straight into main's queue. `dlq redrive` goes through admin.redrive, a fanout
# exchange bound to queue admin alone.
set -eu

MARKER="${PROVISION_MARKER:-/tmp/users-provisioned}"
rm -f "$MARKER"

log() {
    echo "provision-users: $1"
}

ensure_user() {  # name password configure write read
    if rabbitmqctl -q list_users | awk '{print $1}' | grep -qx "$1"; then
        printf '%s\n' "$2" | rabbitmqctl -q change_password "$1"
    else
        printf '%s\n' "$2" | rabbitmqctl -q add_user "$1"
    fi
    rabbitmqctl -q set_permissions -p / "$1" "$3" "$4" "$5"
    log "user $1 ready"
}

provision() {
    rabbitmqctl -q await_startup --timeout 300
    ensure_user "$ADMIN_AMQP_USER" "$ADMIN_AMQP_PASSWORD" \
        '^(admin|admin\.dlq|admin\.dlx|admin\.events|admin\.redrive)$' \
        '^(admin|admin\.dlq|admin\.dlx|admin\.events|admin\.redrive)$' \
        '^(admin|admin\.dlq|admin\.dlx|admin\.redrive|main\.events)$'
    ensure_user "$MAIN_AMQP_USER" "$MAIN_AMQP_PASSWORD" \
        '^(main|main\.dlq|main\.dlx|main\.events|main\.redrive)$' \
        '^(main|main\.dlq|main\.dlx|main\.events|main\.redrive)$' \
        '^(main|main\.dlq|main\.dlx|main\.redrive|admin\.events)$'
    rabbitmqctl -q delete_user guest 2>/dev/null || true
    touch "$MARKER"
    log "done"
}

: "${ADMIN_AMQP_USER:?}" "${ADMIN_AMQP_PASSWORD:?}" "${MAIN_AMQP_USER:?}" "${MAIN_AMQP_PASSWORD:?}"
if [ "${1:-}" = "--provision-only" ]; then  # run against an already running node (tests)
    provision
    exit 0
fi
provision &
exec docker-entrypoint.sh "$@"
