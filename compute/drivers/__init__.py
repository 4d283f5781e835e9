"""Hypervisor drivers: the only way Nubo talks to hosts (see base.py for the interface).

    from compute.drivers import get_driver, DriverError

    with get_driver(host.url) as driver:
        stats = driver.host_stats()
"""
from __future__ import annotations

from urllib.parse import urlsplit

from compute.drivers.base import (
    ConsoleInfo,
    DhcpHost,
    DiskSpec,
    MEMORY_SLOTS,
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
    NicSpec,
    PoolInfo,
    PoolStats,
    StoragePoolSpec,
    VolumeFormat,
    VolumeInfo,
    cpu_utilisation,
)

__all__ = [
    "ConsoleInfo", "DhcpHost", "DiskSpec", "DomainSize", "DomainSpec", "DomainState", "DomainStatus", "DriverError", "DriverNotFound",
    "HostInfo", "HostStats", "HypervisorDriver", "KvmProbe", "MEMORY_SLOTS", "NetworkInfo", "NetworkSpec", "NicSpec", "PoolInfo", "PoolStats",
    "StoragePoolSpec", "VolumeFormat", "VolumeInfo", "cpu_utilisation", "get_driver", "libvirt_uri",
]

SIMULATOR_URI = "test:///default"
LOCAL_URI = "qemu:///system"


def libvirt_uri(url: str, username: str = "root") -> str:
    """The libvirt URI for an addHost url: libvirt URIs pass unchanged; a bare host name, or
    CloudStack's http://host, means qemu+ssh://<username>@host/system."""
    url = url.strip()
    parts = urlsplit(url)
    if "://" in url and parts.scheme.partition("+")[0] in ("qemu", "test"):
        return url
    if parts.scheme in ("http", "https") and parts.hostname:
        host = parts.hostname
    elif url and "://" not in url and "/" not in url and "@" not in url:
        host = url.strip("[]")
    else:
        raise DriverError(f"{url!r} is not a host address: use a host name, qemu+ssh://user@host/system, "
                          f"qemu+tls://host/system, qemu:///system or test:///default")
    host = f"[{host}]" if ":" in host else host
    return f"qemu+ssh://{username}@{host}/system" if username else f"qemu+ssh://{host}/system"


def get_driver(uri: str, username: str = "", password: str = "", connect_timeout_s: float = 10.0) -> HypervisorDriver:
    """A driver for `uri`, not yet connected (use it as a context manager, or call connect())."""
    from compute.drivers.libvirt_driver import LibvirtDriver  # libvirt is imported on first use only

    return LibvirtDriver(uri, username=username, password=password, connect_timeout_s=connect_timeout_s)
