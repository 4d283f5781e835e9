"""Template and ISO API commands. Each parses its parameters and calls one use case of
storage.images (services for the image itself, primary for the copy on primary storage)."""
from __future__ import annotations

from rest_framework import serializers

from accounts.access import ADMIN_ONLY, ALL_ROLE_TYPES, resolve_owner
from compute.models import Zone
from portal.api import params as P
from portal.api.registry import Command, ListParams, register

from .images import primary, services
from .models import OsType, StoragePool, Template
from .services import _details
from .responses import ExtractResponse, IsoResponse, TemplatePermissionsResponse, TemplateResponse


def _templates(qs):
    return qs.templates()


def _isos(qs):
    return qs.isos()


def TemplateId(**kwargs):  # noqa: N802 - a parameter factory, read like a field class
    return P.Entity(Template, queryset_hook=_templates, **kwargs)


def IsoId(**kwargs):  # noqa: N802
    return P.Entity(Template, queryset_hook=_isos, **kwargs)


class ExtractIsoResponse(ExtractResponse):
    object_name = "iso"


# -- register -----------------------------------------------------------------------------------
class _RegisterParams(serializers.Serializer):
    name = P.String(required=True, help_text="the name of the image")
    displaytext = P.String(max_length=4096, help_text="the display text of the image (default: the name)")
    url = P.String(required=True, max_length=2048,
                   help_text="the URL to download the image from: http:// or https://; file:// for root admins")
    zoneid = P.String(help_text="the ID of the zone the image is to be hosted on; -1 for every zone")
    zoneids = P.List(P.Uuid(), help_text="the IDs of the zones the image is to be hosted on")
    ostypeid = P.Entity(OsType, help_text="the ID of the OS type that best represents the OS of this image")
    checksum = P.String(help_text="the checksum of the image: {MD5}…, {SHA-256}… (or another SHA) or bare hex")
    ispublic = P.Boolean(help_text="true if the image is available to all accounts")
    isfeatured = P.Boolean(help_text="true if the image is featured (root admins)")
    isextractable = P.Boolean(help_text="true if the image may be downloaded again with extract")
    account = P.String(help_text="an optional account name for the image; must be used with domainId")
    domainid = P.Uuid(help_text="an optional domain ID; with account, the image is registered for that account")
    projectid = P.Uuid(help_text="Register the image for the project (projects are not supported)")
    directdownload = P.Boolean(help_text="KVM only: download straight to primary storage (not supported: false)")


class RegisterTemplateParams(_RegisterParams):
    format = P.String(required=True, help_text="the format of the template: QCOW2 or RAW")
    hypervisor = P.String(required=True, help_text="the target hypervisor for the template: KVM or Simulator")
    passwordenabled = P.Boolean(help_text="true if the template supports the password reset feature")
    sshkeyenabled = P.Boolean(help_text="true if the template supports the sshkey upload feature")
    requireshvm = P.Boolean(help_text="true if this template requires HVM (default true)")
    isdynamicallyscalable = P.Boolean(help_text="true if the template supports dynamic scaling")
    bits = P.Integer(help_text="32 or 64 bits support. 64 by default")
    details = P.Map(help_text="Template details in key/value pairs")
    templatetag = P.String(help_text="the tag for this template")
    isrouting = P.Boolean(help_text="true if the template type is routing i.e., if template is used to deploy router")
    deployasis = P.Boolean(help_text="VMware only")


def _register_kwargs(caller, params, command: str) -> dict:
    if params.get("projectid"):
        from portal.errors import InvalidParameterValue

        raise InvalidParameterValue("Projects are not supported; register the image for an account")
    if params.get("directdownload"):
        from portal.errors import InvalidParameterValue

        raise InvalidParameterValue("directdownload=true is not supported: images are always downloaded to "
                                    "secondary storage first")
    return dict(
        name=params["name"], url=params["url"], zoneid=params.get("zoneid"), zoneids=params.get("zoneids"),
        display_text=params.get("displaytext"), os_type=params.get("ostypeid"), checksum=params.get("checksum"),
        is_public=bool(params.get("ispublic")), is_featured=bool(params.get("isfeatured")),
        is_extractable=bool(params.get("isextractable")), owner=resolve_owner(caller, params, command=command))


