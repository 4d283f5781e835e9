"""Storage API commands: the OS catalogue (everyone), primary storage (storage pools) and
secondary storage (image stores), root admin only; the volumes tenants own (listVolumes). Each
command parses and calls one service."""
from __future__ import annotations

from django.db.models import Q
from rest_framework import serializers

from accounts.access import ADMIN_ONLY, ALL_ROLE_TYPES, apply_list_scope
from compute.models import Cluster, Pod, Zone
from portal.api import params as P
from portal.api.listing import filter_by, keyword_filter
from portal.api.registry import Command, ListParams, ScopedListParams, register
from portal.errors import InvalidParameterValue

from . import services
from .models import ImageStore, OsCategory, OsType, StoragePool, Volume
from .responses import (
    ImageStoreResponse,
    OsCategoryResponse,
    OsTypeResponse,
    SecondaryStorageResponse,
    StoragePoolResponse,
    VolumeResponse,
)


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
        qs = filter_by(OsType.objects.select_related("category"), params, id="uuid", oscategoryid="category",
                       description="description")
        return keyword_filter(qs, params.get("keyword"), "description")


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
        qs = filter_by(OsCategory.objects.all(), params, id="uuid", name="name")
        return keyword_filter(qs, params.get("keyword"), "name")




# -- primary storage ----------------------------------------------------------------------------
class CreateStoragePoolParams(serializers.Serializer):
    zoneid = P.Entity(Zone, required=True, help_text="the Zone ID for the storage pool")
    name = P.String(required=True, help_text="the name for the storage pool")
    url = P.String(required=True, max_length=1024,
                   help_text="the URL of the storage pool: nfs://server/export/path, or file:///path for a directory "
                             "on every host")
    scope = P.String(help_text="the scope of the storage: cluster or zone (default cluster)")
    podid = P.Entity(Pod, help_text="the Pod ID for the storage pool")
    clusterid = P.Entity(Cluster, help_text="the cluster ID for the storage pool")
    hypervisor = P.String(help_text="hypervisor type of the hosts in zone that will be attached to this storage pool "
                                    "(zone scope): KVM, Simulator, or Any")
    provider = P.String(help_text="the storage provider name (DefaultPrimary)")
    tags = P.String(help_text="the tags for the storage pool")
    capacitybytes = P.Long(help_text="bytes Nubo may count for this storage pool (at most its size)")
    capacityiops = P.Long(help_text="IOPS CloudStack can provision from this storage pool (not used)")
    managed = P.Boolean(help_text="whether the storage should be managed by CloudStack (not supported)")
    details = P.Map(help_text="the details for the storage pool")


@register
class CreateStoragePool(Command):
    name = "createStoragePool"
    description = "Creates a storage pool."
    Params = CreateStoragePoolParams
    response = StoragePoolResponse
    roles = ADMIN_ONLY
    event = "STORAGE.POOL.CREATE"

    def execute(self, params):
        if params.get("managed"):
            raise InvalidParameterValue("managed=true (storage-driven volumes) is not supported; leave managed out")
        return services.create_storage_pool(
            self.caller, zone=params["zoneid"], name=params["name"], url=params["url"], pod=params.get("podid"),
            cluster=params.get("clusterid"), scope=params.get("scope") or "cluster", tags=params.get("tags", ""),
            hypervisor=params.get("hypervisor"), capacity_bytes=params.get("capacitybytes"),
            provider=params.get("provider"))


class ListStoragePoolsParams(ListParams):
    id = P.Uuid(help_text="the ID of the storage pool")
    name = P.String(help_text="the name of the storage pool")
    zoneid = P.Entity(Zone, help_text="the Zone ID for the storage pool")
    podid = P.Entity(Pod, help_text="the Pod ID for the storage pool")
    clusterid = P.Entity(Cluster, help_text="list storage pools belonging to the specific cluster")
    ipaddress = P.String(help_text="the IP address for the storage pool")
    path = P.String(max_length=1024, help_text="the storage pool path")
    scope = P.String(help_text="the scope of the storage pool: cluster or zone")
    status = P.String(help_text="the state of the storage pool: Up, Disabled, Maintenance")


@register
class ListStoragePools(Command):
    name = "listStoragePools"
    description = "Lists storage pools."
    Params = ListStoragePoolsParams
    response = StoragePoolResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = StoragePool.objects.visible_to(self.caller).select_related("zone", "pod", "cluster")
        qs = filter_by(qs, params, id="uuid", name="name", zoneid="zone", podid="pod", clusterid="cluster",
                       ipaddress="host_address")
        if params.get("path"):
            qs = qs.filter(Q(path=params["path"]) | Q(local_path=params["path"]))
        qs = filter_by(qs, params, scope="scope__iexact", status="state__iexact")
        return keyword_filter(qs, params.get("keyword"), "name", "url")


class UpdateStoragePoolParams(serializers.Serializer):
    id = P.Entity(StoragePool, required=True, help_text="the Id of the storage pool")
    name = P.String(help_text="Change the name of the storage pool")
    tags = P.String(help_text="comma-separated list of tags for the storage pool")
    enabled = P.Boolean(help_text="false to disable the pool for allocation of new volumes, true to enable it back")
    capacitybytes = P.Long(help_text="bytes Nubo may count for this storage pool (at most its size)")
    capacityiops = P.Long(help_text="IOPS CloudStack can provision from this storage pool (not used)")


@register
class UpdateStoragePool(Command):
    name = "updateStoragePool"
    description = "Updates a storage pool."
    Params = UpdateStoragePoolParams
    response = StoragePoolResponse
    roles = ADMIN_ONLY
    event = "STORAGE.POOL.UPDATE"

    def execute(self, params):
        return services.update_storage_pool(self.caller, params["id"], name=params.get("name"),
                                            tags=params.get("tags"), enabled=params.get("enabled"),
                                            capacity_bytes=params.get("capacitybytes"))


