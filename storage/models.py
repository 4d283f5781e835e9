"""Storage rows. This issue brings the OS catalogue that templates and ISOs will reference."""
from __future__ import annotations

import uuid

from django.db import models


class OsCategory(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "OS categories"

    def __str__(self) -> str:
        return self.name


class OsType(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    description = models.CharField(max_length=255, unique=True)
    category = models.ForeignKey(OsCategory, on_delete=models.PROTECT, related_name="os_types")
    is_user_defined = models.BooleanField(default=False)

    class Meta:
        ordering = ["description"]

    def __str__(self) -> str:
        return self.description


class AdminOnlyQuerySet(models.QuerySet):
    def visible_to(self, caller):
        return self if caller.account.type == 1 else self.none()


class StoragePool(models.Model):
    """Primary storage: a libvirt storage pool (dir, or netfs for NFS) on every host of its
    cluster (scope CLUSTER) or of its zone (scope ZONE). Capacity is read from the pools.

    `url` is what the admin gave (normalised): nfs://server/export or file:///dir. `path` is the
    export (NFS) or the directory (Filesystem), `host_address` the NFS server ("localhost" for a
    directory), `local_path` where every host sees the pool: the directory itself, or the mount
    point Nubo gives an NFS pool (<pool mount dir>/<uuid>)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    zone = models.ForeignKey("compute.Zone", on_delete=models.PROTECT, related_name="storage_pools")
    pod = models.ForeignKey("compute.Pod", null=True, blank=True, on_delete=models.PROTECT, related_name="storage_pools")
    cluster = models.ForeignKey("compute.Cluster", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="storage_pools")
    scope = models.CharField(max_length=16, default="CLUSTER")  # CLUSTER | ZONE
    hypervisor = models.CharField(max_length=16, blank=True, default="")  # "" on a zone pool: every host
    url = models.CharField(max_length=1024)
    type = models.CharField(max_length=32)  # Filesystem | NetworkFilesystem
    host_address = models.CharField(max_length=255, blank=True, default="")  # NFS server
    path = models.CharField(max_length=1024)  # the export (NFS) or the directory (Filesystem)
    local_path = models.CharField(max_length=1024, blank=True, default="")  # the directory / mount point on hosts
    state = models.CharField(max_length=16, default="Up")  # Up | Disabled | Maintenance | Error
    tags = models.CharField(max_length=1024, blank=True, default="")
    capacity_bytes = models.BigIntegerField(default=0)  # what Nubo counts: the reported size, or the admin's limit
    reported_capacity_bytes = models.BigIntegerField(default=0)  # the size the pool last reported
    capacity_limit_bytes = models.BigIntegerField(null=True, blank=True)  # capacitybytes given by the admin
    used_bytes = models.BigIntegerField(default=0)
    allocated_bytes = models.BigIntegerField(default=0)  # sum of volume sizes (rows), for the capacity model
    stats_updated = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["zone", "name"], name="storagepool_unique_name_in_zone")]

    def __str__(self) -> str:
        return self.name

    @property
    def libvirt_name(self) -> str:
        return f"nubo-{self.uuid}"

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]


class ImageStore(models.Model):
    """Secondary storage of a zone: a directory (file://) or an NFS export mounted on the
    management side (mount_path), laid out as storage.services.IMAGE_STORE_LAYOUT describes:
    template/tmpl/, iso/, snapshots/."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    zone = models.ForeignKey("compute.Zone", on_delete=models.PROTECT, related_name="image_stores")
    url = models.CharField(max_length=1024)
    protocol = models.CharField(max_length=16)  # nfs | file
    provider = models.CharField(max_length=32, default="NFS")
    mount_path = models.CharField(max_length=1024)  # where Nubo reads and writes it
    readonly = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True)
    capacity_bytes = models.BigIntegerField(default=0)
    used_bytes = models.BigIntegerField(default=0)
    stats_updated = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["zone", "name"], name="imagestore_unique_name_in_zone")]

    def __str__(self) -> str:
        return self.name


# -- templates and ISOs ---------------------------------------------------------------------------
class ImageFormat(models.TextChoices):
    QCOW2 = "QCOW2"
    RAW = "RAW"
    ISO = "ISO"


