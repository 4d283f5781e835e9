"""The VM page's changes beyond the power actions, each going the API's way (the command's
parameters validated, its check, then the job or, synchronous, the command in one transaction):
edit (updateVirtualMachine), change offering (changeServiceForVirtualMachine), reset password and
SSH key, reinstall (restoreVirtualMachine), attach and detach an ISO. Each: the effect and its
event, a refusal shown in place, and another tenant's VM not found."""
from __future__ import annotations

import pytest

from accounts.models import SSHKeyPair
from compute.choices import VmState
from compute.models import ServiceOffering, VirtualMachine
from portal.models import AsyncJob, Event
from storage.images import services as images
from storage.models import Template, Volume
from tests.images import make_iso

from .test_instances_ui import (action_error, act, deploy, logged_in, page_text, posted, sim,  # noqa: F401
                               text, words)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def url(vm, action: str = "") -> str:
    return f"/client/instances/{vm.uuid}" + (f"/{action}" if action else "")


def events(vm, kind: str) -> list[str]:
    return list(Event.objects.filter(resource_uuid=str(vm.uuid), type=kind).values_list("description", flat=True))


def iso(sim, name: str, *, public: bool = True) -> Template:
    """An ISO of the root admin's, Ready in zone z1 (public, or private to the admin's account)."""
    row, = images.register(sim.admin, is_iso=True, name=name, url=make_iso(sim.tmp_path / f"{name}.iso").as_uri(),
                           zoneid=str(sim.zone.uuid), is_public=public, bootable=False)
    images.run_download(row.pk)
    return row.template


def stopped_vm(user, sim, capture, name: str = "web-1") -> VirtualMachine:
    vm = deploy(user, sim, capture, name)
    act(logged_in(user), capture, vm, "stop")
    vm.refresh_from_db()
    assert vm.state == VmState.STOPPED
    return vm


def test_another_tenants_vm_is_not_changed(sim, tenant_a, tenant_b, capture):
    vm = stopped_vm(tenant_a.user, sim, capture)
    big = ServiceOffering.objects.create(name="Big", display_text="big", cpu_number=2, cpu_speed=500, memory=256)
    b = logged_in(tenant_b.user)
    Template.objects.filter(pk=sim.template.pk).update(password_enabled=True)
    SSHKeyPair.objects.create(name="b-key", account=tenant_b.account, public_key="ssh-ed25519 BBBB", fingerprint="cc")
    for action, data in (("update", {"displayname": "mine", "group": "g"}),
                         ("change-offering", {"serviceofferingid": str(big.uuid)}),
                         ("reset-password", {}), ("reset-ssh-key", {"keypair": "b-key"}), ("reinstall", {}),
                         ("attach-iso", {"id": str(iso(sim, "cd").uuid)}), ("detach-iso", {})):
        assert posted(b, capture, url(vm, action), data).status_code == 404, action
    vm.refresh_from_db()
    assert vm.display_name != "mine" and vm.service_offering_id == sim.offering.pk and vm.keypairs != ["b-key"]
    assert not AsyncJob.objects.filter(user=tenant_b.user).exists()


def test_edit_the_display_name_and_group(sim, tenant_a, capture):
    vm = deploy(tenant_a.user, sim, capture, "web-1")
    client = logged_in(tenant_a.user)
    body = text(client.get(url(vm)))
    assert 'id="instance-edit"' in body and 'name="displayname"' in body and "csrfmiddlewaretoken" in body
    response = posted(client, capture, url(vm, "update"), {"displayname": "Front end", "group": "web"})
    assert response.status_code == 302 and response["Location"] == url(vm)
    vm.refresh_from_db()
    assert (vm.display_name, vm.group) == ("Front end", "web")
    assert events(vm, "VM.UPDATE") == ["VM web-1 updated"]
    page = page_text(client.get(url(vm)))
    assert "VM web-1 updated." in page and "Front end" in page
    # the dispatcher's sentence, in place
    response = posted(client, capture, url(vm, "update"), {"displayname": "bad\x01name", "group": "web"})
    assert response.status_code == 200 and "illegal ASCII non-printable characters" in action_error(response)
    vm.refresh_from_db()
    assert vm.display_name == "Front end"


