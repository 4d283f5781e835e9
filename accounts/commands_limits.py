"""API commands of resource limits (CloudStack 4.18: listResourceLimits, updateResourceLimit,
updateResourceCount): declarations that validate, then call accounts.limits.

CloudStack 4.18 has no listResourceCount: usage is read with updateResourceCount, which here
only reports the recount (nothing is stored, so there is nothing to repair)."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework import serializers as s

from portal.api import params as P
from portal.api.registry import Command, ScopedListParams, register
from portal.api.responses import ResponseSerializer, Uuid
from portal.errors import InvalidParameterValue

from . import limits
from .access import ADMINS, ALL_ROLE_TYPES, resolve_scope

TYPE_HELP = ("Type of resource: 0 - Instance, 1 - IP, 2 - Volume, 3 - Snapshot, 4 - Template (and ISO), "
             "5 - Project, 6 - Network, 7 - VPC, 8 - CPU, 9 - Memory (MiB), 10 - Primary storage (GiB), "
             "11 - Secondary storage (GiB)")


# -- parameter fields -------------------------------------------------------------------------------
class ResourceTypeNumber(P.Integer):
    """A resource type number, 0..11."""

    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        if value not in limits.BY_NUMBER:
            raise serializers.ValidationError(f"is not a resource type; give one of {limits.TYPE_CHOICES}")
        return value


class ResourceTypeName(P.String):
    """A resource type name such as user_vm."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).strip().lower()
        if value and value not in limits.BY_NAME:
            raise serializers.ValidationError(f"is not a resource type; give one of {limits.TYPE_CHOICES}")
        return value


def _no_projects(params: dict) -> None:
    if params.get("projectid"):
        raise InvalidParameterValue("Projects are not supported; limits belong to accounts and domains")


# -- responses --------------------------------------------------------------------------------------
class ResourceLimitResponse(ResponseSerializer):
    object_name = "resourcelimit"
    account = s.CharField(source="account.name", default=None, help_text="the account of the resource limit")
    domainid = Uuid(source="domain.uuid", help_text="the domain ID of the resource limit")
    domain = s.CharField(source="domain.name", help_text="the domain name of the resource limit")
    domainpath = s.CharField(source="domain.display_path", help_text="the domain path of the resource limit")
    resourcetype = s.CharField(source="resource_type.code",
                               help_text="resource type. Values include 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11. See "
                                         "the resourceType parameter for more information on these values.")
    resourcetypename = s.CharField(source="resource_type.name",
                                   help_text="resource type name. Values include user_vm, public_ip, volume, "
                                             "snapshot, template, project, network, vpc, cpu, memory, "
                                             "primary_storage, secondary_storage.")
    max = s.IntegerField(help_text="the maximum number of the resource (MiB for memory, GiB for storage). "
                                   "A -1 means the resource currently has no limit.")


class ResourceCountResponse(ResponseSerializer):
    object_name = "resourcecount"
    account = s.CharField(source="account.name", default=None, help_text="the account for which resource count's "
                                                                         "are updated")
    domainid = Uuid(source="domain.uuid", help_text="the domain ID for which resource count's are updated")
    domain = s.CharField(source="domain.name", help_text="the domain name for which resource count's are updated")
    domainpath = s.CharField(source="domain.display_path", help_text="the domain path for which resource count's "
                                                                     "are updated")
    resourcetype = s.CharField(source="resource_type.code", help_text="resource type. Values include 0, 1, 2, 3, 4, "
                                                                      "5, 6, 7, 8, 9, 10, 11.")
    resourcetypename = s.CharField(source="resource_type.name", help_text="resource type name")
    resourcecount = s.IntegerField(help_text="resource count (MiB for memory, bytes for storage)")


# -- commands ---------------------------------------------------------------------------------------
class ListResourceLimitsParams(ScopedListParams):
    id = P.Long(min_value=0, max_value=limits.MAX_LIMIT, help_text="Lookup by ID.")
    resourcetype = ResourceTypeNumber(help_text=TYPE_HELP)
    resourcetypename = ResourceTypeName(help_text="Type of resource (wins over resourceType if both are "
                                                  "provided): user_vm, public_ip, volume, snapshot, template, "
                                                  "project, network, vpc, cpu, memory, primary_storage, "
                                                  "secondary_storage")
    projectid = P.Uuid(help_text="List resource limits of a project (projects are not supported)")


@register
class ListResourceLimits(Command):
    name = "listResourceLimits"
    description = "Lists resource limits."
    Params = ListResourceLimitsParams
    response = ResourceLimitResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        domain, account = resolve_scope(self.caller, params, command=self.name)
        if params.get("projectid"):
            return []
        rtype = params.get("resourcetypename") or params.get("resourcetype")
        rows = limits.list_limits(self.caller, account=account, domain=domain, rtype=rtype, row_id=params.get("id"))
        keyword = (params.get("keyword") or "").strip().lower()
        return [row for row in rows if keyword in row.resource_type.name] if keyword else rows


class UpdateResourceLimitParams(serializers.Serializer):
    resourcetype = ResourceTypeNumber(required=True, help_text=TYPE_HELP)
    max = P.Long(max_value=limits.MAX_LIMIT, help_text="Maximum resource limit (-1 for no limit; MiB for memory, "
                                                       "GiB for storage).")
    account = P.String(help_text="Update resource for a specified account. Must be used with the domainId parameter.")
    domainid = P.Uuid(help_text="Update resource limits for all accounts in specified domain. If used with the "
                                "account parameter, updates resource limits for a specified account in specified "
                                "domain.")
    projectid = P.Uuid(help_text="Update resource limits for project (projects are not supported)")


@register
class UpdateResourceLimit(Command):
    name = "updateResourceLimit"
    description = "Updates resource limits for an account or domain."
    Params = UpdateResourceLimitParams
    response = ResourceLimitResponse
    roles = ADMINS
    event = "RESOURCE.LIMIT.UPDATE"

    def execute(self, params):
        _no_projects(params)
        domain, account = resolve_scope(self.caller, params, command=self.name)
        return limits.update_limit(self.caller, rtype=params["resourcetype"], max=params.get("max"),
                                   account=account, domain=None if account is not None else domain)


class UpdateResourceCountParams(serializers.Serializer):
    domainid = P.Uuid(required=True, help_text="If account parameter specified then updates resource counts for a "
                                               "specified account in this domain else update resource counts for "
                                               "all accounts & child domains in specified domain.")
    account = P.String(help_text="Update resource count for a specified account. Must be used with the domainId "
                                 "parameter.")
    resourcetype = ResourceTypeNumber(help_text=TYPE_HELP + ". If not specified, every type is counted.")
    projectid = P.Uuid(help_text="Update resource limits for project (projects are not supported)")


@register
class UpdateResourceCount(Command):
    name = "updateResourceCount"
    description = "Recalculate and update resource count for an account or domain."
    Params = UpdateResourceCountParams
    response = ResourceCountResponse
    kind = "list"
    roles = ADMINS

    def execute(self, params):
        _no_projects(params)
        domain, account = resolve_scope(self.caller, params, command=self.name)
        return limits.recount(self.caller, domain=domain, account=account, rtype=params.get("resourcetype"))
