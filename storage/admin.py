from django.contrib import admin

from .models import OsCategory, OsType


@admin.register(OsCategory)
class OsCategoryAdmin(admin.ModelAdmin):
    list_display = ("name",)


@admin.register(OsType)
class OsTypeAdmin(admin.ModelAdmin):
    list_display = ("description", "category", "is_user_defined")
    list_filter = ("category",)
