"""The framework's own API commands: discovery, capabilities, async jobs, events, settings."""
from __future__ import annotations

from django.db.models import Q
from rest_framework import serializers

from accounts.access import ADMIN_ONLY, ALL_ROLE_TYPES, apply_list_scope
from accounts.models import Account, Domain
from compute.models import Cluster, Zone
from storage.models import StoragePool

from . import services
from .api import params as P
from .api.registry import Command, ListParams, ScopedListParams, register
from .discovery import available_commands, describe
from .errors import ParamError
from .models import AsyncJob, Event
from .responses import (
    ApiDiscoveryResponse,
    AsyncJobResponse,
    CapabilitiesResponse,
    ConfigurationResponse,
    EventResponse,
)


class ListApisParams(serializers.Serializer):
    name = P.String(help_text="API name")


@register
class ListApis(Command):
    name = "listApis"
    description = "lists all available apis on the server, provided by the Api Discovery plugin"
    Params = ListApisParams
    response = ApiDiscoveryResponse
    kind = "list"
    roles = ALL_ROLE_TYPES
    since = "4.1.0"

    def execute(self, params):
        commands = available_commands(self.caller)
        if params.get("name"):
            commands = [c for c in commands if c.name == params["name"]]
            if not commands:
                raise ParamError(f"API {params['name']} does not exist or is not available for this account")
        return [describe(c) for c in commands]


@register
class ListCapabilities(Command):
    name = "listCapabilities"
    description = "Lists capabilities"
    response = CapabilitiesResponse
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        return services.capabilities(self.caller)


class QueryAsyncJobResultParams(serializers.Serializer):
    jobid = P.Entity(AsyncJob, required=True, help_text="the ID of the asynchronous job")


@register
class QueryAsyncJobResult(Command):
    name = "queryAsyncJobResult"
    description = "Retrieves the current status of asynchronous job."
    Params = QueryAsyncJobResultParams
    response = AsyncJobResponse
    kind = "flat"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        job = AsyncJob.objects.select_related("account__domain", "user").get(pk=params["jobid"].pk)
        return AsyncJobResponse(job).data


class ListAsyncJobsParams(ScopedListParams):
    startdate = P.Date(help_text="The start date of the async job (use format \"yyyy-MM-dd'T'HH:mm:ss'+'SSSS\")")
    managementserverid = P.Uuid(help_text="The id of the management server")


@register
class ListAsyncJobs(Command):
    name = "listAsyncJobs"
    description = "Lists all pending asynchronous jobs for the account."
    Params = ListAsyncJobsParams
    response = AsyncJobResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = apply_list_scope(AsyncJob.objects.all(), self.caller, params, command=self.name)
        if params.get("startdate"):
            qs = qs.filter(created__gte=params["startdate"])
        if params.get("keyword"):
            qs = qs.filter(command__icontains=params["keyword"])
        return qs.select_related("account__domain", "user")


class ListEventsParams(ScopedListParams):
    id = P.Uuid(help_text="the ID of the event")
    type = P.String(help_text="the event type (see event types)")
    level = P.String(help_text="the event level (INFO, WARN, ERROR)")
    startdate = P.Date(help_text="the start date range of the list you want to retrieve (use format "
                                 "\"yyyy-MM-dd\" or the new format \"yyyy-MM-dd HH:mm:ss\")")
    enddate = P.Date(help_text="the end date range of the list you want to retrieve (use format \"yyyy-MM-dd\" "
                               "or the new format \"yyyy-MM-dd HH:mm:ss\")")
    duration = P.Integer(help_text="the duration of the event")
    entrytime = P.Integer(help_text="the time the event was entered")
    startid = P.Uuid(help_text="the parent/start ID of the event, when provided this will list all the events "
                               "with the start/parent ID including the parent event")
    resourceid = P.String(help_text="the ID of the resource associated with the event")
    resourcetype = P.String(help_text="the type of the resource associated with the event")


