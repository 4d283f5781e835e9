"""VMs installed from an ISO, data disks and the ISO drive (attachIso / detachIso) on Simulator hosts
(libvirt's test:///default). What a host holds is read back through libvirt (`host`, a connection
kept open so the in-process test driver keeps its state between the jobs' connections), not only
from the database. A real guest booting from the built-in ISO: test_instances_qemu.py."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import libvirt
import pytest

from accounts import limits
from compute import instances, offerings
from compute.drivers import DriverError, get_driver
from compute.drivers.libvirt_driver import LibvirtDriver
from compute.models import DiskOffering, GuestIpAddress, VirtualMachine
from portal.models import Event
from storage.images import primary
from storage.images import services as images
from storage.models import StoragePool, Volume
from tests.compute.test_instances import deploy, sim  # noqa: F401  (the Simulator zone fixture)
from tests.factories import make_domain
from tests.images import make_iso

GIB = 1 << 30


@pytest.fixture
def host():
    """A connection to the Simulator held for the whole test: the test driver forgets its pools and
    domains when its last connection closes."""
    with get_driver("test:///default") as driver:
        yield driver


@pytest.fixture
def iso_sim(sim, tmp_path, host):  # noqa: F811
    """`sim` plus a public bootable ISO Ready in the zone, a fixed 1 GiB and a customized (1-8 GiB)
    disk offering."""
    row, = images.register(sim.admin, is_iso=True, name="installer", display_text="An installer",
                           url=make_iso(tmp_path / "installer.iso").as_uri(), zoneid=str(sim.zone.uuid), is_public=True)
    images.run_download(row.pk)
    fixed = offerings.create_disk_offering(sim.admin, name="one", display_text="1 GiB", disk_size=1)
    custom = offerings.create_disk_offering(sim.admin, name="any", display_text="any size", customized=True)
    DiskOffering.objects.filter(pk=custom.pk).update(max_size=8)
    custom.refresh_from_db()
    return SimpleNamespace(**vars(sim), iso=row.template, fixed=fixed, custom=custom, tmp_path=tmp_path)


def private_iso(sim, tenant):
    """An ISO of `tenant`'s, not public, Ready in the zone."""
    row, = images.register(tenant.user, is_iso=True, name="b-private", zoneid=str(sim.zone.uuid), check_url=False,
                           url=make_iso(sim.tmp_path / "b.iso").as_uri())
    images.run_download(row.pk)
    return row.template


def pool_volumes(host, pool: StoragePool) -> dict[str, object]:
    return {v.name: v for v in host.list_volumes(pool.libvirt_name)}


