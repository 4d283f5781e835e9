from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid


class OsTypeResponse(ResponseSerializer):
    object_name = "ostype"
    id = Uuid(source="uuid", help_text="the ID of the OS type")
    description = s.CharField(help_text="the name/description of the OS type")
    name = s.CharField(source="description", help_text="the name of the OS type")
    oscategoryid = Uuid(source="category.uuid", help_text="the ID of the OS category")
    oscategoryname = s.CharField(source="category.name", help_text="the name of the OS category")
    isuserdefined = s.BooleanField(source="is_user_defined", help_text="is the guest OS user defined")


class OsCategoryResponse(ResponseSerializer):
    object_name = "oscategory"
    id = Uuid(source="uuid", help_text="the ID of the OS category")
    name = s.CharField(help_text="the name of the OS category")


class StoragePoolResponse(ResponseSerializer):
    object_name = "storagepool"
    id = Uuid(source="uuid", help_text="the ID of the storage pool")
    name = s.CharField(help_text="the name of the storage pool")
    type = s.CharField(help_text="the storage pool type: NetworkFilesystem or Filesystem")
    scope = s.CharField(help_text="the scope of the storage pool: CLUSTER or ZONE")
    state = s.CharField(help_text="the state of the storage pool: Up, Disabled, Maintenance")
    ipaddress = s.CharField(source="host_address", help_text="the IP address (or name) of the storage pool's server")
    path = s.CharField(help_text="the storage pool path: the NFS export, or the directory")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the storage pool")
    zonename = s.CharField(source="zone.name", help_text="the Zone name of the storage pool")
    podid = Uuid(source="pod.uuid", help_text="the Pod ID of the storage pool")
    podname = s.CharField(source="pod.name", help_text="the Pod name of the storage pool")
    clusterid = Uuid(source="cluster.uuid", help_text="the ID of the cluster for the storage pool")
    clustername = s.CharField(source="cluster.name", help_text="the name of the cluster for the storage pool")
    disksizetotal = s.IntegerField(source="capacity_bytes", help_text="the total disk size of the storage pool")
    disksizeallocated = s.IntegerField(source="allocated_bytes", help_text="the host's currently allocated disk size")
    disksizeused = s.IntegerField(source="used_bytes", help_text="the host's currently used disk size")
    tags = s.CharField(help_text="the tags for the storage pool")
    provider = s.SerializerMethodField(help_text="Provider name of the storage pool")
    hypervisor = s.SerializerMethodField(help_text="the hypervisor type of the storage pool")
    created = DateTime(help_text="the date and time the storage pool was created")
    overprovisionfactor = s.SerializerMethodField(help_text="the overprovisionfactor for the storage pool")
    managed = s.SerializerMethodField(help_text="whether this pool is managed (storage driven volumes): never here")
    url = s.CharField(help_text="the URL the storage pool was added with")
    mountpoint = s.CharField(source="local_path", help_text="where each host sees the pool: the directory, or "
                                                            "the mount point of an NFS pool")

    def get_provider(self, obj) -> str:
        return "DefaultPrimary"

    def get_hypervisor(self, obj) -> str | None:
        return obj.hypervisor or ("Any" if obj.scope == "ZONE" else None)

    def get_overprovisionfactor(self, obj) -> str:
        from portal import config

        return str(config.get_value("storage.overprovisioning.factor", scope="storagepool", scope_uuid=str(obj.uuid)))

    def get_managed(self, obj) -> bool:
        return False

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("tags") == "":
            data.pop("tags")
        return data


class ImageStoreResponse(ResponseSerializer):
    object_name = "imagestore"
    id = Uuid(source="uuid", help_text="the ID of the image store")
    name = s.CharField(help_text="the name of the image store")
    url = s.CharField(help_text="the url of the image store")
    protocol = s.CharField(help_text="the protocol of the image store: nfs or file")
    providername = s.CharField(source="provider", help_text="the provider name of the image store")
    scope = s.SerializerMethodField(help_text="the scope of the image store")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the image store")
    zonename = s.CharField(source="zone.name", help_text="the Zone name of the image store")
    readonly = s.BooleanField(help_text="defines if store is read-only")
    disksizetotal = s.IntegerField(source="capacity_bytes", help_text="the total disk size of the host")
    disksizeused = s.IntegerField(source="used_bytes", help_text="the host's currently used disk size")

    def get_scope(self, obj) -> str:
        return "ZONE"


class SecondaryStorageResponse(ImageStoreResponse):
    """addSecondaryStorage answers the image store under the object name "secondarystorage"."""

    object_name = "secondarystorage"
