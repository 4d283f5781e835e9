"""The infrastructure hierarchy: Zone > Pod > Cluster > Host, guest IP ranges and alerts.

Infrastructure is not owned by tenants: only root admins manage it; `visible_to` lets every
caller see zones (to deploy into) and nothing below them unless root admin.
"""
from __future__ import annotations

import ipaddress
import uuid

from django.db import models

from .choices import (
    AllocationState,
    ClusterType,
    Emulation,
    HostState,
    Hypervisor,
    NetworkType,
    ResourceState,
)


def _is_root_admin(caller) -> bool:
    return caller.account.type == 1


class AdminOnlyQuerySet(models.QuerySet):
    def visible_to(self, caller):
        return self if _is_root_admin(caller) else self.none()


class ZoneQuerySet(models.QuerySet):
    def visible_to(self, caller):
        if _is_root_admin(caller):
            return self
        # Tenants see enabled zones that are public or dedicated to their domain tree.
        domain = caller.account.domain
        ancestors = [p for p in _ancestor_paths(domain.path)]
        return self.filter(allocation_state=AllocationState.ENABLED).filter(
            models.Q(domain__isnull=True) | models.Q(domain__path__in=ancestors))


def _ancestor_paths(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


class Zone(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    network_type = models.CharField(max_length=16, choices=NetworkType.choices, default=NetworkType.BASIC)
    dns1 = models.GenericIPAddressField()
    dns2 = models.GenericIPAddressField(null=True, blank=True)
    internal_dns1 = models.GenericIPAddressField()
    internal_dns2 = models.GenericIPAddressField(null=True, blank=True)
    guest_cidr = models.CharField(max_length=64, blank=True, default="")
    network_domain = models.CharField(max_length=255, blank=True, default="")
    domain = models.ForeignKey("accounts.Domain", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    allocation_state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.DISABLED)
    local_storage_enabled = models.BooleanField(default=False)
    security_groups_enabled = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = ZoneQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Pod(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="pods")
    name = models.CharField(max_length=255)
    gateway = models.GenericIPAddressField(protocol="IPv4")
    netmask = models.GenericIPAddressField(protocol="IPv4")
    start_ip = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    end_ip = models.GenericIPAddressField(protocol="IPv4", null=True, blank=True)
    allocation_state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.ENABLED)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["zone", "name"], name="pod_unique_name_in_zone")]

    def __str__(self) -> str:
        return self.name

    @property
    def cidr(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"{self.gateway}/{self.netmask}", strict=False)


class VlanIpRange(models.Model):
    """A guest IP range of a basic zone's pod (CloudStack's vlan table, untagged, direct)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="ip_ranges")
    pod = models.ForeignKey(Pod, on_delete=models.PROTECT, related_name="ip_ranges")
    vlan = models.CharField(max_length=64, default="untagged")
    gateway = models.GenericIPAddressField(protocol="IPv4")
    netmask = models.GenericIPAddressField(protocol="IPv4")
    start_ip = models.GenericIPAddressField(protocol="IPv4")
    end_ip = models.GenericIPAddressField(protocol="IPv4")
    for_virtual_network = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]


class GuestIpAddress(models.Model):
    """One address of a guest IP range; allocation (issue: instances) sets `allocated`.
    Uniqueness of an address within a zone is a database constraint."""

    zone = models.ForeignKey(Zone, on_delete=models.CASCADE, related_name="guest_ips")
    ip_range = models.ForeignKey(VlanIpRange, on_delete=models.CASCADE, related_name="addresses")
    address = models.GenericIPAddressField(protocol="IPv4")
    allocated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["zone", "address"], name="guestip_unique_in_zone")]


class Cluster(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="clusters")
    pod = models.ForeignKey(Pod, on_delete=models.PROTECT, related_name="clusters")
    name = models.CharField(max_length=255)
    hypervisor = models.CharField(max_length=16, choices=Hypervisor.choices)
    cluster_type = models.CharField(max_length=16, choices=ClusterType.choices, default=ClusterType.CLOUD_MANAGED)
    allocation_state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.ENABLED)
    managed_state = models.CharField(max_length=16, default="Managed")
    emulation = models.CharField(max_length=8, choices=Emulation.choices, default=Emulation.AUTO)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["pod", "name"], name="cluster_unique_name_in_pod")]

    def __str__(self) -> str:
        return self.name


class Host(models.Model):
    """A hypervisor host reached by a libvirt URI (the KVM agent of CloudStack is libvirtd)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="hosts")
    pod = models.ForeignKey(Pod, on_delete=models.PROTECT, related_name="hosts")
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="hosts")
    url = models.CharField(max_length=512)
    hypervisor = models.CharField(max_length=16, choices=Hypervisor.choices)
    type = models.CharField(max_length=32, default="Routing")
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.CONNECTING)
    resource_state = models.CharField(max_length=32, choices=ResourceState.choices, default=ResourceState.ENABLED)
    state_reason = models.CharField(max_length=512, blank=True, default="")
    ip_address = models.CharField(max_length=255, blank=True, default="")
    hostname = models.CharField(max_length=255, blank=True, default="")
    arch = models.CharField(max_length=32, blank=True, default="")
    cpu_sockets = models.PositiveIntegerField(default=0)
    cpu_number = models.PositiveIntegerField(default=0)
    cpu_speed = models.PositiveIntegerField(default=0)
    memory_total = models.BigIntegerField(default=0)
    memory_used = models.BigIntegerField(default=0)
    cpu_used_percent = models.FloatField(null=True, blank=True)
    libvirt_version = models.CharField(max_length=64, blank=True, default="")
    hypervisor_version = models.CharField(max_length=64, blank=True, default="")
    kvm_usable = models.BooleanField(null=True)
    kvm_reason = models.CharField(max_length=512, blank=True, default="")
    kvm_checked = models.DateTimeField(null=True, blank=True)
    emulation = models.CharField(max_length=8, choices=Emulation.choices, default=Emulation.AUTO)
    host_tags = models.CharField(max_length=1024, blank=True, default="")
    last_pinged = models.DateTimeField(null=True, blank=True)
    disconnected = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["url"], name="host_unique_url")]

    def __str__(self) -> str:
        return self.name

    @property
    def tags(self) -> list[str]:
        return [t.strip() for t in self.host_tags.split(",") if t.strip()]

    @property
    def effective_emulation(self) -> str:
        """kvm or qemu: the host's override, else the cluster's, else the probe's verdict."""
        for choice in (self.emulation, self.cluster.emulation):
            if choice != Emulation.AUTO:
                return choice
        return Emulation.KVM if self.kvm_usable else Emulation.QEMU


class AlertQuerySet(AdminOnlyQuerySet):
    pass


class Alert(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.IntegerField()
    name = models.CharField(max_length=64)
    subject = models.CharField(max_length=999)
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pod = models.ForeignKey(Pod, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    archived = models.BooleanField(default=False)
    sent = models.DateTimeField(auto_now_add=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-sent", "-id"]