class DeleteStoragePoolParams(serializers.Serializer):
    id = P.Entity(StoragePool, required=True, help_text="Storage pool id")
    forced = P.Boolean(help_text="Force destroy storage pool (force expunge volumes in Destroyed state as a part "
                                 "of pool removal)")


@register
class DeleteStoragePool(Command):
    name = "deleteStoragePool"
    description = "Deletes a storage pool."
    Params = DeleteStoragePoolParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "STORAGE.POOL.DELETE"

    def execute(self, params):
        services.delete_storage_pool(self.caller, params["id"], forced=params.get("forced", False))
        return True


# -- secondary storage --------------------------------------------------------------------------
class AddImageStoreParams(serializers.Serializer):
    provider = P.String(required=True, help_text="the image store provider name (NFS)")
    url = P.String(max_length=1024, help_text="the URL for the image store: nfs://server/export/path, or "
                                              "file:///path for a directory on the management server")
    zoneid = P.Entity(Zone, help_text="the Zone ID for the image store")
    name = P.String(help_text="the name for the image store")
    details = P.Map(help_text="the details for the image store. Example: details[0].key=accesskey&"
                              "details[0].value=s389ddssaa")


@register
class AddImageStore(Command):
    name = "addImageStore"
    description = "Adds backup image store."
    Params = AddImageStoreParams
    response = ImageStoreResponse
    roles = ADMIN_ONLY
    event = "IMAGE.STORE.ADD"
    since = "4.2.0"

    def execute(self, params):
        return services.add_image_store(self.caller, url=params.get("url", ""), zone=params.get("zoneid"),
                                        name=params.get("name"), provider=params["provider"],
                                        details=params.get("details"))


class AddSecondaryStorageParams(serializers.Serializer):
    url = P.String(required=True, max_length=1024, help_text="the URL for the secondary storage")
    zoneid = P.Entity(Zone, help_text="the Zone ID for the secondary storage")
    details = P.Map(help_text="Details in key/value pairs using format details[i].keyname=keyvalue")


@register
class AddSecondaryStorage(Command):
    name = "addSecondaryStorage"
    description = "Adds secondary storage."
    Params = AddSecondaryStorageParams
    response = SecondaryStorageResponse
    roles = ADMIN_ONLY
    event = "IMAGE.STORE.ADD"

    def execute(self, params):
        return services.add_image_store(self.caller, url=params["url"], zone=params.get("zoneid"), provider="NFS",
                                        details=params.get("details"))


class ListImageStoresParams(ListParams):
    id = P.Uuid(help_text="the ID of the storage pool")
    name = P.String(help_text="the name of the image store")
    zoneid = P.Entity(Zone, help_text="the Zone ID for the image store")
    provider = P.String(help_text="the image store provider")
    protocol = P.String(help_text="the image store protocol")
    readonly = P.Boolean(help_text="read-only status of the image store")


@register
class ListImageStores(Command):
    name = "listImageStores"
    description = "Lists image stores."
    Params = ListImageStoresParams
    response = ImageStoreResponse
    kind = "list"
    roles = ADMIN_ONLY
    since = "4.2.0"

    def execute(self, params):
        qs = ImageStore.objects.visible_to(self.caller).select_related("zone")
        qs = filter_by(qs, params, id="uuid", name="name", zoneid="zone", provider="provider__iexact",
                       protocol="protocol__iexact")
        if "readonly" in params:
            qs = qs.filter(readonly=params["readonly"])
        return keyword_filter(qs, params.get("keyword"), "name", "url")


class DeleteImageStoreParams(serializers.Serializer):
    id = P.Entity(ImageStore, required=True, help_text="the image store ID")


@register
class DeleteImageStore(Command):
    name = "deleteImageStore"
    description = "Deletes an image store or Secondary Storage."
    Params = DeleteImageStoreParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "IMAGE.STORE.DELETE"
    since = "4.2.0"

    def execute(self, params):
        services.delete_image_store(self.caller, params["id"])
        return True


# -- volumes -------------------------------------------------------------------------------------------
class ListVolumesParams(ScopedListParams):
    id = P.Uuid(help_text="the ID of the disk volume")
    ids = P.List(P.Uuid(), help_text="the IDs of the volumes")
    name = P.String(help_text="the name of the disk volume")
    type = P.String(help_text="the type of disk volume: ROOT or DATADISK")
    state = P.String(help_text="state of the volume")
    virtualmachineid = P.Uuid(help_text="the ID of the virtual machine")
    zoneid = P.Entity(Zone, help_text="the ID of the availability zone")
    diskofferingid = P.Uuid(help_text="list volumes by disk offering")
    storageid = P.Uuid(help_text="the ID of the storage pool (root admins)")


@register
class ListVolumes(Command):
    name = "listVolumes"
    description = "Lists all volumes."
    Params = ListVolumesParams
    response = VolumeResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = Volume.objects.visible_to(self.caller).select_related(
            "account__domain", "zone", "virtual_machine", "disk_offering", "template", "pool")
        qs = apply_list_scope(qs, self.caller, params, command=self.name)
        if params.get("storageid") and self.caller.account.type != 1:
            return qs.none()
        qs = filter_by(qs, params, id="uuid", ids="uuid__in", name="name", type="type__iexact", state="state__iexact",
                       virtualmachineid="virtual_machine__uuid", zoneid="zone", diskofferingid="disk_offering__uuid",
                       storageid="pool__uuid")
        return keyword_filter(qs, params.get("keyword"), "name").order_by("virtual_machine_id", "device_id", "id")