class TemplateType(models.TextChoices):
    USER = "USER"
    BUILTIN = "BUILTIN"


class DownloadState(models.TextChoices):
    """CloudStack's template download states (VMTemplateStorageResourceAssoc.Status)."""

    NOT_DOWNLOADED = "NOT_DOWNLOADED"
    DOWNLOAD_IN_PROGRESS = "DOWNLOAD_IN_PROGRESS"
    DOWNLOADED = "DOWNLOADED"
    DOWNLOAD_ERROR = "DOWNLOAD_ERROR"


class TemplateQuerySet(models.QuerySet):
    def visible_to(self, caller):
        """Templates and ISOs the caller may see and use: a root admin every one; everyone else
        the public ones, the ones granted to their account, and the ones their account (a domain
        admin: any account of their domain subtree) owns. Removed ones are never visible."""
        from accounts.access import scope_filter

        qs = self.filter(removed__isnull=True)
        account = caller.account
        if account.type == 1:
            return qs
        return qs.filter(scope_filter(caller) | models.Q(is_public=True)
                         | models.Q(permissions__account=account.pk)).distinct()

    def usable_by(self, account):
        """What `account` may deploy from or attach to its VMs: what its own users see. Checked for
        the owner when an admin acts for another account."""
        from types import SimpleNamespace

        return self.visible_to(SimpleNamespace(account=account))

    def templates(self):
        return self.exclude(format=ImageFormat.ISO)

    def isos(self):
        return self.filter(format=ImageFormat.ISO)


