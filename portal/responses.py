"""Response objects of the framework's own commands."""
from __future__ import annotations

from rest_framework import serializers as s

from .api.responses import DateTime, ResponseSerializer, Uuid


class EventResponse(ResponseSerializer):
    object_name = "event"
    id = Uuid(source="uuid", help_text="the ID of the event")
    type = s.CharField(help_text="the type of the event (see event types)")
    level = s.CharField(help_text="the event level (INFO, WARN, ERROR)")
    description = s.CharField(help_text="a brief description of the event")
    state = s.CharField(help_text="the state of the event")
    created = DateTime(help_text="the date the event was created")
    username = s.CharField(help_text="the name of the user who performed the action")
    account = s.CharField(source="account_name", help_text="the account name for the account that owns the object")
    domainid = Uuid(source="domain.uuid", default=None, help_text="the id of the account's domain")
    domain = s.CharField(source="domain.name", default=None, help_text="the name of the account's domain")
    domainpath = s.CharField(source="domain_path", help_text="path of the domain the event belongs to")
    resourceid = s.CharField(source="resource_uuid", default=None, help_text="the id of the resource")
    resourcetype = s.CharField(source="resource_type", default=None, help_text="the type of the resource")
    resourcename = s.CharField(source="resource_name", default=None, help_text="the name of the resource")
    parentid = Uuid(source="parent.uuid", default=None, help_text="whether the event is parented")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for key in ("resourceid", "resourcetype", "resourcename"):
            if data.get(key) == "":
                data.pop(key)
        return data


class AsyncJobResponse(ResponseSerializer):
    object_name = "asyncjobs"
    jobid = Uuid(source="uuid", help_text="the ID of the async job")
    accountid = Uuid(source="account.uuid", default=None, help_text="the account id that executed the async command")
    account = s.CharField(source="account.name", default=None, help_text="the account that executed the async command")
    domainid = Uuid(source="account.domain.uuid", default=None, help_text="the domain id that executed the async command")
    domainpath = s.CharField(source="account.domain.display_path", default=None, help_text="the domain that executed the async command")
    userid = Uuid(source="user.uuid", default=None, help_text="the user that executed the async command")
    cmd = s.SerializerMethodField(help_text="the async command executed")
    jobstatus = s.IntegerField(source="status", help_text="the current job status-should be 0 for PENDING")
    jobprocstatus = s.IntegerField(source="progress", help_text="the progress information of the PENDING job")
    jobresultcode = s.IntegerField(source="result_code", help_text="the result code for the job")
    jobresulttype = s.SerializerMethodField(help_text="the result type")
    jobresult = s.SerializerMethodField(help_text="the result reason")
    jobinstancetype = s.SerializerMethodField(help_text="the instance/entity object related to the job")
    jobinstanceid = s.SerializerMethodField(help_text="the unique ID of the instance/entity object related to the job")
    created = DateTime(help_text="the created date of the job")
    completed = DateTime(help_text="the completed date of the job")

    def get_cmd(self, job) -> str:
        from .api.registry import get_command

        command = get_command(job.command)
        return command.cmd_class if command else job.command

    def get_jobresulttype(self, job):
        return job.result_type or None if job.status != 0 else None

    def get_jobresult(self, job):
        return job.result if job.status != 0 else None

    def get_jobinstancetype(self, job):
        return job.instance_type if job.instance_type and job.instance_uuid else None

    def get_jobinstanceid(self, job):
        return job.instance_uuid if job.instance_type and job.instance_uuid else None


class ConfigurationResponse(ResponseSerializer):
    object_name = "configuration"
    name = s.CharField(help_text="the name of the configuration")
    category = s.CharField(help_text="the category of the configuration")
    value = s.CharField(help_text="the value of the configuration")
    defaultvalue = s.CharField(help_text="the default value of the configuration")
    description = s.CharField(help_text="the description of the configuration")
    scope = s.CharField(help_text="scope(zone/cluster/pool/account) of the parameter that needs to be updated")
    id = s.CharField(default=None, help_text="the value of the configuration")
    isdynamic = s.BooleanField(help_text="true if the configuration is dynamic")
    type = s.CharField(help_text="The type of the configuration value")
    component = s.CharField(help_text="the component of the configuration")
    options = s.CharField(default=None, help_text="the possible options of the configuration value")


class ApiParameterResponse(s.Serializer):
    name = s.CharField(help_text="the name of the api parameter")
    description = s.CharField(help_text="description of the api parameter")
    type = s.CharField(help_text="parameter type")
    length = s.IntegerField(help_text="length of the parameter")
    required = s.BooleanField(help_text="true if this parameter is required for the api request")
    since = s.CharField(help_text="version of CloudStack the api was introduced in")
    related = s.CharField(help_text="comma separated related apis to get the parameter")


class ApiResponseFieldResponse(s.Serializer):
    name = s.CharField(help_text="the name of the api response field")
    description = s.CharField(help_text="description of the api response field")
    type = s.CharField(help_text="response field type")
    response = s.ListField(help_text="api response fields")


class ApiDiscoveryResponse(ResponseSerializer):
    object_name = "api"
    name = s.CharField(help_text="the name of the api command")
    description = s.CharField(help_text="description of the api")
    isasync = s.BooleanField(help_text="true if api is asynchronous")
    since = s.CharField(help_text="version of CloudStack the api was introduced in")
    related = s.CharField(help_text="comma separated related apis")
    type = s.CharField(help_text="response field type")
    params = ApiParameterResponse(many=True, help_text="the list params the api accepts")
    response = ApiResponseFieldResponse(many=True, help_text="api response fields")

    def to_representation(self, instance):
        return instance  # already plain data, built by portal.discovery


class CapabilitiesResponse(ResponseSerializer):
    object_name = "capability"
    cloudstackversion = s.CharField(help_text="version of the cloud stack")

    def to_representation(self, instance):
        return instance
