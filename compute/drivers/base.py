"""The hypervisor driver interface: what Nubo asks of a host, in plain dataclasses.

Services talk to hosts only through a `HypervisorDriver`; they pass and receive the dataclasses
below (never ORM objects), and catch `DriverError`, whose message is a sentence a user can act on.
There is one implementation, `compute.drivers.libvirt_driver.LibvirtDriver`, for every libvirt URI:
`qemu:///system`, `qemu+ssh://…`, `qemu+tls://…` (KVM hosts) and `test:///default` (the Simulator
hypervisor: the same code, libvirt's in-memory test driver, no QEMU). Get one from
`compute.drivers.get_driver(uri)` and use it as a context manager:

    with get_driver("qemu:///system") as driver:
        info = driver.host_info()

Rules: no Django imports in this package; nothing is cached here (callers cache, e.g. the KVM
verdict per host); no connection is opened at import time; every method may raise `DriverError`.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Callable, Literal

# --- errors -------------------------------------------------------------------------------------


class DriverError(Exception):
    """A hypervisor operation failed. `message` says what failed and what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DriverNotFound(DriverError):
    """The named domain or storage pool does not exist on the host."""


# --- host ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostInfo:
    hostname: str
    hypervisor_type: str  # "KVM" for a QEMU host (whatever its acceleration), "Simulator" for test:///
    arch: str  # x86_64, i686, …
    cpu_sockets: int
    cpu_cores: int  # per socket
    cpu_threads: int  # per core
    cpu_mhz: int
    memory_bytes: int
    libvirt_version: str  # "9.0.0" (of the libvirtd answering, not of the client library)
    hypervisor_version: str  # QEMU's "7.2.0"; the test driver's "0.0.2"

    @property
    def cpu_count(self) -> int:
        return self.cpu_sockets * self.cpu_cores * self.cpu_threads


@dataclass(frozen=True)
class HostStats:
    memory_total_bytes: int
    memory_free_bytes: int  # free + buffers + page cache: what guests can still get
    cpu_busy_ns: int | None = None  # cumulative since boot; None when the host does not say
    cpu_idle_ns: int | None = None

    @property
    def memory_used_bytes(self) -> int:
        return max(self.memory_total_bytes - self.memory_free_bytes, 0)


def cpu_utilisation(before: HostStats, after: HostStats) -> float | None:
    """Busy fraction (0.0–1.0) of the host's CPUs between two samples, or None if unknown."""
    if None in (before.cpu_busy_ns, before.cpu_idle_ns, after.cpu_busy_ns, after.cpu_idle_ns):
        return None
    busy = after.cpu_busy_ns - before.cpu_busy_ns  # type: ignore[operator]
    idle = after.cpu_idle_ns - before.cpu_idle_ns  # type: ignore[operator]
    total = busy + idle
    return min(max(busy / total, 0.0), 1.0) if total > 0 else None


@dataclass(frozen=True)
class KvmProbe:
    """Whether guests on a host can run under KVM acceleration, and why (not)."""

    usable: bool
    reason: str  # one sentence, shown to the admin next to the host
    checked_at: datetime
    seconds: float = 0.0  # how long the probe took


# --- storage pools ------------------------------------------------------------------------------

PoolKind = Literal["dir", "netfs"]


@dataclass(frozen=True)
class StoragePoolSpec:
    name: str
    kind: PoolKind
    path: str  # the directory (dir) or the mount point (netfs) on the host
    nfs_host: str = ""  # netfs only
    nfs_export: str = ""  # netfs only: the exported path on nfs_host

    def __post_init__(self) -> None:
        if self.kind not in ("dir", "netfs"):
            raise ValueError(f"storage pool kind must be 'dir' or 'netfs', not {self.kind!r}")
        if self.kind == "netfs" and not (self.nfs_host and self.nfs_export):
            raise ValueError("a netfs storage pool needs nfs_host and nfs_export")


@dataclass(frozen=True)
class PoolStats:
    capacity_bytes: int
    allocation_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class PoolInfo:
    spec: StoragePoolSpec
    active: bool
    autostart: bool


