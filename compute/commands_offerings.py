"""Service and disk offering API commands. Create/update/delete: administrators (a domain admin
only for domains of its own subtree, see compute.offerings); list: everyone. Each parses its
parameters and calls one use case of compute.offerings."""
from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.access import ADMINS, ALL_ROLE_TYPES
from accounts.choices import AccountType
from accounts.models import Domain
from portal.api import params as P
from portal.api.listing import filter_by, keyword_filter
from portal.api.registry import Command, ListParams, register
from portal.errors import ParamError

from . import offerings
from .models import DiskOffering, ServiceOffering, Zone
from .responses_offerings import DiskOfferingResponse, ServiceOfferingResponse

NOT_FOUND = "due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation " \
            "for the field in api cmd class"


class DomainIds(P.String):
    """updateServiceOffering/updateDiskOffering `domainid`: comma-separated domain UUIDs, or
    "public". Each domain must be visible to the caller (else answered as not found)."""

    def to_internal_value(self, data: Any) -> list[Domain]:
        text = super().to_internal_value(data).strip()
        if text.lower() == "public":
            return []
        ids = [part.strip() for part in text.split(",") if part.strip()]
        if not ids:
            raise serializers.ValidationError('give domain UUIDs separated by commas, or "public"')
        caller = self.context.get("caller")
        domains = []
        for value in ids:
            domain = None
            if P.UUID_RE.match(value):
                domain = Domain.objects.visible_to(caller).filter(uuid=value).first()
            if domain is None:
                raise serializers.ValidationError(NOT_FOUND)
            domains.append(domain)
        return domains


class ZoneIds(P.String):
    """update*Offering `zoneid`: "all" (every offering is available in every zone); anything
    else names zones, which Nubo refuses with a sentence in the service."""

    def to_internal_value(self, data: Any) -> list[str]:
        text = super().to_internal_value(data).strip()
        return [] if text.lower() in ("all", "") else [p for p in text.split(",") if p.strip()]


def _list_scope(caller, params: dict, command: str) -> dict[str, Any]:
    """domainid / isrecursive / listall of the offering lists → offerings_for arguments."""
    domain = None
    domainid = params.get("domainid")
    if domainid:
        domain = Domain.objects.filter(uuid=domainid).first()
        if domain is None or not offerings.domain_known_to(caller, domain):
            raise ParamError(f"Unable to execute API command {command.lower()} due to invalid value. Invalid parameter "
                             f"domainid value={domainid} {NOT_FOUND}")
    return {"domain": domain, "recursive": bool(params.get("isrecursive") or params.get("listall"))}


# -- service offerings -----------------------------------------------------------------------------
class CreateServiceOfferingParams(serializers.Serializer):
    name = P.String(required=True, help_text="the name of the service offering")
    displaytext = P.String(required=True, max_length=4096, help_text="the display text of the service offering")
    cpunumber = P.Integer(help_text="the CPU number of the service offering (leave out for a customized offering)")
    cpuspeed = P.Integer(help_text="the CPU speed of the service offering in MHz")
    memory = P.Integer(help_text="the total memory of the service offering in MB (MiB; leave out for a customized "
                                 "offering)")
    customized = P.Boolean(since="4.13", help_text="Whether service offering size is custom or not (default: true "
                                                   "when neither cpunumber nor memory is given)")
    mincpunumber = P.Integer(since="4.13", help_text="The minimum number of CPUs to be set with Custom Compute "
                                                     "Offering")
    maxcpunumber = P.Integer(since="4.13", help_text="The maximum number of CPUs to be set with Custom Computer "
                                                     "Offering")
    minmemory = P.Integer(since="4.13", help_text="The minimum memory size of the custom service offering in MB")
    maxmemory = P.Integer(since="4.13", help_text="The maximum memory size of the custom service offering in MB")
    offerha = P.Boolean(help_text="the HA for the service offering")
    limitcpuuse = P.Boolean(help_text="restrict the CPU usage to committed service offering (needs cpuspeed)")
    storagetype = P.String(help_text="the storage type of the service offering. Values are local and shared.")
    provisioningtype = P.String(help_text="provisioning type used to create volumes. Valid values are thin, sparse, "
                                          "fat.")
    tags = P.String(max_length=4096, help_text="the tags for this service offering.")
    hosttags = P.String(max_length=4096, help_text="the host tag for this service offering.")
    rootdisksize = P.Long(since="4.15", help_text="the Root disk size in GB.")
    issystem = P.Boolean(help_text="is this a system vm offering (not supported: false)")
    domainid = P.List(P.Entity(Domain), help_text="the ID of the containing domain(s), null for public offerings")
    zoneid = P.List(P.Uuid(), help_text="the ID of the containing zone(s), null for public offerings (zone-specific "
                                        "offerings are not supported)")


