"""The VM page's changes beyond the power actions, each going the API's way (the command's
parameters validated, its check, then the job or, synchronous, the command in one transaction):
edit (updateVirtualMachine), change offering (changeServiceForVirtualMachine), reset password and
SSH key, reinstall (restoreVirtualMachine), attach and detach an ISO. Each: the effect and its
event, a refusal shown in place, and another tenant's VM not found."""
from __future__ import annotations

import pytest

from compute.choices import VmState
from compute.models import ServiceOffering, VirtualMachine
from portal.models import Event

from .test_instances_ui import action_error, act, deploy, logged_in, page_text, posted, sim, text  # noqa: F401


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def url(vm, action: str = "") -> str:
    return f"/client/instances/{vm.uuid}" + (f"/{action}" if action else "")


def events(vm, kind: str) -> list[str]:
    return list(Event.objects.filter(resource_uuid=str(vm.uuid), type=kind).values_list("description", flat=True))


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
    for action, data in (("update", {"displayname": "mine", "group": "g"}),
                         ("change-offering", {"serviceofferingid": str(big.uuid)})):
        assert posted(b, capture, url(vm, action), data).status_code == 404, action
    vm.refresh_from_db()
    assert vm.display_name != "mine" and vm.service_offering_id == sim.offering.pk


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
    assert action_error(response) == ("VM web-1 must be Stopped to change its offering (live scaling is not "
                                      "supported); it is Running")
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