def test_change_the_offering_of_a_stopped_vm(sim, tenant_a, capture):
    big = ServiceOffering.objects.create(name="Big", display_text="big", cpu_number=2, cpu_speed=500, memory=256)
    vm = deploy(tenant_a.user, sim, capture, "web-1")
    client = logged_in(tenant_a.user)
    assert 'id="instance-change-offering"' not in text(client.get(url(vm)))  # Running: not offered
    response = posted(client, capture, url(vm, "change-offering"), {"serviceofferingid": str(big.uuid)})
    assert response.status_code == 200
    assert action_error(response) == ("VM web-1 must be Stopped to change its offering; it is Running "
                                      "(scaleVirtualMachine scales a running VM up where its zone allows it)")
    act(client, capture, vm, "stop")
    body = text(client.get(url(vm)))
    assert 'id="instance-change-offering"' in body and f'value="{big.uuid}"' in body
    assert f'value="{sim.offering.uuid}"' not in body  # its own offering is not a change
    response = posted(client, capture, url(vm, "change-offering"), {"serviceofferingid": str(big.uuid)})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert (vm.service_offering_id, vm.cpu_number, vm.memory) == (big.pk, 2, 256)
    assert events(vm, "VM.UPGRADE") == ["VM web-1 now has offering Big (2 vCPU, 256 MiB)"]
    assert "VM web-1 now has offering Big." in page_text(client.get(url(vm)))


def test_scale_up_a_running_vm_with_room_to_grow(sim, tenant_a, capture):
    """Where enable.dynamic.scale.vm is on and its template is dynamically scalable, a running VM is
    offered the larger offerings, and the form scales it up at once (scaleVirtualMachine's job)."""
    from compute.drivers import get_driver
    from portal import config

    config.set_value("enable.dynamic.scale.vm", "true", scope="zone", scope_uuid=str(sim.zone.uuid))
    Template.objects.filter(pk=sim.template.pk).update(dynamically_scalable=True)
    big = ServiceOffering.objects.create(name="Big", display_text="big", cpu_number=2, cpu_speed=500, memory=256)
    small = ServiceOffering.objects.create(name="Small", display_text="small", cpu_number=1, cpu_speed=500, memory=64)
    odd = ServiceOffering.objects.create(name="Odd", display_text="odd", cpu_number=1, cpu_speed=500, memory=192)
    with get_driver("test:///default") as host:  # held: the test driver forgets domains with its last connection
        vm = deploy(tenant_a.user, sim, capture, "web-1")
        client = logged_in(tenant_a.user)
        body = text(client.get(url(vm)))
        assert 'id="instance-change-offering"' in body and 'id="instance-scale-note"' in body
        assert f'value="{big.uuid}"' in body and f'value="{small.uuid}"' not in body  # up only
        assert f'value="{odd.uuid}"' not in body  # 64 MiB more: not a step a running guest can take
        assert 'id="instance-reset-ssh-key"' not in body  # still for a stopped VM only
        response = posted(client, capture, url(vm, "change-offering"), {"serviceofferingid": str(big.uuid)})
        assert response.status_code == 302
        vm.refresh_from_db()
        assert (vm.state, vm.service_offering_id, vm.cpu_number, vm.memory) == ("Running", big.pk, 2, 256)
        assert (host.domain_size(vm.instance_name).vcpus, host.domain_size(vm.instance_name).memory_mib) == (2, 256)
        assert events(vm, "VM.SCALE") == ["VM web-1 scaled while running to offering Big (2 vCPU, 256 MiB)"]
        assert "Scaling VM web-1 up" in page_text(client.get(url(vm)))
        response = posted(client, capture, url(vm, "change-offering"), {"serviceofferingid": str(small.uuid)})
        assert response.status_code == 302  # the job's refusal is on the page
        assert "Only scaling up the vm is supported" in page_text(client.get(url(vm)))
        vm.refresh_from_db()
        assert vm.service_offering_id == big.pk
        # a customized offering is offered with its sizes, the VM's by default
        flex = ServiceOffering.objects.create(name="Flex", display_text="flex", customized=True)
        body = text(client.get(url(vm)))
        assert f'value="{flex.uuid}" data-custom="true"' in body and 'name="details[0].memory" value="256"' in body
        response = posted(client, capture, url(vm, "change-offering"), {
            "serviceofferingid": str(flex.uuid), "details[0].cpuNumber": "2", "details[0].cpuSpeed": "500",
            "details[0].memory": "384"})
        assert response.status_code == 302
        vm.refresh_from_db()
        assert (vm.service_offering_id, vm.cpu_number, vm.memory) == (flex.pk, 2, 384)
        assert host.domain_size(vm.instance_name).memory_mib == 384


