"""The command registry: each API command is declared once, as a Command subclass, and the
dispatcher, role checks, parameter validation, async jobs, listApis and the docs read it.

    @register
    class CreateDomain(Command):
        name = "createDomain"
        description = "Creates a domain"
        roles = ADMINS
        event = "DOMAIN.CREATE"
        Params = CreateDomainParams          # a DRF serializer of portal.api.params fields
        response = DomainResponse            # a ResponseSerializer
        kind = "object"                      # object | list | success | flat

        def execute(self, params, caller):
            return services.create_domain(caller, **params)
"""
from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers

from . import params as P
from .responses import ResponseSerializer, SuccessResponse


class NoParams(serializers.Serializer):
    pass


class ListParams(serializers.Serializer):
    keyword = P.String(help_text="List by keyword")
    page = P.Integer(help_text="The page number of the results, starting at 1")
    pagesize = P.Integer(help_text="The number of rows per page (at most default.page.size; -1 for all)")


class ScopedListParams(ListParams):
    """BaseListDomainResourcesCmd: account + domainid, isrecursive, listall."""

    account = P.String(help_text="List resources by account. Must be used with the domainId parameter.")
    domainid = P.Uuid(help_text="List only resources belonging to the domain specified")
    isrecursive = P.Boolean(help_text="Defaults to false; with domainid, also list resources of sub-domains")
    listall = P.Boolean(help_text="If true, list everything the caller may see; if false (default), only "
                                  "resources owned by the caller")


class Command:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[serializers.Serializer]] = NoParams
    response: ClassVar[type[ResponseSerializer] | None] = SuccessResponse
    kind: ClassVar[str] = "object"  # object | list | success | flat
    roles: ClassVar[frozenset[str]]
    is_async: ClassVar[bool] = False
    event: ClassVar[str | None] = None
    since: ClassVar[str] = ""
    related: ClassVar[str] = ""
    instance_type: ClassVar[str] = ""  # jobinstancetype, e.g. "Account"
    response_name: ClassVar[str | None] = None  # default: lower(name) + "response"
    post_only: ClassVar[bool] = False
    cmd_class: ClassVar[str] = ""  # the Java class name queryAsyncJobResult reports as `cmd`

    def __init__(self, caller, request=None, job=None):
        self.caller = caller
        self.request = request
        self.job = job

    # -- hooks -------------------------------------------------------------------------------
    def execute(self, params: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def check(self, params: dict[str, Any]) -> None:
        """Async commands: checks answered at once, before a job exists (may the caller act on
        this object at all?). Raise an ApiError to refuse; `execute` checks again in the job."""

    def create(self, params: dict[str, Any]) -> Any:
        """Async-create commands only: make the row synchronously; its uuid is returned as `id`
        beside `jobid`, and `execute` later runs in the worker with params["_instance"]."""
        return None

    def instance_of(self, params: dict[str, Any]) -> Any:
        """The object the job acts on (jobinstancetype/jobinstanceid), if any."""
        return params.get("id") if hasattr(params.get("id"), "uuid") else None

    @classmethod
    def on_lost(cls, job) -> None:
        """Called by the reaper when the worker running `job` died: release what it held."""

    def job_progress(self, percent: int, text: str = "") -> None:
        if self.job is not None:
            from portal.jobs import set_progress

            set_progress(self.job, percent, text)

    # -- declarations read by the dispatcher and listApis ----------------------------------------
    @classmethod
    def get_response_name(cls) -> str:
        return cls.response_name or cls.name.lower() + "response"

    @classmethod
    def is_async_create(cls) -> bool:
        return cls.is_async and cls.create is not Command.create

    @classmethod
    def takes_no_parameters(cls) -> bool:
        """No fields and no checks of its own: there is nothing to validate."""
        return (not cls.param_fields() and cls.Params.validate is serializers.Serializer.validate
                and not getattr(getattr(cls.Params, "Meta", None), "validators", None))

    @classmethod
    def param_fields(cls) -> dict[str, serializers.Field]:
        """The declared parameter fields, built once per command class: what they are (names,
        types, required, help) and never used to validate (params_serializer makes those)."""
        fields = cls.__dict__.get("_param_fields")
        if fields is None:
            fields = cls._param_fields = cls.Params().fields
        return fields

    @classmethod
    def params_serializer(cls, data: dict[str, Any], caller) -> serializers.Serializer:
        return cls.Params(data=data, context={"caller": caller, "command": cls})


REGISTRY: dict[str, type[Command]] = {}


def register(cls: type[Command]) -> type[Command]:
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"API command {cls.name} is declared twice")
    if not getattr(cls, "roles", None):
        raise RuntimeError(f"API command {cls.name} declares no roles")
    if not cls.cmd_class:
        cls.cmd_class = f"nubo.api.command.{cls.__module__.split('.')[0]}.{cls.__name__}Cmd"
    REGISTRY[cls.name] = cls
    return cls


def get_command(name: str) -> type[Command] | None:
    return REGISTRY.get(name)
