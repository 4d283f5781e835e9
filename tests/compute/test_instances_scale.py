"""scaleVirtualMachine of a running VM on Simulator hosts (libvirt's test:///default): up only, where
enable.dynamic.scale.vm and the VM's isdynamicallyscalable allow it, within the owner's limits
and its host's free capacity; what the host holds is read back through libvirt (`host`, a
connection kept open so the in-process test driver keeps its domains between the jobs'
connections). A real guest that sees its new vCPU and memory: test_instances_qemu.py."""
from __future__ import annotations

import pytest

from accounts import limits
from compute import instances
from compute.drivers import DriverError, get_driver
from compute.drivers.libvirt_driver import LibvirtDriver
from compute.models import Alert, ServiceOffering, VirtualMachine
from portal.models import Event
from tests.compute.test_instances import deploy, sim  # noqa: F401  (the Simulator zone fixture)


@pytest.fixture
def host():
    """The Simulator, held open for the whole test (the test driver forgets domains when its last
    connection closes)."""
    with get_driver("test:///default") as driver:
        yield driver


@pytest.fixture
def scalable(api, sim, host):  # noqa: F811
    """`sim` with enable.dynamic.scale.vm on in its zone, its template dynamically scalable, and a
    bigger offering (2 vCPU x 500 MHz, 256 MiB) than its Tiny one (1 x 500, 128)."""
    answer = api("updateConfiguration", name="enable.dynamic.scale.vm", value="true", zoneid=str(sim.zone.uuid))
    assert answer.status == 200, answer
    answer = api("updateTemplate", id=str(sim.template.uuid), isdynamicallyscalable="true")
    assert answer.status == 200, answer
    sim.bigger = ServiceOffering.objects.create(name="Bigger", display_text="b", cpu_number=2, cpu_speed=500,
                                                memory=256)
    return sim


def running(client, sim, name):  # noqa: F811
    job = client.job(deploy(client, sim, name=name))
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]


def scale(client, vm, offering, **extra):
    return client.job(client("scaleVirtualMachine", id=vm["id"], serviceofferingid=str(offering.uuid), **extra))


def test_a_running_vm_grows_without_stopping(api, scalable, host, tenant_a):
    a = api.as_(tenant_a)
    vm = running(a, scalable, "grows")
    assert vm["isdynamicallyscalable"] is True  # from its template
    row = VirtualMachine.objects.get(uuid=vm["id"])
    size = host.domain_size(row.instance_name)
    assert (size.vcpus, size.memory_mib, size.memory_slots) == (1, 128, 16)
    # room to grow: the host's CPUs and memory (the settings' 0), as CloudStack's KVM agent sizes it
    assert (size.max_vcpus, size.max_memory_mib) == (scalable.host.cpu_number, scalable.host.memory_total >> 20)
    assert (row.max_cpu_number, row.max_memory) == (size.max_vcpus, size.max_memory_mib)

    job = scale(a, vm, scalable.bigger)
    assert job["jobstatus"] == 1, job
    after = job["jobresult"]["virtualmachine"]
    assert (after["state"], after["cpunumber"], after["memory"]) == ("Running", 2, 256)
    assert after["serviceofferingid"] == str(scalable.bigger.uuid)  # what libcloud reads
    grown = host.domain_size(row.instance_name)  # the host agrees with the answer
    assert (grown.vcpus, grown.memory_mib, grown.dimms) == (2, 256, 1)
    assert (limits.count(tenant_a.account, "cpu"), limits.count(tenant_a.account, "memory")) == (2, 256)
    event = Event.objects.filter(type="VM.SCALE", resource_uuid=vm["id"]).latest("id")
    assert event.level == "INFO" and "scaled while running" in event.description

    stopped = a.job(a("stopVirtualMachine", id=vm["id"]))
    assert stopped["jobstatus"] == 1, stopped
    started = a.job(a("startVirtualMachine", id=vm["id"]))["jobresult"]["virtualmachine"]
    assert (started["cpunumber"], started["memory"]) == (2, 256)
    size = host.domain_size(row.instance_name)  # defined afresh at its new size, no DIMM
    assert (size.vcpus, size.memory_mib, size.dimms) == (2, 256, 0)


