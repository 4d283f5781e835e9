from django.contrib import admin

from .models import AsyncJob, ConfigurationValue, Event


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
