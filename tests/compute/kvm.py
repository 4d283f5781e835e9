"""A basic zone whose one host is this machine's qemu:///system (software emulation here), with
the built-in Tiny Linux template and ISO Ready on it and a 1 GiB disk offering: for tests that boot real guests. The rows are made
with the services (so a test using transactional_db commits them for server processes too);
`remove_kvm_zone` takes away what libvirt keeps whatever happened to the rows."""
from __future__ import annotations

import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from compute import networks, offerings
from compute import services as compute_services
from compute.drivers import DriverError, get_driver
from compute.models import ServiceOffering, VirtualMachine, Zone
from storage import services as storage_services
from storage.images import builtin
from storage.images import services as images
from tests.factories import admin_user

QEMU = "qemu:///system"


def make_kvm_zone(tmp_path: Path, urls: tuple[str, ...] = (QEMU,), third: int | None = None) -> SimpleNamespace:
    """`urls`: the zone's hosts (one cluster, one primary pool they share); the pod's guest subnet
    is 10.<third>.3.0/24 (random when not given)."""
    for url in urls:
        try:
            with get_driver(url) as driver:
                driver.ping()
        except DriverError as exc:
            pytest.fail(f"{exc.message}\nThese tests need libvirtd: `make test` starts it.", pytrace=False)
    built = builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    admin = admin_user()
    third = third or 200 + secrets.randbelow(50)
    zone = compute_services.create_zone(admin, name="kz", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    pod = compute_services.create_pod(admin, zone=zone, name="kp", gateway=f"10.{third}.3.1", netmask="255.255.255.0")
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway=f"10.{third}.3.1", netmask="255.255.255.0",
                                          start_ip=f"10.{third}.3.100", end_ip=f"10.{third}.3.109")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="kc", hypervisor="KVM")
    hosts = [compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=url) for url in urls]
    pool = storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name="kpool",
                                                url=f"file://{tmp_path}/primary")
    storage_services.add_image_store(admin, zone=zone, name="ks", url=f"file://{tmp_path}/secondary")
    image = built["images"]["template"]
    row, = images.register(admin, is_iso=False, name="Tiny Linux", url=f"file://{image['path']}",
                           zoneid=str(zone.uuid), format="QCOW2", hypervisor="KVM", is_public=True,
                           check_url=False)
    images.run_download(row.pk)
    iso_image = built["images"]["iso"]
    iso, = images.register(admin, is_iso=True, name="Tiny Linux ISO", url=f"file://{iso_image['path']}",
                           zoneid=str(zone.uuid), is_public=True, bootable=True, check_url=False)
    images.run_download(iso.pk)
    offering = ServiceOffering.objects.create(name="Tiny", display_text="tiny", cpu_number=1, cpu_speed=500,
                                              memory=builtin.MIN_MEMORY_MIB)
    disk_offering = offerings.create_disk_offering(admin, name="Small disk", display_text="1 GiB", disk_size=1)
    return SimpleNamespace(admin=admin, zone=zone, pod=pod, host=hosts[0], hosts=hosts, pool=pool,
                           template=row.template, iso=iso.template, offering=offering, disk_offering=disk_offering, built=built,
                           tmp_path=tmp_path)


def remove_network_and_pools(driver, *, network: str | None, under: str, warn=None) -> None:
    """Delete a pod's libvirt network and every pool (with its volumes, clones first) whose
    directory lies under `under`. `warn(text)` hears what could not be removed (default: raise)."""
    def attempt(what: str, action) -> None:
        try:
            action()
        except DriverError as exc:
            if warn is None:
                raise
            warn(f"cleanup: {what}: {exc.message}")

    if network:
        attempt(f"network {network}", lambda: driver.delete_network(network))
    for info in driver.list_pools():
        if not info.spec.path.startswith(under):
            continue

        def empty_and_delete(name=info.spec.name) -> None:
            for volume in sorted(driver.list_volumes(name), key=lambda v: not v.backing_path):
                driver.delete_volume(name, volume.name)
            driver.delete_pool(name, force=True)

        attempt(f"pool {info.spec.name}", empty_and_delete)


def remove_kvm_zone(kvm: SimpleNamespace) -> None:
    """What a test left on the hosts (rows roll back or are flushed, libvirt does not forget)."""
    for url in [host.url for host in kvm.hosts]:
        with get_driver(url) as driver:
            for vm in VirtualMachine.objects.filter(zone=kvm.zone):
                try:
                    driver.stop_domain(vm.instance_name, force=True)
                    driver.undefine_domain(vm.instance_name)
                except DriverError:
                    pass
            driver.delete_network(networks.shared_network_name(kvm.zone))
            remove_network_and_pools(driver, network=networks.pod_network_spec(kvm.pod).name, under=str(kvm.tmp_path))