VolumeFormat = Literal["qcow2", "raw"]


@dataclass(frozen=True)
class VolumeInfo:
    """A volume (a file) of a storage pool, as the host's libvirt sees it."""

    name: str
    path: str  # the file path on the host
    format: str  # libvirt's format type, probed from the bytes: "qcow2", "raw", or "iso" (a raw ISO 9660 image)
    capacity_bytes: int  # the virtual size: what the guest sees
    allocation_bytes: int  # what the file takes on the host's disk
    backing_path: str = ""  # a qcow2 clone's base (its backing file); "" when self-contained


# --- guest networks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DhcpHost:
    """A static DHCP lease: the guest with this MAC gets this address (and name)."""

    mac: str
    ip: str
    name: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    """A guest network on a host: a bridge carrying the host's address in the guest subnet, and a
    DHCP server (libvirt's dnsmasq) answering only the listed MACs: no dynamic range, and packets
    from any other MAC are ignored (not even refused), so a host never hands out an address Nubo
    did not allocate nor disturbs another host's guests. `nat` forwards to the outside through the
    host; `isolated` reaches the host only; `open` is one host's port on a layer-2 segment shared
    by the zone's hosts: the bridge gets `uplink` (a host interface) enslaved by Nubo's libvirt
    network hook (scripts/libvirt-network-hook), and DHCP names `router` (the segment's own
    router, the pod's gateway) instead of the host."""

    name: str
    bridge: str  # at most 15 characters (a Linux interface name)
    address: str  # the host's address on the bridge (nat/isolated: the guests' gateway)
    netmask: str
    mode: Literal["nat", "isolated", "open"] = "nat"
    hosts: tuple[DhcpHost, ...] = ()
    domain: str = ""  # DNS domain for the guests' names
    uplink: str = ""  # open: the host interface joining the bridge to the shared segment
    router: str = ""  # open: the gateway DHCP gives the guests

    def __post_init__(self) -> None:
        if not self.bridge or len(self.bridge) > 15:
            raise ValueError(f"bridge name {self.bridge!r} must have 1 to 15 characters")
        if (self.mode == "open") != bool(self.uplink and self.router):
            raise ValueError("an open network needs an uplink and a router, and only an open one has them")
        if self.uplink and (len(self.uplink) > 15 or not all(c.isalnum() or c in "._-@" for c in self.uplink)):
            raise ValueError(f"uplink {self.uplink!r} is not a network interface name")


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    bridge: str
    active: bool
    hosts: tuple[DhcpHost, ...]
    mode: str = "nat"
    address: str = ""
    netmask: str = ""
    uplink: str = ""
    router: str = ""
    domain: str = ""
    ignores_unknown: bool = False  # dnsmasq ignores MACs without an entry (networks made before: False)

    def matches(self, spec: NetworkSpec) -> bool:
        """Whether this network is `spec`'s (DHCP entries aside: they are kept up to date in place)."""
        return (self.bridge, self.mode, self.address, self.netmask, self.uplink, self.router, self.domain,
                self.ignores_unknown) == (spec.bridge, spec.mode, spec.address, spec.netmask, spec.uplink,
                                          spec.router, spec.domain, True)


# --- domains (the instances issue builds on these) ----------------------------------------------


@dataclass(frozen=True)
class DiskSpec:
    """A disk or CD-ROM: a file on the host (`path`), or a volume of a storage pool."""

    target: str  # guest device name: vda, hdc, sda
    path: str = ""
    pool: str = ""  # with volume: <disk type='volume'>
    volume: str = ""
    format: Literal["qcow2", "raw"] = "qcow2"
    device: Literal["disk", "cdrom"] = "disk"
    bus: Literal["virtio", "ide", "sata", "scsi"] = "virtio"
    readonly: bool = False
    boot_order: int | None = None

    def __post_init__(self) -> None:
        if bool(self.path) == bool(self.pool and self.volume) and self.device == "disk":
            raise ValueError("a disk needs either a path or a pool and a volume")


