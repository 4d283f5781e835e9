"""Storage use cases: the OS catalogue, primary storage (a libvirt pool on every host that uses
it) and secondary storage (image stores, on the management side).

Every use case checks the caller (root admin), owns its transaction and writes its event, as
compute.services does. Hosts are reached only through compute.drivers; work on hosts and on the
file system happens before the transaction that saves the row, and is undone when anything fails,
so a failed add leaves nothing behind: no row, no libvirt pool, no mount, no directory it made.
"""
from __future__ import annotations

import logging
import os
import posixpath
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from compute import services as compute_services
from compute.choices import HostState, Hypervisor, StoragePoolState, StoragePoolType, StorageScope
from compute.drivers import DriverError, PoolStats, StoragePoolSpec, get_driver
from compute.models import Cluster, Host, Pod, Zone
from portal import events
from portal.errors import (
    ApiError,
    InvalidParameterValue,
    ParamError,
    ResourceInUse,
    ResourceUnavailable,
)

from .models import ImageStore, OsCategory, OsType, StoragePool

log = logging.getLogger(__name__)

OS_CATALOGUE: dict[str, list[str]] = {
    "CentOS": ["CentOS 7", "CentOS Stream 8", "CentOS Stream 9"],
    "Debian": ["Debian GNU/Linux 10 (64-bit)", "Debian GNU/Linux 11 (64-bit)", "Debian GNU/Linux 12 (64-bit)"],
    "Ubuntu": ["Ubuntu 20.04 LTS", "Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"],
    "RedHat": ["Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9", "Rocky Linux 9", "AlmaLinux 9"],
    "SUSE": ["SUSE Linux Enterprise Server 15", "openSUSE Leap 15"],
    "Oracle": ["Oracle Linux 8", "Oracle Linux 9"],
    "FreeBSD": ["FreeBSD 13 (64-bit)", "FreeBSD 14 (64-bit)", "OpenBSD 7 (64-bit)", "NetBSD 10 (64-bit)"],
    "Windows": ["Windows Server 2019 (64-bit)", "Windows Server 2022 (64-bit)", "Windows 10 (64-bit)",
                "Windows 11 (64-bit)"],
    "Other": ["Other Linux (64-bit)", "Other Linux (32-bit)", "Other (64-bit)", "Other PV (64-bit)"],
}


@transaction.atomic
def seed_os_types() -> int:
    """Idempotent: create the OS categories and types that are missing. Returns how many types were added."""
    added = 0
    for category_name, types in OS_CATALOGUE.items():
        category, _ = OsCategory.objects.get_or_create(name=category_name)
        for description in types:
            _, created = OsType.objects.get_or_create(description=description, defaults={"category": category})
            added += int(created)
    return added




# -- storage URLs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StorageLocation:
    """A parsed storage url: an NFS export, or a local directory."""

    protocol: str  # "nfs" | "file"
    host: str  # the NFS server; "localhost" for a directory
    path: str  # the export, or the directory (absolute, normalised)

    @property
    def url(self) -> str:
        if self.protocol == "nfs":
            server = f"[{self.host}]" if ":" in self.host else self.host
            return f"nfs://{server}{self.path}"
        return f"file://{self.path}"

    @property
    def nfs_source(self) -> str:
        """server:/export, as mount(8) wants it."""
        server = f"[{self.host}]" if ":" in self.host else self.host
        return f"{server}:{self.path}"


def _absolute(path: str) -> str:
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/")


def parse_storage_url(url: str, what: str) -> StorageLocation:
    """nfs://server/export/path, file:///absolute/path or a bare /absolute/path; anything else is
    refused (InvalidParameterValue, 431) with a sentence that shows the accepted forms."""
    text = (url or "").strip()
    forms = "nfs://server/export/path or file:///absolute/path"
    if not text:
        raise ParamError(f"Give the {what} url: {forms}")
    if "://" not in text:
        if text.startswith("/"):
            return _directory(text, text, what)
        raise InvalidParameterValue(f"The {what} path {text!r} is relative; give an absolute path such as "
                                    f"/var/lib/nubo/storage or file:///var/lib/nubo/storage")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise InvalidParameterValue(f"The {what} url {text} has a query or fragment; use {forms}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidParameterValue(
                f"The {what} url {text} names {parts.netloc!r} as a host: a file:// url names a local directory "
                f"by its absolute path, with three slashes, such as file:///var/lib/nubo/storage")
        return _directory(unquote(parts.path), text, what)
    if scheme == "nfs":
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise InvalidParameterValue(f"The {what} url {text} has an invalid server or port; use {forms}") from None
        if not host:
            raise InvalidParameterValue(f"The {what} url {text} names no NFS server; use nfs://server/export/path")
        if port:
            raise InvalidParameterValue(f"The {what} url {text} gives a port; NFS storage uses the server's standard "
                                        f"port, leave it out: nfs://{host}{parts.path or '/export'}")
        if parts.username or parts.password:
            raise InvalidParameterValue(f"The {what} url {text} carries credentials; NFS exports take none")
        export = unquote(parts.path)
        if not export.startswith("/"):
            raise InvalidParameterValue(f"The {what} url {text} names no exported path; use nfs://{host}/export/path")
        return StorageLocation("nfs", host.lower(), _absolute(export))
    raise InvalidParameterValue(f"The {what} url scheme {scheme or text!r} is not supported; use {forms}")


