from django.contrib import admin

from .models import AsyncJob, ConfigurationValue, Event


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the apps' services change (they also act on hosts, file systems and
    counters, and write events): the admin site shows them, it does not edit them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("created", "type", "level", "state", "username", "account_name", "description")
    list_filter = ("level", "type")
    search_fields = ("description", "type", "username", "account_name")
    readonly_fields = [f.name for f in Event._meta.fields]


@admin.register(AsyncJob)
class AsyncJobAdmin(admin.ModelAdmin):
    list_display = ("created", "command", "status", "result_code", "instance_type", "instance_uuid", "completed")
    list_filter = ("status", "command")
    readonly_fields = [f.name for f in AsyncJob._meta.fields]


@admin.register(ConfigurationValue)
class ConfigurationValueAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "scope_uuid", "value", "updated")
    search_fields = ("name",)
