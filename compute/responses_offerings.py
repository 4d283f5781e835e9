"""Response objects of the offering commands (CloudStack's ServiceOfferingResponse and
DiskOfferingResponse field names)."""
from __future__ import annotations

from django.db.models import prefetch_related_objects
from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid


class MapField(s.SerializerMethodField):
    cs_type = "map"


def _domain_names(obj) -> str | None:
    names = [d.name for d in obj.domains.all()]
    return ",".join(names) if names else None


def _domain_ids(obj) -> str | None:
    ids = [str(d.uuid) for d in obj.domains.all()]
    return ",".join(ids) if ids else None


class _OfferingResponse(ResponseSerializer):
    @classmethod
    def prepare(cls, rows: list) -> None:
        prefetch_related_objects(rows, "domains")


class ServiceOfferingResponse(_OfferingResponse):
    object_name = "serviceoffering"
    id = Uuid(source="uuid", help_text="the id of the service offering")
    name = s.CharField(help_text="the name of the service offering")
    displaytext = s.CharField(source="display_text", help_text="an alternate display text of the service offering")
    cpunumber = s.IntegerField(source="cpu_number", help_text="the number of CPU")
    cpuspeed = s.IntegerField(source="cpu_speed", help_text="the clock rate CPU speed in Mhz")
    memory = s.IntegerField(help_text="the memory in MB")
    created = DateTime(help_text="the date this service offering was created")
    storagetype = s.CharField(source="storage_type", help_text="the storage type for this service offering")
    provisioningtype = s.CharField(source="provisioning_type",
                                   help_text="provisioning type used to create volumes: thin, sparse or fat")
    offerha = s.BooleanField(source="offer_ha", help_text="the ha support in the service offering")
    limitcpuuse = s.BooleanField(source="limit_cpu_use", help_text="restrict the CPU usage to committed service "
                                                                    "offering")
    hosttags = s.SerializerMethodField(help_text="the host tag for the service offering")
    storagetags = s.SerializerMethodField(help_text="the tags for the service offering")
    rootdisksize = s.IntegerField(source="root_disk_size", help_text="Root disk size in GB")
    domain = s.SerializerMethodField(help_text="the domain name(s) this service offering belongs to; absent for "
                                               "public offerings")
    domainid = s.SerializerMethodField(help_text="the domain ID(s) this service offering belongs to; absent for "
                                                 "public offerings")
    iscustomized = s.BooleanField(source="customized", help_text="is true if the offering is customized")
    iscustomizediops = s.SerializerMethodField(help_text="true if disk offering uses custom iops, false otherwise")
    issystem = s.BooleanField(source="is_system", help_text="is this a system vm offering")
    defaultuse = s.SerializerMethodField(help_text="is this a  default system vm offering")
    isvolatile = s.SerializerMethodField(help_text="true if the vm needs to be volatile, i.e., on every reboot of "
                                                   "vm from API root disk is discarded and creates a new root disk")
    dynamicscalingenabled = s.SerializerMethodField(help_text="true if virtual machine needs to be dynamically "
                                                              "scalable of cpu or memory")
    cacheMode = s.SerializerMethodField(help_text="the cache mode to use for this disk offering. none, writeback "
                                                  "or writethrough")
    serviceofferingdetails = MapField(help_text="additional key/value details tied with this service offering "
                                                "(mincpunumber, maxcpunumber, minmemory, maxmemory of a customized "
                                                "offering)")

    def get_hosttags(self, obj) -> str | None:
        return obj.host_tags or None

    def get_storagetags(self, obj) -> str | None:
        return obj.tags or None

    def get_domain(self, obj) -> str | None:
        return _domain_names(obj)

    def get_domainid(self, obj) -> str | None:
        return _domain_ids(obj)

    def get_iscustomizediops(self, obj) -> bool:
        return False

    def get_defaultuse(self, obj) -> bool:
        return False

    def get_isvolatile(self, obj) -> bool:
        return False

    def get_dynamicscalingenabled(self, obj) -> bool:
        return False

    def get_cacheMode(self, obj) -> str:  # noqa: N802 - CloudStack's camelCase field
        return "none"

    def get_serviceofferingdetails(self, obj) -> dict[str, str] | None:
        if not obj.is_constrained:
            return None
        return {"mincpunumber": str(obj.min_cpu_number), "maxcpunumber": str(obj.max_cpu_number),
                "minmemory": str(obj.min_memory), "maxmemory": str(obj.max_memory)}


class DiskOfferingResponse(_OfferingResponse):
    object_name = "diskoffering"
    id = Uuid(source="uuid", help_text="unique ID of the disk offering")
    name = s.CharField(help_text="the name of the disk offering")
    displaytext = s.CharField(source="display_text", help_text="an alternate display text of the disk offering")
    disksize = s.IntegerField(source="disk_size", help_text="the size of the disk offering in GB")
    iscustomized = s.BooleanField(source="customized", help_text="true if disk offering uses custom size, false "
                                                                 "otherwise")
    tags = s.SerializerMethodField(help_text="the tags for the disk offering")
    storagetype = s.CharField(source="storage_type", help_text="the storage type for this disk offering")
    provisioningtype = s.CharField(source="provisioning_type",
                                   help_text="provisioning type used to create volumes: thin, sparse or fat")
    created = DateTime(help_text="the date this disk offering was created")
    domain = s.SerializerMethodField(help_text="the domain name(s) this disk offering belongs to; absent for public "
                                               "offerings")
    domainid = s.SerializerMethodField(help_text="the domain ID(s) this disk offering belongs to; absent for public "
                                                 "offerings")
    displayoffering = s.BooleanField(source="display_offering", help_text="whether to display the offering to the "
                                                                         "end user or not")
    iscustomizediops = s.SerializerMethodField(help_text="true if disk offering uses custom iops, false otherwise")
    cacheMode = s.SerializerMethodField(help_text="the cache mode to use for this disk offering. none, writeback or "
                                                  "writethrough")
    encrypt = s.SerializerMethodField(help_text="Whether disks using this offering will be encrypted on primary "
                                                "storage")
    disksizestrictness = s.SerializerMethodField(help_text="To allow or disallow the resize operation on the disks "
                                                           "created from this disk offering")

    def get_tags(self, obj) -> str | None:
        return obj.tags or None

    def get_domain(self, obj) -> str | None:
        return _domain_names(obj)

    def get_domainid(self, obj) -> str | None:
        return _domain_ids(obj)

    def get_iscustomizediops(self, obj) -> bool:
        return False

    def get_cacheMode(self, obj) -> str:  # noqa: N802 - CloudStack's camelCase field
        return "none"

    def get_encrypt(self, obj) -> bool:
        return False

    def get_disksizestrictness(self, obj) -> bool:
        return False