@register
class RegisterTemplate(Command):
    name = "registerTemplate"
    description = "Registers an existing template into the CloudStack cloud."
    Params = RegisterTemplateParams
    response = TemplateResponse
    kind = "list"
    roles = ALL_ROLE_TYPES
    event = "TEMPLATE.CREATE"

    def execute(self, params):
        from portal.errors import InvalidParameterValue

        if params.get("isrouting") or params.get("deployasis"):
            raise InvalidParameterValue("Routing and deploy-as-is templates are not supported")
        return services.register(
            self.caller, is_iso=False, format=params["format"], hypervisor=params["hypervisor"],
            password_enabled=bool(params.get("passwordenabled")), sshkey_enabled=bool(params.get("sshkeyenabled")),
            requires_hvm=params.get("requireshvm", True) is not False,
            dynamically_scalable=bool(params.get("isdynamicallyscalable")), bits=params.get("bits"),
            details=_details(params.get("details")),
            **_register_kwargs(self.caller, params, self.name))


class RegisterIsoParams(_RegisterParams):
    bootable = P.Boolean(help_text="true if this ISO is bootable. If not passed explicitly its assumed to be true")
    isdynamicallyscalable = P.Boolean(help_text="true if the ISO supports dynamic scaling")


@register
class RegisterIso(Command):
    name = "registerIso"
    description = "Registers an existing ISO into the CloudStack Cloud."
    Params = RegisterIsoParams
    response = IsoResponse
    kind = "list"
    roles = ALL_ROLE_TYPES
    event = "ISO.CREATE"

    def execute(self, params):
        return services.register(self.caller, is_iso=True, bootable=params.get("bootable", True) is not False,
                                 dynamically_scalable=bool(params.get("isdynamicallyscalable")),
                                 **_register_kwargs(self.caller, params, self.name))


# -- list ---------------------------------------------------------------------------------------
class _ListImageParams(ListParams):
    id = P.Uuid(help_text="the ID of the image")
    ids = P.List(P.Uuid(), help_text="the IDs of the images")
    name = P.String(help_text="the name of the image")
    zoneid = P.Entity(Zone, help_text="list images in this zone")
    showremoved = P.Boolean(help_text="show removed images as well (administrators)")
    account = P.String(help_text="list images of this account; must be used with domainId")
    domainid = P.Uuid(help_text="list images of accounts of this domain")
    isrecursive = P.Boolean(help_text="with domainid, also the images of sub-domains")
    listall = P.Boolean(help_text="list everything the filter allows (default)")
    projectid = P.Uuid(help_text="list images of the project (projects are not supported)")
    tags = P.Map(help_text="List resources by tags (key/value pairs)")


class ListTemplatesParams(_ListImageParams):
    templatefilter = P.String(required=True, help_text="featured, self, selfexecutable, sharedexecutable, executable, "
                                                       "community or all")
    hypervisor = P.String(help_text="the hypervisor for which to restrict the search")
    showunique = P.Boolean(help_text="one row per template instead of one per zone")
    details = P.List(help_text="comma separated list of template details requested (all, min)")


@register
class ListTemplates(Command):
    name = "listTemplates"
    description = "List all public, private, and privileged templates."
    Params = ListTemplatesParams
    response = TemplateResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        rows = services.list_rows(self.caller, is_iso=False, filter=params["templatefilter"].strip().lower(),
                                  params=params)
        if params.get("showunique"):
            rows = rows.order_by("template_id", "zone_id").distinct("template_id") if _postgres() else rows
        return rows


def _postgres() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


class ListIsosParams(_ListImageParams):
    isofilter = P.String(help_text="featured, self, selfexecutable, sharedexecutable, executable, community or all "
                                   "(default all for admins, executable for users)")
    bootable = P.Boolean(help_text="true if the ISO is bootable")
    ispublic = P.Boolean(help_text="true if the ISO is publicly available to all users")
    isready = P.Boolean(help_text="true if this ISO is ready to be deployed")
    hypervisor = P.String(help_text="the hypervisor for which to restrict the search")


