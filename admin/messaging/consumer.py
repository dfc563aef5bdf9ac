"""admin's consumer: eventbus.consumer over the Django ORM (README: How an event travels)."""

from __future__ import annotations

import logging

from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.utils import timezone
from eventbus import consumer as core
from eventbus.metrics import consumer_metrics
from prometheus_client import REGISTRY

from messaging import contract, handlers, runtime, topology
from messaging.contract import Event

logger = logging.getLogger(__name__)

HEARTBEAT_NAME = "admin-consumer"
# Like events arrive in bursts (a like storm, a resync); one transaction applies up to 500 of them
# with set-based SQL (handlers.apply_likes_batch), which drains a backlog ten times faster.
PREFETCH_COUNT = 500
BATCH_SIZE = 500
DEAD_LETTER_REASONS = (*contract.REJECT_CODES, "handler_error")
METRICS = consumer_metrics(REGISTRY, contract.CONSUMED, DEAD_LETTER_REASONS)


def _insert_inbox(events: list[Event]) -> None:
    """Insert the inbox rows of distinct events with one multi-row INSERT (IntegrityError on a taken id)."""
    from django.db import connection

    from messaging.models import InboxEvent

    meta = InboxEvent._meta
    qn = connection.ops.quote_name
    received_at = meta.get_field("received_at").get_db_prep_value(timezone.now(), connection)
    # Identifiers come from the model, every value is a parameter.
    sql = (
        f"INSERT INTO {qn(meta.db_table)} ({qn('message_id')}, {qn('event_type')}, {qn('received_at')}) "  # noqa: S608  # nosec B608 - quoted model identifiers, values are parameters
        "VALUES (%s, %s, %s)"
    )
    with connection.cursor() as cursor:
        # PyMySQL turns this into one multi-row INSERT; SQLite runs it as one prepared statement.
        cursor.executemany(sql, [(e.id, e.type, received_at) for e in events])


def _insert_inbox_unless_seen(event: Event) -> bool:
    """Insert one event's inbox row unless the id is there already; return whether it was new.

    One round trip (INSERT IGNORE on MySQL, INSERT OR IGNORE on SQLite) where a SELECT and an
    INSERT in a savepoint took four; also right when a consumer beside this one commits the id
    meanwhile. The contract has checked the id and the type, so IGNORE has nothing else to hide.
    """
    from django.db import connection

    from messaging.models import InboxEvent

    meta = InboxEvent._meta
    qn = connection.ops.quote_name
    verb = "INSERT IGNORE" if connection.vendor == "mysql" else "INSERT OR IGNORE"
    received_at = meta.get_field("received_at").get_db_prep_value(timezone.now(), connection)
    sql = (
        f"{verb} INTO {qn(meta.db_table)} ({qn('message_id')}, {qn('event_type')}, {qn('received_at')}) "  # noqa: S608  # nosec B608 - quoted model identifiers, values are parameters
        "VALUES (%s, %s, %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (event.id, event.type, received_at))
        return cursor.rowcount == 1


def _already_seen(ids: list[str]) -> set[str]:
    """Return which of these message ids the inbox already holds."""
    from messaging.models import InboxEvent

    return set(InboxEvent.objects.filter(message_id__in=ids).values_list("message_id", flat=True))


class DjangoInboxStore:
    """The consumer's view of admin's inbox and of the data its handlers change."""

    def apply(self, events: list[Event]) -> list[str]:
        """Record a batch in the inbox and apply it in ONE transaction; return outcomes in order.

        Duplicates (already in the inbox, or repeated inside the batch) are skipped. A concurrent
        consumer inserting the same id meanwhile makes the insert raise IntegrityError: the inbox
        primary key stays the final dedupe guard, and the consumer splits the batch.
        """
        with transaction.atomic():
            if len(events) == 1:
                if not _insert_inbox_unless_seen(events[0]):
                    return [core.DUPLICATE]
                fresh = list(events)
            else:
                seen = _already_seen(list({event.id for event in events}))
                fresh = []
                for event in events:
                    if event.id not in seen:
                        seen.add(event.id)
                        fresh.append(event)
                if fresh:
                    _insert_inbox(fresh)
            applied = handlers.handle_batch(fresh)
        first = {id(event) for event in fresh}
        return [applied[event.id] if id(event) in first else core.DUPLICATE for event in events]

    def classify(self, exc: BaseException) -> str:
        """A constraint an event breaks, or a handler bug, is the event's; any other database error is not.

        Schema trouble (migrations not run: ProgrammingError, or an OperationalError for an unknown
        column on MySQL) is retried in place like an outage: never blamed on a good message.
        """
        if isinstance(exc, IntegrityError | DataError):
            return core.REJECT
        return core.RETRY if isinstance(exc, DatabaseError) else core.REJECT

    def heartbeat(self, name: str) -> None:
        """Record that the consumer is alive."""
        runtime.beat(name)

    def reset(self) -> None:
        """Drop the database connection after an error."""
        runtime.reset_db_connection()


def build(**overrides) -> core.Consumer:
    """Return admin's consumer, configured from the settings (overrides: tests)."""
    options = {
        "params": topology.connection_parameters(client_name="admin-consumer"),
        "parse": contract.parse,
        "invalid_event": contract.InvalidEvent,
        "heartbeat_name": HEARTBEAT_NAME,
        "prefetch": PREFETCH_COUNT,
        "batch_size": BATCH_SIZE,
        **overrides,
    }
    return core.Consumer(DjangoInboxStore(), topology.TOPOLOGY, METRICS, **options)