def test_bad_scalings_are_refused_and_change_nothing(api, scalable, host, tenant_a):
    a = api.as_(tenant_a)
    vm = running(a, scalable, "fixed-size")
    row = VirtualMachine.objects.get(uuid=vm["id"])
    smaller = ServiceOffering.objects.create(name="Smaller", display_text="s", cpu_number=1, cpu_speed=500, memory=96)
    odd = ServiceOffering.objects.create(name="Odd", display_text="o", cpu_number=1, cpu_speed=500, memory=192)
    huge = ServiceOffering.objects.create(name="Huge", display_text="h", cpu_number=64, cpu_speed=500, memory=256)
    custom = ServiceOffering.objects.create(name="Custom", display_text="c", customized=True)
    cases = [
        (smaller, {}, "Only scaling up the vm is supported"),
        (scalable.offering, {}, "Only scaling up the vm is supported"),  # the same size is no scaling up
        (odd, {}, "grows in steps of 128 MiB"),
        (huge, {}, f"can grow to at most {scalable.host.cpu_number} vCPU"),
        (custom, {"details[0].cpuNumber": "2"}, "give details[0].cpuNumber and details[0].memory"),
    ]
    for offering, extra, says in cases:
        job = scale(a, vm, offering, **extra)
        assert job["jobstatus"] == 2 and says in job["jobresult"]["errortext"], (offering.name, job)
        assert job["jobresult"]["errorcode"] == 431
    job = scale(a, vm, custom, **{"details[0].cpuNumber": "2", "details[0].memory": "384"})
    assert job["jobstatus"] == 1, job  # a customized offering's size comes from the details
    assert (job["jobresult"]["virtualmachine"]["cpunumber"], job["jobresult"]["virtualmachine"]["memory"]) == (2, 384)
    assert host.domain_size(row.instance_name).memory_mib == 384
    changed = a("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=str(scalable.bigger.uuid))
    assert changed.status == 431 and "must be Stopped" in changed.errortext  # as in CloudStack
    assert "scaleVirtualMachine" in changed.errortext


def test_limits_and_host_capacity_are_checked_for_the_difference(api, scalable, host, tenant_a):
    a = api.as_(tenant_a)
    vm = running(a, scalable, "limited")
    row = VirtualMachine.objects.get(uuid=vm["id"])
    api("updateResourceLimit", resourcetype="8", max="1", account=tenant_a.account.name,
        domainid=str(tenant_a.account.domain.uuid))  # cpu: the one it has
    job = scale(a, vm, scalable.bigger)
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 535, job
    assert "cpu" in job["jobresult"]["errortext"]
    api("updateResourceLimit", resourcetype="8", max="-1", account=tenant_a.account.name,
        domainid=str(tenant_a.account.domain.uuid))

    # the host's memory (3072 MiB, overprovisioning 1): another VM holds 2048 of it
    hog = ServiceOffering.objects.create(name="Hog", display_text="h", cpu_number=1, cpu_speed=500, memory=2048)
    assert api.job(deploy(api, scalable, name="hog", serviceofferingid=str(hog.uuid)))["jobstatus"] == 1
    greedy = ServiceOffering.objects.create(name="Greedy", display_text="g", cpu_number=1, cpu_speed=500, memory=1152)
    job = scale(a, vm, greedy)
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 533, job
    assert job["jobresult"]["errortext"] == (
        f"Cannot scale VM limited on its host {scalable.host.name}: it needs 1024 MiB more memory; the host has "
        f"{(scalable.host.memory_total >> 20) - 2048 - 128} MiB free")
    row.refresh_from_db()
    assert (row.cpu_number, row.memory, row.service_offering_id) == (1, 128, scalable.offering.pk)
    assert host.domain_size(row.instance_name).memory_mib == 128
    assert (limits.count(tenant_a.account, "cpu"), limits.count(tenant_a.account, "memory")) == (1, 128)
    assert not Event.objects.filter(type="VM.SCALE", resource_uuid=vm["id"]).exists()


def test_a_vm_that_may_not_grow_is_told_what_to_enable(api, sim, host, tenant_a):  # noqa: F811
    a = api.as_(tenant_a)
    vm = running(a, sim, "not-scalable")
    bigger = ServiceOffering.objects.create(name="Bigger", display_text="b", cpu_number=2, cpu_speed=500, memory=256)
    row = VirtualMachine.objects.get(uuid=vm["id"])
    size = host.domain_size(row.instance_name)  # defined exactly as before: no room to grow
    assert (size.vcpus, size.max_vcpus, size.memory_mib, size.max_memory_mib, size.memory_slots) == (1, 1, 128, 128, 0)
    job = scale(a, vm, bigger)
    assert job["jobstatus"] == 2 and "enable.dynamic.scale.vm" in job["jobresult"]["errortext"], job
    assert "stop it to change its offering" in job["jobresult"]["errortext"]

    api("updateConfiguration", name="enable.dynamic.scale.vm", value="true", zoneid=str(sim.zone.uuid))
    job = scale(a, vm, bigger)
    assert job["jobstatus"] == 2 and "isdynamicallyscalable=true" in job["jobresult"]["errortext"], job
    refused = a("updateVirtualMachine", id=vm["id"], isdynamicallyscalable="true")
    assert refused.status == 431 and "its template tiny does not have dynamic scaling enabled" in refused.errortext

    api("updateTemplate", id=str(sim.template.uuid), isdynamicallyscalable="true")
    enabled = a("updateVirtualMachine", id=vm["id"], isdynamicallyscalable="true")
    assert enabled.status == 200 and enabled.inner["virtualmachine"]["isdynamicallyscalable"] is True
    job = scale(a, vm, bigger)  # its running domain was defined without room
    assert job["jobstatus"] == 2 and "stop and start it" in job["jobresult"]["errortext"], job
    assert VirtualMachine.objects.get(pk=row.pk).cpu_number == 1

    a.job(a("stopVirtualMachine", id=vm["id"]))
    a.job(a("startVirtualMachine", id=vm["id"]))
    job = scale(a, vm, bigger)
    assert job["jobstatus"] == 1, job
    assert host.domain_size(row.instance_name).vcpus == 2


def test_a_stopped_vm_still_changes_to_any_size(api, scalable, tenant_a):
    a = api.as_(tenant_a)
    vm = running(a, scalable, "stopped-one")
    a.job(a("stopVirtualMachine", id=vm["id"]))
    smaller = ServiceOffering.objects.create(name="Smaller", display_text="s", cpu_number=1, cpu_speed=400, memory=96)
    job = scale(a, vm, smaller)
    assert job["jobstatus"] == 1, job
    assert (job["jobresult"]["virtualmachine"]["memory"], job["jobresult"]["virtualmachine"]["state"]) == (96, "Stopped")


def test_when_the_host_fails_the_change_is_rolled_back(api, scalable, host, monkeypatch):
    vm = running(api, scalable, "fails")
    row = VirtualMachine.objects.get(uuid=vm["id"])

    def refuse(self, name, vcpus, memory_mib):
        raise DriverError(f"Cannot scale virtual machine {name} on {self.uri}: no free memory device slot available")

    monkeypatch.setattr(LibvirtDriver, "scale_domain", refuse)
    job = scale(api, vm, scalable.bigger)
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 534, job
    assert "no free memory device slot available" in job["jobresult"]["errortext"]  # the root admin sees the cause
    assert "it keeps 1 vCPU and 128 MiB" in job["jobresult"]["errortext"]
    row.refresh_from_db()
    assert (row.cpu_number, row.memory, row.service_offering_id, row.state) == (1, 128, scalable.offering.pk,
                                                                              "Running")
    assert Alert.objects.filter(subject__contains="Cannot scale VM fails").exists()
    failed = Event.objects.get(type="VM.SCALE", resource_uuid=vm["id"])
    assert failed.level == "ERROR"


def test_a_tenant_is_told_it_failed_without_the_hosts_details(api, scalable, host, tenant_a, monkeypatch):
    a = api.as_(tenant_a)
    vm = running(a, scalable, "tenant-fails")
    monkeypatch.setattr(LibvirtDriver, "scale_domain", lambda self, name, vcpus, memory_mib: (_ for _ in ()).throw(
        DriverError(f"Cannot scale virtual machine {name} on {self.uri}: boom")))
    job = scale(a, vm, scalable.bigger)
    assert job["jobstatus"] == 2, job
    text = job["jobresult"]["errortext"]
    assert "administrator finds the cause in the alerts" in text and "test:///" not in text and "boom" not in text


def test_another_tenant_cannot_scale_the_vm(api, scalable, tenant_a, tenant_b):
    vm = running(api.as_(tenant_a), scalable, "mine")
    answer = api.as_(tenant_b)("scaleVirtualMachine", id=vm["id"], serviceofferingid=str(scalable.bigger.uuid))
    assert answer.status == 431 and "does not exist" in answer.errortext
    answer = api.as_(tenant_b)("updateVirtualMachine", id=vm["id"], isdynamicallyscalable="false")
    assert answer.status == 431 and "does not exist" in answer.errortext
    assert VirtualMachine.objects.get(uuid=vm["id"]).cpu_number == 1


def test_live_scalable_follows_the_vm_and_its_zone(api, scalable, tenant_a):
    vm = running(api.as_(tenant_a), scalable, "flags")
    row = VirtualMachine.objects.get(uuid=vm["id"])
    assert instances.live_scalable(row)
    api("updateConfiguration", name="enable.dynamic.scale.vm", value="false", zoneid=str(scalable.zone.uuid))
    assert not instances.live_scalable(row)
