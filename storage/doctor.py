"""`manage.py doctor` checks for storage: the primary storage directories of this machine's KVM
host and the secondary storage Nubo writes to are writable, and NFS can be mounted here."""
from __future__ import annotations

import os
import platform
from pathlib import Path

from portal.doctor import CheckResult, check


def _nfs_in_kernel() -> bool:
    """Whether this kernel can mount NFS: the file system is registered, or its module exists."""
    try:
        if any(line.split()[-1] in ("nfs", "nfs4") for line in Path("/proc/filesystems").read_text().splitlines()
               if line.strip()):
            return True
    except OSError:
        pass
    release = platform.release()
    return any(Path(f"/lib/modules/{release}/kernel/fs/nfs/{name}").exists() for name in ("nfs.ko", "nfs.ko.xz",
                                                                                            "nfs.ko.zst"))


@check("nfs-client")
def nfs_client() -> CheckResult:
    from storage.services import mount_nfs_helper

    helper = mount_nfs_helper()
    if helper is None:
        return CheckResult.warn("mount.nfs is missing: NFS primary storage (on this machine's KVM host) and NFS "
                                "secondary storage cannot be mounted here; file:// storage works",
                                "install nfs-common: scripts/setup-system.sh nfs (make deps does it)")
    if not _nfs_in_kernel():
        return CheckResult.warn(f"{helper} is installed but this kernel has no NFS client (no nfs in "
                                f"/proc/filesystems, no nfs module): NFS storage cannot be mounted here",
                                "load it with modprobe nfs, or use file:// storage on this machine")
    return CheckResult.ok(f"{helper} is installed and the kernel can mount NFS")


def _writable(path: Path) -> str | None:
    from storage.services import _write_problem

    if not path.is_dir():
        return f"{path} is missing"
    return _write_problem(path)


@check("primary-storage", requires=("migrations",))
def primary_storage_writable() -> CheckResult:
    """The directories (and NFS mount points) of primary storage used by this machine's KVM host."""
    from compute.choices import HostState
    from compute.models import Host
    from storage.models import StoragePool
    from storage.services import _host_uri, _is_local, host_pools

    local_hosts = [h for h in Host.objects.select_related("cluster") if _is_local(_host_uri(h))]
    pools: dict[int, StoragePool] = {}
    for host in local_hosts:
        if host.state == HostState.UP:
            pools.update({p.pk: p for p in host_pools(host)})
    if not pools:
        return CheckResult.ok("no primary storage on this machine's KVM host yet")
    problems = [f"{p.name}: {problem}" for p in pools.values()
                if (problem := _writable(Path(p.local_path or p.path)))]
    if problems:
        return CheckResult.fail("; ".join(problems),
                                "check the directory exists and its file system is mounted read-write; for NFS, "
                                "that the export allows this machine read-write access (no root_squash), then "
                                "reconnect the host")
    return CheckResult.ok(f"{len(pools)} primary storage pool(s) writable: "
                          + ", ".join(p.local_path or p.path for p in pools.values()))


@check("secondary-storage", requires=("migrations",))
def secondary_storage_writable() -> CheckResult:
    from storage.models import ImageStore

    stores = list(ImageStore.objects.all())
    if not stores:
        return CheckResult.ok("no secondary storage added yet")
    problems = []
    for store in stores:
        root = Path(store.mount_path)
        if store.protocol == "nfs" and not os.path.ismount(root):
            problems.append(f"{store.name}: {store.url} is not mounted at {root}")
            continue
        problem = _writable(root)
        if problem:
            problems.append(f"{store.name}: {problem}")
    if problems:
        return CheckResult.fail("; ".join(problems),
                                "NFS stores are mounted again by the refresh_pool_stats job (make run's scheduler) "
                                "once the server answers; a directory must exist and be writable by Nubo")
    return CheckResult.ok(f"{len(stores)} secondary storage(s) writable: " + ", ".join(s.mount_path for s in stores))