def definition(host, vm: VirtualMachine) -> ET.Element:
    """The domain's definition: what its next start uses, and (QEMU) what runs."""
    return ET.fromstring(host.conn.lookupByName(vm.instance_name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def drive(domain: ET.Element, target: str) -> ET.Element:
    return next(d for d in domain.findall("devices/disk") if d.find("target").get("dev") == target)


def deployed(api, sim, **params) -> dict:
    answer = deploy(api, sim, **params)
    assert answer.status == 200, answer
    job = api.job(answer)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]


# -- deploying from an ISO ---------------------------------------------------------------------------
def test_an_iso_install_gets_a_blank_root_disk_and_boots_from_the_cd_first(api, iso_sim, host):
    vm = deployed(api, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(iso_sim.fixed.uuid),
                  name="from-cd")
    iso = iso_sim.iso
    assert (vm["isoid"], vm["isoname"], vm["isodisplaytext"]) == (str(iso.uuid), "installer", "An installer")
    assert vm["templateid"] == str(iso.uuid) and vm["state"] == "Running"  # as CloudStack records it
    row = VirtualMachine.objects.get(uuid=vm["id"])
    root, = Volume.objects.filter(virtual_machine=row)
    assert (root.type, root.size, root.template, root.base, root.disk_offering) == ("ROOT", GIB, None, None,
                                                                                   iso_sim.fixed)
    on_pool = pool_volumes(host, iso_sim.pool)
    blank = on_pool[root.volume_name]
    assert (blank.format, blank.capacity_bytes, blank.backing_path) == ("qcow2", GIB, "")
    copy = primary.pool_copies(iso)[0]
    assert copy.volume_name in on_pool and copy.pool == iso_sim.pool  # the ISO went to the pool once, read-only
    domain = definition(host, row)
    assert drive(domain, "vda").find("boot").get("order") == "2"
    cd = drive(domain, "hdd")
    assert cd.get("device") == "cdrom" and cd.find("source").attrib == {"pool": iso_sim.pool.libvirt_name,
                                                                        "volume": copy.volume_name}
    assert cd.find("boot").get("order") == "1" and cd.find("readonly") is not None
    assert drive(domain, "hdc").find("boot") is None  # the config drive is never booted
    listed = api("listVirtualMachines", isoid=str(iso.uuid), listall="true").inner["virtualmachine"]
    assert [v["id"] for v in listed] == [vm["id"]]
    assert StoragePool.objects.get(pk=iso_sim.pool.pk).allocated_bytes == GIB


def test_a_customized_disk_offering_takes_size(api, iso_sim, host):
    vm = deployed(api, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(iso_sim.custom.uuid), size="3")
    root = Volume.objects.get(virtual_machine__uuid=vm["id"])
    assert root.size == 3 * GIB == pool_volumes(host, iso_sim.pool)[root.volume_name].capacity_bytes


@pytest.mark.parametrize("extra, says", [
    ({}, "Deploying from ISO installer needs a disk offering for the VM's root disk: give diskofferingid"),
    ({"diskofferingid": "custom"}, "Disk offering any is customized: give size, the disk's size in GiB (1 to 8)"),
    ({"diskofferingid": "custom", "size": "9"}, "size 9 GiB is outside the range 1-8 GiB of disk offering any"),
    ({"diskofferingid": "custom", "size": "0"}, "size 0 GiB is outside the range 1-8 GiB"),
    ({"diskofferingid": "fixed", "size": "2"}, "Disk offering one has a fixed size of 1 GiB: leave out size"),
    ({"diskofferingid": "fixed", "rootdisksize": "2"}, "rootdisksize applies to templates"),
])
def test_iso_deploy_refusals_say_what_to_give(api, iso_sim, host, extra, says):
    params = {"templateid": str(iso_sim.iso.uuid), **extra}
    if "diskofferingid" in extra:
        params["diskofferingid"] = str(getattr(iso_sim, extra["diskofferingid"]).uuid)
    answer = deploy(api, iso_sim, **params)
    assert answer.status == 431, answer
    assert says in answer.errortext
    assert not VirtualMachine.objects.exists() and not Volume.objects.exists()
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exists()


def test_a_non_bootable_iso_or_one_not_ready_in_the_zone_is_refused(api, iso_sim):
    images.update(iso_sim.admin, iso_sim.iso, bootable=False)
    answer = deploy(api, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(iso_sim.fixed.uuid))
    assert answer.status == 431
    assert "ISO installer is not bootable, so a VM cannot be installed from it" in answer.errortext
    coming, = images.register(iso_sim.admin, is_iso=True, name="coming", is_public=True, zoneid=str(iso_sim.zone.uuid),
                              url=make_iso(iso_sim.tmp_path / "coming.iso").as_uri())  # not downloaded
    answer = deploy(api, iso_sim, templateid=str(coming.template.uuid), diskofferingid=str(iso_sim.fixed.uuid))
    assert answer.status == 431
    assert f"ISO coming is not ready in zone {iso_sim.zone.name}; wait until its download is complete" in \
        answer.errortext
    assert not VirtualMachine.objects.exists()


def test_disk_offerings_and_isos_the_owner_may_not_use(api, iso_sim, tenant_a, tenant_b):
    other = make_domain("elsewhere")
    theirs = offerings.create_disk_offering(iso_sim.admin, name="theirs", display_text="x", disk_size=1,
                                            domains=[other])
    a = api.as_(tenant_a)
    answer = deploy(a, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(theirs.uuid))
    assert answer.status == 431 and "diskofferingid" in answer.errortext  # not visible: as if missing
    # a root admin deploying for tenant-a sees the offering, but tenant-a may not use it
    answer = deploy(api, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(theirs.uuid),
                    account=tenant_a.account.name, domainid=str(tenant_a.account.domain.uuid))
    assert answer.status == 431
    assert f"Disk offering theirs is not available to account {tenant_a.account.name}" in answer.errortext
    private = private_iso(iso_sim, tenant_b)
    answer = deploy(api, iso_sim, templateid=str(private.uuid), diskofferingid=str(iso_sim.fixed.uuid),
                    account=tenant_a.account.name, domainid=str(tenant_a.account.domain.uuid))
    assert answer.status == 431 and "ISO b-private is not available to account" in answer.errortext
    assert not VirtualMachine.objects.exists()


# -- data disks --------------------------------------------------------------------------------------
def test_a_template_with_a_disk_offering_gets_a_data_disk_until_expunged(api, iso_sim, host, tenant_a, tenant_b):
    a = api.as_(tenant_a)
    vm = deployed(a, iso_sim, diskofferingid=str(iso_sim.custom.uuid), size="2", name="with-data")
    assert "isoid" not in vm
    row = VirtualMachine.objects.get(uuid=vm["id"])
    root, data = Volume.objects.filter(virtual_machine=row).order_by("device_id")
    assert (root.type, root.device_id, data.type, data.device_id) == ("ROOT", 0, "DATADISK", 1)
    assert (data.size, data.disk_offering, data.template, data.state) == (2 * GIB, iso_sim.custom, None, "Ready")
    on_pool = pool_volumes(host, iso_sim.pool)
    assert on_pool[data.volume_name].capacity_bytes == 2 * GIB and on_pool[data.volume_name].backing_path == ""
    assert on_pool[root.volume_name].backing_path  # the root disk is still a clone of the template
    domain = definition(host, row)
    assert drive(domain, "vdb").find("source").get("volume") == data.volume_name
    assert drive(domain, "vdb").find("boot") is None and drive(domain, "vda").find("boot").get("order") == "1"
    assert drive(domain, "hdd").find("source") is None and drive(domain, "hdd").find("boot") is None
    listed = a("listVolumes", virtualmachineid=vm["id"]).inner
    assert listed["count"] == 2
    shown = {v["type"]: v for v in listed["volume"]}
    assert (shown["DATADISK"]["id"], shown["DATADISK"]["size"], shown["DATADISK"]["deviceid"]) == (
        str(data.uuid), 2 * GIB, 1)
    assert (shown["DATADISK"]["diskofferingname"], shown["DATADISK"]["vmname"]) == ("any", "with-data")
    assert shown["ROOT"]["templateid"] == str(iso_sim.template.uuid) and "storageid" not in shown["ROOT"]
    assert api("listVolumes", id=str(data.uuid), listall="true").inner["volume"][0]["storageid"] == str(
        iso_sim.pool.uuid)  # where it lives: root admins
    assert api.as_(tenant_b)("listVolumes", virtualmachineid=vm["id"], listall="true").inner == {}
    account = tenant_a.account
    assert limits.count(account, "volume") == 2
    assert limits.count(account, "primary_storage") == root.size + 2 * GIB
    assert StoragePool.objects.get(pk=iso_sim.pool.pk).allocated_bytes == root.size + 2 * GIB

    assert api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))["jobstatus"] == 1
    assert set(pool_volumes(host, iso_sim.pool)) <= {root.base.volume_name}  # the template's base stays
    assert limits.count(account, "volume") == 0 and limits.count(account, "primary_storage") == 0
    assert a("listVolumes", virtualmachineid=vm["id"]).inner == {}
    assert StoragePool.objects.get(pk=iso_sim.pool.pk).allocated_bytes == 0


