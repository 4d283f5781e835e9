"""A real VM from the built-in Tiny Linux template on this machine's qemu:///system (software
emulation here): deployed through the API, it gets the address Nubo allocated by DHCP and its
host name from the config drive (both printed on its serial console), and stop, start, destroy
and expunge act on the real domain, its disks and its DHCP lease. And one installed from the
built-in Tiny Linux ISO onto a blank disk: it boots from the CD (its marker says so), sees the
disk, and its ISO drive is emptied and filled again while it runs."""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
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
from storage.models import Volume
from tests.factories import admin_user
from tests.storage.test_builtin_images import BOOT_TIMEOUT_S, SerialConsole

QEMU = "qemu:///system"
pytestmark = pytest.mark.slow_qemu


@pytest.fixture
def kvm(cloud, tmp_path):
    try:
        with get_driver(QEMU) as driver:
            driver.ping()
    except DriverError as exc:
        pytest.fail(f"{exc.message}\nThese tests need libvirtd: `make test` starts it.", pytrace=False)
    built = builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    admin = admin_user()
    third = 200 + secrets.randbelow(50)
    zone = compute_services.create_zone(admin, name="kz", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    pod = compute_services.create_pod(admin, zone=zone, name="kp", gateway=f"10.{third}.3.1", netmask="255.255.255.0")
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway=f"10.{third}.3.1", netmask="255.255.255.0",
                                          start_ip=f"10.{third}.3.100", end_ip=f"10.{third}.3.109")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="kc", hypervisor="KVM")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=QEMU)
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
    yield SimpleNamespace(admin=admin, zone=zone, pod=pod, host=host, pool=pool, template=row.template,
                          iso=iso.template, offering=offering, disk_offering=disk_offering)
    with get_driver(QEMU) as driver:  # what a failed test left on the host (rows roll back, libvirt does not)
        for vm in VirtualMachine.objects.filter(zone=zone):
            try:
                driver.stop_domain(vm.instance_name, force=True)
                driver.undefine_domain(vm.instance_name)
            except DriverError:
                pass
        driver.delete_network(networks.pod_network_spec(pod).name)
        for info in driver.list_pools():
            if info.spec.path.startswith(str(tmp_path)):
                for volume in sorted(driver.list_volumes(info.spec.name), key=lambda v: not v.backing_path):
                    driver.delete_volume(info.spec.name, volume.name)
                driver.delete_pool(info.spec.name, force=True)


def test_a_real_vm_boots_with_its_address_and_name_and_goes_away_cleanly(api, kvm):
    answer = api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                 templateid=str(kvm.template.uuid), name="tiny-1")
    job = api.job(answer)
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    address = vm["nic"][0]["ipaddress"]
    row = VirtualMachine.objects.get(uuid=vm["id"])
    with get_driver(QEMU) as driver:
        console = SerialConsole(driver, row.instance_name)
        try:
            marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=(\S+)\r?\n",
                                      BOOT_TIMEOUT_S)
        finally:
            console.close()
        assert marker.groups() == (b"tiny-1", address.encode(), b"config-2")
        spec = networks.pod_network_spec(kvm.pod)
        lease = [h for h in driver.network_info(spec.name).hosts if h.mac == vm["nic"][0]["macaddress"]]
        assert [h.ip for h in lease] == [address]

        stopped = api.job(api("stopVirtualMachine", id=vm["id"], forced="true"))
        assert stopped["jobstatus"] == 1, stopped
        assert row.instance_name not in {d.name for d in driver.list_domains()}
        assert vm["nic"][0]["macaddress"] not in {h.mac for h in driver.network_info(spec.name).hosts}
        started = api.job(api("startVirtualMachine", id=vm["id"]))
        assert started["jobstatus"] == 1, started
        assert driver.domain_state(row.instance_name).state == "running"

        root = Volume.objects.get(virtual_machine=row)
        assert api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))["jobstatus"] == 1
        assert row.instance_name not in {d.name for d in driver.list_domains()}
        assert driver.volume_info(kvm.pool.libvirt_name, root.volume_name) is None
        assert driver.volume_info(kvm.pool.libvirt_name, f"{row.instance_name}-config") is None


def test_a_real_vm_boots_from_the_iso_with_its_blank_disk_and_goes_away_cleanly(api, kvm):
    answer = api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                 templateid=str(kvm.iso.uuid), diskofferingid=str(kvm.disk_offering.uuid), name="from-cd")
    job = api.job(answer)
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    assert vm["isoid"] == str(kvm.iso.uuid)
    row = VirtualMachine.objects.get(uuid=vm["id"])
    root = Volume.objects.get(virtual_machine=row)
    with get_driver(QEMU) as driver:
        console = SerialConsole(driver, row.instance_name)
        try:
            marker = console.wait_for(r"NUBO-TINY-LINUX READY \(iso\) hostname=(\S+) ip=(\S+) config=(\S+)\r?\n",
                                      BOOT_TIMEOUT_S)
            assert marker.groups() == (b"from-cd", vm["nic"][0]["ipaddress"].encode(), b"config-2")
            console.wait_for(r"root@from-cd:[^\r\n]*# ", 15, marker.end())
            mark = len(console.output)
            console.send("cat /sys/block/vda/size; echo NUBO-CHECK-\"\"DONE\r")
            done = console.wait_for(r"NUBO-CHECK-DONE", 15, mark)
            assert str((1 << 30) // 512).encode() in console.output[mark:done.start()]  # the guest sees 1 GiB
        finally:
            console.close()
        live = ET.fromstring(driver.conn.lookupByName(row.instance_name).XMLDesc(0))
        disks = {d.find("target").get("dev"): d for d in live.findall("devices/disk")}
        assert disks["vda"].find("source").get("volume") == root.volume_name
        assert disks["vda"].find("boot").get("order") == "2" and disks["hdd"].find("boot").get("order") == "1"
        blank = driver.volume_info(kvm.pool.libvirt_name, root.volume_name)
        assert (blank.format, blank.capacity_bytes, blank.backing_path) == ("qcow2", 1 << 30, "")
        iso_volume = disks["hdd"].find("source").get("volume")
        assert driver.volume_info(kvm.pool.libvirt_name, iso_volume).format == "iso"

        detached = api.job(api("detachIso", virtualmachineid=vm["id"]))  # the running guest's drive, at once
        assert detached["jobstatus"] == 1, detached
        live = ET.fromstring(driver.conn.lookupByName(row.instance_name).XMLDesc(0))
        hdd = next(d for d in live.findall("devices/disk") if d.find("target").get("dev") == "hdd")
        assert hdd.find("source") is None or "volume" not in hdd.find("source").attrib
        attached = api.job(api("attachIso", id=str(kvm.iso.uuid), virtualmachineid=vm["id"]))
        assert attached["jobstatus"] == 1, attached
        live = ET.fromstring(driver.conn.lookupByName(row.instance_name).XMLDesc(0))
        hdd = next(d for d in live.findall("devices/disk") if d.find("target").get("dev") == "hdd")
        assert hdd.find("source").get("volume") == iso_volume

        assert api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))["jobstatus"] == 1
        assert row.instance_name not in {d.name for d in driver.list_domains()}
        left = {v.name for v in driver.list_volumes(kvm.pool.libvirt_name)}
        assert left == {iso_volume}, left  # the disk and the config drive are gone; the ISO's pool copy stays
