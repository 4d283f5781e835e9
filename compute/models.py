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
    VmState,
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
    # In a zone whose hosts share one guest segment (guest.network.uplink): the address of this
    # host's DHCP server on it, taken from its pod's guest range.
    guest_address = models.OneToOneField(GuestIpAddress, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="host")
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


# -- offerings ----------------------------------------------------------------------------------
class OfferingState(models.TextChoices):
    ACTIVE = "Active", "Active"
    INACTIVE = "Inactive", "Inactive"


class StorageType(models.TextChoices):
    SHARED = "shared", "shared"
    LOCAL = "local", "local"


class ProvisioningType(models.TextChoices):
    THIN = "thin", "thin"
    SPARSE = "sparse", "sparse"
    FAT = "fat", "fat"


class OfferingQuerySet(models.QuerySet):
    """Offerings are not owned by accounts: a public one (no domains) is for everybody, a
    domain-specific one for its domains and their sub-domains (CloudStack's rule)."""

    def active(self):
        return self.filter(removed__isnull=True)

    def usable_by(self, caller_or_account):
        """What an account (or a caller's account) may deploy with: public offerings and those of
        its domain or of one of its ancestors (root admin: every active offering). Deploying for
        another account checks the owner's account here, not only the caller's visibility."""
        account = getattr(caller_or_account, "account", caller_or_account)
        qs = self.active()
        if account.type == 1:
            return qs
        paths = _ancestor_paths(account.domain.path)
        matching = self.model.objects.filter(
            models.Q(domains__isnull=True) | models.Q(domains__path__in=paths)).values("pk")
        return qs.filter(state=OfferingState.ACTIVE, pk__in=matching)

    def visible_to(self, caller):
        """usable_by, plus (domain admins) the offerings of domains inside their subtree, which
        they manage. Removed offerings are visible to nobody."""
        qs = self.active()
        if _is_root_admin(caller):
            return qs
        account = caller.account
        q = models.Q(domains__isnull=True) | models.Q(domains__path__in=_ancestor_paths(account.domain.path))
        if account.type == 2:  # domain admin
            q |= models.Q(domains__path__startswith=account.domain.path)
        return qs.filter(state=OfferingState.ACTIVE, pk__in=self.model.objects.filter(q).values("pk"))