@register
class ListEvents(Command):
    name = "listEvents"
    description = "A command to list events."
    Params = ListEventsParams
    response = EventResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = apply_list_scope(Event.objects.all(), self.caller, params, command=self.name,
                              domain_field="domain")
        for param, field in (("id", "uuid"), ("type", "type"), ("resourceid", "resource_uuid")):
            if params.get(param):
                qs = qs.filter(**{field: params[param]})
        if params.get("level"):
            qs = qs.filter(level=params["level"].upper())
        if params.get("resourcetype"):
            qs = qs.filter(resource_type__iexact=params["resourcetype"])
        if params.get("startdate"):
            qs = qs.filter(created__gte=params["startdate"])
        if params.get("enddate"):
            qs = qs.filter(created__lte=inclusive_end(params["enddate"]))
        if params.get("startid"):
            qs = qs.filter(Q(uuid=params["startid"]) | Q(parent__uuid=params["startid"]))
        if params.get("keyword"):
            qs = qs.filter(Q(description__icontains=params["keyword"]) | Q(type__icontains=params["keyword"]))
        return qs.select_related("domain", "parent")


class ScopeParams(serializers.Serializer):
    """The scope object of a setting (CloudStack's zoneid / clusterid / storageid / accountid /
    domainid): at most one."""

    zoneid = P.Entity(Zone, help_text="the ID of the Zone to update the parameter value for corresponding zone")
    clusterid = P.Entity(Cluster, help_text="the ID of the Cluster to update the parameter value for "
                                            "corresponding cluster")
    storageid = P.Entity(StoragePool, help_text="the ID of the Storage pool to update the parameter value for "
                                                "corresponding storage pool")
    accountid = P.Entity(Account, help_text="the ID of the Account to update the parameter value for "
                                            "corresponding account")
    domainid = P.Entity(Domain, help_text="the ID of the Domain to update the parameter value for "
                                          "corresponding domain")

    SCOPES = (("zoneid", "zone"), ("clusterid", "cluster"), ("storageid", "storagepool"), ("accountid", "account"),
              ("domainid", "domain"))

    def scope(self, attrs) -> tuple[str, str]:
        given = [(scope, attrs[param]) for param, scope in self.SCOPES if attrs.get(param) is not None]
        if len(given) > 1:
            raise serializers.ValidationError("Give at most one scope: zoneid, clusterid, storageid, accountid or "
                                              "domainid")
        return (given[0][0], str(given[0][1].uuid)) if given else ("global", "")


class ListConfigurationsParams(ListParams, ScopeParams):
    category = P.String(help_text="lists configurations by category")
    name = P.String(help_text="lists configuration by name")

    def validate(self, attrs):
        attrs["_scope"] = self.scope(attrs)
        return attrs


@register
class ListConfigurations(Command):
    name = "listConfigurations"
    description = "Lists all configurations."
    Params = ListConfigurationsParams
    response = ConfigurationResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        scope, scope_uuid = params["_scope"]
        return services.list_configurations(category=params.get("category"), name=params.get("name"),
                                            keyword=params.get("keyword"), scope=scope, scope_uuid=scope_uuid)


class UpdateConfigurationParams(ScopeParams):
    name = P.String(required=True, help_text="the name of the configuration")
    value = P.String(max_length=4096, help_text="the value of the configuration")

    def validate(self, attrs):
        attrs["_scope"] = self.scope(attrs)
        return attrs


@register
class UpdateConfiguration(Command):
    name = "updateConfiguration"
    description = "Updates a configuration."
    Params = UpdateConfigurationParams
    response = ConfigurationResponse
    roles = ADMIN_ONLY
    event = "CONFIGURATION.VALUE.EDIT"

    def execute(self, params):
        scope, scope_uuid = params["_scope"]
        return services.update_configuration(self.caller, params["name"], params.get("value"), scope=scope,
                                             scope_uuid=scope_uuid)


class ResetConfigurationParams(ScopeParams):
    name = P.String(required=True, help_text="the name of the configuration")

    def validate(self, attrs):
        attrs["_scope"] = self.scope(attrs)
        return attrs


@register
class ResetConfiguration(Command):
    name = "resetConfiguration"
    description = "Resets a configuration. The configuration will be set to default value for global setting, " \
                  "and removed from account_details or domain_details for Account/Domain settings"
    Params = ResetConfigurationParams
    response = ConfigurationResponse
    roles = ADMIN_ONLY
    event = "CONFIGURATION.VALUE.EDIT"

    def execute(self, params):
        scope, scope_uuid = params["_scope"]
        return services.reset_configuration(self.caller, params["name"], scope=scope, scope_uuid=scope_uuid)
