from django.contrib import admin

from .models import ImageStore, OsCategory, OsType, StoragePool


@admin.register(OsCategory)
class OsCategoryAdmin(admin.ModelAdmin):
    list_display = ("name",)


@admin.register(OsType)
class OsTypeAdmin(admin.ModelAdmin):
    list_display = ("description", "category", "is_user_defined")
    list_filter = ("category",)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Storage is added, changed and removed through storage.services (API or UI), which act on
    the hosts and the file systems too; the admin site only shows the rows."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
