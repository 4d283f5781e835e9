"""The libvirt implementation of HypervisorDriver: the only module of Nubo that imports libvirt.

One class serves KVM hosts (qemu:///system on this machine, qemu+ssh:// and qemu+tls:// remote
hosts) and the Simulator (test:///default, libvirt's in-memory test driver). Where the two differ
(domain type "test", no KVM to probe) the code asks the connection what it is.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import socket
import stat
import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import libvirt

from compute.drivers.base import (
    ConsoleInfo,
    DhcpHost,
    DiskSpec,
    DomainSize,
    DomainSpec,
    DomainState,
    DomainStatus,
    DriverError,
    DriverNotFound,
    HostInfo,
    HostStats,
    HypervisorDriver,
    KvmProbe,
    NetworkInfo,
    NetworkSpec,
    PoolInfo,
    PoolStats,
    StoragePoolSpec,
    VolumeFormat,
    VolumeInfo,
)
from compute.drivers.domain_xml import (
    bridge_ports,
    console_from_xml,
    dhcp_host_xml,
    dimm_xml,
    domain_networks,
    domain_xml,
    network_info_from_xml,
    network_xml,
    pool_spec_from_xml,
    pool_xml,
    same_pool,
    size_from_xml,
    volume_info_from_xml,
    volume_is_file,
    volume_xml,
    with_dimm,
    with_media,
)
from compute.drivers.kvm_probe import MARKER, firmware_image, probe_domain_xml

T = TypeVar("T")

# Remote transports whose TCP endpoint is checked before libvirt tries (libvirt itself waits for
# the kernel's connect timeout, minutes, on a host that drops packets).
_DEFAULT_PORTS = {"ssh": 22, "libssh": 22, "libssh2": 22, "tls": 16514, "tcp": 16509}
_SUPPORTED_DRIVERS = ("qemu", "test")

_STATE = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.SUSPENDED,
}
# libvirt's reason enums per state (virDomainRunningReason, …), by position.
_REASONS = {
    libvirt.VIR_DOMAIN_RUNNING: ("unknown", "booted", "migrated", "restored", "from-snapshot", "unpaused",
                                 "migration-canceled", "save-canceled", "wakeup", "crashed", "postcopy"),
    libvirt.VIR_DOMAIN_PAUSED: ("unknown", "user", "migration", "save", "dump", "ioerror", "watchdog",
                                "from-snapshot", "shutting-down", "snapshot", "crashed", "starting-up",
                                "postcopy", "postcopy-failed"),
    libvirt.VIR_DOMAIN_SHUTOFF: ("unknown", "shutdown", "destroyed", "crashed", "saved", "failed",
                                 "from-snapshot", "daemon"),
}

# Volume uploads: libvirt's stream buffer (virStorageVol.streamBufSize, the largest payload of one
# RPC message) per send; how long a pool refresh waits for libvirt's own volume builds to end.
_STREAM_CHUNK = 262120
_REFRESH_WAIT_S = 30.0
SIMULATOR_VNC_PORT = 1  # tcpmux: nothing listens there; a Simulator VM's console endpoint

_error_handler_installed = False


def _quiet_libvirt() -> None:
    """libvirt prints every error to stderr unless a handler is set; ours raise instead."""
    global _error_handler_installed
    if not _error_handler_installed:
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _error_handler_installed = True


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _message(exc: libvirt.libvirtError) -> str:
    return (exc.get_error_message() or str(exc)).strip().rstrip(".")


# --- image files (what upload_volume reads before it sends anything) -----------------------------


@dataclass(frozen=True)
class _Image:
    format: str  # qcow2, raw, iso, or another format libvirt would probe (qcow, qed, vmdk, vpc, vdi)
    virtual_size: int
    file_size: int
    backing: str = ""  # a qcow2 image's backing file name
    external_data: bool = False  # qcow2 v3 "external data file" feature
    encrypted: bool = False


# (offset, magic, libvirt's format name) of formats that are not raw; qcow2 is parsed below.
_MAGIC = ((0, b"QED\x00", "qed"), (0, b"KDMV", "vmdk"), (0, b"conectix", "vpc"),
          (0x40, b"\x7f\x10\xda\xbe", "vdi"), (0x8001, b"CD001", "iso"))


def _read_image(fd: int, size: int) -> _Image:
    """The format of an image file from its header, the way libvirt probes it: qcow2 (magic QFI\\xfb,
    virtual size in the header), iso (ISO 9660: CD001 at 32769), a few others by magic, else raw."""
    head = os.pread(fd, 0x8001 + 5, 0)
    if head[:4] == b"QFI\xfb" and len(head) >= 36:
        version, backing_offset, backing_size, _cluster_bits, virtual_size, crypt = struct.unpack(">IQIIQI", head[4:36])
        if version < 2:
            return _Image("qcow", size, size)
        backing = ""
        if backing_offset and backing_size:
            backing = os.pread(fd, min(backing_size, 1023), backing_offset).decode(errors="replace") or "?"
        incompatible = struct.unpack(">Q", head[72:80])[0] if version >= 3 and len(head) >= 80 else 0
        return _Image("qcow2", virtual_size, size, backing=backing, external_data=bool(incompatible & 4),
                      encrypted=crypt != 0)
    for offset, magic, fmt in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return _Image(fmt, size, size)
    return _Image("raw", size, size)


def _refusal(declared: str, detected: str, backing: str = "", external_data: bool = False,
             encrypted: bool = False) -> str:
    """Why an image whose bytes are `detected` cannot become a volume of format `declared`, or "".
    A raw file may be an ISO 9660 image. Images that would make QEMU open other files of the host
    (backing file, external data file) are refused: a template must be self-contained."""
    if detected != declared and not (declared == "raw" and detected == "iso"):
        fix = (f"upload it as {detected}" if detected in ("qcow2", "raw")
               else "convert it first (qemu-img convert -O qcow2)")
        return f"the file is a {detected} image, not {declared} as declared; {fix}"
    if backing:
        return (f"the qcow2 image has a backing file ({backing}); only self-contained images can be "
                f"uploaded: flatten it first (qemu-img convert -O qcow2)")
    if external_data:
        return ("the qcow2 image keeps its data in an external file; only self-contained images can be "
                "uploaded: convert it first (qemu-img convert -O qcow2)")
    if encrypted:
        return "the qcow2 image is encrypted; upload an unencrypted image"
    return ""


def _sections(fd: int, size: int) -> Iterator[tuple[bool, int, int]]:
    """(is_data, start, end) of the file's data and holes (SEEK_DATA/SEEK_HOLE); one data section
    when the filesystem cannot tell."""
    offset = 0
    while offset < size:
        try:
            data = min(os.lseek(fd, offset, os.SEEK_DATA), size)
        except OSError as exc:
            yield (exc.errno != errno.ENXIO), offset, size  # ENXIO: only a hole remains
            return
        if data > offset:
            yield False, offset, data
            offset = data
            continue
        try:
            hole = min(os.lseek(fd, offset, os.SEEK_HOLE), size)
        except OSError:
            hole = size
        hole = hole if hole > offset else size
        yield True, offset, hole
        offset = hole


class LibvirtDriver(HypervisorDriver):
    def __init__(self, uri: str, username: str = "", password: str = "", connect_timeout_s: float = 10.0) -> None:
        self.uri = uri
        self.username = username
        self.password = password
        self.connect_timeout_s = connect_timeout_s
        self._conn: libvirt.virConnect | None = None
        parts = urlsplit(uri)
        self._driver_name, _, self._transport = parts.scheme.partition("+")
        self._host = parts.hostname or ""
        self._port = parts.port

    def __repr__(self) -> str:
        return f"<LibvirtDriver {self.uri}>"

    # --- connection -----------------------------------------------------------------------------

    @property
    def is_simulator(self) -> bool:
        return self._driver_name == "test"

    @property
    def _where(self) -> str:
        return self._host or "this machine"

    def connect(self) -> None:
        if self._conn is not None:
            return
        if self._driver_name not in _SUPPORTED_DRIVERS:
            raise DriverError(
                f"Cannot connect to {self.uri}: unsupported URI; use qemu:///system, "
                f"qemu+ssh://user@host/system, qemu+tls://host/system or test:///default"
            )
        _quiet_libvirt()
        self._check_reachable()
        try:
            if self.username or self.password:
                self._conn = libvirt.openAuth(self.uri, self._auth(), 0)
            else:
                self._conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise DriverError(f"Cannot connect to {self.uri}: {_message(exc)}; {self._connect_hint(exc)}") from exc

    def _auth(self) -> list:
        def callback(credentials: list, _opaque: object) -> int:
            for cred in credentials:
                if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                    cred[4] = self.username
                elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                    cred[4] = self.password
                else:
                    return -1
            return 0

        return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], callback, None]

    def _check_reachable(self) -> None:
        port = self._port or _DEFAULT_PORTS.get(self._transport)
        if not self._host or port is None:
            return
        try:
            with socket.create_connection((self._host, port), timeout=self.connect_timeout_s):
                pass
        except socket.gaierror as exc:
            raise DriverError(f"Cannot connect to {self.uri}: the name {self._host} does not resolve ({exc.strerror}); "
                              f"check the host name") from exc
        except TimeoutError as exc:
            raise DriverError(f"Cannot connect to {self.uri}: {self._host}:{port} did not answer within "
                              f"{self.connect_timeout_s:g} s; is the host up and the port open?") from exc
        except OSError as exc:
            service = "sshd" if "ssh" in self._transport else "libvirtd"
            raise DriverError(f"Cannot connect to {self.uri}: {self._host}:{port}: {exc.strerror or exc}; "
                              f"is {service} running on {self._host} and listening there?") from exc

    def _connect_hint(self, exc: libvirt.libvirtError) -> str:
        text = _message(exc).lower()
        if "auth" in text or "permission denied (publickey" in text or "password" in text:
            return "check the username and password, or the SSH key of the user Nubo runs as"
        if "permission denied" in text:
            return "run Nubo as root, or as a user in the libvirt group"
        if "certificate" in text or "tls" in text:
            return "check the TLS certificates (libvirt's pki) on both sides"
        if not self._host:
            return "is libvirtd running on this machine? Start it with: scripts/services.sh start-libvirtd (make run does)"
        return f"is libvirtd running on {self._host}?"

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    @property
    def conn(self) -> libvirt.virConnect:
        if self._conn is None:
            raise DriverError(f"Not connected to {self.uri}: call connect() first")
        return self._conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn a libvirtError into a DriverError that names the action, the host and a cause."""
        try:
            yield
        except libvirt.libvirtError as exc:
            code = exc.get_error_code()
            if code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL,
                        libvirt.VIR_ERR_NO_NETWORK):
                raise DriverNotFound(f"Cannot {action} on {self.uri}: {_message(exc)}") from exc
            if exc.get_error_domain() == libvirt.VIR_FROM_RPC or not self._alive():
                raise DriverError(f"Cannot {action}: lost the connection to {self.uri} ({_message(exc)}); "
                                  f"is libvirtd still running on {self._where}?") from exc
            raise DriverError(f"Cannot {action} on {self.uri}: {_message(exc)}") from exc

    def _alive(self) -> bool:
        try:
            return self._conn is not None and self._conn.isAlive() == 1
        except libvirt.libvirtError:
            return False

    def _call(self, action: str, func: Callable[[], T]) -> T:
        with self._errors(action):
            return func()

    # --- host -----------------------------------------------------------------------------------

    def ping(self) -> None:
        self._call("reach libvirtd", self.conn.getLibVersion)

    def host_info(self) -> HostInfo:
        with self._errors("read the host's hardware"):
            conn = self.conn
            model, memory_mib, _cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
            kind = conn.getType()
            return HostInfo(
                hostname=conn.getHostname(),
                hypervisor_type="Simulator" if kind.upper() == "TEST" else "KVM",
                arch=model,
                cpu_sockets=max(nodes, 1) * max(sockets, 1),
                cpu_cores=cores,
                cpu_threads=threads,
                cpu_mhz=mhz,
                memory_bytes=self._memory_total() or memory_mib * 1024 * 1024,
                libvirt_version=_version(conn.getLibVersion()),
                hypervisor_version=_version(conn.getVersion()),
            )

    def _memory_stats(self) -> dict[str, int] | None:
        """Host memory in KiB from /proc/meminfo (getInfo() sums NUMA nodes, which can be less:
        6 of 24 GiB on this project's machines)."""
        try:
            return self.conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:  # the test driver
                return None
            raise

    def _memory_total(self) -> int:
        stats = self._memory_stats()
        return stats["total"] * 1024 if stats and stats.get("total") else 0

    def host_stats(self) -> HostStats:
        with self._errors("read the host's usage"):
            stats = self._memory_stats()
            if stats:
                total = stats["total"] * 1024
                free = (stats.get("free", 0) + stats.get("buffers", 0) + stats.get("cached", 0)) * 1024
            else:
                total = self.conn.getInfo()[1] * 1024 * 1024
                free = self.conn.getFreeMemory()
            busy = idle = None
            try:
                cpu = self.conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
                busy = cpu.get("kernel", 0) + cpu.get("user", 0)
                idle = cpu.get("idle", 0) + cpu.get("iowait", 0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
            return HostStats(memory_total_bytes=total, memory_free_bytes=min(free, total),
                             cpu_busy_ns=busy, cpu_idle_ns=idle)

    # --- KVM probe ------------------------------------------------------------------------------

    def probe_kvm(self, timeout_s: float = 20.0) -> KvmProbe:
        if self.is_simulator:
            return KvmProbe(usable=False, reason="simulator", checked_at=datetime.now(timezone.utc))
        return self.run_probe_guest("kvm", timeout_s)

    def run_probe_guest(self, virt_type: str = "kvm", timeout_s: float = 20.0) -> KvmProbe:
        """Boot the probe firmware (kvm_probe.py) as a transient guest of `virt_type` and judge what
        it did. "qemu" (software emulation) is for testing the probe itself: it must pass anywhere."""
        started = time.monotonic()

        def verdict(usable: bool, reason: str) -> KvmProbe:
            return KvmProbe(usable, reason, datetime.now(timezone.utc), round(time.monotonic() - started, 2))

        label = "KVM" if virt_type == "kvm" else f"{virt_type!r}"
        token = secrets.token_hex(4)
        name = f"nubo-kvm-probe-{token}"
        spec = StoragePoolSpec(name=name, kind="dir", path=f"/var/tmp/{name}")
        pool = domain = None
        try:
            with self._errors("prepare the KVM probe"):
                pool = self.conn.storagePoolDefineXML(pool_xml(spec), 0)
                pool.build(0)
                pool.create(0)
                image = firmware_image()
                volume = pool.createXML(volume_xml("firmware.bin", len(image)), 0)
                self._upload(volume, image)
            xml = probe_domain_xml(name, virt_type, volume.path(), f"{spec.path}/serial.log")
            try:
                # AUTODESTROY: should this process die mid-probe, libvirtd kills the guest with the connection.
                domain = self.conn.createXML(xml, libvirt.VIR_DOMAIN_START_AUTODESTROY)
            except libvirt.libvirtError as exc:
                return verdict(False, f"{label} guest could not start: {_message(exc)}")

            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    state, _reason = domain.state()
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                    domain = None  # it ended: transient domains vanish
                    break
                if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_CRASHED):
                    return verdict(False, f"{label} guest paused: {self._pause_cause(domain, name)}")
                if state == libvirt.VIR_DOMAIN_SHUTOFF:
                    break
                if time.monotonic() >= deadline:
                    return verdict(False, f"{label} guest did not finish a 64-bit test within {timeout_s:g} s "
                                          f"(it needs milliseconds with working KVM)")
                time.sleep(0.05)

            serial = self._read_serial(pool, "serial.log")
            if MARKER in serial:
                return verdict(True, f"a {label} guest ran 64-bit code in {time.monotonic() - started:.1f} s")
            shown = serial.decode(errors="replace").strip()[:80] or "nothing"
            return verdict(False, f"{label} guest stopped without finishing its test (serial output: {shown})")
        except (libvirt.libvirtError, DriverError) as exc:
            text = _message(exc) if isinstance(exc, libvirt.libvirtError) else exc.message
            if not self._alive():  # no verdict about KVM: the host itself went away
                raise DriverError(f"Cannot run the KVM probe: lost the connection to {self.uri} ({text}); "
                                  f"is libvirtd still running on {self._where}?") from exc
            return verdict(False, f"could not run the KVM probe: {text}")
        finally:
            self._remove_probe(domain, pool)

    def _upload(self, volume: libvirt.virStorageVol, data: bytes) -> None:
        stream = self.conn.newStream(0)
        volume.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        while view:
            sent = stream.send(bytes(view[: 1 << 16]))
            view = view[max(sent, 0) :]
        stream.finish()

    def _read_serial(self, pool: libvirt.virStoragePool, name: str) -> bytes:
        """The guest's serial log, read through libvirt (works for remote hosts too)."""
        try:
            pool.refresh(0)
            volume = pool.storageVolLookupByName(name)
        except libvirt.libvirtError:
            return b""
        stream = self.conn.newStream(0)
        volume.download(stream, 0, 0, 0)
        chunks = []
        while True:
            chunk = stream.recv(1 << 16)
            if not chunk or not isinstance(chunk, bytes):
                break
            chunks.append(chunk)
        stream.finish()
        return b"".join(chunks)

    def _pause_cause(self, domain: libvirt.virDomain, name: str) -> str:
        cause = ""
        try:
            import libvirt_qemu  # part of libvirt-python

            reply = json.loads(libvirt_qemu.qemuMonitorCommand(domain, '{"execute": "query-status"}', 0))
            status = reply.get("return", {}).get("status", "")
            cause = {"internal-error": "KVM internal error"}.get(status, f"QEMU status {status}") if status else ""
        except (libvirt.libvirtError, ValueError, ImportError):
            pass
        if not self._host:  # this machine: QEMU's log says which error, the kernel which KVM
            try:
                with open(f"/var/log/libvirt/qemu/{name}.log", errors="replace") as log:
                    lines = log.read().splitlines()
                if any(line.strip() == "emulation failure" for line in lines):
                    cause = "emulation failure"
            except OSError:
                pass
            if os.path.isdir("/sys/module/kvm_pvm"):
                cause = f"{cause or 'stopped'} (nested PVM)"
        return cause or "stopped by QEMU"

    def _remove_probe(self, domain: libvirt.virDomain | None, pool: libvirt.virStoragePool | None) -> None:
        for step in (
            lambda: domain is not None and domain.destroy(),
            lambda: pool is not None and pool.refresh(0),  # the serial log becomes a volume too
            lambda: pool is not None and [v.delete(0) for v in pool.listAllVolumes(0)],
            lambda: pool is not None and pool.destroy(),
            lambda: pool is not None and pool.delete(0),  # removes the (now empty) directory
            lambda: pool is not None and pool.undefine(),
        ):
            try:
                step()
            except libvirt.libvirtError:
                pass

    # --- storage pools --------------------------------------------------------------------------

    def _pool(self, name: str) -> libvirt.virStoragePool | None:
        try:
            return self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                return None
            raise

    @staticmethod
    def _describe(spec: StoragePoolSpec) -> str:
        if spec.kind == "netfs":
            return f"nfs://{spec.nfs_host}{spec.nfs_export} mounted at {spec.path}"
        return f"directory {spec.path}"

    def ensure_pool(self, spec: StoragePoolSpec) -> PoolStats:
        action = f"set up storage pool {spec.name} ({self._describe(spec)})"
        with self._errors(action):
            pool = self._pool(spec.name)
            created = pool is None
            if pool is not None:
                existing = pool_spec_from_xml(pool.XMLDesc(0))
                if existing is None or not same_pool(existing, spec):
                    what = self._describe(existing) if existing else "a kind Nubo does not manage"
                    raise DriverError(f"Cannot {action} on {self.uri}: a pool of that name already exists "
                                      f"for {what}; choose another name or delete that pool")
            else:
                pool = self.conn.storagePoolDefineXML(pool_xml(spec), 0)
            try:
                if not pool.isActive():
                    pool.build(0)  # dir: mkdir -p (existing contents are kept); netfs: the mount point
                    pool.create(0)  # netfs: mounts
                if not pool.autostart():
                    pool.setAutostart(1)
                pool.refresh(0)
                _state, capacity, allocation, available = pool.info()
            except libvirt.libvirtError:
                if created:  # leave nothing half-made behind
                    for undo in (pool.destroy, lambda: pool.delete(0), pool.undefine):  # delete: rmdir what build() made
                        try:
                            undo()
                        except libvirt.libvirtError:
                            pass
                raise
            return PoolStats(capacity, allocation, available)

    def pool_stats(self, name: str) -> PoolStats:
        with self._errors(f"read the capacity of storage pool {name}"):
            pool = self.conn.storagePoolLookupByName(name)
            if not pool.isActive():
                raise DriverError(f"Storage pool {name} on {self.uri} is not running; set it up again (ensure_pool)")
            pool.refresh(0)
            _state, capacity, allocation, available = pool.info()
            return PoolStats(capacity, allocation, available)

    def delete_pool(self, name: str, force: bool = False) -> None:
        with self._errors(f"delete storage pool {name}"):
            pool = self._pool(name)
            if pool is None:
                return
            if pool.isActive():
                pool.refresh(0)
                volumes = sorted(pool.listVolumes())
                if volumes and not force:
                    shown = ", ".join(volumes[:5]) + (f" and {len(volumes) - 5} more" if len(volumes) > 5 else "")
                    raise DriverError(f"Storage pool {name} on {self.uri} still holds {len(volumes)} volume(s): "
                                      f"{shown}; delete them first")
                pool.destroy()
            pool.undefine()

    def list_pools(self) -> list[PoolInfo]:
        with self._errors("list storage pools"):
            result = []
            for pool in self.conn.listAllStoragePools(0):
                try:
                    spec = pool_spec_from_xml(pool.XMLDesc(0))
                    if spec is not None:
                        result.append(PoolInfo(spec=spec, active=bool(pool.isActive()),
                                               autostart=bool(pool.autostart())))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:  # vanished while listing
                        raise
            return sorted(result, key=lambda p: p.spec.name)

    # --- volumes --------------------------------------------------------------------------------

    def _active_pool(self, name: str, action: str) -> libvirt.virStoragePool:
        pool = self._pool(name)
        if pool is None:
            raise DriverNotFound(f"Cannot {action}: storage pool {name} is not defined on {self.uri}")
        if not pool.isActive():
            raise DriverError(f"Cannot {action}: storage pool {name} on {self.uri} is not running; "
                              f"set it up again (ensure_pool)")
        return pool

    def _refresh(self, pool: libvirt.virStoragePool) -> None:
        """Re-read the pool's directory: volumes made or removed by others, formats of uploaded bytes.
        libvirt refuses while it builds a volume in the pool ("has asynchronous jobs running", e.g.
        a concurrent clone_volume): wait for that, up to _REFRESH_WAIT_S."""
        deadline = time.monotonic() + _REFRESH_WAIT_S
        delay = 0.02
        while True:
            try:
                pool.refresh(0)
                return
            except libvirt.libvirtError as exc:
                if "asynchronous jobs" not in _message(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    @staticmethod
    def _volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise

    @staticmethod
    def _info(volume: libvirt.virStorageVol) -> VolumeInfo:
        return volume_info_from_xml(volume.XMLDesc(0))

    def _infos(self, pool: libvirt.virStoragePool) -> list[VolumeInfo]:
        result = []
        for volume in pool.listAllVolumes(0):
            try:
                xml = volume.XMLDesc(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:  # vanished while listing
                    continue
                raise
            if volume_is_file(xml):
                result.append(volume_info_from_xml(xml))
        return sorted(result, key=lambda v: v.name)

    @staticmethod
    def _delete_quietly(volume: libvirt.virStorageVol) -> None:
        try:
            volume.delete(0)
        except libvirt.libvirtError:
            pass

    def upload_volume(self, pool: str, name: str, source: str, fmt: VolumeFormat,
                      on_progress: Callable[[int, int], None] | None = None) -> VolumeInfo:
        action = f"upload {source} to storage pool {pool} as volume {name}"
        if fmt not in ("qcow2", "raw"):
            raise DriverError(f"Cannot {action}: format {fmt!r} is not qcow2 or raw")
        try:
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise DriverError(f"Cannot {action}: {exc.strerror or exc}") from exc
        try:
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise DriverError(f"Cannot {action}: it is not a regular file")
                if st.st_size == 0:
                    raise DriverError(f"Cannot {action}: the file is empty")
                image = _read_image(fd, st.st_size)
            except OSError as exc:
                raise DriverError(f"Cannot {action}: {exc.strerror or exc}") from exc
            refusal = _refusal(fmt, image.format, image.backing, image.external_data, image.encrypted)
            if refusal:
                raise DriverError(f"Cannot {action}: {refusal}")
            with self._errors(action):
                target = self._active_pool(pool, action)
                self._refresh(target)
                if self._volume(target, name) is not None:
                    raise DriverError(f"Cannot {action}: volume {name} already exists in storage pool {pool} on "
                                      f"{self.uri}; delete it first, or keep it (see volume_info)")
                if self.is_simulator:  # the test driver has no upload: it models the sizes only
                    allocated = min(st.st_blocks * 512, image.file_size)  # holes stay holes, as on a real host
                    volume = target.createXML(volume_xml(name, image.virtual_size, image.format,
                                                         allocation_bytes=allocated), 0)
                    try:
                        if on_progress is not None:
                            on_progress(image.file_size, image.file_size)
                        return self._info(volume)
                    except BaseException:
                        self._delete_quietly(volume)
                        raise
                # A raw, sparse file of the file's size; libvirt probes the format of the bytes on refresh.
                volume = target.createXML(volume_xml(name, image.file_size, "raw", allocation_bytes=0), 0)
                try:
                    self._send_file(volume, fd, image.file_size, on_progress)
                    self._refresh(target)
                    info = self._info(target.storageVolLookupByName(name))
                    refusal = _refusal(fmt, info.format, info.backing_path)
                    if refusal:
                        raise DriverError(f"Cannot {action} on {self.uri}: {refusal}")
                    return info
                except OSError as exc:
                    self._delete_quietly(volume)
                    raise DriverError(f"Cannot {action}: {exc.strerror or exc}") from exc
                except BaseException:
                    self._delete_quietly(volume)
                    raise
        finally:
            os.close(fd)

    def _send_file(self, volume: libvirt.virStorageVol, fd: int, size: int,
                   on_progress: Callable[[int, int], None] | None) -> None:
        """Stream the file into the volume in chunks; holes go as holes (sparse stream)."""
        stream = self.conn.newStream(0)
        volume.upload(stream, 0, size, libvirt.VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM)
        step = max(1 << 20, size // 100)
        reported = 0
        try:
            for is_data, start, end in _sections(fd, size):
                if not is_data:
                    stream.sendHole(end - start, 0)
                else:
                    position = start
                    while position < end:
                        chunk = os.pread(fd, min(_STREAM_CHUNK, end - position), position)
                        if not chunk:
                            raise OSError(errno.EIO, "the file became shorter while it was read")
                        view = memoryview(chunk)
                        while view:
                            sent = stream.send(bytes(view))
                            if sent <= 0:
                                raise DriverError(f"Cannot upload to volume {volume.name()} on {self.uri}: "
                                                  f"the stream refused the data")
                            view = view[sent:]
                        position += len(chunk)
                        if on_progress is not None and position - reported >= step and position < size:
                            on_progress(position, size)
                            reported = position
                if on_progress is not None and end - reported >= step and end < size:
                    on_progress(end, size)
                    reported = end
            stream.finish()
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise
        if on_progress is not None:
            on_progress(size, size)

    def clone_volume(self, pool: str, base: str, name: str, capacity_bytes: int | None = None) -> VolumeInfo:
        action = f"create volume {name} as a clone of volume {base} in storage pool {pool}"
        with self._errors(action):
            target = self._active_pool(pool, action)
            self._refresh(target)
            base_volume = self._volume(target, base)
            if base_volume is None:
                raise DriverNotFound(f"Cannot {action}: storage pool {pool} on {self.uri} has no volume {base}")
            if self._volume(target, name) is not None:
                raise DriverError(f"Cannot {action}: volume {name} already exists in storage pool {pool} on {self.uri}")
            parent = self._info(base_volume)
            backing_format = "raw" if parent.format == "iso" else parent.format  # QEMU knows no "iso" driver
            if backing_format not in ("qcow2", "raw"):
                raise DriverError(f"Cannot {action}: volume {base} is a {parent.format} volume; "
                                  f"only qcow2 and raw volumes can be cloned")
            capacity = max(parent.capacity_bytes, capacity_bytes or 0)
            xml = volume_xml(name, capacity, "qcow2", allocation_bytes=0, backing_path=parent.path,
                             backing_format=backing_format)
            return self._info(target.createXML(xml, 0))

    def create_volume(self, pool: str, name: str, capacity_bytes: int, fmt: VolumeFormat = "qcow2") -> VolumeInfo:
        action = f"create the empty {fmt} volume {name} of {capacity_bytes} bytes in storage pool {pool}"
        if fmt not in ("qcow2", "raw"):
            raise DriverError(f"Cannot {action}: format {fmt!r} is not qcow2 or raw")
        if capacity_bytes <= 0:
            raise DriverError(f"Cannot {action}: the size must be positive")
        with self._errors(action):
            target = self._active_pool(pool, action)
            self._refresh(target)
            if self._volume(target, name) is not None:
                raise DriverError(f"Cannot {action}: volume {name} already exists in storage pool {pool} on {self.uri}")
            return self._info(target.createXML(volume_xml(name, capacity_bytes, fmt, allocation_bytes=0), 0))

    def volume_info(self, pool: str, name: str) -> VolumeInfo | None:
        action = f"read volume {name} of storage pool {pool}"
        with self._errors(action):
            target = self._active_pool(pool, action)
            self._refresh(target)
            volume = self._volume(target, name)
            if volume is None:
                return None
            try:
                return self._info(volume)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:  # deleted meanwhile
                    return None
                raise

    def list_volumes(self, pool: str) -> list[VolumeInfo]:
        action = f"list the volumes of storage pool {pool}"
        with self._errors(action):
            target = self._active_pool(pool, action)
            self._refresh(target)
            return self._infos(target)

    def delete_volume(self, pool: str, name: str) -> None:
        action = f"delete volume {name} of storage pool {pool}"
        with self._errors(action):
            target = self._active_pool(pool, action)
            self._refresh(target)
            volume = self._volume(target, name)
            if volume is None:
                return
            path = volume.path()
            clones = [v.name for v in self._infos(target) if v.backing_path == path and v.name != name]
            if clones:
                shown = ", ".join(clones[:5]) + (f" and {len(clones) - 5} more" if len(clones) > 5 else "")
                raise DriverError(f"Cannot {action} on {self.uri}: it is the base of {len(clones)} clone(s): "
                                  f"{shown}; delete them first")
            try:
                volume.delete(0)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise

    # --- guest networks -------------------------------------------------------------------------

    def _network(self, name: str) -> libvirt.virNetwork | None:
        try:
            return self.conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
                return None
            raise

    def _update_hosts(self, network: libvirt.virNetwork, command: int, xml: str) -> None:
        flags = libvirt.VIR_NETWORK_UPDATE_AFFECT_CONFIG
        if network.isActive():
            flags |= libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE
        network.update(command, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml, flags)

    def ensure_network(self, spec: NetworkSpec) -> NetworkInfo:
        with self._errors(f"set up guest network {spec.name}"):
            network = self._network(spec.name)
            if network is not None and not self.is_simulator and \
                    not network_info_from_xml(network.XMLDesc(0), True).matches(spec):
                # The zone's networking changed (its uplink, this host's address) or the network
                # predates what Nubo sets now: redefine it while no running guest uses it. (All
                # Simulator hosts of a process share one test:///default: the first definition stays.)
                users = self._domains_on_network(spec.name)
                if users:
                    raise DriverError(f"Guest network {spec.name} on {self.uri} is set up differently from what its "
                                      f"zone now asks; stop its VMs ({', '.join(users)}) so Nubo can redefine it")
                if network.isActive():
                    network.destroy()
                network.undefine()
                network = None
            if network is None:
                network = self.conn.networkDefineXML(network_xml(spec))
                try:
                    network.create()
                    network.setAutostart(1)
                except libvirt.libvirtError:
                    network.undefine()
                    raise
            else:
                if not network.isActive():
                    network.create()
                known = {h.mac for h in network_info_from_xml(network.XMLDesc(0), True).hosts}
                for host in spec.hosts:
                    if host.mac.lower() not in known:
                        self._update_hosts(network, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, dhcp_host_xml(host))
            if spec.uplink and not self.is_simulator:
                self._check_uplink(spec)
            return network_info_from_xml(network.XMLDesc(0), bool(network.isActive()))

    def _domains_on_network(self, name: str) -> list[str]:
        users = []
        for domain in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            if name in domain_networks(domain.XMLDesc(0)):
                users.append(domain.name())
        return sorted(users)

    def _check_uplink(self, spec: NetworkSpec) -> None:
        """The host's libvirt network hook enslaves the uplink when the network starts; without the
        hook the guests would be cut off from the zone's other hosts, silently: say so instead."""
        if spec.uplink not in bridge_ports(self.conn.interfaceLookupByName(spec.bridge).XMLDesc(0)):
            raise DriverError(f"Guest network {spec.name} on {self.uri}: interface {spec.uplink} is not a port of "
                              f"bridge {spec.bridge}, so its guests could not reach the zone's other hosts. Install "
                              f"Nubo's network hook on that host (scripts/libvirt-network-hook as "
                              f"/etc/libvirt/hooks/network.d/nubo) and restart libvirtd; see docs/networking.md")

    def _require_network(self, name: str, action: str) -> libvirt.virNetwork:
        network = self._network(name)
        if network is None:
            raise DriverNotFound(f"Cannot {action}: guest network {name} is not defined on {self.uri}")
        return network

    def add_dhcp_host(self, network: str, host: DhcpHost) -> None:
        action = f"add the DHCP entry {host.mac} -> {host.ip} to network {network}"
        with self._errors(action):
            net = self._require_network(network, action)
            for known in network_info_from_xml(net.XMLDesc(0), True).hosts:
                if known.mac == host.mac.lower() and (known.ip, known.name) == (host.ip, host.name):
                    return
                if known.mac == host.mac.lower() or known.ip == host.ip:
                    self._update_hosts(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, dhcp_host_xml(known))
            self._update_hosts(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, dhcp_host_xml(host))

    def remove_dhcp_host(self, network: str, mac: str) -> None:
        action = f"remove the DHCP entry of {mac} from network {network}"
        with self._errors(action):
            net = self._network(network)
            if net is None:
                return
            for known in network_info_from_xml(net.XMLDesc(0), True).hosts:
                if known.mac == mac.lower():
                    self._update_hosts(net, libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, dhcp_host_xml(known))

    def network_info(self, name: str) -> NetworkInfo | None:
        with self._errors(f"read guest network {name}"):
            network = self._network(name)
            if network is None:
                return None
            return network_info_from_xml(network.XMLDesc(0), bool(network.isActive()))

    def delete_network(self, name: str) -> None:
        with self._errors(f"delete guest network {name}"):
            network = self._network(name)
            if network is None:
                return
            if network.isActive():
                network.destroy()
            network.undefine()

    # --- domains --------------------------------------------------------------------------------

    def _virt_type(self, spec: DomainSpec) -> str:
        return "test" if self.is_simulator else spec.emulation

    def define_domain(self, spec: DomainSpec) -> None:
        self._call(f"define virtual machine {spec.name}",
                   lambda: self.conn.defineXML(domain_xml(spec, self._virt_type(spec))))

    def _domain(self, name: str) -> libvirt.virDomain:
        return self.conn.lookupByName(name)

    def start_domain(self, name: str) -> None:
        with self._errors(f"start virtual machine {name}"):
            domain = self._domain(name)
            if not domain.isActive():
                domain.create()

    def stop_domain(self, name: str, force: bool = False, timeout_s: float = 60.0) -> None:
        with self._errors(f"stop virtual machine {name}"):
            domain = self._domain(name)
            if not domain.isActive():
                return
            if force:
                domain.destroy()
                return
            domain.shutdown()
            deadline = time.monotonic() + timeout_s
            while domain.isActive():
                if time.monotonic() >= deadline:
                    raise DriverError(f"Virtual machine {name} on {self.uri} did not shut down within {timeout_s:g} s "
                                      f"(the guest ignored the ACPI power button); stop it with force")
                time.sleep(0.2)

    def reboot_domain(self, name: str) -> None:
        with self._errors(f"reboot virtual machine {name}"):
            domain = self._domain(name)
            if not domain.isActive():
                raise DriverError(f"Virtual machine {name} on {self.uri} is not running")
            domain.reset(0)

    def undefine_domain(self, name: str) -> None:
        with self._errors(f"remove virtual machine {name}"):
            try:
                domain = self._domain(name)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return
                raise
            if domain.isActive():
                raise DriverError(f"Virtual machine {name} is running on {self.uri}; stop it before removing it")
            flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                     | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            try:
                domain.undefineFlags(flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG):
                    raise
                domain.undefine()

    def _status(self, domain: libvirt.virDomain) -> DomainStatus:
        state, reason = domain.state()
        reasons = _REASONS.get(state, ())
        return DomainStatus(
            name=domain.name(),
            uuid=domain.UUIDString(),
            state=_STATE.get(state, DomainState.UNKNOWN),
            reason=reasons[reason] if 0 <= reason < len(reasons) else str(reason),
        )

    def domain_state(self, name: str) -> DomainStatus:
        with self._errors(f"read the state of virtual machine {name}"):
            return self._status(self._domain(name))

    def list_domains(self) -> list[DomainStatus]:
        with self._errors("list virtual machines"):
            result = []
            for domain in self.conn.listAllDomains(0):
                try:
                    result.append(self._status(domain))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:  # vanished while listing
                        raise
            return sorted(result, key=lambda d: d.name)

    def change_media(self, name: str, cdrom: DiskSpec) -> None:
        what = f"the ISO {cdrom.volume or cdrom.path}" if cdrom.pool or cdrom.path else "nothing"
        action = f"put {what} into CD-ROM drive {cdrom.target} of virtual machine {name}"
        with self._errors(action):
            domain = self._domain(name)
            changed = with_media(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), cdrom)
            if changed is None:
                raise DriverError(f"Cannot {action} on {self.uri}: it has no CD-ROM drive {cdrom.target}; stop and "
                                  f"start it to give it one")
            disk, whole = changed
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if domain.isActive():
                # FORCE: a guest that locked the tray (a mounted CD) cannot keep the medium in
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_DEVICE_MODIFY_FORCE
            try:
                domain.updateDeviceFlags(disk, flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT or not self.is_simulator:
                    raise
                self.conn.defineXML(whole)  # the test driver: its definition models the result

    def _size(self, domain: libvirt.virDomain) -> DomainSize:
        # the test driver changes no running domain's memory: its definition models the result
        return size_from_xml(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if self.is_simulator else 0))

    def domain_size(self, name: str) -> DomainSize:
        with self._errors(f"read the size of virtual machine {name}"):
            return self._size(self._domain(name))

    def scale_domain(self, name: str, vcpus: int, memory_mib: int) -> DomainSize:
        action = f"scale virtual machine {name} to {vcpus} vCPUs and {memory_mib} MiB"
        with self._errors(action):
            domain = self._domain(name)
            if not domain.isActive():
                raise DriverError(f"Cannot {action} on {self.uri}: it is not running")
            size = self._size(domain)
            if vcpus < size.vcpus or memory_mib < size.memory_mib:
                raise DriverError(f"Cannot {action} on {self.uri}: it has {size.vcpus} vCPUs and {size.memory_mib} "
                                  f"MiB; a running virtual machine only grows")
            room = []
            if vcpus > size.max_vcpus:
                room.append(f"{size.max_vcpus} vCPUs")
            if memory_mib > size.max_memory_mib:
                room.append(f"{size.max_memory_mib} MiB")
            if room:
                raise DriverError(f"Cannot {action} on {self.uri}: it was defined to grow to at most "
                                  f"{' and '.join(room)}; stop and start it with room to grow")
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
            if vcpus > size.vcpus:
                domain.setVcpusFlags(vcpus, flags)
            if memory_mib > size.memory_mib:
                try:
                    self._plug_memory(domain, memory_mib - size.memory_mib, flags)
                except libvirt.libvirtError:
                    if vcpus > size.vcpus:
                        try:  # as it was: a guest that has not onlined the new vCPUs lets them go
                            domain.setVcpusFlags(size.vcpus, flags)
                        except libvirt.libvirtError:
                            pass
                    raise
            return self._size(domain)

    def _plug_memory(self, domain: libvirt.virDomain, size_mib: int, flags: int) -> None:
        dimm = dimm_xml(size_mib)
        try:
            domain.attachDeviceFlags(dimm, flags)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT or not self.is_simulator:
                raise
            # the test driver has no device hot-plug: its definition models the result
            self.conn.defineXML(with_dimm(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), size_mib))

    def domain_console(self, name: str) -> ConsoleInfo:
        if self.is_simulator:
            # libvirt's test driver assigns no VNC port (and forgets domains between connections):
            # a simulated host reports an endpoint where nothing listens, so console tokens can be
            # issued and checked without QEMU.
            return ConsoleInfo(protocol="vnc", host="127.0.0.1", port=SIMULATOR_VNC_PORT, password="")
        with self._errors(f"find the console of virtual machine {name}"):
            console = console_from_xml(self._domain(name).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
        if console is None:
            raise DriverError(f"Virtual machine {name} on {self.uri} has no VNC console (is it running?)")
        return console