@register
class ListIsos(Command):
    name = "listIsos"
    description = "Lists all available ISO files."
    Params = ListIsosParams
    response = IsoResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        default = "all" if services._is_admin(self.caller) else "executable"
        return services.list_rows(self.caller, is_iso=True, filter=(params.get("isofilter") or default).strip().lower(),
                                  params=params)


# -- update -------------------------------------------------------------------------------------
class _UpdateParams(serializers.Serializer):
    name = P.String(help_text="the name of the image")
    displaytext = P.String(max_length=4096, help_text="the display text of the image")
    ostypeid = P.Entity(OsType, help_text="the ID of the OS type that best represents the OS of this image")
    bootable = P.Boolean(help_text="true if image is bootable")
    passwordenabled = P.Boolean(help_text="true if the image supports the password reset feature")
    sshkeyenabled = P.Boolean(help_text="true if the image supports the sshkey upload feature")
    requireshvm = P.Boolean(help_text="true if the image requires HVM")
    isdynamicallyscalable = P.Boolean(help_text="true if the image supports dynamic scaling")
    details = P.Map(help_text="Details in key/value pairs")
    cleanupdetails = P.Boolean(help_text="remove all details")
    sortkey = P.Integer(help_text="sort key of the image, integer")


class UpdateTemplateParams(_UpdateParams):
    id = TemplateId(required=True, help_text="the ID of the image file")
    format = P.String(help_text="the format for the image: QCOW2 or RAW")


class UpdateIsoParams(_UpdateParams):
    id = IsoId(required=True, help_text="the ID of the image file")


def _update(caller, params) -> Template:
    details = _details(params.get("details")) if params.get("details") else None
    return services.update(
        caller, params["id"], cleanup_details=bool(params.get("cleanupdetails")), name=params.get("name"), display_text=params.get("displaytext"),
        os_type=params.get("ostypeid"), bootable=params.get("bootable"), password_enabled=params.get("passwordenabled"),
        sshkey_enabled=params.get("sshkeyenabled"), requires_hvm=params.get("requireshvm"),
        dynamically_scalable=params.get("isdynamicallyscalable"), details=details, format=params.get("format"))


def _first_row(template: Template):
    return template.zones.select_related("template__os_type", "template__account__domain", "zone", "store").first()


@register
class UpdateTemplate(Command):
    name = "updateTemplate"
    description = "Updates attributes of a template."
    Params = UpdateTemplateParams
    response = TemplateResponse
    roles = ALL_ROLE_TYPES
    event = "TEMPLATE.UPDATE"

    def execute(self, params):
        return _first_row(_update(self.caller, params))


@register
class UpdateIso(Command):
    name = "updateIso"
    description = "Updates an ISO file."
    Params = UpdateIsoParams
    response = IsoResponse
    roles = ALL_ROLE_TYPES
    event = "ISO.UPDATE"

    def execute(self, params):
        return _first_row(_update(self.caller, params))


# -- delete -------------------------------------------------------------------------------------
class DeleteTemplateParams(serializers.Serializer):
    id = TemplateId(required=True, help_text="the ID of the template")
    zoneid = P.Entity(Zone, help_text="the ID of zone of the template (default: every zone)")
    forced = P.Boolean(help_text="Force delete a template in use by VMs (root admins; their volumes keep working)")


@register
class DeleteTemplate(Command):
    name = "deleteTemplate"
    description = "Deletes a template from the system. All virtual machines using the deleted template will not be "\
                  "affected."
    Params = DeleteTemplateParams
    kind = "success"
    roles = ALL_ROLE_TYPES
    is_async = True
    event = "TEMPLATE.DELETE"
    instance_type = "Template"

    def check(self, params):
        services.check_delete(self.caller, params["id"], forced=bool(params.get("forced")))

    def execute(self, params):
        services.delete(self.caller, params["id"], zone=params.get("zoneid"), forced=bool(params.get("forced")))
        return True


class DeleteIsoParams(serializers.Serializer):
    id = IsoId(required=True, help_text="the ID of the ISO file")
    zoneid = P.Entity(Zone, help_text="the ID of the zone of the ISO file (default: every zone)")


