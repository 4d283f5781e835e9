"""Fixtures of the storage suites: a zone with a Simulator cluster and host (libvirt's
test:///default, in-process), fake hosts for failure injection, and private mount directories."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from compute import services as compute_services
from compute.drivers import DriverError, PoolInfo, PoolStats, StoragePoolSpec
from tests.factories import admin_user


@pytest.fixture(autouse=True)
def _private_mount_dirs(settings, tmp_path):
    """NFS mount points of pools (on hosts) and image stores (here) go under this test's tmp dir."""
    settings.NUBO_POOL_MOUNT_DIR = str(tmp_path / "pool-mnt")
    settings.NUBO_SECONDARY_MOUNT_DIR = tmp_path / "secondary-mnt"


def make_zone(admin, name: str = "z1", octet: int = 1):
    zone = compute_services.create_zone(admin, name=name, dns1="8.8.8.8", internal_dns1="10.0.0.1")
    pod = compute_services.create_pod(admin, zone=zone, name=f"{name}-p1", gateway=f"10.{octet}.0.1",
                                      netmask="255.255.255.0", start_ip=f"10.{octet}.0.10", end_ip=f"10.{octet}.0.20")
    return zone, pod


def add_sim_host(admin, zone, pod, cluster, name: str):
    return compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=f"http://sim/{cluster.name}/{name}",
                                     hypervisor="Simulator")


@pytest.fixture
def infra(cloud):
    """Zone z1 > pod > Simulator cluster c1 > host h1 (Up)."""
    admin = admin_user()
    zone, pod = make_zone(admin)
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="c1", hypervisor="Simulator")
    host = add_sim_host(admin, zone, pod, cluster, "h1")
    return SimpleNamespace(admin=admin, zone=zone, pod=pod, cluster=cluster, host=host)


# -- fake hosts: one libvirtd per host, failures on demand -----------------------------------------
@dataclass
class FakeLibvirtd:
    uri: str
    pools: dict[str, StoragePoolSpec] = field(default_factory=dict)
    unreachable: bool = False
    fail_ensure: str = ""  # a DriverError message ensure_pool raises
    volumes: dict[str, list[str]] = field(default_factory=dict)  # pool name -> volume names
    calls: list[tuple[str, str]] = field(default_factory=list)
    capacity: int = 50 << 30
    allocation: int = 5 << 30


class FakeDriver:
    def __init__(self, daemon: FakeLibvirtd) -> None:
        self.daemon = daemon
        self.uri = daemon.uri

    def __enter__(self) -> "FakeDriver":
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        if self.daemon.unreachable:
            raise DriverError(f"Cannot connect to {self.uri}: Connection refused; is libvirtd running there?")

    def close(self) -> None:
        pass

    def list_pools(self) -> list[PoolInfo]:
        return [PoolInfo(spec=s, active=True, autostart=True) for s in self.daemon.pools.values()]

    def ensure_pool(self, spec: StoragePoolSpec) -> PoolStats:
        self.daemon.calls.append(("ensure", spec.name))
        if self.daemon.fail_ensure:
            raise DriverError(self.daemon.fail_ensure)
        self.daemon.pools[spec.name] = spec
        return PoolStats(self.daemon.capacity, self.daemon.allocation, self.daemon.capacity - self.daemon.allocation)

    def delete_pool(self, name: str, force: bool = False) -> None:
        self.daemon.calls.append(("delete", name))
        volumes = self.daemon.volumes.get(name, [])
        if volumes and not force:
            raise DriverError(f"Storage pool {name} on {self.uri} still holds {len(volumes)} volume(s): "
                              f"{', '.join(volumes)}; delete them first")
        self.daemon.pools.pop(name, None)


@pytest.fixture
def fake_hosts(monkeypatch):
    """Every host gets its own fake libvirtd (fake://<host name>) for the storage services;
    returns {host name: FakeLibvirtd}, created on first use."""
    from storage import services

    daemons: dict[str, FakeLibvirtd] = {}

    def uri_of(host) -> str:
        return f"fake://{host.name}"

    def open_driver(uri: str) -> FakeDriver:
        name = uri.removeprefix("fake://")
        return FakeDriver(daemons.setdefault(name, FakeLibvirtd(uri)))

    monkeypatch.setattr(services, "_host_uri", uri_of)
    monkeypatch.setattr(services, "_open_driver", open_driver)

    class Lookup:
        def __getitem__(self, name: str) -> FakeLibvirtd:
            return daemons.setdefault(name, FakeLibvirtd(f"fake://{name}"))

        def __contains__(self, name: str) -> bool:
            return name in daemons

    return Lookup()