@dataclass(frozen=True)
class NicSpec:
    mac: str
    network: str = ""  # a libvirt network name, or
    bridge: str = ""  # a host bridge, or neither: QEMU's user-mode network (NAT with its own DHCP
    # server giving the guest 10.0.2.15; no host bridge or firewall rule: tests and throw-away guests)
    model: str = "virtio"


@dataclass(frozen=True)
class DomainSpec:
    name: str
    uuid: str
    vcpus: int
    memory_mib: int
    emulation: Literal["kvm", "qemu"] = "qemu"  # qemu = software emulation (TCG)
    machine: str = "pc"
    arch: str = "x86_64"
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    boot: tuple[str, ...] = ("hd",)  # used when no disk has a boot_order: hd, cdrom, network
    vnc: bool = True
    vnc_listen: str = "127.0.0.1"
    vnc_password: str = ""  # at most 8 characters are used by VNC
    serial_console: bool = True
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)  # kept in <metadata> under Nubo's namespace
    # Room to grow while running (scale_domain): 0 = none, and the domain is defined exactly as
    # `vcpus` and `memory_mib` say. With max_vcpus, vCPUs up to it can be hot-plugged (<vcpu
    # current=vcpus>max_vcpus</vcpu>); with max_memory_mib above memory_mib, memory up to it can be
    # hot-plugged as DIMMs (<maxMemory slots=MEMORY_SLOTS>, which needs a guest NUMA cell: one, holding
    # every vCPU and the boot memory).
    max_vcpus: int = 0
    max_memory_mib: int = 0

    def __post_init__(self) -> None:
        if self.max_vcpus and self.max_vcpus < self.vcpus:
            raise ValueError(f"max_vcpus {self.max_vcpus} is below vcpus {self.vcpus}")
        if self.max_memory_mib and self.max_memory_mib < self.memory_mib:
            raise ValueError(f"max_memory_mib {self.max_memory_mib} is below memory_mib {self.memory_mib}")


MEMORY_SLOTS = 16  # DIMM slots of a domain defined with room to grow (as CloudStack defines them): one per scale-up


@dataclass(frozen=True)
class DomainSize:
    """A domain's vCPUs and memory (boot memory plus hot-plugged DIMMs), and how far each can grow
    while it runs (max = current: not at all)."""

    vcpus: int
    max_vcpus: int
    memory_mib: int
    max_memory_mib: int
    memory_slots: int = 0  # DIMM slots in all (0: no memory hot-plug)
    dimms: int = 0  # DIMMs plugged


@dataclass(frozen=True)
class ConsoleInfo:
    """Where a running domain's graphical console listens, for the console proxy."""

    protocol: Literal["vnc"]
    host: str  # the listen address as the host sees it (0.0.0.0 means: the host's own address)
    port: int
    password: str = ""


class DomainState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting-down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    SUSPENDED = "suspended"  # guest power management
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DomainStatus:
    name: str
    uuid: str
    state: DomainState
    reason: str = ""  # libvirt's reason, e.g. "destroyed", "shutdown", "booted", "unknown"


# --- the interface ------------------------------------------------------------------------------