def test_size_without_a_disk_offering_is_refused(api, iso_sim):
    answer = deploy(api, iso_sim, size="2")
    assert answer.status == 431 and "size is the size of a data disk: give diskofferingid too" in answer.errortext


def test_volume_and_primary_storage_limits_count_every_disk(api, iso_sim, tenant_a):
    a = api.as_(tenant_a)
    limits.update_limit(iso_sim.admin, rtype="volume", max=1, account=tenant_a.account)
    answer = deploy(a, iso_sim, diskofferingid=str(iso_sim.fixed.uuid))
    assert answer.status == 535 and "Maximum number of resources of type 'volume'" in answer.errortext
    limits.update_limit(iso_sim.admin, rtype="volume", max=10, account=tenant_a.account)
    limits.update_limit(iso_sim.admin, rtype="primary_storage", max=1, account=tenant_a.account)
    answer = deploy(a, iso_sim, diskofferingid=str(iso_sim.fixed.uuid))  # 32 MiB root + 1 GiB data
    assert answer.status == 535 and "'primary_storage'" in answer.errortext
    assert not VirtualMachine.objects.exists() and not Volume.objects.exists()
    deployed(a, iso_sim)  # the root disk alone fits
    assert limits.count(tenant_a.account, "volume") == 1


def test_a_failed_deploy_takes_its_disks_off_the_pool(api, iso_sim, host, monkeypatch):
    def broken(self, spec):
        raise DriverError("Cannot define virtual machine: the host said no")

    monkeypatch.setattr(LibvirtDriver, "define_domain", broken)
    answer = deploy(api, iso_sim, diskofferingid=str(iso_sim.fixed.uuid), name="doomed")
    job = api.job(answer)
    assert job["jobstatus"] == 2 and "the host said no" in job["jobresult"]["errortext"]
    row = VirtualMachine.objects.get(uuid=answer.inner["id"])
    assert row.state == "Error"
    names = set(pool_volumes(host, iso_sim.pool))
    assert not any(name.startswith(row.instance_name) for name in names), names  # root, data disk, config drive
    assert not Volume.objects.filter(virtual_machine=row, removed__isnull=True).exists()
    assert StoragePool.objects.get(pk=iso_sim.pool.pk).allocated_bytes == 0
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exists()
    assert row.instance_name not in {d.name for d in host.list_domains()}


