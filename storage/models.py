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
