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


class TemplateResponse(ResponseSerializer):
    """One template in one zone (a TemplateZone row), as listTemplates shows it."""

    object_name = "template"
    id = Uuid(source="template.uuid", help_text="the template ID")
    name = s.CharField(source="template.name", help_text="the template name")
    displaytext = s.CharField(source="template.display_text", help_text="the template display text")
    ispublic = s.BooleanField(source="template.is_public", help_text="true if this template is a public template")
    isfeatured = s.BooleanField(source="template.is_featured", help_text="true if this template is a featured template")
    isextractable = s.BooleanField(source="template.is_extractable", help_text="true if the template is extractable")
    isready = s.SerializerMethodField(help_text="true if the template is ready to be deployed from, false otherwise")
    passwordenabled = s.BooleanField(source="template.password_enabled",
                                     help_text="true if the reset password feature is enabled")
    sshkeyenabled = s.BooleanField(source="template.sshkey_enabled", help_text="true if template is sshkey enabled")
    isdynamicallyscalable = s.BooleanField(source="template.dynamically_scalable",
                                           help_text="true if template contains XS/VMWare tools to support dynamic "
                                                     "scaling of VM cpu/memory")
    requireshvm = s.BooleanField(source="template.requires_hvm", help_text="true if template requires HVM")
    bootable = s.BooleanField(source="template.bootable", help_text="true if the ISO is bootable")
    bits = s.IntegerField(source="template.bits", help_text="the processor bit size")
    format = s.CharField(source="template.format", help_text="the format of the template: QCOW2, RAW or ISO")
    hypervisor = s.SerializerMethodField(help_text="the hypervisor on which the template runs")
    ostypeid = Uuid(source="template.os_type.uuid", help_text="the ID of the OS type for this template")
    ostypename = s.CharField(source="template.os_type.description", help_text="the name of the OS type")
    size = s.SerializerMethodField(help_text="the size of the template (virtual size, bytes)")
    physicalsize = s.IntegerField(source="physical_size", help_text="the physical size of the template on the store")
    status = s.CharField(source="status_text", help_text="the status of the template: 37% Downloaded, Download "
                                                         "Complete, or why it failed")
    templatetype = s.CharField(source="template.template_type", help_text="the type of the template: USER or BUILTIN")
    zoneid = Uuid(source="zone.uuid", help_text="the ID of the zone for this template")
    zonename = s.CharField(source="zone.name", help_text="the name of the zone for this template")
    account = s.CharField(source="template.account.name", help_text="the account name to which the template belongs")
    accountid = Uuid(source="template.account.uuid", help_text="the account id to which the template belongs")
    domain = s.CharField(source="template.account.domain.name", help_text="the name of the domain to which the "
                                                                          "template belongs")
    domainid = Uuid(source="template.account.domain.uuid", help_text="the ID of the domain to which the template "
                                                                     "belongs")
    domainpath = s.CharField(source="template.account.domain.display_path", help_text="the path of the domain")
    created = DateTime(source="template.created", help_text="the date this template was created")
    removed = DateTime(source="template.removed", help_text="the date this template was removed")
    checksum = s.SerializerMethodField(help_text="checksum of the template")
    crossZones = s.BooleanField(source="template.cross_zones", help_text="true if the template is managed across all "
                                                                         "Zones, false otherwise")
    details = s.SerializerMethodField(help_text="additional key/value details tied with template")
    downloaddetails = s.SerializerMethodField(help_text="Lists the download progress of a template across all "
                                                        "secondary storages")
    directdownload = s.SerializerMethodField(help_text="KVM Only: true if template is directly downloaded to "
                                                       "Primary Storage bypassing Secondary Storage")
    deployasis = s.SerializerMethodField(help_text="VMware only: true if template is deployed without orchestrating "
                                                   "disks and networks")
    url = s.SerializerMethodField(help_text="the URL the template was registered from (owner and administrators)")
    tags = s.SerializerMethodField(help_text="the list of resource tags associated with the template")

    def get_isready(self, obj) -> bool:
        return obj.state == "DOWNLOADED"

    def get_hypervisor(self, obj) -> str | None:
        return obj.template.hypervisor or None

    def get_size(self, obj) -> int | None:
        return obj.size if obj.size is not None else obj.template.size

    def get_checksum(self, obj) -> str | None:
        return obj.template.checksum or None

    def get_details(self, obj) -> dict | None:
        return dict(obj.template.details) or None

    def get_downloaddetails(self, obj) -> list[dict[str, str]]:
        return [{"datastore": obj.store.name if obj.store_id else "", "downloadPercent": str(obj.percent),
                 "downloadState": obj.state}]

    def get_directdownload(self, obj) -> bool:
        return False

    def get_deployasis(self, obj) -> bool:
        return False

    def get_url(self, obj) -> str | None:
        from .images.services import can_manage
        from .images.transfer import redact_url

        caller = self.context.get("caller")
        if caller is None or not can_manage(caller, obj.template):
            return None
        return redact_url(obj.template.url)

    def get_tags(self, obj) -> list:
        return []


class IsoResponse(TemplateResponse):
    object_name = "iso"