class Template(models.Model):
    """A template or an ISO (format ISO), like CloudStack's vm_template: what the owner registered.
    Where it is stored, per zone, is a TemplateZone; its copies on primary storage TemplatePoolCopy."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    display_text = models.CharField(max_length=4096, blank=True, default="")
    format = models.CharField(max_length=8, choices=ImageFormat.choices)
    hypervisor = models.CharField(max_length=16, blank=True, default="")  # "" for an ISO
    os_type = models.ForeignKey(OsType, null=True, blank=True, on_delete=models.PROTECT, related_name="templates")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="templates")
    url = models.CharField(max_length=2048)
    checksum = models.CharField(max_length=255, blank=True, default="")
    is_public = models.BooleanField(default=False)
    is_featured = models.BooleanField(default=False)
    is_extractable = models.BooleanField(default=False)
    password_enabled = models.BooleanField(default=False)
    sshkey_enabled = models.BooleanField(default=False)
    requires_hvm = models.BooleanField(default=True)
    bootable = models.BooleanField(default=True)
    dynamically_scalable = models.BooleanField(default=False)
    bits = models.PositiveSmallIntegerField(default=64)
    cross_zones = models.BooleanField(default=False)  # registered with zoneid=-1: every zone, present and future
    details = models.JSONField(default=dict, blank=True)
    template_type = models.CharField(max_length=16, choices=TemplateType.choices, default=TemplateType.USER)
    builtin_key = models.CharField(max_length=64, blank=True, default="")  # e.g. "tiny-linux" for built-in images
    size = models.BigIntegerField(null=True, blank=True)  # virtual size, once known
    created = models.DateTimeField(auto_now_add=True)
    removed = models.DateTimeField(null=True, blank=True)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["account", "removed"]), models.Index(fields=["is_public", "is_featured"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_iso(self) -> bool:
        return self.format == ImageFormat.ISO

    @property
    def kind(self) -> str:
        """"ISO" or "template", for sentences."""
        return "ISO" if self.is_iso else "template"

    @property
    def kind_title(self) -> str:
        """"ISO" or "Template", to start a sentence."""
        return "ISO" if self.is_iso else "Template"


class TemplateZone(models.Model):
    """A template in one zone: the file on one of the zone's image stores and its download
    state, progress and error (CloudStack's template_store_ref, one per zone)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="zones")
    zone = models.ForeignKey("compute.Zone", on_delete=models.PROTECT, related_name="template_zones")
    store = models.ForeignKey(ImageStore, on_delete=models.PROTECT, related_name="template_zones")
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")  # copyTemplate: copied from this zone's file, not the url
    state = models.CharField(max_length=32, choices=DownloadState.choices, default=DownloadState.NOT_DOWNLOADED)
    status_text = models.CharField(max_length=1024, blank=True, default="")
    percent = models.PositiveSmallIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    rate_bps = models.BigIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    install_path = models.CharField(max_length=1024, blank=True, default="")  # relative to the store's root
    size = models.BigIntegerField(null=True, blank=True)  # virtual size
    physical_size = models.BigIntegerField(null=True, blank=True)  # bytes on the store
    sha256 = models.CharField(max_length=64, blank=True, default="")
    heartbeat = models.DateTimeField(null=True, blank=True)  # last progress written by the download job
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["template_id", "zone_id"]
        constraints = [models.UniqueConstraint(fields=["template", "zone"], name="templatezone_unique")]

    def __str__(self) -> str:
        return f"{self.template} in {self.zone_id}"

    @property
    def is_ready(self) -> bool:
        return self.state == DownloadState.DOWNLOADED


class TemplatePermission(models.Model):
    """An account allowed to use another account's private template or ISO (launch permission)."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="permissions")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="template_permissions")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "account"], name="templatepermission_unique")]


class PoolCopyState(models.TextChoices):
    CREATING = "Creating"
    READY = "Ready"
    ERROR = "Error"


class TemplatePoolCopy(models.Model):
    """A template on primary storage ("template on primary"): the base volume that root volumes
    in that pool are copy-on-write clones of. Kept while any volume depends on it."""

    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="pool_copies")
    pool = models.ForeignKey(StoragePool, on_delete=models.CASCADE, related_name="template_copies")
    volume_name = models.CharField(max_length=255)
    path = models.CharField(max_length=1024, blank=True, default="")
    state = models.CharField(max_length=16, choices=PoolCopyState.choices, default=PoolCopyState.CREATING)
    error = models.CharField(max_length=1024, blank=True, default="")
    size = models.BigIntegerField(default=0)  # virtual size
    physical_size = models.BigIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "pool"], name="templatepoolcopy_unique")]


# -- volumes --------------------------------------------------------------------------------------
class VolumeState(models.TextChoices):
    ALLOCATED = "Allocated"
    READY = "Ready"
    DESTROY = "Destroy"
    EXPUNGED = "Expunged"


class VolumeQuerySet(models.QuerySet):
    def visible_to(self, caller):
        from accounts.access import scope_filter

        return self.filter(scope_filter(caller), removed__isnull=True)


class Volume(models.Model):
    """A disk of a VM: the root disk (a qcow2 copy-on-write clone of its template's base on the
    pool, `base`, which therefore stays while the volume exists; or, for a VM installed from an
    ISO, a blank qcow2 of its disk offering's size) or a data disk (DATADISK, blank, from a disk
    offering). `device_id` orders them: 0 the root disk (vda), 1 the first data disk (vdb)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="volumes")
    zone = models.ForeignKey("compute.Zone", on_delete=models.PROTECT, related_name="volumes")
    pool = models.ForeignKey(StoragePool, null=True, blank=True, on_delete=models.PROTECT, related_name="volumes")
    virtual_machine = models.ForeignKey("compute.VirtualMachine", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="volumes")
    type = models.CharField(max_length=16, default="ROOT")  # ROOT | DATADISK
    device_id = models.PositiveSmallIntegerField(default=0)
    size = models.BigIntegerField(default=0)  # bytes (virtual)
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.PROTECT, related_name="volumes")
    disk_offering = models.ForeignKey("compute.DiskOffering", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="volumes")  # a blank disk's size came from it
    base = models.ForeignKey(TemplatePoolCopy, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="volumes")
    volume_name = models.CharField(max_length=255, blank=True, default="")  # in the libvirt pool
    path = models.CharField(max_length=1024, blank=True, default="")
    state = models.CharField(max_length=16, choices=VolumeState.choices, default=VolumeState.ALLOCATED)
    created = models.DateTimeField(auto_now_add=True)
    removed = models.DateTimeField(null=True, blank=True)

    objects = VolumeQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
