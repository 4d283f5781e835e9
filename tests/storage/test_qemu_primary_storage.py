"""Primary storage on a real KVM host: this machine's qemu:///system (make test starts libvirtd).
The pools are real libvirt pools in real directories; each test removes what it made."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from compute import services as compute_services
from compute.drivers import DriverError, get_driver
from compute.drivers.domain_xml import volume_xml
from storage import services
from storage.models import StoragePool
from tests.factories import admin_user
from tests.storage.conftest import make_zone

QEMU = "qemu:///system"


def _pools_under(root: Path) -> list[str]:
    with get_driver(QEMU) as driver:
        return [p.spec.name for p in driver.list_pools() if p.spec.path.startswith(str(root))]


@pytest.fixture
def kvm(cloud, tmp_path) -> Iterator:
    """Zone > pod > KVM cluster > this machine's libvirtd as host (its KVM probe runs once)."""
    try:
        with get_driver(QEMU) as driver:
            driver.ping()
    except DriverError as exc:
        pytest.fail(f"{exc.message}\nThese tests need libvirtd: `make test` starts it "
                    f"(scripts/services.sh start-libvirtd as root).", pytrace=False)
    admin = admin_user()
    zone, pod = make_zone(admin, "kz")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="kvm1", hypervisor="KVM")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=QEMU)
    yield type("Kvm", (), dict(admin=admin, zone=zone, pod=pod, cluster=cluster, host=host))
    with get_driver(QEMU) as driver:  # whatever a failed test left (rows roll back, libvirt does not)
        for pool in driver.list_pools():
            if pool.spec.path.startswith(str(tmp_path)):
                driver.delete_pool(pool.spec.name, force=True)


def test_a_directory_pool_is_a_real_libvirt_pool(api, kvm, tmp_path):
    directory = tmp_path / "primary"
    answer = api("createStoragePool", zoneid=kvm.zone.uuid, podid=kvm.pod.uuid, clusterid=kvm.cluster.uuid,
                 name="local", url=f"file://{directory}")
    assert answer.status == 200, answer
    pool = answer.inner["storagepool"]
    row = StoragePool.objects.get()
    assert directory.is_dir()
    with get_driver(QEMU) as driver:
        (info,) = [p for p in driver.list_pools() if p.spec.name == row.libvirt_name]
        stats = driver.pool_stats(row.libvirt_name)
    assert info.active and info.autostart
    assert (info.spec.kind, info.spec.path) == ("dir", str(directory))
    assert pool["disksizetotal"] == stats.capacity_bytes == row.capacity_bytes > 0
    # used = the file system's used bytes, which other processes change between two readings
    assert pool["disksizeused"] == row.used_bytes > 0
    assert abs(row.used_bytes - stats.allocation_bytes) < 256 << 20
    assert pool["hypervisor"] == "KVM" and pool["type"] == "Filesystem"
    assert list(directory.iterdir()) == []  # the write probe cleaned up after itself

    answer = api("deleteStoragePool", id=pool["id"])
    assert answer.status == 200, answer
    assert _pools_under(tmp_path) == []
    assert directory.is_dir()  # the directory (the data) stays


def test_a_path_that_cannot_be_created_leaves_nothing(api, kvm, tmp_path):
    (tmp_path / "plain-file").write_text("x")
    answer = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="bad",
                 url=f"file://{tmp_path}/plain-file/primary")
    assert answer.status == 534, answer
    assert answer.errortext.startswith(f"Cannot set up primary storage bad on host {kvm.host.name}: ")
    assert "Not a directory" in answer.errortext
    assert not StoragePool.objects.exists()
    assert _pools_under(tmp_path) == []


def test_a_directory_that_is_not_writable_leaves_nothing(api, kvm, tmp_path, monkeypatch):
    """As root every directory is writable; a read-only file system is what fails in practice."""
    monkeypatch.setattr(services, "_write_problem", lambda path: f"{path} is not writable (Read-only file system)")
    answer = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="ro",
                 url=f"file://{tmp_path}/ro/primary")
    assert answer.status == 534, answer
    assert f"{tmp_path}/ro/primary is not writable (Read-only file system)" in answer.errortext
    assert not StoragePool.objects.exists()
    assert _pools_under(tmp_path) == []
    assert not (tmp_path / "ro").exists()  # the directories libvirt made for it are gone too


def test_an_nfs_server_that_does_not_answer_leaves_nothing(api, kvm, tmp_path, settings):
    answer = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="nfs",
                 url="nfs://127.0.0.1/export/primary")
    assert answer.status == 534, answer
    assert f"Cannot set up primary storage nfs on host {kvm.host.name}: " in answer.errortext
    if services.mount_nfs_helper() is None:
        assert "install nfs-common" in answer.errortext
    else:
        assert "refuses connections on port 2049" in answer.errortext
    assert not StoragePool.objects.exists()
    assert not Path(settings.NUBO_POOL_MOUNT_DIR).exists()


def test_delete_refuses_while_the_pool_holds_a_volume(api, kvm, tmp_path):
    directory = tmp_path / "primary"
    pool_id = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="vols",
                  url=str(directory)).inner["storagepool"]["id"]
    name = StoragePool.objects.get().libvirt_name
    with get_driver(QEMU) as driver:
        driver.conn.storagePoolLookupByName(name).createXML(volume_xml("root-1.raw", 1 << 20), 0)
    answer = api("deleteStoragePool", id=pool_id)
    assert answer.status == 536, answer
    assert "root-1.raw" in answer.errortext
    assert _pools_under(tmp_path) == [name]
    assert api("deleteStoragePool", id=pool_id, forced="true").status == 200
    assert _pools_under(tmp_path) == []
    assert (directory / "root-1.raw").exists()  # forced removes the pool, never the data


def test_host_lifecycle_and_refresh_recreate_the_pool(api, kvm, tmp_path):
    pool_id = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="life",
                  url=str(tmp_path / "primary")).inner["storagepool"]["id"]
    name = StoragePool.objects.get().libvirt_name
    with get_driver(QEMU) as driver:  # libvirtd lost it (say, the host was reinstalled)
        driver.delete_pool(name)
    assert services.refresh_pool_stats()["pools"] == 1
    assert _pools_under(tmp_path) == [name]

    compute_services.prepare_host_for_maintenance(kvm.admin, kvm.host)
    compute_services.delete_host(kvm.admin, kvm.host)  # its pools go with it
    assert _pools_under(tmp_path) == []
    host = compute_services.add_host(kvm.admin, zone=kvm.zone, pod=kvm.pod, cluster=kvm.cluster, url=QEMU)
    assert _pools_under(tmp_path) == [name]  # a new host gets the cluster's pools
    assert host.state == "Up"
    assert api("deleteStoragePool", id=pool_id).status == 200
    assert _pools_under(tmp_path) == []


def test_a_refusal_after_the_pool_was_made_removes_it_and_its_directory(api, kvm, tmp_path):
    answer = api("createStoragePool", zoneid=kvm.zone.uuid, clusterid=kvm.cluster.uuid, name="huge",
                 url=f"file://{tmp_path}/new/primary", capacitybytes=1 << 60)
    assert answer.status == 431, answer
    assert "capacitybytes 1152921504606846976 is more than the" in answer.errortext
    assert not StoragePool.objects.exists()
    assert _pools_under(tmp_path) == []
    assert not (tmp_path / "new").exists()
