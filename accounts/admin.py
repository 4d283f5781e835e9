from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import Account, Domain, ResourceLimit, Role, RolePermission, SSHKeyPair, User


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("name", "path", "level", "state", "created")
    search_fields = ("name", "path")
    readonly_fields = ("uuid", "path", "level")


class RolePermissionInline(admin.TabularInline):
    model = RolePermission
    extra = 0


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "is_default")
    inlines = [RolePermissionInline]
    readonly_fields = ("uuid",)


@admin.register(RolePermission)
class RolePermissionAdmin(admin.ModelAdmin):
    list_display = ("role", "rule", "permission", "sort_order")
    list_filter = ("role",)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "type", "role", "state", "created")
    list_filter = ("type", "state")
    search_fields = ("name",)
    readonly_fields = ("uuid",)
    list_select_related = ("domain", "role")


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("username", "account", "domain", "state", "email", "created")
    list_filter = ("state",)
    search_fields = ("username", "email", "firstname", "lastname")
    readonly_fields = ("uuid", "api_key", "last_login")
    exclude = ("password", "secret_key_encrypted")
    list_select_related = ("account__domain", "domain")


@admin.register(SSHKeyPair)
class SSHKeyPairAdmin(ReadOnlyAdmin):
    list_display = ("name", "account", "fingerprint", "created")
    search_fields = ("name", "fingerprint")


@admin.register(ResourceLimit)
class ResourceLimitAdmin(ReadOnlyAdmin):
    list_display = ("resource_type", "account", "domain", "max")