class TemplatePermissionsResponse(ResponseSerializer):
    object_name = "templatepermission"
    id = Uuid(source="uuid", help_text="the template ID")
    ispublic = s.BooleanField(source="is_public", help_text="true if this template is a public template")
    domainid = Uuid(source="account.domain.uuid", help_text="the ID of the domain to which the template belongs")
    account = s.SerializerMethodField(help_text="the list of accounts the template is available for")
    projectids = s.SerializerMethodField(help_text="the list of projects the template is available for")

    def get_account(self, obj) -> list[str]:
        from .images.services import permitted_accounts

        return [a.name for a in permitted_accounts(obj)]

    def get_projectids(self, obj) -> list[str]:
        return []


class ExtractResponse(ResponseSerializer):
    object_name = "template"
    id = Uuid(help_text="the id of extracted object")
    name = s.CharField(help_text="the name of the extracted object")
    url = s.CharField(help_text="the url that can be used to download the extracted object (valid for "
                                "extract.url.expiration.interval seconds)")
    state = s.CharField(help_text="the state of the extracted object")
    status = s.CharField(help_text="the status of the extraction")
    uploadpercentage = s.IntegerField(help_text="the percentage of the entity uploaded to the specified location")
    extractMode = s.CharField(help_text="the mode of extraction - upload or download")
    extractId = Uuid(help_text="the upload id of extracted object")
    zoneid = Uuid(help_text="zone ID the object was extracted from")
    zonename = s.CharField(help_text="zone name the object was extracted from")
    accountid = Uuid(help_text="the account id to which the extracted object belongs")
    created = DateTime(help_text="the time and date the object was created")


class VolumeResponse(ResponseSerializer):
    """VolumeResponse (key `volume`): a VM's root disk or data disk; where it lives only for root admins."""

    object_name = "volume"
    id = Uuid(source="uuid", help_text="ID of the disk volume")
    name = s.CharField(help_text="name of the disk volume")
    type = s.CharField(help_text="type of the disk volume (ROOT or DATADISK)")
    state = s.CharField(help_text="the state of the disk volume")
    size = s.IntegerField(help_text="size of the disk volume (bytes)")
    deviceid = s.IntegerField(source="device_id", help_text="the ID of the device on user vm the volume is attached to")
    virtualmachineid = Uuid(source="virtual_machine.uuid", help_text="id of the virtual machine")
    vmname = s.CharField(source="virtual_machine.name", help_text="name of the virtual machine")
    vmdisplayname = s.CharField(source="virtual_machine.display_name", help_text="display name of the virtual machine")
    vmstate = s.CharField(source="virtual_machine.state", help_text="state of the virtual machine")
    zoneid = Uuid(source="zone.uuid", help_text="ID of the availability zone")
    zonename = s.CharField(source="zone.name", help_text="name of the availability zone")
    diskofferingid = Uuid(source="disk_offering.uuid", help_text="ID of the disk offering")
    diskofferingname = s.CharField(source="disk_offering.name", help_text="name of the disk offering")
    diskofferingdisplaytext = s.CharField(source="disk_offering.display_text",
                                          help_text="the display text of the disk offering")
    templateid = Uuid(source="template.uuid", help_text="the ID of the template the root disk was made from")
    templatename = s.CharField(source="template.name", help_text="name of the template the root disk was made from")
    storageid = s.SerializerMethodField(help_text="id of the primary storage hosting the disk volume (root admins)")
    storage = s.SerializerMethodField(help_text="name of the primary storage hosting the disk volume (root admins)")
    path = s.SerializerMethodField(help_text="the path of the volume on its host (root admins)")
    storagetype = s.SerializerMethodField(help_text="shared or local storage")
    provisioningtype = s.SerializerMethodField(help_text="provisioning type used to create volumes")
    hypervisor = s.SerializerMethodField(help_text="Hypervisor the volume belongs to")
    destroyed = s.SerializerMethodField(help_text="the boolean state of whether the volume is destroyed or not")
    account = s.CharField(source="account.name", help_text="the account associated with the disk volume")
    domainid = Uuid(source="account.domain.uuid", help_text="the ID of the domain associated with the disk volume")
    domain = s.CharField(source="account.domain.name", help_text="the domain associated with the disk volume")
    created = DateTime(help_text="the date the disk volume was created")
    tags = s.SerializerMethodField(help_text="the list of resource tags associated")

    def get_storageid(self, obj) -> str | None:
        return str(obj.pool.uuid) if self.for_root_admin() and obj.pool_id else None

    def get_storage(self, obj) -> str | None:
        return obj.pool.name if self.for_root_admin() and obj.pool_id else None

    def get_path(self, obj) -> str | None:
        return (obj.path or None) if self.for_root_admin() else None

    def get_storagetype(self, obj) -> str:
        return "shared"

    def get_provisioningtype(self, obj) -> str:
        return "thin"

    def get_hypervisor(self, obj) -> str:
        return "KVM"

    def get_destroyed(self, obj) -> bool:
        return obj.removed is not None

    def get_tags(self, obj) -> list:
        return []