def test_a_vm_deployed_stopped_gets_its_disks_at_its_first_start(api, iso_sim, host):
    vm = deployed(api, iso_sim, templateid=str(iso_sim.iso.uuid), diskofferingid=str(iso_sim.fixed.uuid),
                  startvm="false")
    assert vm["state"] == "Stopped"
    root = Volume.objects.get(virtual_machine__uuid=vm["id"])
    assert root.pool is None and root.state == "Allocated"
    assert api.job(api("startVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    root.refresh_from_db()
    assert root.pool == iso_sim.pool and root.state == "Ready"
    assert pool_volumes(host, iso_sim.pool)[root.volume_name].capacity_bytes == GIB
    assert StoragePool.objects.get(pk=iso_sim.pool.pk).allocated_bytes == GIB


def test_restore_leaves_data_disks_alone(api, iso_sim, host):
    vm = deployed(api, iso_sim, diskofferingid=str(iso_sim.fixed.uuid))
    root, data = Volume.objects.filter(virtual_machine__uuid=vm["id"]).order_by("device_id")
    job = api.job(api("restoreVirtualMachine", virtualmachineid=vm["id"]))
    assert job["jobstatus"] == 1, job
    again = Volume.objects.get(pk=data.pk)
    assert (again.state, again.path, again.removed) == ("Ready", data.path, None)
    assert data.volume_name in pool_volumes(host, iso_sim.pool)
    row = VirtualMachine.objects.get(uuid=vm["id"])
    assert drive(definition(host, row), "vdb").find("source").get("volume") == data.volume_name


# -- attachIso / detachIso ---------------------------------------------------------------------------
def iso_command(api, command: str, vm: dict, **params) -> dict:
    job = api.job(api(command, virtualmachineid=vm["id"], **params))
    return job


def test_attach_and_detach_on_a_running_vm_change_its_drive_at_once(api, iso_sim, host, tenant_a):
    a = api.as_(tenant_a)
    vm = deployed(a, iso_sim, name="web")
    row = VirtualMachine.objects.get(uuid=vm["id"])
    job = iso_command(a, "attachIso", vm, id=str(iso_sim.iso.uuid))
    assert job["jobstatus"] == 1, job
    shown = job["jobresult"]["virtualmachine"]
    assert (shown["isoid"], shown["isoname"]) == (str(iso_sim.iso.uuid), "installer")
    copy = primary.pool_copies(iso_sim.iso)[0]
    assert drive(definition(host, row), "hdd").find("source").get("volume") == copy.volume_name
    assert Event.objects.filter(type="ISO.ATTACH", resource_uuid=vm["id"]).exists()

    second, = images.register(iso_sim.admin, is_iso=True, name="second", is_public=True, zoneid=str(iso_sim.zone.uuid),
                              url=make_iso(iso_sim.tmp_path / "second.iso").as_uri())
    images.run_download(second.pk)
    refused = iso_command(a, "attachIso", vm, id=str(second.template.uuid))
    assert refused["jobstatus"] == 2
    assert refused["jobresult"]["errortext"] == ("VM web has ISO installer attached; detach it first (detachIso), or "
                                                 "pass forced=true to replace it")
    replaced = iso_command(a, "attachIso", vm, id=str(second.template.uuid), forced="true")
    assert replaced["jobresult"]["virtualmachine"]["isoname"] == "second"

    job = iso_command(a, "detachIso", vm)
    assert job["jobstatus"] == 1 and "isoid" not in job["jobresult"]["virtualmachine"]
    assert drive(definition(host, row), "hdd").find("source") is None
    assert Event.objects.filter(type="ISO.DETACH", resource_uuid=vm["id"]).exists()
    again = iso_command(a, "detachIso", vm)
    assert again["jobstatus"] == 2 and again["jobresult"]["errortext"] == "VM web has no ISO attached"


def test_attach_to_a_stopped_vm_is_recorded_and_applied_at_the_next_start(api, iso_sim, host):
    vm = deployed(api, iso_sim, name="later")
    assert api.job(api("stopVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    job = iso_command(api, "attachIso", vm, id=str(iso_sim.iso.uuid))
    assert job["jobstatus"] == 1 and job["jobresult"]["virtualmachine"]["isoid"] == str(iso_sim.iso.uuid)
    assert api.job(api("startVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    row = VirtualMachine.objects.get(uuid=vm["id"])
    assert drive(definition(host, row), "hdd").find("source").get("volume") == primary.pool_copies(
        iso_sim.iso)[0].volume_name
    assert api.job(api("stopVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    assert iso_command(api, "detachIso", vm)["jobstatus"] == 1
    assert api.job(api("startVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    assert drive(definition(host, row), "hdd").find("source") is None


def test_iso_commands_refuse_what_they_cannot_do(api, iso_sim, tenant_a, tenant_b):
    a = api.as_(tenant_a)
    vm = deployed(a, iso_sim, name="mine")
    # another account's private ISO is not visible (answered as missing); a template is no ISO
    private = private_iso(iso_sim, tenant_b)
    for wrong in (private, iso_sim.template):
        answer = a("attachIso", id=str(wrong.uuid), virtualmachineid=vm["id"])
        assert answer.status == 431 and "does not exist" in answer.errortext, answer
    # a root admin sees it, but the VM's owner may not use it
    refused = iso_command(api, "attachIso", vm, id=str(private.uuid))
    assert refused["jobstatus"] == 2
    assert refused["jobresult"]["errortext"] == f"ISO b-private is not available to account {tenant_a.account.name}"
    # another tenant cannot touch the VM
    answer = api.as_(tenant_b)("attachIso", id=str(private.uuid), virtualmachineid=vm["id"])
    assert answer.status == 431 and "virtualmachineid" in answer.errortext
    # a destroyed VM has no drive to change
    assert a.job(a("destroyVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    refused = iso_command(a, "attachIso", vm, id=str(iso_sim.iso.uuid))
    assert refused["jobstatus"] == 2
    assert refused["jobresult"]["errortext"] == (f"Cannot attach ISO installer to VM mine: it is Destroyed; it must be "
                                                 f"Running or Stopped")
    assert not VirtualMachine.objects.filter(iso__isnull=False).exists()


def test_an_iso_in_a_drive_is_in_use(api, iso_sim):
    vm = deployed(api, iso_sim)
    assert iso_command(api, "attachIso", vm, id=str(iso_sim.iso.uuid))["jobstatus"] == 1
    job = api.job(api("deleteIso", id=str(iso_sim.iso.uuid)))
    assert job["jobstatus"] == 2 and f"ISO installer is in use by VM {vm['name']}" in job["jobresult"]["errortext"]
