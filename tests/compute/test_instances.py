"""User VMs on Simulator hosts (libvirt's test:///default): deploy, lifecycle, placement,
addresses and what a failure gives back. Real guests on qemu:///system: test_instances_qemu.py."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from compute import services as compute_services
from compute.models import GuestIpAddress, ServiceOffering, VirtualMachine, Zone
from portal import config
from storage import services as storage_services
from storage.images import services as images
from storage.models import StoragePool, TemplateZone, Volume
from tests.factories import admin_user
from tests.images import make_qcow2
from tests.storage.conftest import make_zone


@pytest.fixture
def sim(cloud, tmp_path):
    """An enabled zone: pod with the guest range 10.1.0.30-10.1.0.39, Simulator cluster, host, pool, image
    store, a Ready template (32 MiB qcow2) and a tiny offering."""
    admin = admin_user()
    zone, pod = make_zone(admin)
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway="10.1.0.1", netmask="255.255.255.0",
                                          start_ip="10.1.0.30", end_ip="10.1.0.39")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="c1", hypervisor="Simulator")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url="http://sim/c1/h1",
                                     hypervisor="Simulator")
    pool = storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name="p1",
                                                url=f"file://{tmp_path}/primary")
    storage_services.add_image_store(admin, zone=zone, name="s1", url=f"file://{tmp_path}/secondary")
    row, = images.register(admin, is_iso=False, name="tiny", url=make_qcow2(tmp_path / "t.qcow2", "32M").as_uri(),
                           zoneid=str(zone.uuid), format="QCOW2", hypervisor="KVM", is_public=True)
    images.run_download(row.pk)
    offering = ServiceOffering.objects.create(name="Tiny", display_text="tiny", cpu_number=1, cpu_speed=500,
                                              memory=128)
    return SimpleNamespace(admin=admin, zone=zone, pod=pod, cluster=cluster, host=host, pool=pool,
                           template=row.template, offering=offering)


def deploy(api, sim, **extra):
    params = dict(zoneid=str(sim.zone.uuid), serviceofferingid=str(sim.offering.uuid),
                  templateid=str(sim.template.uuid))
    params.update(extra)
    return api("deployVirtualMachine", **params)


def test_deploy_runs_the_vm_with_an_address_from_the_range(api, sim, tenant_a):
    a = api.as_(tenant_a)
    answer = deploy(a, sim, name="web-1")
    assert answer.status == 200, answer
    assert set(answer.inner) == {"id", "jobid"}
    job = a.job(answer)
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    assert (vm["name"], vm["state"], vm["id"]) == ("web-1", "Running", answer.inner["id"])
    assert vm["cpunumber"] == 1 and vm["memory"] == 128
    nic, = vm["nic"]
    assert nic["ipaddress"].startswith("10.1.0.") and nic["macaddress"].startswith("1e:00:")
    assert nic["gateway"] == "10.1.0.1" and nic["isdefault"] is True
    assert vm["securitygroup"] == [] and vm["affinitygroup"] == [] and vm["tags"] == []
    assert "hostid" not in vm and "instancename" not in vm  # root admins only
    admin_view = api("listVirtualMachines", id=vm["id"], listall="true").inner["virtualmachine"][0]
    assert admin_view["hostid"] == str(sim.host.uuid) and admin_view["instancename"].startswith("i-")
    row = VirtualMachine.objects.get(uuid=vm["id"])
    assert GuestIpAddress.objects.get(address=nic["ipaddress"]).allocated is not None
    root = Volume.objects.get(virtual_machine=row)
    assert root.state == "Ready" and root.base is not None and root.pool == sim.pool
    assert StoragePool.objects.get(pk=sim.pool.pk).allocated_bytes == root.size == 32 << 20


def test_lifecycle_stop_start_reboot_destroy_recover_expunge(api, sim):
    vm = api.job(deploy(api, sim, name="life"))["jobresult"]["virtualmachine"]
    address = vm["nic"][0]["ipaddress"]

    def act(command, **params):
        job = api.job(api(command, id=vm["id"], **params))
        assert job["jobstatus"] == 1, job
        return job["jobresult"]

    assert act("stopVirtualMachine")["virtualmachine"]["state"] == "Stopped"
    assert VirtualMachine.objects.get(uuid=vm["id"]).host is None  # its capacity is free
    again = api.job(api("stopVirtualMachine", id=vm["id"]))
    assert again["jobstatus"] == 2 and "it is Stopped" in again["jobresult"]["errortext"]
    started = act("startVirtualMachine")["virtualmachine"]
    assert started["state"] == "Running" and started["nic"][0]["ipaddress"] == address
    assert act("rebootVirtualMachine")["virtualmachine"]["state"] == "Running"
    assert act("destroyVirtualMachine")["virtualmachine"]["state"] == "Destroyed"
    recovered = api("recoverVirtualMachine", id=vm["id"])
    assert recovered.status == 200 and recovered.inner["virtualmachine"]["state"] == "Stopped"
    act("destroyVirtualMachine")
    assert act("expungeVirtualMachine") == {"success": True}
    assert api("listVirtualMachines", id=vm["id"], listall="true").inner == {}
    assert GuestIpAddress.objects.get(address=address).allocated is None
    assert StoragePool.objects.get(pk=sim.pool.pk).allocated_bytes == 0
    assert not Volume.objects.filter(virtual_machine__uuid=vm["id"], removed__isnull=True).exists()


def test_another_tenant_cannot_see_or_touch_the_vm(api, sim, tenant_a, tenant_b):
    vm = api.as_(tenant_a).job(deploy(api.as_(tenant_a), sim))["jobresult"]["virtualmachine"]
    b = api.as_(tenant_b)
    assert b("listVirtualMachines", id=vm["id"], listall="true").inner == {}
    for command in ("stopVirtualMachine", "destroyVirtualMachine", "rebootVirtualMachine"):
        answer = b(command, id=vm["id"])
        assert answer.status == 431 and "does not exist" in answer.errortext


def test_bad_values(api, sim):
    cases = [
        (dict(name="9lives"), "Invalid name"),
        (dict(name="has_underscore"), "Invalid name"),
        (dict(ipaddress="10.9.9.9"), "not in a guest IP range"),
        (dict(userdata="not base64!"), "base64"),
        (dict(rootdisksize="0"), "smaller than template"),
    ]
    for extra, says in cases:
        answer = deploy(api, sim, **extra)
        assert answer.status == 431, (extra, answer)
        assert says in answer.errortext, (extra, answer.errortext)
    assert not VirtualMachine.objects.exists()
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exists()


def test_a_name_and_an_address_are_taken_once(api, sim):
    api.job(deploy(api, sim, name="dup", ipaddress="10.1.0.35"))
    name = deploy(api, sim, name="dup")
    assert name.status == 431 and "already exists" in name.errortext
    ip = deploy(api, sim, name="other", ipaddress="10.1.0.35")
    assert ip.status == 431 and "already in use" in ip.errortext


def test_no_capacity_says_what_was_short_and_where(api, sim):
    big = ServiceOffering.objects.create(name="Huge", display_text="huge", cpu_number=1, cpu_speed=500,
                                         memory=10 ** 7)
    answer = deploy(api, sim, serviceofferingid=str(big.uuid))
    assert answer.status == 533, answer
    assert f"needs {10 ** 7} MiB of memory; the best host {sim.host.name} has" in answer.errortext
    assert not VirtualMachine.objects.exists()


def test_the_range_runs_out_cleanly(api, sim):
    for index in range(10):
        assert api.job(deploy(api, sim, name=f"vm-{index}"))["jobstatus"] == 1
    answer = deploy(api, sim, name="vm-10")
    assert answer.status == 533 and "No free guest IP address" in answer.errortext
    assert VirtualMachine.objects.count() == 10


def test_a_failed_start_gives_everything_back(api, sim):
    stored = images.stored_path(TemplateZone.objects.get(template=sim.template))
    stored.rename(stored.with_suffix(".gone"))  # the copy to primary storage will fail
    job = api.job(deploy(api, sim, name="doomed"))
    assert job["jobstatus"] == 2, job
    assert "could not start" in job["jobresult"]["errortext"]
    vm = VirtualMachine.objects.get(name="doomed")
    assert vm.state == "Error" and vm.host is None and vm.state_reason
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exists()
    assert StoragePool.objects.get(pk=sim.pool.pk).allocated_bytes == 0
    assert not Volume.objects.filter(virtual_machine=vm, removed__isnull=True).exists()
    # an Error VM can be destroyed and expunged
    assert api.job(api("destroyVirtualMachine", id=str(vm.uuid), expunge="true"))["jobstatus"] == 1


def test_a_busy_vm_refuses_a_second_operation(api, sim):
    vm = api.job(deploy(api, sim, name="busy"))["jobresult"]["virtualmachine"]
    VirtualMachine.objects.filter(uuid=vm["id"]).update(state="Stopping")
    job = api.job(api("startVirtualMachine", id=vm["id"]))
    assert job["jobstatus"] == 2 and "busy: Stopping" in job["jobresult"]["errortext"]


def test_users_may_not_expunge_unless_allowed(api, sim, tenant_a):
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim))["jobresult"]["virtualmachine"]
    a.job(a("destroyVirtualMachine", id=vm["id"]))
    refused = a("expungeVirtualMachine", id=vm["id"])
    assert refused.status == 531 and "allow.user.expunge.recover.vm" in refused.errortext
    config.set_value("allow.user.expunge.recover.vm", "true")
    assert a.job(a("expungeVirtualMachine", id=vm["id"]))["jobstatus"] == 1


def test_a_template_in_use_is_not_deleted_and_its_base_stays(api, sim):
    from storage.models import TemplatePoolCopy

    api.job(deploy(api, sim, name="user-of-tiny"))
    refused = api.job(api("deleteTemplate", id=str(sim.template.uuid)))
    assert refused["jobstatus"] == 2 and "VM user-of-tiny" in refused["jobresult"]["errortext"]
    assert api.job(api("deleteTemplate", id=str(sim.template.uuid), forced="true"))["jobstatus"] == 1
    assert TemplatePoolCopy.objects.filter(template=sim.template).exists()  # the root volume's base stays


def test_deleting_an_account_expunges_its_vms(api, sim, tenant_a):
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim, name="goes"))["jobresult"]["virtualmachine"]
    assert api.job(api("deleteAccount", id=str(tenant_a.account.uuid)))["jobstatus"] == 1
    assert not VirtualMachine.objects.filter(uuid=vm["id"]).exists()
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_deploys_for_ten_addresses(sim):
    """20 deploys at once against a range with 10 free addresses: exactly 10 succeed, 10 fail with
    a clear error, no address is given twice, and what the database says is what the rows say."""
    import threading

    from django.db import connection, transaction

    from compute import instances
    from portal.errors import ApiError

    results: list[str] = []
    barrier = threading.Barrier(20)

    def one(index: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                instances.allocate(sim.admin, owner=sim.admin.account, zone=sim.zone, offering=sim.offering,
                                   template=sim.template, name=f"race-{index}")
            results.append("ok")
        except ApiError as exc:
            results.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results.count("ok") == 10, results
    assert all("No free guest IP address" in r for r in results if r != "ok"), results
    from compute.models import Nic

    addresses = list(Nic.objects.values_list("address__address", flat=True))
    assert len(addresses) == len(set(addresses)) == 10
    assert GuestIpAddress.objects.filter(allocated__isnull=False).count() == 10
    assert VirtualMachine.objects.count() == 10


def test_destroyed_vms_are_expunged_after_the_delay(api, sim):
    from django.utils import timezone

    from compute.jobs import expunge_destroyed_vms

    vm = api.job(deploy(api, sim, name="later"))["jobresult"]["virtualmachine"]
    api.job(api("destroyVirtualMachine", id=vm["id"]))
    assert expunge_destroyed_vms() == 0  # expunge.delay (a day) has not passed
    VirtualMachine.objects.filter(uuid=vm["id"]).update(destroyed=timezone.now() - timezone.timedelta(days=2))
    assert expunge_destroyed_vms() == 1
    assert VirtualMachine.objects.get(uuid=vm["id"]).removed is not None


def test_an_offering_in_use_is_not_deleted(api, sim):
    api.job(deploy(api, sim, name="uses-tiny"))
    answer = api("deleteServiceOffering", id=str(sim.offering.uuid))
    assert answer.status == 536 and "VM uses-tiny" in answer.errortext


def test_limits_stop_a_deploy_and_counts_follow_the_rows(api, sim, tenant_a):
    from accounts import limits

    a = api.as_(tenant_a)
    a.job(deploy(a, sim, name="one"))
    assert limits.count(tenant_a.account, "user_vm") == 1
    assert limits.count(tenant_a.account, "memory") == 128
    api("updateResourceLimit", resourcetype="0", max="1", account=tenant_a.account.name,
        domainid=str(tenant_a.account.domain.uuid))
    answer = deploy(a, sim, name="two")
    assert answer.status == 535 and "user_vm" in answer.errortext, answer
    assert VirtualMachine.objects.filter(account=tenant_a.account).count() == 1
    assert not GuestIpAddress.objects.filter(allocated__isnull=False).exclude(
        nic__virtual_machine__name="one").exists()


def test_deploy_with_a_key_pair_puts_its_key_on_the_config_drive(api, sim, tenant_a, monkeypatch):
    from storage import configdrive

    a = api.as_(tenant_a)
    created = a("createSSHKeyPair", name="mine")
    assert created.status == 200, created
    built = []
    real = configdrive.build
    monkeypatch.setattr(configdrive, "build", lambda drive, dest: built.append(drive) or real(drive, dest))
    vm = a.job(deploy(a, sim, name="keyed", keypair="mine", userdata="I2Nsb3VkLWNvbmZpZw=="))
    assert vm["jobstatus"] == 1, vm
    assert vm["jobresult"]["virtualmachine"]["keypairs"] == "mine"
    drive, = built
    assert list(drive.public_keys) == ["mine"] and drive.public_keys["mine"].startswith("ssh-rsa ")
    assert drive.user_data == b"#cloud-config" and drive.hostname == "keyed"
    missing = deploy(a, sim, name="nokey", keypair="absent")
    assert missing.status == 431 and "absent" in missing.errortext


def test_update_reset_password_and_keys_change_offering_and_restore(api, sim, tenant_a):
    from compute.models import ServiceOffering as Offering
    from storage.models import Template

    Template.objects.filter(pk=sim.template.pk).update(password_enabled=True)
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim, name="change-me"))["jobresult"]["virtualmachine"]
    renamed = a("updateVirtualMachine", id=vm["id"], displayname="Shown", group="web")
    assert renamed.status == 200 and renamed.inner["virtualmachine"]["displayname"] == "Shown"
    running = a("updateVirtualMachine", id=vm["id"], name="other-name")
    assert running.status == 431 and "must be Stopped" in running.errortext
    early = a.job(a("resetPasswordForVirtualMachine", id=vm["id"]))
    assert early["jobstatus"] == 2 and "must be Stopped" in early["jobresult"]["errortext"]
    a.job(a("stopVirtualMachine", id=vm["id"]))
    reset = a.job(a("resetPasswordForVirtualMachine", id=vm["id"]))["jobresult"]["virtualmachine"]
    assert len(reset["password"]) >= 8
    assert "password" not in a("listVirtualMachines", id=vm["id"]).inner["virtualmachine"][0]  # shown once
    a("createSSHKeyPair", name="k1")
    keyed = a.job(a("resetSSHKeyForVirtualMachine", id=vm["id"], keypair="k1"))["jobresult"]["virtualmachine"]
    assert keyed["keypairs"] == "k1"
    bigger = Offering.objects.create(name="Bigger", display_text="b", cpu_number=2, cpu_speed=500, memory=256)
    changed = a("changeServiceForVirtualMachine", id=vm["id"], serviceofferingid=str(bigger.uuid))
    assert changed.status == 200, changed
    assert (changed.inner["virtualmachine"]["cpunumber"], changed.inner["virtualmachine"]["memory"]) == (2, 256)
    restored = a.job(a("restoreVirtualMachine", virtualmachineid=vm["id"]))
    assert restored["jobstatus"] == 1, restored
    root = Volume.objects.get(virtual_machine__uuid=vm["id"], removed__isnull=True)
    assert root.state == "Allocated"  # a fresh clone is made at the next start
    started = a.job(a("startVirtualMachine", id=vm["id"]))["jobresult"]["virtualmachine"]
    assert started["state"] == "Running" and started["cpunumber"] == 2
    assert Volume.objects.get(pk=root.pk).state == "Ready"
    metrics = a("listVirtualMachinesMetrics", id=vm["id"]).inner["virtualmachine"][0]
    assert metrics["cputotal"] == "1.00 Ghz" and metrics["ipaddress"] == vm["nic"][0]["ipaddress"]


def test_infrastructure_in_use_by_vms_is_not_deleted(api, sim):
    vm = api.job(deploy(api, sim, name="holder"))["jobresult"]["virtualmachine"]
    maintenance = api.job(api("prepareHostForMaintenance", id=str(sim.host.uuid)))
    assert maintenance["jobstatus"] == 2 and "holder" in maintenance["jobresult"]["errortext"]
    pool = api("deleteStoragePool", id=str(sim.pool.uuid), forced="true")
    assert pool.status == 536 and "ROOT-" in pool.errortext
    zone = api("deleteZone", id=str(sim.zone.uuid))
    assert zone.status != 200 and "holder" in zone.errortext
    api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))
    assert api.job(api("prepareHostForMaintenance", id=str(sim.host.uuid)))["jobstatus"] == 1