def _directory(path: str, given: str, what: str) -> StorageLocation:
    if not path.startswith("/"):
        raise InvalidParameterValue(f"The {what} path in {given} is relative; give an absolute path such as "
                                    f"file:///var/lib/nubo/storage")
    path = _absolute(path)
    if path == "/":
        raise InvalidParameterValue(f"The {what} directory cannot be / itself; give a directory such as "
                                    f"/var/lib/nubo/storage")
    return StorageLocation("file", "localhost", path)


# -- local file-system helpers (this machine: the management side, or a host at qemu:///system) -----
def _missing_dirs(path: str | Path) -> list[Path]:
    """The directories of `path` that do not exist yet, outermost first."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return list(reversed(missing))


def _remove_empty_dirs(dirs: Iterable[Path]) -> None:
    """rmdir each directory, innermost first, if it is still there and empty (never anything else)."""
    for directory in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        try:
            if directory.is_dir() and not directory.is_symlink() and not os.path.ismount(directory):
                directory.rmdir()
        except OSError:
            pass


def _write_problem(path: str | Path) -> str | None:
    """None when a file can be created, written and removed in `path`; else why not."""
    probe = Path(path) / f".nubo-write-test-{secrets.token_hex(4)}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"nubo")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        return f"{path} is not writable ({exc.strerror or exc})"
    return None


def _fs_usage(path: str | Path) -> tuple[int, int]:
    """(total, used) bytes of the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, (st.f_blocks - st.f_bfree) * st.f_frsize