class ServiceOffering(models.Model):
    """A compute offering: vCPUs, speed (MHz) and memory (MiB) of a VM. A customized offering
    leaves cpu and memory to the deployment, optionally within min/max ranges. `domains` empty
    means public. Deleting marks `removed` (the row stays for the VMs that used it)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    display_text = models.CharField(max_length=4096, blank=True, default="")
    cpu_number = models.PositiveIntegerField(null=True, blank=True)
    cpu_speed = models.PositiveIntegerField(null=True, blank=True)  # MHz
    memory = models.PositiveIntegerField(null=True, blank=True)  # MiB
    customized = models.BooleanField(default=False)
    min_cpu_number = models.PositiveIntegerField(null=True, blank=True)
    max_cpu_number = models.PositiveIntegerField(null=True, blank=True)
    min_memory = models.PositiveIntegerField(null=True, blank=True)  # MiB
    max_memory = models.PositiveIntegerField(null=True, blank=True)  # MiB
    root_disk_size = models.PositiveIntegerField(null=True, blank=True)  # GiB; None: the template's size
    storage_type = models.CharField(max_length=8, choices=StorageType.choices, default=StorageType.SHARED)
    provisioning_type = models.CharField(max_length=8, choices=ProvisioningType.choices,
                                         default=ProvisioningType.THIN)
    offer_ha = models.BooleanField(default=False)
    limit_cpu_use = models.BooleanField(default=False)
    host_tags = models.CharField(max_length=4096, blank=True, default="")
    tags = models.CharField(max_length=4096, blank=True, default="")  # storage tags
    domains = models.ManyToManyField("accounts.Domain", blank=True, related_name="+")
    is_system = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=OfferingState.choices, default=OfferingState.ACTIVE)
    sort_key = models.IntegerField(default=0)
    seed_key = models.CharField(max_length=64, blank=True, default="")  # set on the bootstrap's defaults
    created = models.DateTimeField(auto_now_add=True)
    removed = models.DateTimeField(null=True, blank=True)

    objects = OfferingQuerySet.as_manager()

    class Meta:
        ordering = ["sort_key", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return not self.domains.all()  # uses prefetched domains when there are

    @property
    def is_constrained(self) -> bool:
        """A customized offering with cpu and memory ranges."""
        return self.customized and self.min_cpu_number is not None


class DiskOffering(models.Model):
    """A data disk size (GiB), or a customized one whose size is given at creation within
    [min_size, max_size] GiB. `domains` empty means public; deleting marks `removed`."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    display_text = models.CharField(max_length=4096, blank=True, default="")
    disk_size = models.PositiveBigIntegerField(default=0)  # GiB; 0 when customized
    customized = models.BooleanField(default=False)
    min_size = models.PositiveBigIntegerField(null=True, blank=True)  # GiB, customized only
    max_size = models.PositiveBigIntegerField(null=True, blank=True)  # GiB, customized only
    storage_type = models.CharField(max_length=8, choices=StorageType.choices, default=StorageType.SHARED)
    provisioning_type = models.CharField(max_length=8, choices=ProvisioningType.choices,
                                         default=ProvisioningType.THIN)
    tags = models.CharField(max_length=4096, blank=True, default="")  # storage tags
    display_offering = models.BooleanField(default=True)
    domains = models.ManyToManyField("accounts.Domain", blank=True, related_name="+")
    state = models.CharField(max_length=16, choices=OfferingState.choices, default=OfferingState.ACTIVE)
    sort_key = models.IntegerField(default=0)
    seed_key = models.CharField(max_length=64, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    removed = models.DateTimeField(null=True, blank=True)

    objects = OfferingQuerySet.as_manager()

    class Meta:
        ordering = ["sort_key", "id"]

    def __str__(self) -> str:
        return self.name


# -- guest networks and instances -------------------------------------------------------------------
class GuestNetworkQuerySet(models.QuerySet):
    def visible_to(self, caller):
        """A basic zone's guest network is shared: everyone who sees the zone sees it."""
        return self.filter(zone__in=Zone.objects.visible_to(caller))


class GuestNetwork(models.Model):
    """The shared guest network of a basic zone (CloudStack's "guestNetworkForBasicZone"). On each
    host it is a libvirt network per pod (a bridge holding the pod's gateway address, DHCP with a
    static lease for every VM of that host); see compute.networks."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    zone = models.OneToOneField(Zone, on_delete=models.CASCADE, related_name="guest_network")
    name = models.CharField(max_length=255, default="guestNetworkForBasicZone")
    created = models.DateTimeField(auto_now_add=True)

    objects = GuestNetworkQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.zone_id})"


class VirtualMachineQuerySet(models.QuerySet):
    def visible_to(self, caller):
        from accounts.access import scope_filter

        return self.filter(scope_filter(caller)).exclude(state=VmState.EXPUNGING, removed__isnull=False)


class VirtualMachine(models.Model):
    """A user VM. `state` is claimed atomically (compute.instances.claim): two operations on one VM
    cannot both proceed. `host` is where it runs (or ran last); cpu/memory are copied from the
    offering (or the custom values) at deploy, so changing an offering changes no running VM.
    `template` is what it was made from: a template, or the ISO it was installed from (as
    CloudStack records it); `iso` the ISO its CD-ROM drive holds now."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=63)  # the host name
    display_name = models.CharField(max_length=255, blank=True, default="")
    instance_name = models.CharField(max_length=255, unique=True, null=True, blank=True)  # i-<account>-<id>-VM
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="virtual_machines")
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="virtual_machines")
    pod = models.ForeignKey(Pod, null=True, blank=True, on_delete=models.PROTECT, related_name="virtual_machines")
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.PROTECT, related_name="virtual_machines")
    last_host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template = models.ForeignKey("storage.Template", on_delete=models.PROTECT, related_name="virtual_machines")
    # the ISO in the VM's CD-ROM drive (attachIso, or the ISO it was installed from), at most one
    iso = models.ForeignKey("storage.Template", null=True, blank=True, on_delete=models.PROTECT,
                            related_name="attached_to")
    service_offering = models.ForeignKey(ServiceOffering, on_delete=models.PROTECT, related_name="virtual_machines")
    state = models.CharField(max_length=16, choices=VmState.choices, default=VmState.STOPPED)
    cpu_number = models.PositiveIntegerField()
    cpu_speed = models.PositiveIntegerField()  # MHz
    memory = models.PositiveIntegerField()  # MiB
    group = models.CharField(max_length=255, blank=True, default="")
    user_data = models.TextField(blank=True, default="")  # base64, as given
    keypairs = models.JSONField(default=list, blank=True)  # names of the account's SSH key pairs
    password = models.CharField(max_length=512, blank=True, default="")  # encrypted (accounts.crypto)
    vnc_password = models.CharField(max_length=512, blank=True, default="")  # encrypted
    ha_enabled = models.BooleanField(default=False)
    # scaleVirtualMachine of a running VM: allowed when the VM is dynamically scalable (its template's
    # flag at deploy; updateVirtualMachine changes it) and enable.dynamic.scale.vm is on in its zone
    # when it starts, which defines its domain with room to grow up to max_cpu_number / max_memory
    # (0: its running domain cannot grow)
    dynamically_scalable = models.BooleanField(default=False)
    max_cpu_number = models.PositiveIntegerField(default=0)
    max_memory = models.PositiveIntegerField(default=0)  # MiB
    emulation = models.CharField(max_length=8, blank=True, default="")  # kvm | qemu, as last started
    state_reason = models.CharField(max_length=1024, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    destroyed = models.DateTimeField(null=True, blank=True)
    removed = models.DateTimeField(null=True, blank=True)

    objects = VirtualMachineQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["host", "state"]), models.Index(fields=["account", "state"])]

    def __str__(self) -> str:
        return self.name


class Nic(models.Model):
    """A VM's interface on its zone's guest network. One address per NIC and one NIC per address,
    one MAC per NIC: database constraints, not only code."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    virtual_machine = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="nics")
    network = models.ForeignKey(GuestNetwork, on_delete=models.PROTECT, related_name="nics")
    address = models.OneToOneField(GuestIpAddress, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="nic")
    mac = models.CharField(max_length=17, unique=True)
    device_id = models.PositiveSmallIntegerField(default=0)
    is_default = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["virtual_machine_id", "device_id"]


class ConsoleSession(models.Model):
    """One browser console connection, from the token the portal hands out to the end of the
    websocket. The token itself is never stored: only its SHA-256 (`token_hash`). It is bound to
    the VM, the VNC endpoint of the VM's host at issue time, the user and the page's origin, and
    opens one connection (`connected` is set once) before `expires`. While connected the proxy
    refreshes `last_seen`; an admin ends a session by setting `end_requested`, which the proxy
    notices within seconds."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    virtual_machine = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="console_sessions")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    vnc_host = models.CharField(max_length=255)
    vnc_port = models.PositiveIntegerField()
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="console_sessions")
    origin = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    connected = models.DateTimeField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True, default="")
    last_seen = models.DateTimeField(null=True, blank=True)
    end_requested = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["ended", "connected"])]

    def __str__(self) -> str:
        return f"console of {self.virtual_machine_id} for {self.user_id}"
