"""A real VM from the built-in Tiny Linux template on this machine's qemu:///system (software
emulation here): deployed through the API, it gets the address Nubo allocated by DHCP and its
host name from the config drive (both printed on its serial console), and stop, start, destroy
and expunge act on the real domain, its disks and its DHCP lease. And one installed from the
built-in Tiny Linux ISO onto a blank disk: it boots from the CD (its marker says so), sees the
disk, and its ISO drive is emptied and filled again while it runs."""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pytest

from compute import networks
from compute.drivers import get_driver
from compute.models import VirtualMachine
from storage.models import Volume
from tests.compute.kvm import QEMU, make_kvm_zone, remove_kvm_zone
from tests.storage.test_builtin_images import BOOT_TIMEOUT_S, SerialConsole

pytestmark = pytest.mark.slow_qemu


@pytest.fixture
def kvm(cloud, tmp_path):
    zone = make_kvm_zone(tmp_path)
    yield zone
    remove_kvm_zone(zone)


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


SIZE_REPORT = ("echo CPUS=$(cat /sys/devices/system/cpu/online) CPU1=$(cat /sys/devices/system/cpu/cpu1/online "
               "2>/dev/null || echo absent) MEM=$(awk '/MemTotal/ {print $2}' /proc/meminfo)")
SIZE_LINE = r"CPUS=([0-9,-]+) CPU1=(\w+) MEM=(\d+)"  # the echoed command line itself does not match


def test_a_running_vm_scaled_up_sees_its_new_vcpu_and_memory(api, kvm):
    """scaleVirtualMachine on a real guest: QEMU hot-plugs a vCPU and a 128 MiB DIMM, the guest
    brings both online (the image's hotplug helper and memhp_default_state=online), and libvirt's
    live XML, the API's answer and the guest agree."""
    from compute.models import ServiceOffering
    from storage.images.builtin import MIN_MEMORY_MIB

    assert api("updateConfiguration", name="enable.dynamic.scale.vm", value="true",
               zoneid=str(kvm.zone.uuid)).status == 200
    assert api("updateTemplate", id=str(kvm.template.uuid), isdynamicallyscalable="true").status == 200
    bigger = ServiceOffering.objects.create(name="Tiny x2", display_text="2 vCPU", cpu_number=2, cpu_speed=500,
                                            memory=MIN_MEMORY_MIB + 128)
    job = api.job(api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                      templateid=str(kvm.template.uuid), name="grows"))
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    row = VirtualMachine.objects.get(uuid=vm["id"])
    with get_driver(QEMU) as driver:
        console = SerialConsole(driver, row.instance_name)
        try:
            marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=grows ", BOOT_TIMEOUT_S)
            prompt = console.wait_for(r"root@grows:[^\r\n]*# ", 15, marker.end())
            console.send(SIZE_REPORT + "\r")
            before = console.wait_for(SIZE_LINE, 15, prompt.end())
            assert before.group(1, 2) == (b"0", b"absent"), before.group(0)

            scaled = api.job(api("scaleVirtualMachine", id=vm["id"], serviceofferingid=str(bigger.uuid)))
            assert scaled["jobstatus"] == 1, scaled
            answer = scaled["jobresult"]["virtualmachine"]
            assert (answer["state"], answer["cpunumber"], answer["memory"]) == ("Running", 2, MIN_MEMORY_MIB + 128)
            with get_driver(QEMU) as other:  # not the console's connection: its blocking stream holds it
                live = ET.fromstring(other.conn.lookupByName(row.instance_name).XMLDesc(0))
            assert live.find("vcpu").get("current", live.findtext("vcpu")) == "2"
            assert int(live.findtext("memory")) == (MIN_MEMORY_MIB + 128) << 10  # KiB: the boot memory + the DIMM
            assert live.find("devices/memory[@model='dimm']/target/size").text == str(128 << 10)
            listed = api("listVirtualMachines", id=vm["id"]).inner["virtualmachine"][0]
            assert (listed["cpunumber"], listed["memory"]) == (answer["cpunumber"], answer["memory"])

            after = None
            for _ in range(15):  # the guest brings them online within moments
                mark = len(console.output)
                console.send(SIZE_REPORT + "\r")
                after = console.wait_for(SIZE_LINE, 15, mark)
                if after.group(1) == b"0-1" and int(after.group(3)) > int(before.group(3)):
                    break
                time.sleep(1)
            assert after.group(1, 2) == (b"0-1", b"1"), after.group(0)  # the new vCPU, online
            assert int(after.group(3)) - int(before.group(3)) == 128 << 10, (before.group(0), after.group(0))
        finally:
            console.close()
        assert api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))["jobstatus"] == 1


def test_the_hosts_dhcp_answers_only_the_vms_nubo_placed_there(api, kvm):
    """Static entries only, no dynamic range: a guest on the same segment that Nubo did not place
    on this host (another host's guest, a stranger) gets no address from it."""
    import secrets
    import uuid

    from compute.drivers import DiskSpec, DomainSpec, NicSpec
    from storage.images.primary import base_volume_name

    job = api.job(api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                      templateid=str(kvm.template.uuid), name="known"))
    assert job["jobstatus"] == 1, job
    network = networks.pod_network_spec(kvm.pod).name
    stranger = f"nubo-stranger-{secrets.token_hex(3)}"
    with get_driver(QEMU) as driver:
        driver.clone_volume(kvm.pool.libvirt_name, base_volume_name(kvm.template), f"{stranger}-root")
        try:
            driver.define_domain(DomainSpec(
                name=stranger, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=kvm.offering.memory,
                disks=(DiskSpec(target="vda", pool=kvm.pool.libvirt_name, volume=f"{stranger}-root", boot_order=1),),
                nics=(NicSpec(mac="52:54:00:%02x:%02x:%02x" % tuple(secrets.token_bytes(3)), network=network),)))
            driver.start_domain(stranger)
            console = SerialConsole(driver, stranger)
            try:
                marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=\S+ ip=(\S+) config=(\S+)\r?\n",
                                          BOOT_TIMEOUT_S)
            finally:
                console.close()
            assert marker.groups() == (b"none", b"none")  # no lease: the host's DHCP does not know its MAC
        finally:
            driver.stop_domain(stranger, force=True)
            driver.undefine_domain(stranger)
            driver.delete_volume(kvm.pool.libvirt_name, f"{stranger}-root")
