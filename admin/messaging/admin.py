"""Read-only Django admin views of the messaging tables."""

from django.contrib import admin

from messaging.models import InboxEvent, OutboxEvent, WorkerHeartbeat


class ReadOnlyAdmin(admin.ModelAdmin):
    """Show rows without letting anyone add, change or delete them by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    """Outbox rows, newest first."""

    list_display = (
        "id",
        "event_type",
        "event_id",
        "created_at",
        "attempts",
        "published_at",
    )
    list_filter = ("event_type",)
    search_fields = ("event_id",)
    ordering = ("-id",)


@admin.register(InboxEvent)
class InboxEventAdmin(ReadOnlyAdmin):
    """Consumed message ids."""

    list_display = ("message_id", "event_type", "received_at")
    list_filter = ("event_type",)
    search_fields = ("message_id",)
    ordering = ("-received_at",)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    """Worker liveness."""

    list_display = ("name", "last_seen")