@register
class CreateServiceOffering(Command):
    name = "createServiceOffering"
    description = "Creates a service offering."
    Params = CreateServiceOfferingParams
    response = ServiceOfferingResponse
    roles = ADMINS
    event = "SERVICE.OFFERING.CREATE"

    def execute(self, params):
        return offerings.create_service_offering(
            self.caller, name=params["name"], display_text=params.get("displaytext"),
            cpu_number=params.get("cpunumber"), cpu_speed=params.get("cpuspeed"), memory=params.get("memory"),
            customized=params.get("customized"), min_cpu_number=params.get("mincpunumber"),
            max_cpu_number=params.get("maxcpunumber"), min_memory=params.get("minmemory"),
            max_memory=params.get("maxmemory"), root_disk_size=params.get("rootdisksize"),
            storage_type=params.get("storagetype"), provisioning_type=params.get("provisioningtype"),
            offer_ha=params.get("offerha", False), limit_cpu_use=params.get("limitcpuuse", False),
            host_tags=params.get("hosttags"), tags=params.get("tags"), domains=params.get("domainid"),
            zones=params.get("zoneid"), is_system=params.get("issystem", False))


class ListServiceOfferingsParams(ListParams):
    id = P.Uuid(help_text="ID of the service offering")
    name = P.String(help_text="name of the service offering")
    domainid = P.Uuid(help_text="the ID of the domain associated with the service offering")
    isrecursive = P.Boolean(help_text="defaults to false; with domainid, also the offerings of its sub-domains; for "
                                      "a domain admin, also the offerings of its subtree")
    listall = P.Boolean(help_text="a domain admin: also the offerings of the domains of its subtree")
    zoneid = P.Entity(Zone, since="4.13", help_text="id of zone disk offering is associated with (every offering is "
                                                    "available in every zone)")
    issystem = P.Boolean(help_text="is this a system vm offering (there are none: true lists nothing)")
    systemvmtype = P.String(help_text="the system VM type (there are no system offerings)")
    virtualmachineid = P.Uuid(help_text="the ID of the virtual machine, to list offerings it may change to (accepted "
                                        "and not applied yet)")
    cpunumber = P.Integer(since="4.15", min_value=0, max_value=offerings.INT_MAX,
                          help_text="the CPU number that listed offerings must support")
    memory = P.Integer(since="4.15", min_value=0, max_value=offerings.INT_MAX,
                       help_text="the RAM memory that listed offering must support")
    cpuspeed = P.Integer(since="4.15", min_value=0, max_value=offerings.INT_MAX,
                         help_text="the CPU speed that listed offerings must support")


@register
class ListServiceOfferings(Command):
    name = "listServiceOfferings"
    description = "Lists all available service offerings."
    Params = ListServiceOfferingsParams
    response = ServiceOfferingResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = offerings.offerings_for(self.caller, ServiceOffering, **_list_scope(self.caller, params, self.name))
        if params.get("issystem") or params.get("systemvmtype"):
            return qs.none()
        qs = filter_by(qs, params, id="uuid", name="name")
        qs = offerings.fits(qs, cpu_number=params.get("cpunumber"), memory=params.get("memory"),
                            cpu_speed=params.get("cpuspeed"))
        return keyword_filter(qs, params.get("keyword"), "name", "display_text")


class UpdateServiceOfferingParams(serializers.Serializer):
    id = P.Entity(ServiceOffering, required=True, help_text="the ID of the service offering to be updated")
    name = P.String(help_text="the name of the service offering to be updated")
    displaytext = P.String(max_length=4096, help_text="the display text of the service offering to be updated")
    sortkey = P.Integer(help_text="sort key of the service offering, integer")
    domainid = DomainIds(max_length=4096, since="4.13",
                         help_text="the ID of the containing domain(s) as comma separated string, public for public "
                                   "offerings")
    zoneid = ZoneIds(max_length=4096, since="4.13",
                     help_text="the ID of the containing zone(s) as comma separated string, all for all zones "
                               "offerings (only all is supported)")
    storagetags = P.String(max_length=4096, since="4.16", help_text="comma-separated list of tags for the service "
                                                                    "offering, tags should match with existing "
                                                                    "storage pool tags")
    hosttags = P.String(max_length=4096, since="4.16", help_text="the host tag for this service offering.")


@register
class UpdateServiceOffering(Command):
    name = "updateServiceOffering"
    description = "Updates a service offering."
    Params = UpdateServiceOfferingParams
    response = ServiceOfferingResponse
    roles = ADMINS
    event = "SERVICE.OFFERING.EDIT"

    def execute(self, params):
        return offerings.update_service_offering(
            self.caller, params["id"], name=params.get("name"), display_text=params.get("displaytext"),
            sort_key=params.get("sortkey"), domains=params.get("domainid"), zones=params.get("zoneid"),
            host_tags=params.get("hosttags"), tags=params.get("storagetags"))


class DeleteServiceOfferingParams(serializers.Serializer):
    id = P.Entity(ServiceOffering, required=True, help_text="the ID of the service offering")


@register
class DeleteServiceOffering(Command):
    name = "deleteServiceOffering"
    description = "Deletes a service offering."
    Params = DeleteServiceOfferingParams
    kind = "success"
    roles = ADMINS
    event = "SERVICE.OFFERING.DELETE"

    def execute(self, params):
        offerings.delete_service_offering(self.caller, params["id"])
        return True


