"""The libvirt implementation of HypervisorDriver: the only module of Nubo that imports libvirt.

One class serves KVM hosts (qemu:///system on this machine, qemu+ssh:// and qemu+tls:// remote
hosts) and the Simulator (test:///default, libvirt's in-memory test driver). Where the two differ
(domain type "test", no KVM to probe) the code asks the connection what it is.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator, TypeVar
from urllib.parse import urlsplit

import libvirt

from compute.drivers.base import (
    ConsoleInfo,
    DomainSpec,
    DomainState,
    DomainStatus,
    DriverError,
    DriverNotFound,
    HostInfo,
    HostStats,
    HypervisorDriver,
    KvmProbe,
    PoolInfo,
    PoolStats,
    StoragePoolSpec,
)
from compute.drivers.domain_xml import (
    console_from_xml,
    domain_xml,
    pool_spec_from_xml,
    pool_xml,
    same_pool,
    volume_xml,
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
            if code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_NO_STORAGE_VOL):
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
                spec = pool_spec_from_xml(pool.XMLDesc(0))
                if spec is not None:
                    result.append(PoolInfo(spec=spec, active=bool(pool.isActive()), autostart=bool(pool.autostart())))
            return sorted(result, key=lambda p: p.spec.name)

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

    def domain_console(self, name: str) -> ConsoleInfo:
        with self._errors(f"find the console of virtual machine {name}"):
            console = console_from_xml(self._domain(name).XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
        if console is None:
            raise DriverError(f"Virtual machine {name} on {self.uri} has no VNC console (is it running?)")
        return console
