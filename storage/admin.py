from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import (ImageStore, OsCategory, OsType, StoragePool, Template, TemplatePermission, TemplatePoolCopy,
                     TemplateZone, Volume)


@admin.register(OsCategory)
class OsCategoryAdmin(admin.ModelAdmin):
    list_display = ("name",)


@admin.register(OsType)
class OsTypeAdmin(admin.ModelAdmin):
    list_display = ("description", "category", "is_user_defined")
    list_filter = ("category",)


@admin.register(StoragePool)
class StoragePoolAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "cluster", "scope", "type", "url", "state", "capacity_bytes", "used_bytes")
    list_filter = ("scope", "type", "state", "zone")
    search_fields = ("name", "url")


@admin.register(ImageStore)
class ImageStoreAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "url", "protocol", "mount_path", "capacity_bytes", "used_bytes")
    list_filter = ("protocol", "zone")
    search_fields = ("name", "url")


@admin.register(Template)
class TemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "format", "account", "is_public", "is_featured", "cross_zones", "created")
    list_filter = ("format", "is_public", "is_featured")
    search_fields = ("name", "url")


@admin.register(TemplateZone)
class TemplateZoneAdmin(ReadOnlyAdmin):
    list_display = ("template", "zone", "state", "percent")
    list_filter = ("state", "zone")


@admin.register(TemplatePermission)
class TemplatePermissionAdmin(ReadOnlyAdmin):
    list_display = ("template", "account")


@admin.register(TemplatePoolCopy)
class TemplatePoolCopyAdmin(ReadOnlyAdmin):
    list_display = ("template", "pool", "state")


@admin.register(Volume)
class VolumeAdmin(ReadOnlyAdmin):
    list_display = ("name", "type", "virtual_machine", "pool", "size", "state")
    list_filter = ("type", "state")
    search_fields = ("name",)