# -- disk offerings --------------------------------------------------------------------------------
class CreateDiskOfferingParams(serializers.Serializer):
    name = P.String(required=True, help_text="name of the disk offering")
    displaytext = P.String(required=True, max_length=4096, help_text="alternate display text of the disk offering")
    disksize = P.Long(help_text="size of the disk offering in GB (1GB = 1,073,741,824 bytes)")
    customized = P.Boolean(help_text="whether disk offering size is custom or not (default: true without disksize)")
    storagetype = P.String(help_text="the storage type of the disk offering. Values are local and shared.")
    provisioningtype = P.String(help_text="provisioning type used to create volumes. Valid values are thin, sparse, "
                                          "fat.")
    tags = P.String(max_length=4096, help_text="tags for the disk offering")
    displayoffering = P.Boolean(help_text="an optional field, whether to display the offering to the end user or "
                                          "not.")
    domainid = P.List(P.Entity(Domain), help_text="the ID of the containing domain(s), null for public offerings")
    zoneid = P.List(P.Uuid(), since="4.13", help_text="the ID of the containing zone(s), null for public offerings "
                                                      "(zone-specific offerings are not supported)")


@register
class CreateDiskOffering(Command):
    name = "createDiskOffering"
    description = "Creates a disk offering."
    Params = CreateDiskOfferingParams
    response = DiskOfferingResponse
    roles = ADMINS
    event = "DISK.OFFERING.CREATE"

    def execute(self, params):
        return offerings.create_disk_offering(
            self.caller, name=params["name"], display_text=params.get("displaytext"),
            disk_size=params.get("disksize"), customized=params.get("customized"),
            storage_type=params.get("storagetype"), provisioning_type=params.get("provisioningtype"),
            tags=params.get("tags"), display_offering=params.get("displayoffering"),
            domains=params.get("domainid"), zones=params.get("zoneid"))


class ListDiskOfferingsParams(ListParams):
    id = P.Uuid(help_text="ID of the disk offering")
    name = P.String(help_text="name of the disk offering")
    domainid = P.Uuid(help_text="the ID of the domain of the disk offering.")
    isrecursive = P.Boolean(help_text="defaults to false; with domainid, also the offerings of its sub-domains; for "
                                      "a domain admin, also the offerings of its subtree")
    listall = P.Boolean(help_text="a domain admin: also the offerings of the domains of its subtree")
    zoneid = P.Entity(Zone, since="4.13", help_text="id of zone disk offering is associated with (every offering is "
                                                    "available in every zone)")


@register
class ListDiskOfferings(Command):
    name = "listDiskOfferings"
    description = "Lists all available disk offerings."
    Params = ListDiskOfferingsParams
    response = DiskOfferingResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = offerings.offerings_for(self.caller, DiskOffering, **_list_scope(self.caller, params, self.name))
        if self.caller.account.type == AccountType.USER:
            qs = qs.filter(display_offering=True)  # displayoffering=false hides it from users
        qs = filter_by(qs, params, id="uuid", name="name")
        return keyword_filter(qs, params.get("keyword"), "name", "display_text")


class UpdateDiskOfferingParams(serializers.Serializer):
    id = P.Entity(DiskOffering, required=True, help_text="ID of the disk offering")
    name = P.String(help_text="updates name of the disk offering with this value")
    displaytext = P.String(max_length=4096, help_text="updates alternate display text of the disk offering with "
                                                      "this value")
    sortkey = P.Integer(help_text="sort key of the disk offering, integer")
    displayoffering = P.Boolean(help_text="an optional field, whether to display the offering to the end user or "
                                          "not.")
    domainid = DomainIds(max_length=4096, since="4.13",
                         help_text="the ID of the containing domain(s) as comma separated string, public for public "
                                   "offerings")
    zoneid = ZoneIds(max_length=4096, since="4.13",
                     help_text="the ID of the containing zone(s) as comma separated string, all for all zones "
                               "offerings (only all is supported)")
    tags = P.String(max_length=4096, since="4.15", help_text="comma-separated list of tags for the disk offering, "
                                                             "tags should match with existing storage pool tags")


@register
class UpdateDiskOffering(Command):
    name = "updateDiskOffering"
    description = "Updates a disk offering."
    Params = UpdateDiskOfferingParams
    response = DiskOfferingResponse
    roles = ADMINS
    event = "DISK.OFFERING.EDIT"

    def execute(self, params):
        return offerings.update_disk_offering(
            self.caller, params["id"], name=params.get("name"), display_text=params.get("displaytext"),
            sort_key=params.get("sortkey"), display_offering=params.get("displayoffering"),
            domains=params.get("domainid"), zones=params.get("zoneid"), tags=params.get("tags"))


class DeleteDiskOfferingParams(serializers.Serializer):
    id = P.Entity(DiskOffering, required=True, help_text="ID of the disk offering")


@register
class DeleteDiskOffering(Command):
    name = "deleteDiskOffering"
    description = "Deletes a disk offering."
    Params = DeleteDiskOfferingParams
    kind = "success"
    roles = ADMINS
    event = "DISK.OFFERING.DELETE"

    def execute(self, params):
        offerings.delete_disk_offering(self.caller, params["id"])
        return True