def test_reset_the_password_shows_it_once(sim, tenant_a, capture):
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    # a template without passwords: not offered, and the job's sentence when posted anyway
    assert 'id="instance-reset-password"' not in text(client.get(url(vm)))
    act(client, capture, vm, "reset-password")
    assert "Template tiny of VM web-1 is not password enabled" in page_text(client.get(url(vm)))
    Template.objects.filter(pk=sim.template.pk).update(password_enabled=True)
    body = text(client.get(url(vm)))
    assert 'id="instance-reset-password"' in body and "data-confirm=" in body.split('id="instance-reset-password"')[1]
    response = act(client, capture, vm, "reset-password")
    assert response.status_code == 302 and response["Location"] == url(vm)
    job = AsyncJob.objects.filter(instance_uuid=str(vm.uuid)).order_by("-id").first()
    assert job.command == "resetPasswordForVirtualMachine" and job.status == 1
    password = job.result["virtualmachine"]["password"]
    page = words(client.get(url(vm)))
    assert f"New password of VM web-1: {password}" in page and "shown only this once" in page
    assert password not in text(client.get(url(vm)))  # once
    assert password not in text(client.get(url(vm, "status")))
    assert events(vm, "VM.RESETPASSWORD") == ["Password of VM web-1 reset"]


def test_reset_the_password_of_a_running_vm_is_refused(sim, tenant_a, capture):
    Template.objects.filter(pk=sim.template.pk).update(password_enabled=True)
    vm = deploy(tenant_a.user, sim, capture, "web-1")
    client = logged_in(tenant_a.user)
    assert 'id="instance-reset-password"' not in text(client.get(url(vm)))  # Running: not offered
    act(client, capture, vm, "reset-password")
    page = page_text(client.get(url(vm)))
    assert "resetPasswordForVirtualMachine failed" in page
    assert "VM web-1 must be Stopped to reset its password; it is Running" in page
    assert 'id="instance-password"' not in page and not events(vm, "VM.RESETPASSWORD")