def mount_nfs_helper() -> str | None:
    """The path of mount.nfs (nfs-common), or None when this machine cannot mount NFS."""
    for candidate in ("/sbin/mount.nfs", "/usr/sbin/mount.nfs"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mount.nfs")


NFS_PORT = 2049
NFS_MISSING_HELPER = "mount.nfs is missing on this machine: install nfs-common (scripts/setup-system.sh nfs, or make deps)"


def _nfs_unreachable(server: str, export: str, timeout_s: float = 5.0) -> str | None:
    """None when the NFS server answers on port 2049 from here; else a sentence saying what failed.
    A mount of an unreachable server otherwise retries for minutes before giving up."""
    try:
        with socket.create_connection((server, NFS_PORT), timeout=timeout_s):
            return None
    except socket.gaierror as exc:
        return f"the NFS server name {server} does not resolve ({exc.strerror}); check the url"
    except TimeoutError:
        return (f"the NFS server {server} did not answer on port {NFS_PORT} within {timeout_s:g} s; is it up, "
                f"and does a firewall let this machine through?")
    except OSError as exc:
        return (f"the NFS server {server} refuses connections on port {NFS_PORT} ({exc.strerror or exc}); "
                f"is an NFS server running there and exporting {export}?")


def _mount_hint(text: str) -> str:
    lowered = text.lower()
    if "unknown filesystem type" in lowered or "no such device" in lowered:
        return "; this machine's kernel has no NFS client (load it with: modprobe nfs)"
    if "access denied" in lowered or "permission denied" in lowered:
        return "; the server refused this machine: check its exports (/etc/exports) allow it, read-write"
    if "no such file or directory" in lowered:
        return "; check the exported path exists on the server"
    return ""


# -- primary storage ----------------------------------------------------------------------------
def pool_mount_dir() -> str:
    """The directory under which every host mounts NFS primary storage, one <pool uuid> each."""
    return str(getattr(settings, "NUBO_POOL_MOUNT_DIR", "/var/lib/nubo/mnt"))


def _host_uri(host: Host) -> str:
    return compute_services.driver_uri(host)


def _open_driver(uri: str):
    """A driver for a host's URI (not yet connected). Tests replace this to inject failures."""
    return get_driver(uri)


def _is_local(uri: str) -> bool:
    """Whether the libvirtd behind `uri` runs on this machine (so its paths are this machine's)."""
    parts = urlsplit(uri)
    return parts.scheme.startswith("qemu") and (parts.hostname or "") in ("", "localhost", "127.0.0.1", "::1")


def _by_uri(hosts: Iterable[Host]) -> dict[str, list[Host]]:
    """Hosts grouped by the libvirtd that serves them: every Simulator host shares test:///default."""
    groups: dict[str, list[Host]] = {}
    for host in hosts:
        groups.setdefault(_host_uri(host), []).append(host)
    return groups


def _names(hosts: list[Host]) -> str:
    shown = ", ".join(h.name for h in hosts[:3])
    return shown + (f" and {len(hosts) - 3} more" if len(hosts) > 3 else "")


def pool_spec(pool: StoragePool) -> StoragePoolSpec:
    """What the driver needs to create `pool` on a host."""
    if pool.type == StoragePoolType.NFS:
        return StoragePoolSpec(name=pool.libvirt_name, kind="netfs", path=pool.local_path,
                               nfs_host=pool.host_address, nfs_export=pool.path)
    return StoragePoolSpec(name=pool.libvirt_name, kind="dir", path=pool.local_path or pool.path)


def _scope_hosts(zone: Zone, scope: str, cluster: Cluster | None, hypervisor: str):
    hosts = Host.objects.filter(zone=zone)
    if scope == StorageScope.CLUSTER:
        hosts = hosts.filter(cluster=cluster)
    elif hypervisor:
        hosts = hosts.filter(hypervisor=hypervisor)
    return hosts.order_by("id")


def pool_hosts(pool: StoragePool):
    """Every host that has (or should have) this pool, whatever its state."""
    return _scope_hosts(pool.zone, pool.scope, pool.cluster, pool.hypervisor)


def host_pools(host: Host):
    """The primary storage a host uses: its cluster's, and its zone's (for its hypervisor)."""
    return StoragePool.objects.filter(
        Q(scope=StorageScope.CLUSTER, cluster_id=host.cluster_id)
        | Q(scope=StorageScope.ZONE, zone_id=host.zone_id, hypervisor__in=["", host.hypervisor])
    ).order_by("id")


class _SetupProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _ensure_pools(uri: str, pools: list[tuple[str, StoragePoolSpec]], where: str) -> list[PoolStats]:
    """Create (or find running) each pool through the libvirtd at `uri`, which serves the hosts
    named `where`. On this machine, also check an NFS server answers before mounting and that the
    pool's directory is writable. On any failure, remove the pools this call created (and the
    directories it made here) and raise ResourceUnavailable naming the pool, the host and the cause."""
    local = _is_local(uri)
    created: list[str] = []
    made_dirs: list[Path] = []
    results: list[PoolStats] = []
    label = pools[0][0] if pools else ""
    try:
        with _open_driver(uri) as driver:
            existing = {p.spec.name for p in driver.list_pools()}
            try:
                for label, spec in pools:
                    if local:
                        made_dirs.extend(_missing_dirs(spec.path))
                        if spec.kind == "netfs":
                            if mount_nfs_helper() is None:
                                raise _SetupProblem(NFS_MISSING_HELPER)
                            problem = _nfs_unreachable(spec.nfs_host, spec.nfs_export)
                            if problem:
                                raise _SetupProblem(f"cannot mount nfs://{spec.nfs_host}{spec.nfs_export}: {problem}")
                    stats = driver.ensure_pool(spec)  # removes what it made when it fails
                    if spec.name not in existing:
                        created.append(spec.name)
                    if local:
                        problem = _write_problem(spec.path)
                        if problem:
                            raise _SetupProblem(problem + " for the hypervisor's guest disks")
                    results.append(stats)
            except (DriverError, _SetupProblem):
                for name in created:
                    try:
                        driver.delete_pool(name, force=True)
                    except DriverError as exc:
                        log.warning("could not remove pool %s from %s after a failure: %s", name, uri, exc.message)
                raise
    except (DriverError, _SetupProblem) as exc:
        if local:
            _remove_empty_dirs(made_dirs)
        text = exc.message
        if local and "nfs" in text.lower():
            text += _mount_hint(text)
        raise ResourceUnavailable(f"Cannot set up primary storage {label} on host {where}: {text}") from None
    return results


def _remove_pool(uri: str, spec: StoragePoolSpec, *, force: bool = True) -> None:
    """Stop and undefine the pool through `uri` (files stay); on this machine, also remove the
    empty mount point of an NFS pool."""
    with _open_driver(uri) as driver:
        driver.delete_pool(spec.name, force=force)
    if spec.kind == "netfs" and _is_local(uri):
        _remove_empty_dirs([Path(spec.path)])


def _remove_quietly(uris: Iterable[str], spec: StoragePoolSpec) -> None:
    for uri in uris:
        try:
            _remove_pool(uri, spec)
        except DriverError as exc:
            log.warning("could not remove pool %s from %s: %s", spec.name, uri, exc.message)


def _apply_stats(pool: StoragePool, stats: PoolStats) -> None:
    pool.reported_capacity_bytes = stats.capacity_bytes
    limit = pool.capacity_limit_bytes
    pool.capacity_bytes = min(limit, stats.capacity_bytes) if limit else stats.capacity_bytes
    pool.used_bytes = stats.allocation_bytes
    pool.stats_updated = timezone.now()


def _clean_tags(tags: str | None) -> str:
    return ",".join(t.strip() for t in (tags or "").split(",") if t.strip())


def _scope_value(scope: str | None) -> str:
    value = (scope or "cluster").strip().upper()
    if value not in StorageScope.values:
        raise InvalidParameterValue(f"scope must be cluster or zone, not {scope}")
    return value


def _hypervisor_value(value: str | None) -> str:
    if not value or value.strip().lower() == "any":
        return ""
    for choice in Hypervisor.values:
        if value.strip().lower() == choice.lower():
            return choice
    raise InvalidParameterValue(f"Hypervisor {value} is not supported; use KVM or Simulator")


def _check_capacity(pool: StoragePool, capacity_bytes: int | None) -> None:
    if capacity_bytes is None:
        return
    if capacity_bytes <= 0:
        raise InvalidParameterValue(f"capacitybytes must be a positive number of bytes, not {capacity_bytes}")
    reported = pool.reported_capacity_bytes
    if reported and capacity_bytes > reported:
        raise InvalidParameterValue(
            f"capacitybytes {capacity_bytes} is more than the {reported} bytes primary storage {pool.name} has; "
            f"give at most {reported} (storage.overprovisioning.factor lets volumes allocate beyond the size)")


def create_storage_pool(caller, *, zone: Zone, name: str, url: str, pod: Pod | None = None,
                        cluster: Cluster | None = None, scope: str = "cluster", tags: str = "",
                        hypervisor: str | None = None, capacity_bytes: int | None = None,
                        provider: str | None = None) -> StoragePool:
    """Add primary storage: a libvirt pool named StoragePool.libvirt_name on every Up host of the
    cluster (scope cluster) or zone (scope zone; only hosts of `hypervisor` when given). An NFS
    pool is mounted at <pool mount dir>/<pool uuid> on each host. Capacity is read from the pool.
    Hosts that are not Up get the pool when they reconnect (connect_host_pools)."""
    compute_services.require_root_admin(caller, "add primary storage")
    name = (name or "").strip()
    if not name:
        raise ParamError("The primary storage name must not be empty")
    if provider and provider.strip().lower() not in ("defaultprimary", "default"):
        raise InvalidParameterValue(f"Storage provider {provider} is not supported; use DefaultPrimary")
    scope = _scope_value(scope)
    location = parse_storage_url(url, "primary storage")
    if pod is not None and pod.zone_id != zone.pk:
        raise InvalidParameterValue(f"Pod {pod.name} is not in zone {zone.name}")
    if cluster is not None and pod is not None and cluster.pod_id != pod.pk:
        raise InvalidParameterValue(f"Cluster {cluster.name} is not in pod {pod.name}")
    if cluster is not None and cluster.zone_id != zone.pk:
        raise InvalidParameterValue(f"Cluster {cluster.name} is not in zone {zone.name}")
    if scope == StorageScope.CLUSTER:
        if cluster is None:
            raise ParamError("Cluster-wide primary storage needs clusterid (and podid); for storage every host "
                             "of the zone uses, pass scope=zone")
        pod = pod or cluster.pod
        hv = cluster.hypervisor
        if hypervisor and _hypervisor_value(hypervisor) not in ("", hv):
            raise InvalidParameterValue(f"Cluster {cluster.name} is a {hv} cluster, not {hypervisor}")
    else:
        pod = cluster = None
        hv = _hypervisor_value(hypervisor)
    if capacity_bytes is not None and capacity_bytes <= 0:
        raise InvalidParameterValue(f"capacitybytes must be a positive number of bytes, not {capacity_bytes}")
    pool_type = StoragePoolType.NFS if location.protocol == "nfs" else StoragePoolType.FILESYSTEM
    _refuse_duplicate_pool(zone, name, pool_type, location)

    where = f"cluster {cluster.name}" if cluster is not None else f"zone {zone.name}"
    hosts = list(_scope_hosts(zone, scope, cluster, hv))
    up = [h for h in hosts if h.state == HostState.UP]
    if not up:
        state = f" (its hosts: {', '.join(f'{h.name} is {h.state}' for h in hosts[:3])})" if hosts else ""
        raise ResourceUnavailable(f"No host is Up in {where}{state}; add a host to the {where.split()[0]} first: "
                                  f"primary storage is set up on its hosts")

    pool = StoragePool(zone=zone, pod=pod, cluster=cluster, scope=scope, hypervisor=hv, name=name, url=location.url,
                       type=pool_type, host_address=location.host, path=location.path, tags=_clean_tags(tags),
                       capacity_limit_bytes=capacity_bytes, state=StoragePoolState.UP)
    pool.local_path = (posixpath.join(pool_mount_dir(), str(pool.uuid)) if pool_type == StoragePoolType.NFS
                       else location.path)
    spec = pool_spec(pool)
    groups = _by_uri(up)
    made_here = _missing_dirs(spec.path) if any(_is_local(uri) for uri in groups) else []
    done: list[str] = []
    try:
        first: PoolStats | None = None
        for uri, group in groups.items():
            stats = _ensure_pools(uri, [(name, spec)], _names(group))[0]
            done.append(uri)
            first = first or stats
        assert first is not None
        pool.reported_capacity_bytes = first.capacity_bytes
        _check_capacity(pool, capacity_bytes)
        _apply_stats(pool, first)
        with transaction.atomic():
            _refuse_duplicate_pool(zone, name, pool_type, location)
            try:
                with transaction.atomic():
                    pool.save()
            except IntegrityError:
                raise InvalidParameterValue(f"Primary storage named {name} already exists in zone {zone.name}") from None
            events.record(caller, "STORAGE.POOL.CREATE",
                          f"Primary storage {name} ({location.url}) added to {where}, on {len(up)} host(s)",
                          resource=pool)
    except BaseException:
        _remove_quietly(done, spec)
        _remove_empty_dirs(made_here)  # directories libvirt made here for it, if still empty
        raise
    return pool


def _refuse_duplicate_pool(zone: Zone, name: str, pool_type: str, location: StorageLocation) -> None:
    pools = StoragePool.objects.filter(zone=zone)
    if pools.filter(name__iexact=name).exists():
        raise InvalidParameterValue(f"Primary storage named {name} already exists in zone {zone.name}")
    other = pools.filter(type=pool_type, host_address=location.host, path=location.path).first()
    if other is not None:
        raise InvalidParameterValue(f"Primary storage {other.name} already uses {location.url} in zone {zone.name}")


def connect_host_pools(host: Host) -> None:
    """Create and start, on `host`, the libvirt pool of every primary storage of its cluster and
    of its zone. Raises ResourceUnavailable (and removes the pools it created) on failure."""
    pools = list(host_pools(host))
    if not pools:
        return
    _ensure_pools(_host_uri(host), [(p.name, pool_spec(p)) for p in pools], host.name)


def disconnect_host_pools(host: Host, *, forced: bool = False) -> None:
    """Stop and undefine this host's pools of Nubo's primary storage (files are kept). A pool is
    left alone where another host of its scope shares this host's libvirtd (every Simulator host
    shares test:///default). A host that cannot be reached is skipped when `forced` or when it is
    not Up anyway (it has gone); otherwise ResourceUnavailable."""
    pools = list(host_pools(host).select_related("zone", "cluster"))
    if not pools:
        return
    uri = _host_uri(host)
    sharing = [h for h in Host.objects.filter(zone_id=host.zone_id).exclude(pk=host.pk) if _host_uri(h) == uri]

    def shared(pool: StoragePool) -> bool:
        if pool.scope == StorageScope.CLUSTER:
            return any(h.cluster_id == pool.cluster_id for h in sharing)
        return any(not pool.hypervisor or h.hypervisor == pool.hypervisor for h in sharing)

    mine = [p for p in pools if not shared(p)]
    if not mine:
        return
    try:
        with _open_driver(uri) as driver:
            for pool in mine:
                driver.delete_pool(pool.libvirt_name, force=True)
    except DriverError as exc:
        if forced or host.state != HostState.UP:
            log.warning("host %s: primary storage pools not removed (%s)", host.name, exc.message)
            return
        raise ResourceUnavailable(f"Cannot remove primary storage from host {host.name}: {exc.message}; "
                                  f"pass forced=true to delete the host anyway") from None
    if _is_local(uri):
        _remove_empty_dirs(Path(p.local_path) for p in mine if p.type == StoragePoolType.NFS)


def update_storage_pool(caller, pool: StoragePool, *, name: str | None = None, tags: str | None = None,
                        enabled: bool | None = None, capacity_bytes: int | None = None) -> StoragePool:
    """Rename, re-tag, enable/disable (state Up/Disabled: a Disabled pool takes no new volumes)
    or cap the capacity Nubo counts (capacitybytes, at most the pool's size)."""
    compute_services.require_root_admin(caller, "update primary storage")
    changed: list[str] = []
    with transaction.atomic():
        pool = StoragePool.objects.select_for_update().select_related("zone").get(pk=pool.pk)
        if name is not None:
            name = name.strip()
            if not name:
                raise InvalidParameterValue("The primary storage name must not be empty")
            if name != pool.name:
                if StoragePool.objects.filter(zone=pool.zone, name__iexact=name).exclude(pk=pool.pk).exists():
                    raise InvalidParameterValue(f"Primary storage named {name} already exists in zone {pool.zone.name}")
                changed.append(f"renamed from {pool.name}")
                pool.name = name
        if tags is not None:
            pool.tags = _clean_tags(tags)
            changed.append(f"tags {pool.tags or '(none)'}")
        if enabled is not None:
            if pool.state == StoragePoolState.MAINTENANCE:
                raise InvalidParameterValue(f"Primary storage {pool.name} is in maintenance; cancel it first")
            state = StoragePoolState.UP if enabled else StoragePoolState.DISABLED
            if state != pool.state:
                pool.state = state
                changed.append("enabled" if enabled else "disabled")
        if capacity_bytes is not None:
            _check_capacity(pool, capacity_bytes)
            pool.capacity_limit_bytes = capacity_bytes
            pool.capacity_bytes = min(capacity_bytes, pool.reported_capacity_bytes or capacity_bytes)
            changed.append(f"capacity {capacity_bytes} bytes")
        pool.save()
        events.record(caller, "STORAGE.POOL.UPDATE",
                      f"Primary storage {pool.name} updated" + (f": {', '.join(changed)}" if changed else ""),
                      resource=pool)
    return pool


def delete_storage_pool(caller, pool: StoragePool, *, forced: bool = False) -> None:
    """Remove the libvirt pool from every host, then the row. The files stay on the storage.
    Refused while the pool holds volumes (the driver names them) unless `forced`; a host that
    cannot be reached blocks the delete unless `forced`. On a refusal, hosts the pool was already
    removed from get it back."""
    compute_services.require_root_admin(caller, "delete primary storage")
    pool = StoragePool.objects.select_related("zone", "cluster").get(pk=pool.pk)
    from .models import Volume

    disks = list(Volume.objects.filter(pool=pool, removed__isnull=True).order_by("id").values_list("name", flat=True)[:6])
    if disks:
        raise ResourceInUse(f"Primary storage {pool.name} holds the volumes {', '.join(disks[:5])}"
                            + (" and more" if len(disks) > 5 else "") + "; expunge their VMs first")
    Volume.objects.filter(pool=pool, removed__isnull=False).update(pool=None)
    if pool.allocated_bytes > 0 and not forced:
        raise ResourceInUse(f"Primary storage {pool.name} still has {pool.allocated_bytes} bytes of volumes "
                            f"allocated; delete them first, or pass forced=true")
    spec = pool_spec(pool)
    removed: list[str] = []

    def restore() -> None:
        for uri in removed:
            try:
                with _open_driver(uri) as driver:
                    driver.ensure_pool(spec)
            except DriverError as exc:
                log.warning("could not restore pool %s on %s: %s", spec.name, uri, exc.message)

    for uri, group in _by_uri(pool_hosts(pool)).items():
        driver = _open_driver(uri)
        try:
            driver.connect()
        except DriverError as exc:
            if forced:
                log.warning("primary storage %s: host %s unreachable, pool left there: %s", pool.name,
                            _names(group), exc.message)
                continue
            restore()
            raise ResourceUnavailable(f"Cannot remove primary storage {pool.name} from host {_names(group)}: "
                                      f"{exc.message}; bring the host back, or pass forced=true") from None
        try:
            driver.delete_pool(spec.name, force=forced)
        except DriverError as exc:
            restore()
            raise ResourceInUse(f"Cannot delete primary storage {pool.name}: {exc.message}") from None
        finally:
            driver.close()
        removed.append(uri)
        if spec.kind == "netfs" and _is_local(uri):
            _remove_empty_dirs([Path(spec.path)])
    with transaction.atomic():
        locked = StoragePool.objects.select_for_update().filter(pk=pool.pk).first()
        if locked is not None:
            locked.delete()
        events.record(caller, "STORAGE.POOL.DELETE", f"Primary storage {pool.name} ({pool.url}) deleted"
                      + (" (forced)" if forced else ""), resource_type="StoragePool")


# -- secondary storage --------------------------------------------------------------------------
IMAGE_STORE_LAYOUT: tuple[str, ...] = ("template/tmpl", "iso", "snapshots")
"""The fixed layout of an image store, relative to its root (CloudStack's secondary storage names
where it has them):

    template/tmpl/<account id>/<template id>/   templates (CloudStack's path)
    iso/<account id>/<iso id>/                  ISOs (CloudStack keeps them under template/tmpl too;
                                                Nubo gives them their own directory)
    snapshots/<account id>/<volume id>/         volume snapshots (CloudStack's path)
"""
_LAYOUT_DIRS = frozenset({"template", "template/tmpl", "iso", "snapshots"})
NFS_MOUNT_OPTIONS = "nosuid,nodev,noexec,soft,timeo=150,retrans=3,retry=0"
MOUNT_TIMEOUT_S = 90


def secondary_mount_dir() -> Path:
    """Where NFS image stores are mounted on the management side, one <store uuid> each."""
    return Path(getattr(settings, "NUBO_SECONDARY_MOUNT_DIR", Path(settings.VAR_DIR) / "mnt" / "secondary"))


def _details(details: Any) -> dict[str, str]:
    """CloudStack's details map: details[0].key=k&details[0].value=v, or details[0].k=v."""
    if not details:
        return {}
    if isinstance(details, dict):
        details = [details]
    out: dict[str, str] = {}
    for entry in details:
        if set(entry) == {"key", "value"}:
            out[str(entry["key"])] = str(entry["value"])
        else:
            out.update({str(k): str(v) for k, v in entry.items()})
    return out


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"{argv[0]} did not finish within {MOUNT_TIMEOUT_S} s"
    except OSError as exc:
        return -1, f"cannot run {argv[0]}: {exc.strerror or exc}"
    return done.returncode, (done.stderr or done.stdout).strip()


def _mount_nfs(location: StorageLocation, mount_point: Path, undo: list[Callable[[], None]]) -> None:
    what = f"Cannot mount {location.url}"
    if mount_nfs_helper() is None:
        raise ResourceUnavailable(f"{what}: {NFS_MISSING_HELPER}")
    if os.geteuid() != 0:
        raise ResourceUnavailable(f"{what}: mounting NFS needs root and Nubo runs as uid {os.geteuid()}; mount the "
                                  f"export yourself and add that directory as file:///<mount point>")
    problem = _nfs_unreachable(location.host, location.path)
    if problem:
        raise ResourceUnavailable(f"{what}: {problem}")
    missing = _missing_dirs(mount_point)
    try:
        mount_point.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty_dirs(missing)
        raise ResourceUnavailable(f"{what}: cannot create the mount point {mount_point}: {exc.strerror or exc}") from None
    undo.append(lambda: _remove_empty_dirs(missing))
    code, text = _run(["mount", "-t", "nfs", "-o", NFS_MOUNT_OPTIONS, location.nfs_source, str(mount_point)])
    if code != 0:
        raise ResourceUnavailable(f"{what} at {mount_point}: {text or f'mount failed ({code})'}{_mount_hint(text)}")
    undo.append(lambda: _unmount(mount_point, lazy=True))


def _unmount(mount_point: Path, *, lazy: bool = False) -> str | None:
    """None when `mount_point` is no longer a mount point; else why."""
    if not os.path.ismount(mount_point):
        return None
    code, text = _run(["umount", str(mount_point)])
    if code != 0 and lazy:
        code, text = _run(["umount", "-l", str(mount_point)])
    return None if code == 0 else (text or f"umount failed ({code})")


def ensure_image_store_mounted(store: ImageStore) -> Path:
    """The store's root, mounting an NFS store again when it is not mounted (after a reboot of the
    management machine). Raises ResourceUnavailable when it cannot be reached."""
    root = Path(store.mount_path)
    if store.protocol == "nfs":
        if not os.path.ismount(root):
            _mount_nfs(parse_storage_url(store.url, "secondary storage"), root, [])
    elif not root.is_dir():
        raise ResourceUnavailable(f"Secondary storage {store.name}: the directory {root} is missing")
    return root


def add_image_store(caller, *, url: str, zone: Zone | None, name: str | None = None, provider: str | None = "NFS",
                    details: Any = None) -> ImageStore:
    """Add secondary storage to a zone: a local directory (file:///path, for single-machine
    installs; created when missing) or an NFS export mounted here at
    <secondary mount dir>/<store uuid>. Creates IMAGE_STORE_LAYOUT, checks a file can be written
    and records the capacity of the file system. On failure nothing is left: no row, no mount,
    no directory this call made."""
    compute_services.require_root_admin(caller, "add secondary storage")
    provider = (provider or "NFS").strip()
    if provider.upper() != "NFS":
        raise InvalidParameterValue(f"Image store provider {provider} is not supported; use NFS "
                                    f"(with an nfs:// or a file:// url)")
    if zone is None:
        raise ParamError("Give zoneid: secondary storage belongs to a zone")
    location = parse_storage_url(url, "secondary storage")
    name = (name or "").strip() or location.url[:255]
    _refuse_duplicate_store(zone, name, location)
    store = ImageStore(zone=zone, name=name, url=location.url, protocol=location.protocol, provider="NFS",
                       details=_details(details))
    undo: list[Callable[[], None]] = []
    try:
        if location.protocol == "nfs":
            root = secondary_mount_dir() / str(store.uuid)
            _mount_nfs(location, root, undo)
        else:
            root = Path(location.path)
            if root.exists() and not root.is_dir():
                raise InvalidParameterValue(f"The secondary storage path {root} is a file, not a directory")
            _make_dirs(root, undo, f"Cannot use {location.url} for secondary storage")
        store.mount_path = str(root)
        for relative in IMAGE_STORE_LAYOUT:
            _make_dirs(root / relative, undo, f"Cannot lay out secondary storage {location.url}")
        problem = _write_problem(root)
        if problem:
            raise ResourceUnavailable(f"Cannot use {location.url} for secondary storage: {problem}")
        store.capacity_bytes, store.used_bytes = _fs_usage(root)
        store.stats_updated = timezone.now()
        with transaction.atomic():
            _refuse_duplicate_store(zone, name, location)
            try:
                with transaction.atomic():
                    store.save()
            except IntegrityError:
                raise InvalidParameterValue(f"Secondary storage named {name} already exists in zone {zone.name}") from None
            events.record(caller, "IMAGE.STORE.ADD", f"Secondary storage {name} ({location.url}) added to zone "
                                                     f"{zone.name}", resource=store)
            from .images.services import spread_cross_zone_templates

            spread_cross_zone_templates(store)
    except BaseException:
        for action in reversed(undo):
            try:
                action()
            except Exception:  # noqa: BLE001 - keep undoing
                log.warning("secondary storage %s: undo step failed", location.url, exc_info=True)
        raise
    return store


def _make_dirs(path: Path, undo: list[Callable[[], None]], what: str) -> None:
    missing = _missing_dirs(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty_dirs(missing)
        raise ResourceUnavailable(f"{what}: cannot create {exc.filename or path}: {exc.strerror or exc}") from None
    if missing:
        undo.append(lambda: _remove_empty_dirs(missing))


def _refuse_duplicate_store(zone: Zone, name: str, location: StorageLocation) -> None:
    if ImageStore.objects.filter(zone=zone, name__iexact=name).exists():
        raise InvalidParameterValue(f"Secondary storage named {name} already exists in zone {zone.name}")
    other = ImageStore.objects.filter(url=location.url).select_related("zone").first()
    if other is not None:
        raise InvalidParameterValue(f"Secondary storage {other.name} of zone {other.zone.name} already uses "
                                    f"{location.url}")


def image_store_contents(root: Path, limit: int = 6) -> list[str]:
    """Up to `limit` paths (relative to the store) of what the store holds under its layout."""
    found: list[str] = []
    for top in ("template", "iso", "snapshots"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames.sort()
            for entry in sorted(dirnames) + sorted(filenames):
                relative = os.path.relpath(os.path.join(dirpath, entry), root)
                if relative not in _LAYOUT_DIRS:
                    found.append(relative)
                    if len(found) >= limit:
                        return found
    return found


def delete_image_store(caller, store: ImageStore) -> None:
    """Remove secondary storage: refused while anything is stored under its layout; an NFS store
    is unmounted and its mount point removed, a directory keeps everything but the empty layout."""
    compute_services.require_root_admin(caller, "delete secondary storage")
    with transaction.atomic():
        store = ImageStore.objects.select_for_update().select_related("zone").get(pk=store.pk)
        root = Path(store.mount_path)
        held_templates = list(store.template_zones.select_related("template").order_by("id")[:6])
        if held_templates:
            shown = ", ".join(f"{r.template.kind} {r.template.name}" for r in held_templates[:5])
            raise ResourceInUse(f"Secondary storage {store.name} still holds {shown}"
                                + (" and more" if len(held_templates) > 5 else "")
                                + f"; delete them from zone {store.zone.name} first (deleteTemplate/deleteIso with zoneid)")
        if store.protocol == "nfs" or root.exists():
            try:
                ensure_image_store_mounted(store)
            except ResourceUnavailable as exc:
                raise ResourceUnavailable(f"Cannot check secondary storage {store.name} is empty: {exc.message}") from None
            held = image_store_contents(root)
            if held:
                shown = ", ".join(held[:5]) + (" and more" if len(held) > 5 else "")
                raise ResourceInUse(f"Secondary storage {store.name} still holds {shown}; delete those templates, "
                                    f"ISOs and snapshots first")
        if store.protocol == "nfs":
            problem = _unmount(root)
            if problem:
                raise ResourceUnavailable(f"Cannot unmount secondary storage {store.name} from {root}: {problem}")
            _remove_empty_dirs([root])
        else:
            _remove_empty_dirs(root / d for d in _LAYOUT_DIRS)
        name, url = store.name, store.url
        store.delete()
        events.record(caller, "IMAGE.STORE.DELETE", f"Secondary storage {name} ({url}) deleted",
                      resource_type="ImageStore")


# -- capacity refresh (periodic job) ------------------------------------------------------------
def refresh_pool_stats() -> dict[str, int]:
    """Read every pool's capacity from one Up host of its scope (re-creating the pool there if
    the host lost it: libvirt's test driver forgets pools between connections, a host may have
    been reinstalled) and every image store's from its file system (re-mounting NFS stores)."""
    counts = {"pools": 0, "pools_unreadable": 0, "stores": 0, "stores_unreadable": 0}
    pools = list(StoragePool.objects.all())
    if pools:
        hosts = list(Host.objects.filter(state=HostState.UP, zone_id__in={p.zone_id for p in pools}).order_by("id"))
        drivers: dict[str, Any] = {}
        try:
            for pool in pools:
                stats = _read_pool(pool, hosts, drivers)
                if stats is None:
                    counts["pools_unreadable"] += 1
                    continue
                with transaction.atomic():
                    locked = StoragePool.objects.select_for_update().filter(pk=pool.pk).first()
                    if locked is not None:
                        _apply_stats(locked, stats)
                        locked.save(update_fields=["reported_capacity_bytes", "capacity_bytes", "used_bytes",
                                                   "stats_updated"])
                counts["pools"] += 1
        finally:
            for driver in drivers.values():
                if driver is not None:
                    driver.close()
    for store in ImageStore.objects.all():
        try:
            root = ensure_image_store_mounted(store)
            total, used = _fs_usage(root)
        except (ApiError, OSError) as exc:
            log.warning("secondary storage %s: capacity not read: %s", store.name, getattr(exc, "message", exc))
            counts["stores_unreadable"] += 1
            continue
        ImageStore.objects.filter(pk=store.pk).update(capacity_bytes=total, used_bytes=used,
                                                      stats_updated=timezone.now())
        counts["stores"] += 1
    return counts


def _read_pool(pool: StoragePool, hosts: list[Host], drivers: dict[str, Any]) -> PoolStats | None:
    spec = pool_spec(pool)
    for host in hosts:
        if host.zone_id != pool.zone_id:
            continue
        if pool.scope == StorageScope.CLUSTER and host.cluster_id != pool.cluster_id:
            continue
        if pool.scope == StorageScope.ZONE and pool.hypervisor and host.hypervisor != pool.hypervisor:
            continue
        uri = _host_uri(host)
        if uri not in drivers:
            driver = _open_driver(uri)
            try:
                driver.connect()
            except DriverError as exc:
                log.warning("primary storage %s: host %s unreachable: %s", pool.name, host.name, exc.message)
                driver = None
            drivers[uri] = driver
        driver = drivers[uri]
        if driver is None:
            continue
        try:
            return driver.ensure_pool(spec)
        except DriverError as exc:
            log.warning("primary storage %s: capacity not read on host %s: %s", pool.name, host.name, exc.message)
    return None