@register
class DeleteIso(Command):
    name = "deleteIso"
    description = "Deletes an ISO file."
    Params = DeleteIsoParams
    kind = "success"
    roles = ALL_ROLE_TYPES
    is_async = True
    event = "ISO.DELETE"
    instance_type = "Iso"

    def check(self, params):
        services.check_delete(self.caller, params["id"])

    def execute(self, params):
        services.delete(self.caller, params["id"], zone=params.get("zoneid"))
        return True


# -- copy ---------------------------------------------------------------------------------------
def _copy_params(image_id: serializers.Field) -> type[serializers.Serializer]:
    """The image first, so a request naming nothing that exists is answered about the image."""
    return type("CopyParams", (serializers.Serializer,), {
        "id": image_id,
        "sourcezoneid": P.Entity(Zone, help_text="ID of the zone the image is currently hosted on (default: any "
                                                 "ready one)"),
        "destzoneid": P.Entity(Zone, help_text="ID of the zone the image is being copied to"),
        "destzoneids": P.List(P.Uuid(), help_text="IDs of the zones the image is being copied to"),
    })


CopyTemplateParams = _copy_params(TemplateId(required=True, help_text="Template ID"))
CopyIsoParams = _copy_params(IsoId(required=True, help_text="ISO ID"))


def _dest_zones(caller, params) -> list[Zone]:
    from portal.errors import ParamError

    zones = [params["destzoneid"]] if params.get("destzoneid") else []
    for value in params.get("destzoneids") or []:
        zone = Zone.objects.visible_to(caller).filter(uuid=value).first()
        if zone is None:
            raise ParamError(f"Unable to execute API command due to invalid value. Invalid parameter destzoneids "
                             f"value={value} due to incorrect long value format, or entity does not exist")
        if zone not in zones:
            zones.append(zone)
    return zones


class _CopyImage(Command):
    """copyTemplate / copyIso: the same use case; the subclasses name the command and its shapes."""

    roles = ALL_ROLE_TYPES
    is_async = True

    def check(self, params):
        services.require_manage(self.caller, params["id"], "copy")

    def execute(self, params):
        rows = services.copy(self.caller, params["id"], source_zone=params.get("sourcezoneid"),
                             dest_zones=_dest_zones(self.caller, params))
        return rows[0]


@register
class CopyTemplate(_CopyImage):
    name = "copyTemplate"
    description = "Copies a template from one zone to another."
    Params = CopyTemplateParams
    response = TemplateResponse
    event = "TEMPLATE.COPY"
    instance_type = "Template"


@register
class CopyIso(_CopyImage):
    name = "copyIso"
    description = "Copies an ISO from one zone to another."
    Params = CopyIsoParams
    response = IsoResponse
    event = "ISO.COPY"
    instance_type = "Iso"


# -- extract ------------------------------------------------------------------------------------
class _ExtractParams(serializers.Serializer):
    mode = P.String(required=True, help_text="the mode of extraction: HTTP_DOWNLOAD")
    zoneid = P.Entity(Zone, help_text="the ID of the zone where the image is located")
    url = P.String(max_length=2048, help_text="the url to which the image would be extracted (FTP_UPLOAD only: "
                                              "not supported)")

    def validate_mode(self, value: str) -> str:
        if value.strip().upper() != "HTTP_DOWNLOAD":
            raise serializers.ValidationError(f"mode {value} is not supported; use HTTP_DOWNLOAD")
        return "HTTP_DOWNLOAD"


class ExtractTemplateParams(_ExtractParams):
    id = TemplateId(required=True, help_text="the ID of the template")


class ExtractIsoParams(_ExtractParams):
    id = IsoId(required=True, help_text="the ID of the ISO file")


class _ExtractImage(Command):
    """extractTemplate / extractIso: the same use case; the subclasses name the command and its shapes."""

    roles = ALL_ROLE_TYPES
    is_async = True

    def check(self, params):
        services.check_extract(self.caller, params["id"])

    def execute(self, params):
        return services.extract(self.caller, params["id"], zone=params.get("zoneid"), mode=params["mode"])


@register
class ExtractTemplate(_ExtractImage):
    name = "extractTemplate"
    description = "Extracts a template"
    Params = ExtractTemplateParams
    response = ExtractResponse
    event = "TEMPLATE.EXTRACT"
    instance_type = "Template"