def test_reset_the_ssh_key_to_one_of_the_owners_key_pairs(sim, tenant_a, tenant_b, capture):
    for name, account in (("laptop", tenant_a.account), ("desktop", tenant_a.account), ("b-key", tenant_b.account)):
        SSHKeyPair.objects.create(name=name, account=account, public_key=f"ssh-ed25519 {name}", fingerprint=name)
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    body = text(client.get(url(vm))).split('id="instance-reset-ssh-key"')[1].split("</form>")[0]
    assert 'value="desktop"' in body and 'value="laptop"' in body and "b-key" not in body
    response = posted(client, capture, url(vm, "reset-ssh-key"), {"keypair": "laptop"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.keypairs == ["laptop"]
    assert events(vm, "VM.RESETSSHKEY") == ["SSH keys of VM web-1 reset to laptop"]
    page = page_text(client.get(url(vm)))
    assert "Resetting the SSH key of VM web-1…" in page and "resetSSHKeyForVirtualMachine succeeded" in page
    # another account's key pair: the job's sentence
    posted(client, capture, url(vm, "reset-ssh-key"), {"keypair": "b-key"})
    page = page_text(client.get(url(vm)))
    assert "No SSH key pair named b-key for account" in page
    vm.refresh_from_db()
    assert vm.keypairs == ["laptop"]


def test_reinstall_replaces_the_root_disk(sim, tenant_a, capture):
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    form = text(client.get(url(vm))).split('id="instance-reinstall"')[1].split("</form>")[0]
    assert "Reinstall VM web-1? Its root disk is replaced by a fresh copy of the chosen template (now tiny)" in \
        page_text(client.get(url(vm))) and "data-confirm=" in form and "csrfmiddlewaretoken" in form
    assert f'<option value="{sim.template.uuid}" selected>tiny</option>' in form  # the current one by default
    response = act(client, capture, vm, "reinstall")
    assert response.status_code == 302
    job = AsyncJob.objects.filter(instance_uuid=str(vm.uuid)).order_by("-id").first()
    assert job.command == "restoreVirtualMachine" and job.params == {"virtualmachineid": str(vm.uuid)}
    assert job.status == 1, job.result
    assert events(vm, "VM.RESTORE") == ["VM web-1 restored from template tiny"]
    assert Volume.objects.get(virtual_machine=vm, type="ROOT", removed__isnull=True).state == "Allocated"
    page = page_text(client.get(url(vm)))
    assert "Reinstalling VM web-1…" in page and "restoreVirtualMachine succeeded" in page
    # a destroyed VM: not offered, and the job's sentence when posted anyway
    act(client, capture, vm, "destroy")
    assert 'id="instance-reinstall"' not in text(client.get(url(vm)))
    act(client, capture, vm, "reinstall")
    assert "restoreVirtualMachine failed" in page_text(client.get(url(vm)))
    assert len(events(vm, "VM.RESTORE")) == 1


def test_attach_and_detach_an_iso(sim, tenant_a, tenant_b, capture):
    cd = iso(sim, "tools-cd")
    iso(sim, "admins-only", public=False)
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    form = text(client.get(url(vm))).split('id="instance-attach-iso"')[1].split("</form>")[0]
    assert "tools-cd" in form and "admins-only" not in form and "tiny" not in form
    response = posted(client, capture, url(vm, "attach-iso"), {"id": str(cd.uuid)})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.iso_id == cd.pk
    assert events(vm, "ISO.ATTACH") == ["ISO tools-cd attached to VM web-1 (its CD-ROM drive has it from the next "
                                        "start)"]
    body = text(client.get(url(vm)))
    assert 'id="instance-attach-iso"' not in body and 'id="instance-detach-iso"' in body
    assert 'id="instance-iso">tools-cd<' in body
    # attaching again: the job's sentence
    posted(client, capture, url(vm, "attach-iso"), {"id": str(cd.uuid)})
    assert "attachIso failed" in page_text(client.get(url(vm)))
    assert "ISO tools-cd is attached to VM web-1 already" in page_text(client.get(url(vm)))
    response = act(client, capture, vm, "detach-iso")
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.iso_id is None and events(vm, "ISO.DETACH") == ["ISO tools-cd detached from VM web-1"]
    page = page_text(client.get(url(vm)))
    assert "Detaching the ISO of VM web-1…" in page and "detachIso succeeded" in page
    # an ISO that is not the API's: the dispatcher's sentence in place
    response = posted(client, capture, url(vm, "attach-iso"), {"id": "not-a-uuid"})
    assert response.status_code == 200 and action_error(response)


def template(sim, name: str, *, public: bool = True) -> Template:
    """A template of the root admin's, Ready in zone z1 (public, or private to the admin's account)."""
    from tests.images import make_qcow2

    row, = images.register(sim.admin, is_iso=False, name=name, url=make_qcow2(sim.tmp_path / f"{name}.qcow2",
                                                                              "32M").as_uri(),
                           zoneid=str(sim.zone.uuid), format="QCOW2", hypervisor="KVM", is_public=public)
    images.run_download(row.pk)
    return row.template


def test_change_to_a_customized_offering_with_sizes(sim, tenant_a, tenant_b, capture):
    custom = ServiceOffering.objects.create(name="Flex", display_text="flex", customized=True, min_cpu_number=1,
                                            max_cpu_number=4, min_memory=128, max_memory=1024)
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    body = text(client.get(url(vm)))
    form = body.split('id="instance-change-offering"')[1].split("</form>")[0]
    assert f'value="{custom.uuid}" data-custom="true"' in form and 'data-custom-fields="instance-custom-sizes"' in form
    for name, value in (("cpuNumber", 1), ("cpuSpeed", 500), ("memory", 128)):  # the VM's sizes by default
        assert f'name="details[0].{name}" value="{value}"' in form
    # out of the offering's range: _sizes' sentence in the form, with the answers given
    response = posted(client, capture, url(vm, "change-offering"), {
        "serviceofferingid": str(custom.uuid), "details[0].cpuNumber": "8", "details[0].cpuSpeed": "750",
        "details[0].memory": "512"})
    assert response.status_code == 200
    assert action_error(response) == "cpuNumber 8 is outside the range 1-4 of service offering Flex"
    form = text(response).split('id="instance-change-offering"')[1].split("</form>")[0]
    assert 'id="action-error"' in form and 'name="details[0].cpuNumber" value="8"' in form
    assert f'value="{custom.uuid}" data-custom="true" selected' in form
    response = posted(client, capture, url(vm, "change-offering"), {
        "serviceofferingid": str(custom.uuid), "details[0].cpuNumber": "", "details[0].memory": ""})
    assert "is customized: give details[0].cpuNumber and details[0].memory" in action_error(response)
    response = posted(client, capture, url(vm, "change-offering"), {
        "serviceofferingid": str(custom.uuid), "details[0].cpuNumber": "2", "details[0].cpuSpeed": "750",
        "details[0].memory": "512"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert (vm.service_offering_id, vm.cpu_number, vm.cpu_speed, vm.memory) == (custom.pk, 2, 750, 512)
    assert events(vm, "VM.UPGRADE") == ["VM web-1 now has offering Flex (2 vCPU, 512 MiB)"]
    # its own customized offering stays offered (new sizes are a change), chosen by default; another tenant: 404
    assert f'value="{custom.uuid}" data-custom="true" selected' in text(client.get(url(vm)))
    assert posted(logged_in(tenant_b.user), capture, url(vm, "change-offering"), {
        "serviceofferingid": str(custom.uuid), "details[0].cpuNumber": "1", "details[0].memory": "128"}
    ).status_code == 404
    vm.refresh_from_db()
    assert vm.cpu_number == 2


def test_replace_the_iso_in_the_drive_in_one_step(sim, tenant_a, tenant_b, capture):
    first, second = iso(sim, "tools-cd"), iso(sim, "rescue-cd")
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    posted(client, capture, url(vm, "attach-iso"), {"id": str(first.uuid)})
    form = text(client.get(url(vm))).split('id="instance-attach-iso"')[1].split("</form>")[0]
    assert "Replace ISO tools-cd with" in form and 'name="forced" value="true"' in form
    assert "rescue-cd" in form and "tools-cd</option>" not in form and "Replace ISO</button>" in form
    assert "data-confirm=" in form
    assert posted(logged_in(tenant_b.user), capture, url(vm, "attach-iso"),
                  {"id": str(second.uuid), "forced": "true"}).status_code == 404
    response = posted(client, capture, url(vm, "attach-iso"), {"id": str(second.uuid), "forced": "true"})
    assert response.status_code == 302
    vm.refresh_from_db()
    assert vm.iso_id == second.pk
    assert ("ISO rescue-cd attached to VM web-1 (its CD-ROM drive has it from the next start)"
            in events(vm, "ISO.ATTACH"))
    # without forced (an old form): the API's sentence
    posted(client, capture, url(vm, "attach-iso"), {"id": str(first.uuid)})
    assert "VM web-1 has ISO rescue-cd attached; detach it first" in page_text(client.get(url(vm)))
    vm.refresh_from_db()
    assert vm.iso_id == second.pk


def test_reinstall_from_another_template(sim, tenant_a, tenant_b, capture):
    other = template(sim, "other-os")
    template(sim, "admins-own", public=False)
    vm = stopped_vm(tenant_a.user, sim, capture)
    client = logged_in(tenant_a.user)
    form = text(client.get(url(vm))).split('id="instance-reinstall"')[1].split("</form>")[0]
    assert f'<option value="{other.uuid}">other-os</option>' in form and "admins-own" not in form
    assert posted(logged_in(tenant_b.user), capture, url(vm, "reinstall"),
                  {"templateid": str(other.uuid)}).status_code == 404
    response = posted(client, capture, url(vm, "reinstall"), {"templateid": str(other.uuid)})
    assert response.status_code == 302
    job = AsyncJob.objects.filter(instance_uuid=str(vm.uuid)).order_by("-id").first()
    assert job.params == {"virtualmachineid": str(vm.uuid), "templateid": str(other.uuid)} and job.status == 1
    vm.refresh_from_db()
    assert vm.template_id == other.pk
    assert events(vm, "VM.RESTORE") == ["VM web-1 restored from template other-os"]
    assert Volume.objects.get(virtual_machine=vm, type="ROOT", removed__isnull=True).template_id == other.pk
    form = text(client.get(url(vm))).split('id="instance-reinstall"')[1].split("</form>")[0]
    assert f'<option value="{other.uuid}" selected>other-os</option>' in form
    # an ISO is no template to reinstall from: the dispatcher's sentence, in the form
    cd = iso(sim, "tools-cd")
    response = posted(client, capture, url(vm, "reinstall"), {"templateid": str(cd.uuid)})
    assert response.status_code == 200, response
    assert 'id="action-error"' in text(response).split('id="instance-reinstall"')[1].split("</form>")[0]
    assert "Invalid parameter templateid value=" in action_error(response)  # the API's sentence
    vm.refresh_from_db()
    assert vm.template_id == other.pk
