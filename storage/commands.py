"""Storage API commands. For now: the OS catalogue."""
from __future__ import annotations

from portal.api import params as P
from portal.api.registry import Command, ListParams, register
from accounts.access import ALL_ROLE_TYPES

from .models import OsCategory, OsType
from .responses import OsCategoryResponse, OsTypeResponse


class ListOsTypesParams(ListParams):
    id = P.Uuid(help_text="list by Os type Id")
    oscategoryid = P.Entity(OsCategory, help_text="list by Os Category id")
    description = P.String(help_text="list os by description")


@register
class ListOsTypes(Command):
    name = "listOsTypes"
    description = "Lists all supported OS types for this cloud."
    Params = ListOsTypesParams
    response = OsTypeResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = OsType.objects.select_related("category")
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("oscategoryid"):
            qs = qs.filter(category=params["oscategoryid"])
        if params.get("description"):
            qs = qs.filter(description=params["description"])
        if params.get("keyword"):
            qs = qs.filter(description__icontains=params["keyword"])
        return qs


class ListOsCategoriesParams(ListParams):
    id = P.Uuid(help_text="list Os category by id")
    name = P.String(help_text="list os category by name")


@register
class ListOsCategories(Command):
    name = "listOsCategories"
    description = "Lists all supported OS categories for this cloud."
    Params = ListOsCategoriesParams
    response = OsCategoryResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = OsCategory.objects.all()
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        if params.get("keyword"):
            qs = qs.filter(name__icontains=params["keyword"])
        return qs