@register
class ExtractIso(_ExtractImage):
    name = "extractIso"
    description = "Extracts an ISO"
    Params = ExtractIsoParams
    response = ExtractIsoResponse
    event = "ISO.EXTRACT"
    instance_type = "Iso"


# -- permissions --------------------------------------------------------------------------------
class _PermissionsParams(serializers.Serializer):
    accounts = P.List(help_text="a comma delimited list of accounts within caller's domain")
    op = P.String(help_text="permission operator (add, remove, reset)")
    ispublic = P.Boolean(help_text="true for public images, false for private")
    isfeatured = P.Boolean(help_text="true for featured images (root admins)")
    isextractable = P.Boolean(help_text="true if the image is extractable")
    projectids = P.List(help_text="a comma delimited list of projects (not supported)")


class UpdateTemplatePermissionsParams(_PermissionsParams):
    id = TemplateId(required=True, help_text="the template ID")


class UpdateIsoPermissionsParams(_PermissionsParams):
    id = IsoId(required=True, help_text="the template ID")


def _permissions(caller, params) -> bool:
    if params.get("projectids"):
        from portal.errors import InvalidParameterValue

        raise InvalidParameterValue("Projects are not supported; share the image with accounts")
    services.update_permissions(caller, params["id"], op=params.get("op"), accounts=params.get("accounts"),
                                is_public=params.get("ispublic"), is_featured=params.get("isfeatured"),
                                is_extractable=params.get("isextractable"))
    return True


@register
class UpdateTemplatePermissions(Command):
    name = "updateTemplatePermissions"
    description = "Updates a template visibility permissions. A public template is visible to all accounts within "\
                  "the same domain. A private template is visible only to the owner of the template. A privileged "\
                  "template is a private template with account permissions added."
    Params = UpdateTemplatePermissionsParams
    kind = "success"
    roles = ALL_ROLE_TYPES
    event = "TEMPLATE.UPDATE"

    def execute(self, params):
        return _permissions(self.caller, params)


@register
class UpdateIsoPermissions(Command):
    name = "updateIsoPermissions"
    description = "Updates ISO permissions"
    Params = UpdateIsoPermissionsParams
    kind = "success"
    roles = ALL_ROLE_TYPES
    event = "ISO.UPDATE"

    def execute(self, params):
        return _permissions(self.caller, params)


class ListTemplatePermissionsParams(serializers.Serializer):
    id = TemplateId(required=True, help_text="the template ID")


class ListIsoPermissionsParams(serializers.Serializer):
    id = IsoId(required=True, help_text="the template ID")


@register
class ListTemplatePermissions(Command):
    name = "listTemplatePermissions"
    description = "List template visibility and all accounts that have permissions to view this template."
    Params = ListTemplatePermissionsParams
    response = TemplatePermissionsResponse
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        services.require_manage(self.caller, params["id"], "list the permissions of")
        return params["id"]


@register
class ListIsoPermissions(Command):
    name = "listIsoPermissions"
    description = "List ISO visibility and all accounts that have permissions to view this ISO."
    Params = ListIsoPermissionsParams
    response = TemplatePermissionsResponse
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        services.require_manage(self.caller, params["id"], "list the permissions of")
        return params["id"]


# -- primary storage ----------------------------------------------------------------------------
class PrepareTemplateParams(serializers.Serializer):
    templateid = TemplateId(required=True, help_text="template ID of the template to be prepared in primary "
                                                     "storage(s).")
    zoneid = P.Entity(Zone, required=True, help_text="zone ID of the template to be prepared in primary storage(s).")
    storageid = P.Entity(StoragePool, help_text="storage pool ID of the primary storage pool to which the template "
                                                "should be prepared. If it is not provided the template is prepared "
                                                "on all the available primary storage pools.")


@register
class PrepareTemplate(Command):
    name = "prepareTemplate"
    description = "load template into primary storage"
    Params = PrepareTemplateParams
    response = TemplateResponse
    roles = ADMIN_ONLY
    event = "TEMPLATE.PREPARE"

    def execute(self, params):
        return primary.prepare(self.caller, params["templateid"], zone=params["zoneid"], pool=params.get("storageid"))