class HypervisorDriver(abc.ABC):
    """One host, reached through one URI. Open with `connect()` or `with driver:`."""

    uri: str

    def __enter__(self) -> "HypervisorDriver":
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection (idempotent). Raises DriverError naming the URI and the likely cause."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection (idempotent)."""

    # host

    @abc.abstractmethod
    def host_info(self) -> HostInfo: ...

    @abc.abstractmethod
    def host_stats(self) -> HostStats: ...

    @abc.abstractmethod
    def ping(self) -> None:
        """A cheap round trip to the host; raises DriverError when it does not answer."""

    @abc.abstractmethod
    def probe_kvm(self, timeout_s: float = 20.0) -> KvmProbe:
        """Boot a throw-away guest under KVM and report whether it ran. Never cached here."""

    # storage pools

    @abc.abstractmethod
    def ensure_pool(self, spec: StoragePoolSpec) -> PoolStats:
        """Define, build, start and autostart the pool; a no-op for a matching running pool."""

    @abc.abstractmethod
    def pool_stats(self, name: str) -> PoolStats: ...

    @abc.abstractmethod
    def delete_pool(self, name: str, force: bool = False) -> None:
        """Stop and undefine the pool (its directory and files stay). Refuses while it holds
        volumes unless `force`. A pool that does not exist is not an error."""

    @abc.abstractmethod
    def list_pools(self) -> list[PoolInfo]: ...

    # volumes (files in a pool: templates' base copies and the VMs' copy-on-write root disks).
    # Every one of these raises DriverNotFound ("… storage pool X is not defined on <uri>") for an
    # unknown pool, and DriverError for a pool that is not running.

    @abc.abstractmethod
    def upload_volume(self, pool: str, name: str, source: str, fmt: VolumeFormat,
                      on_progress: Callable[[int, int], None] | None = None) -> VolumeInfo:
        """Copy the local file `source` (on the machine Nubo runs on, e.g. the image store) into
        `pool` as the new volume `name`, through libvirt's storage API, so it works for remote hosts
        too: streamed in chunks (never the whole file in memory), holes of a sparse file are sent as
        holes. `fmt` is what the caller says the file is; the bytes must agree (a raw file may be
        an ISO 9660 image, reported as format "iso"). Refused: a qcow2 image with a backing file or
        an external data file (it could point the host at any of its files), an encrypted qcow2.
        `on_progress(sent_bytes, total_bytes)` is called as the copy advances (every 1 % of the file,
        but at least 1 MiB apart, and once at the end with sent == total: throttle further in the
        callback if each call costs); an exception it raises aborts the upload, the partial volume is
        deleted and the exception propagates unchanged (a way to cancel).

        Raises DriverError when the volume exists already (check with volume_info; the caller
        decides whether to keep or delete it), the file is missing or unreadable, the pool is not
        defined or not running, or the copy fails; a partial volume is deleted first.

        The Simulator (test:///default) models sizes, not bytes: it creates the volume with the
        file's format and virtual size, as read from the file's header, and its disk usage, and
        copies nothing (libvirt's test driver has no volume upload)."""

    @abc.abstractmethod
    def clone_volume(self, pool: str, base: str, name: str, capacity_bytes: int | None = None) -> VolumeInfo:
        """Create `name`, a qcow2 copy-on-write linked clone of volume `base` of the same pool (the
        base's path is its backing file, with the base's format given explicitly; qcow2 v3). No data
        is copied: milliseconds, whatever the base's size. Its virtual size is the base's, or
        `capacity_bytes` when larger. Raises DriverError when `base` is missing, `name` exists,
        or the base is neither qcow2 nor raw. The base must stay while the clone exists."""

    @abc.abstractmethod
    def create_volume(self, pool: str, name: str, capacity_bytes: int, fmt: VolumeFormat = "qcow2") -> VolumeInfo:
        """Create `name`, an empty volume of `capacity_bytes` (what the guest sees), thin: a qcow2
        (v3) file holding only its header, or a sparse raw file. For disks that start blank: the root
        disk of a VM installed from an ISO, data disks. Raises DriverError when `name` exists, the
        size is not positive, or the format is neither qcow2 nor raw. The Simulator creates the
        volume with the size and format, as it does every volume."""

    @abc.abstractmethod
    def volume_info(self, pool: str, name: str) -> VolumeInfo | None:
        """The volume, or None when the pool has none of that name (the pool is refreshed first,
        so files created by other hosts or tools are seen)."""

    @abc.abstractmethod
    def list_volumes(self, pool: str) -> list[VolumeInfo]:
        """The pool's volumes (files; subdirectories are left out), sorted by name, after a refresh."""

    @abc.abstractmethod
    def delete_volume(self, pool: str, name: str) -> None:
        """Delete the volume and its file. A volume that does not exist is not an error. Refuses
        (DriverError) while another volume of the pool is a clone of it: the clones would lose
        their data."""

    # domains

    # --- guest networks -----------------------------------------------------------------------

    @abc.abstractmethod
    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        """Define, start and autostart the network when missing (a running one is kept as is);
        then add the spec's DHCP hosts it lacks. Idempotent."""

    @abc.abstractmethod
    def add_dhcp_host(self, network: str, host: DhcpHost) -> None:
        """Add (or replace, by MAC) a static lease on the running network and in its definition,
        without restarting it."""

    @abc.abstractmethod
    def remove_dhcp_host(self, network: str, mac: str) -> None:
        """Remove the lease of `mac` (absent: nothing to do)."""

    @abc.abstractmethod
    def network_info(self, name: str) -> NetworkInfo | None: ...

    @abc.abstractmethod
    def delete_network(self, name: str) -> None:
        """Stop and undefine the network (absent: nothing to do)."""

    @abc.abstractmethod
    def define_domain(self, spec: DomainSpec) -> None:
        """Define (or redefine, same uuid) a persistent domain; does not start it."""

    @abc.abstractmethod
    def start_domain(self, name: str) -> None:
        """Start a defined domain; a no-op when it runs."""

    @abc.abstractmethod
    def stop_domain(self, name: str, force: bool = False, timeout_s: float = 60.0) -> None:
        """Stop: ACPI shutdown, waiting up to timeout_s (DriverError if the guest ignores it);
        `force` pulls the plug at once. A no-op when it is not running."""

    @abc.abstractmethod
    def reboot_domain(self, name: str) -> None:
        """Restart a running domain's guest (a hard reset: guests need no agent for it)."""

    @abc.abstractmethod
    def undefine_domain(self, name: str) -> None:
        """Remove a stopped domain's definition (not its disks). Missing: not an error."""

    @abc.abstractmethod
    def domain_state(self, name: str) -> DomainStatus:
        """Raises DriverNotFound when the host has no such domain."""

    @abc.abstractmethod
    def list_domains(self) -> list[DomainStatus]: ...

    @abc.abstractmethod
    def change_media(self, name: str, cdrom: DiskSpec) -> None:
        """Put the media `cdrom` describes (a CD-ROM DiskSpec whose source is an ISO volume of a pool
        or a file; without a source: eject) into the domain's CD-ROM drive `cdrom.target`: in the
        running guest when the domain runs, and in its definition. Everything else of the drive
        (bus, address, boot order) stays as defined. Raises DriverNotFound for an unknown domain,
        DriverError when it has no CD-ROM drive of that target. The Simulator has no live device
        update: it rewrites the definition only."""

    @abc.abstractmethod
    def domain_size(self, name: str) -> DomainSize:
        """The vCPUs and memory of the domain: of the running guest when it runs, else of its
        definition. Raises DriverNotFound for an unknown domain."""

    @abc.abstractmethod
    def scale_domain(self, name: str, vcpus: int, memory_mib: int) -> DomainSize:
        """Grow a running domain to `vcpus` vCPUs and `memory_mib` MiB of memory without stopping
        it, in the running guest and in its definition: the vCPUs are hot-plugged (up to the
        domain's max_vcpus), the extra memory is one DIMM (`<memory model='dimm'>` on guest NUMA
        node 0; up to max_memory_mib, one slot each time). Only up: neither may be below the
        domain's current size. vCPUs first; when the memory cannot follow, the vCPUs are set back
        (best effort) and the error raised. Returns the new size.

        Raises DriverNotFound for an unknown domain; DriverError when it is not running, when it was
        defined without room for the new size (DomainSpec.max_vcpus, max_memory_mib), or when the
        hypervisor refuses (no free DIMM slot, …), with its reason. The Simulator has no device
        hot-plug: its vCPUs change live, the DIMM goes into its definition only, and domain_size
        reads its definition."""

    @abc.abstractmethod
    def domain_console(self, name: str) -> ConsoleInfo:
        """The VNC console of a running domain (DriverError when it has none)."""
