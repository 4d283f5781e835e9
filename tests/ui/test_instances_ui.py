"""Instances pages: the list (search, state and zone filters, live states), the deploy form
(zone → template → offering → disk → network → key pair and user data → name → review), and the
detail page (live state, addresses, volumes, events, the latest job, the actions). VMs run on a
Simulator host (libvirt's test:///default); jobs run eagerly once the request commits.

The Django test client covers every page, filter, refusal and action; one real-browser run
(Debian's chromium driven by Playwright) deploys through the form and follows the VM's state
live through stop, start and destroy."""
from __future__ import annotations

import base64
import html
import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import SSHKeyPair
from compute import instances, offerings
from compute import services as compute_services
from compute.choices import VmState
from compute.models import Host, ServiceOffering, VirtualMachine, Zone
from portal import config
from portal.models import AsyncJob, JobStatus
from storage import services as storage_services
from storage.images import services as images
from storage.models import DownloadState, Template, TemplateZone
from tests.factories import admin_user, bootstrap_cloud, make_account, make_domain
from tests.images import make_iso, make_qcow2
from tests.storage.conftest import make_zone

from .conftest import column_labels
from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

RANGE = re.compile(r"10\.1\.0\.3\d")


def text(response) -> str:
    return response.content.decode()


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", text(response)))


def words(response) -> str:
    """The page's text as a reader sees it: no tags, one space between words."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text(response))))


def field_error(response, field_id: str) -> str:
    match = re.search(rf'<small id="{field_id}_error" class="nubo-field-error">([^<]*)</small>', text(response))
    return html.unescape(match.group(1)) if match else ""


def form_error(response) -> str:
    match = re.search(r'<div class="nubo-form-errors" role="alert">\s*<p>([^<]*)</p>', text(response))
    return html.unescape(match.group(1)) if match else ""


def action_error(response) -> str:
    match = re.search(r'id="action-error">\s*<p>([^<]*)</p>', text(response))
    return html.unescape(match.group(1)) if match else ""


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _private_mount_dirs(settings, tmp_path):
    settings.NUBO_POOL_MOUNT_DIR = str(tmp_path / "pool-mnt")
    settings.NUBO_SECONDARY_MOUNT_DIR = tmp_path / "secondary-mnt"


def build_sim(tmp_path) -> SimpleNamespace:
    """An enabled zone z1: pod with the guest range 10.1.0.30-10.1.0.39, Simulator cluster, host,
    pool, image store, a public Ready template "tiny" and an offering "Tiny" (as in
    tests/compute/test_instances.py)."""
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
    images.run_download(row.pk)  # nothing to do when the commit already ran it
    offering = ServiceOffering.objects.create(name="Tiny", display_text="tiny", cpu_number=1, cpu_speed=500,
                                              memory=128, sort_key=-1)
    return SimpleNamespace(admin=admin, zone=zone, pod=pod, cluster=cluster, host=host, pool=pool,
                           template=row.template, offering=offering, tmp_path=tmp_path)


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


def form_data(sim, **extra) -> dict:
    data = {"zone": str(sim.zone.uuid), "template": str(sim.template.uuid), "offering": str(sim.offering.uuid),
            "keypair": "", "user_data": "", "name": "web-1", "display_name": ""}
    data.update(extra)
    return data


def posted(client, capture, url: str, data: dict):
    """POST, running what the request's transaction committed (jobs) like a worker."""
    with capture(execute=True):
        return client.post(url, data)


def deploy(user, sim, capture, name: str, zone=None) -> VirtualMachine:
    """Through the deploy form (Deploy after the review), its job run as a worker would."""
    client = logged_in(user)
    data = form_data(sim, name=name, step="deploy")
    if zone is not None:
        data["zone"] = str(zone.uuid)
    response = posted(client, capture, "/client/instances/new", data)
    assert response.status_code == 302, page_text(response)[:3000]
    return VirtualMachine.objects.get(uuid=response["Location"].rsplit("/", 1)[1])


def act(client, capture, vm: VirtualMachine, action: str):
    return posted(client, capture, f"/client/instances/{vm.uuid}/{action}", {})


def second_zone(sim) -> Zone:
    """Zone z2 (octet 2): enabled, a Simulator host, storage, no template yet."""
    admin = sim.admin
    zone, pod = make_zone(admin, "z2", 2)
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway="10.2.0.1", netmask="255.255.255.0",
                                          start_ip="10.2.0.30", end_ip="10.2.0.39")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    return zone


# -- navigation and who sees what -----------------------------------------------------------------------
def test_navigation_offers_instances_to_everyone(sim, tenant_a, admin_ui, domain_admin):
    for user in (tenant_a.user, sim.admin, domain_admin.user):
        body = text(logged_in(user).get("/client/"))
        assert '<a href="/client/instances">Instances</a>' in body
    body = text(admin_ui.get("/client/instances/new"))
    assert '<a href="/client/instances" aria-current="page">Instances</a>' in body


def test_anonymous_is_sent_to_the_login_page(sim):
    for url in ("/client/instances", "/client/instances/new", "/client/instances/rows"):
        response = Client().get(url)
        assert response.status_code == 302 and "/client/login" in response["Location"]


def test_another_tenants_vm_is_not_found(sim, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "a-vm")
    b = logged_in(tenant_b.user)
    assert "a-vm" not in page_text(b.get("/client/instances"))
    assert b.get(f"/client/instances/{vm.uuid}").status_code == 404
    assert b.get(f"/client/instances/{vm.uuid}/status").status_code == 404
    for action in ("stop", "force-stop", "reboot", "destroy", "recover", "expunge", "start"):
        assert act(b, django_capture_on_commit_callbacks, vm, action).status_code == 404, action
    vm.refresh_from_db()
    assert vm.state == VmState.RUNNING
    assert not AsyncJob.objects.filter(user=tenant_b.user).exists()
    a = logged_in(tenant_a.user)
    assert a.get(f"/client/instances/{vm.uuid}/nonsense").status_code == 405  # a GET: actions are POSTs
    assert act(a, django_capture_on_commit_callbacks, vm, "nonsense").status_code == 404


def test_host_column_only_for_root_admins(sim, tenant_a, domain_admin, django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    admin_page = logged_in(sim.admin).get("/client/instances")
    admin_body = text(admin_page)
    assert "Host" in column_labels(admin_page) and sim.host.name in admin_body
    assert "Owner" in column_labels(admin_page) and "tenant-a" in admin_body
    user_page = logged_in(tenant_a.user).get("/client/instances")
    assert "Host" not in column_labels(user_page) and "Owner" not in column_labels(user_page)
    assert "web-1" in text(user_page)
    corp_page = logged_in(domain_admin.user).get("/client/instances")
    assert "Host" not in column_labels(corp_page) and "Owner" in column_labels(corp_page)
    assert "web-1" not in text(corp_page)  # tenant-a is not in ROOT/corp
    # the detail page too: pod and host for root admins only
    admin_detail = words(logged_in(sim.admin).get(f"/client/instances/{vm.uuid}"))
    assert f"Host {sim.host.name}" in admin_detail and "Instance name" in admin_detail
    user_detail = words(logged_in(tenant_a.user).get(f"/client/instances/{vm.uuid}"))
    status = user_detail.split("Status", 1)[1].split("Network", 1)[0]
    assert "Host" not in status and "Pod" not in status and "Instance name" not in user_detail


# -- list -------------------------------------------------------------------------------------------------
def test_list_filters_by_state_and_zone_and_searches(sim, tenant_a, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    z2 = second_zone(sim)
    web, db = deploy(tenant_a.user, sim, capture, "web-1"), deploy(tenant_a.user, sim, capture, "db-1")
    client = logged_in(tenant_a.user)
    act(client, capture, db, "stop")
    assert VirtualMachine.objects.get(pk=db.pk).state == VmState.STOPPED
    web_ip = web.nics.get().address.address

    def names(url: str) -> set[str]:
        response = client.get(url)
        assert response.status_code == 200, url
        row = r'<tr id="vm-[^"]+">\s*<td><a class="nubo-nowrap" href="[^"]+">([^<]+)</a>'
        return set(re.findall(row, text(response)))

    assert names("/client/instances") == {"web-1", "db-1"}
    assert names("/client/instances?state=Running") == {"web-1"}
    assert names("/client/instances?state=Stopped") == {"db-1"}
    assert names("/client/instances?state=Error") == set()
    assert names(f"/client/instances?zone={sim.zone.uuid}") == {"web-1", "db-1"}
    assert names(f"/client/instances?zone={z2.uuid}") == set()
    assert names(f"/client/instances?zone={sim.zone.uuid}&state=Stopped&q=db") == {"db-1"}
    assert names("/client/instances?q=WEB") == {"web-1"}
    assert names(f"/client/instances?q={web_ip}") == {"web-1"}
    assert names(f"/client/instances?q={db.uuid}") == {"db-1"}
    assert names("/client/instances?q=nothing-like-it") == set()
    assert names("/client/instances?page=99") == {"web-1", "db-1"}  # out of range: the last page
    assert "No VM matches." in page_text(client.get("/client/instances?q=nothing-like-it"))
    body = page_text(client.get("/client/instances"))
    assert web_ip in body and "tiny" in body and "Tiny" in body and "1 vCPU · 128 MiB" in body
    assert client.get("/client/instances?state=Sleeping").status_code == 404
    assert client.get("/client/instances?zone=not-a-uuid").status_code == 404
    # a zone the caller may not see is not a filter
    hidden = make_zone(sim.admin, "hidden", 3)[0]
    assert client.get(f"/client/instances?zone={hidden.uuid}").status_code == 404
    # the zone choices: the zones the caller sees
    assert f'<option value="{z2.uuid}">z2</option>' in text(client.get("/client/instances"))


def test_a_list_page_costs_the_same_queries_for_any_number_of_rows(sim, tenant_a,
                                                                   django_capture_on_commit_callbacks):
    client = logged_in(tenant_a.user)
    deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "vm-1")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/client/instances").status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for i in range(2, 5):
        deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, f"vm-{i}")
    assert queries() == one


def test_the_list_polls_while_a_vm_is_transitional_and_stops_after(sim, tenant_a,
                                                                   django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    client = logged_in(tenant_a.user)
    body = text(client.get("/client/instances"))
    assert 'data-live="false"' in body and "hx-trigger" not in body.split('id="instance-rows"', 1)[1].split(">", 1)[0]

    VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPING)
    body = text(client.get("/client/instances?state=Stopping"))
    tbody = re.search(r'<tbody id="instance-rows"[^>]*>', body).group(0)
    assert 'data-live="true"' in tbody and 'hx-trigger="every 2s"' in tbody
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', tbody).group(1))
    assert poll.startswith("/client/instances/rows?state=Stopping&seen=")
    assert client.get(poll).status_code == 204  # nothing changed: nothing to swap

    VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPED)
    response = client.get(poll)
    assert response.status_code == 200
    assert 'data-live="false"' in text(response) and "hx-get" not in text(response)  # polling stops
    # every transitional state polls
    for state in (VmState.STARTING, VmState.EXPUNGING, VmState.MIGRATING):
        VirtualMachine.objects.filter(pk=vm.pk).update(state=state)
        assert 'data-live="true"' in text(client.get("/client/instances/rows"))


# -- the deploy form ----------------------------------------------------------------------------------
def test_the_form_offers_what_the_caller_may_deploy_with(sim, tenant_a, tenant_b, tmp_path):
    # not offered: a private template of another account, a template still downloading, an ISO
    admin = sim.admin
    images.register(admin, is_iso=False, name="admin-private", url=make_qcow2(tmp_path / "b.qcow2").as_uri(),
                    zoneid=str(sim.zone.uuid), format="QCOW2", hypervisor="KVM")
    for row in TemplateZone.objects.filter(template__name="admin-private"):
        images.run_download(row.pk)
    images.register(admin, is_iso=False, name="still-coming", url=make_qcow2(tmp_path / "c.qcow2").as_uri(),
                    zoneid=str(sim.zone.uuid), format="QCOW2", hypervisor="KVM", is_public=True)
    iso_row, = images.register(admin, is_iso=True, name="an-iso", url=make_iso(tmp_path / "x.iso").as_uri(),
                               zoneid=str(sim.zone.uuid), is_public=True)
    images.run_download(iso_row.pk)
    data_row, = images.register(admin, is_iso=True, name="data-cd", url=make_iso(tmp_path / "y.iso").as_uri(),
                                zoneid=str(sim.zone.uuid), is_public=True, bootable=False)
    images.run_download(data_row.pk)
    offerings.create_disk_offering(admin, name="Small disk", display_text="5 GiB", disk_size=5)
    offerings.create_disk_offering(admin, name="Hidden disk", display_text="x", disk_size=5, display_offering=False)
    assert TemplateZone.objects.get(template__name="still-coming").state == DownloadState.NOT_DOWNLOADED
    SSHKeyPair.objects.create(name="laptop", account=tenant_a.account, public_key="ssh-ed25519 AAAA",
                              fingerprint="aa:bb")
    SSHKeyPair.objects.create(name="b-key", account=tenant_b.account, public_key="ssh-ed25519 BBBB",
                              fingerprint="cc:dd")
    domain_only = ServiceOffering.objects.create(name="Corp only", cpu_number=1, cpu_speed=500, memory=64)
    domain_only.domains.add(make_domain("corp2"))

    response = logged_in(tenant_a.user).get("/client/instances/new")
    assert response.status_code == 200
    body = words(response)
    assert f'<option value="{sim.zone.uuid}" selected>z1</option>' in text(response)
    assert TemplateZone.objects.get(template__name="admin-private").state == DownloadState.DOWNLOADED
    assert "tiny" in body and "admin-private" not in body and "still-coming" not in body
    assert "ISO: an-iso" in body and "data-cd" not in body  # a bootable ISO is offered; a data CD is not
    assert body.index("tiny") < body.index("ISO: an-iso")  # templates first
    assert "Tiny — 1 vCPU × 500 MHz, 128 MiB" in body and "Corp only" not in body
    assert "Small disk — 5 GiB" in body and "None (no data disk)" in body and "Hidden disk" not in body
    assert "laptop" in body and "b-key" not in body
    assert "An ISO (bootable) installs onto a blank disk" in body
    assert "guestNetworkForBasicZone" in body and "gateway 10.1.0.1, netmask 255.255.255.0" in body
    assert "10.1.0.30–10.1.0.39" not in body  # the range itself: root admins
    assert "10.1.0.30–10.1.0.39" in page_text(logged_in(sim.admin).get("/client/instances/new"))
    for section in ("1 Zone", "2 Template or ISO", "3 Compute offering", "4 Disk", "5 Network",
                    "6 SSH key pair and user data", "7 Name"):
        assert section in body, section


def test_choosing_a_zone_shows_its_templates(sim, tenant_a):
    z2 = second_zone(sim)
    client = logged_in(tenant_a.user)
    # htmx asks the same page for the zone; without scripts, the "Show this zone's templates" button
    body = page_text(client.get(f"/client/instances/new?zone={z2.uuid}"))
    assert "No template or ISO is ready in zone z2 for you yet" in body and "gateway 10.2.0.1" in body
    body = page_text(client.post("/client/instances/new", form_data(sim, zone=str(z2.uuid), step="zone")))
    assert "No template or ISO is ready in zone z2" in body and 'value="web-1"' in body  # the answers are kept
    body = page_text(client.get(f"/client/instances/new?zone={sim.zone.uuid}"))
    assert "No template or ISO is ready" not in body and "tiny" in body
    # a template of z1 is not one of z2
    response = client.post("/client/instances/new", form_data(sim, zone=str(z2.uuid), step="review"))
    assert "Select a valid choice" in field_error(response, "id_template")


def test_review_then_deploy_lands_on_the_running_vm(sim, tenant_a, django_capture_on_commit_callbacks):
    SSHKeyPair.objects.create(name="laptop", account=tenant_a.account, public_key="ssh-ed25519 AAAA",
                              fingerprint="aa:bb")
    client = logged_in(tenant_a.user)
    answers = form_data(sim, keypair="laptop", user_data="#!/bin/sh\r\necho hi\r\n", display_name="Web one")
    review = client.post("/client/instances/new", {**answers, "step": "review"})
    assert review.status_code == 200
    body = words(review)
    assert "Deploy VM: review" in body and "Zone z1" in body and "Name web-1" in body and "SSH key pair laptop" in body
    assert "User data 2 lines, 18 bytes" in body and "Display name Web one" in body
    assert not VirtualMachine.objects.exists()
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', text(review)))
    assert hidden["zone"] == str(sim.zone.uuid) and hidden["name"] == "web-1"
    # Change: the answers again, for editing
    back = client.post("/client/instances/new", {**answers, "step": "edit"})
    assert 'value="web-1"' in text(back) and "Deploy VM: review" not in page_text(back)

    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      {**answers, "step": "deploy"})
    assert response.status_code == 302
    vm = VirtualMachine.objects.get(name="web-1")
    assert response["Location"] == f"/client/instances/{vm.uuid}"
    assert vm.state == VmState.RUNNING and vm.account == tenant_a.account and vm.display_name == "Web one"
    assert vm.keypairs == ["laptop"]
    assert base64.b64decode(vm.user_data) == b"#!/bin/sh\necho hi\n"  # line breaks as the guest expects
    job = AsyncJob.objects.get(instance_uuid=str(vm.uuid))
    assert job.command == "deployVirtualMachine" and job.status == JobStatus.SUCCEEDED and job.user == tenant_a.user
    page = client.get(response["Location"])
    body = page_text(page)
    assert "Deploying VM web-1…" in body and "VM web-1" in body
    assert re.search(r'id="instance-state">\s*<span class="nubo-status nubo-vm-state nubo-vm-running"', text(page))
    ip = vm.nics.get().address.address
    assert RANGE.fullmatch(ip) and ip in body
    assert "deployVirtualMachine succeeded" in body and "VM.CREATE" in body and "VM.START" in body
    assert f"ROOT-{vm.pk}" in body and "32.0 MiB" in body
    assert 'data-live="false"' in text(page)
    assert f'href="/client/instances/{vm.uuid}/console"' in text(page)  # "View console" while Running


@pytest.mark.parametrize("answers, field, sentence", [
    ({"name": "9lives"}, "id_name", "Invalid name 9lives"),
    ({"name": "has_underscore"}, "id_name", "Invalid name"),
    ({"template": ""}, "id_template", "This field is required."),
    ({"offering": "0b5d0c9e-0000-4000-8000-000000000000"}, "id_offering", "Select a valid choice"),
])
def test_the_review_shows_the_sentence_next_to_the_field(sim, tenant_a, answers, field, sentence):
    response = logged_in(tenant_a.user).post("/client/instances/new", form_data(sim, step="review", **answers))
    assert response.status_code == 200
    assert sentence in field_error(response, field), page_text(response)[:3000]
    assert "Deploy VM: review" not in page_text(response)


def test_deploy_errors_show_the_services_sentence(sim, tenant_a, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    client = logged_in(tenant_a.user)
    deploy(tenant_a.user, sim, capture, "web-1")
    # a name taken meanwhile: the sentence of compute.instances, next to the name
    response = posted(client, capture, "/client/instances/new", form_data(sim, step="deploy"))
    assert response.status_code == 200
    assert field_error(response, "id_name") == "A VM named web-1 already exists in zone z1; choose another name"
    # more memory than the account may have (the host has room): the limit's sentence, above the form
    config.set_value("max.account.memory", "256", scope="account", scope_uuid=str(tenant_a.account.uuid))
    huge = ServiceOffering.objects.create(name="Huge", cpu_number=1, cpu_speed=500, memory=512)
    response = posted(client, capture, "/client/instances/new",
                      form_data(sim, name="big", offering=str(huge.uuid), step="deploy"))
    assert response.status_code == 200 and "big" not in VirtualMachine.objects.values_list("name", flat=True)
    assert "Maximum number of resources of type 'memory'" in form_error(response)
    # no host can take it (the only one is disabled)
    Host.objects.filter(pk=sim.host.pk).update(resource_state="Disabled")
    response = posted(client, capture, "/client/instances/new", form_data(sim, name="web-2", step="deploy"))
    assert response.status_code == 200 and "No host in zone z1 is Up and enabled" in form_error(response)
    Host.objects.filter(pk=sim.host.pk).update(resource_state="Enabled")
    # user data too long for the API
    response = client.post("/client/instances/new",
                           form_data(sim, name="big", user_data="x" * (instances.USERDATA_POST_MAX), step="review"))
    assert field_error(response, "id_user_data").startswith("User data is too long")
    # limits: the account's VM limit
    config.set_value("max.account.user.vms", "1")
    response = posted(client, capture, "/client/instances/new", form_data(sim, name="web-2", step="deploy"))
    assert response.status_code == 200 and form_error(response), page_text(response)[:3000]
    assert VirtualMachine.objects.count() == 1


def test_a_custom_offering_asks_for_cpus_and_memory(sim, tenant_a, django_capture_on_commit_callbacks):
    custom = ServiceOffering.objects.create(name="Flexible", customized=True, cpu_speed=500, min_cpu_number=1,
                                            max_cpu_number=2, min_memory=64, max_memory=256)
    client = logged_in(tenant_a.user)
    assert "Flexible — custom: choose vCPUs and memory (1–2 vCPUs, 64–256 MiB)" in page_text(
        client.get("/client/instances/new"))
    response = client.post("/client/instances/new", form_data(sim, offering=str(custom.uuid), step="review"))
    assert field_error(response, "id_cpu_number") == "Service offering Flexible is custom: give the number of vCPUs"
    assert field_error(response, "id_memory") == "Service offering Flexible is custom: give the memory"
    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      form_data(sim, offering=str(custom.uuid), cpu_number="2", memory="512", step="deploy"))
    assert "memory 512 is outside the range 64-256" in field_error(response, "id_memory")
    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      form_data(sim, offering=str(custom.uuid), cpu_number="2", memory="192", step="deploy"))
    assert response.status_code == 302
    vm = VirtualMachine.objects.get(name="web-1")
    assert (vm.cpu_number, vm.memory, vm.state) == (2, 192, VmState.RUNNING)


def test_deploying_from_an_iso_asks_for_the_disk_it_installs_onto(sim, tenant_a,
                                                                  django_capture_on_commit_callbacks):
    iso_row, = images.register(sim.admin, is_iso=True, name="installer", zoneid=str(sim.zone.uuid), is_public=True,
                               url=make_iso(sim.tmp_path / "i.iso").as_uri())
    images.run_download(iso_row.pk)
    disk = offerings.create_disk_offering(sim.admin, name="Small disk", display_text="5 GiB", disk_size=5)
    client = logged_in(tenant_a.user)
    iso = str(iso_row.template.uuid)
    response = client.post("/client/instances/new", form_data(sim, template=iso, step="review"))
    assert field_error(response, "id_disk_offering") == ("ISO installer installs onto a blank disk: choose its disk "
                                                         "offering")
    answers = form_data(sim, template=iso, disk_offering=str(disk.uuid))
    body = words(client.post("/client/instances/new", {**answers, "step": "review"}))
    assert "ISO ISO: installer" in body
    assert "Disk A blank 5 GiB (disk offering Small disk) root disk; the VM boots from the ISO to install onto it" \
        in body
    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      {**answers, "step": "deploy"})
    assert response.status_code == 302, page_text(response)[:3000]
    vm = VirtualMachine.objects.get(name="web-1")
    assert (vm.state, vm.iso, vm.template) == (VmState.RUNNING, iso_row.template, iso_row.template)
    body = words(client.get(response["Location"]))
    assert "Installed from ISO installer" in body and "ISO in its CD-ROM drive installer" in body
    assert f"ROOT-{vm.pk} ROOT 5.0 GiB" in body


def test_a_template_with_a_custom_disk_offering_gets_a_data_disk(sim, tenant_a, django_capture_on_commit_callbacks):
    custom = offerings.create_disk_offering(sim.admin, name="Any disk", display_text="any", customized=True)
    client = logged_in(tenant_a.user)
    assert "Any disk — custom: choose 1–1024 GiB" in page_text(client.get("/client/instances/new"))
    answers = form_data(sim, disk_offering=str(custom.uuid))
    response = client.post("/client/instances/new", {**answers, "step": "review"})
    assert field_error(response, "id_disk_size") == "Disk offering Any disk is custom: give the size"
    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      {**answers, "disk_size": "2000", "step": "deploy"})
    assert field_error(response, "id_disk_size") == "size 2000 GiB is outside the range 1-1024 GiB of disk offering " \
                                                    "Any disk"
    body = words(client.post("/client/instances/new", {**answers, "disk_size": "2", "step": "review"}))
    assert "Disk The template's root disk (32.0 MiB), and a blank 2 GiB (disk offering Any disk) data disk" in body
    response = posted(client, django_capture_on_commit_callbacks, "/client/instances/new",
                      {**answers, "disk_size": "2", "step": "deploy"})
    assert response.status_code == 302, page_text(response)[:3000]
    vm = VirtualMachine.objects.get(name="web-1")
    body = words(client.get(response["Location"]))
    assert f"ROOT-{vm.pk} ROOT 32.0 MiB" in body and f"DATA-{vm.pk}-1 DATADISK 2.0 GiB" in body
    assert "ISO in its CD-ROM drive None" in body


def test_a_form_without_zones_says_so(cloud, tenant_a):
    body = page_text(logged_in(tenant_a.user).get("/client/instances/new"))
    assert "There is no zone you may deploy into yet; an administrator adds one." in body


# -- detail page and actions ---------------------------------------------------------------------------
def test_actions_follow_the_state(sim, tenant_a, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    vm = deploy(tenant_a.user, sim, capture, "web-1")
    client = logged_in(tenant_a.user)
    url = f"/client/instances/{vm.uuid}"

    def buttons() -> list[str]:
        body = text(client.get(url))
        return re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', body.split('id="instance-actions"', 1)[1]
                          .split("</section>", 1)[0])

    def state() -> str:
        return VirtualMachine.objects.get(pk=vm.pk).state

    assert buttons() == ["Stop", "Force stop", "Reboot", "Destroy"]
    response = act(client, capture, vm, "reboot")
    assert response.status_code == 302 and response["Location"] == url and state() == VmState.RUNNING
    assert "rebootVirtualMachine succeeded" in page_text(client.get(url))
    act(client, capture, vm, "stop")
    assert state() == VmState.STOPPED and buttons() == ["Start", "Destroy"]
    # stopping a stopped VM: the job fails and the page shows its sentence
    act(client, capture, vm, "stop")
    body = page_text(client.get(url))
    assert "stopVirtualMachine failed" in body and "Cannot stop VM web-1: it is Stopped" in body
    act(client, capture, vm, "start")
    assert state() == VmState.RUNNING
    act(client, capture, vm, "force-stop")
    assert state() == VmState.STOPPED
    job = AsyncJob.objects.filter(instance_uuid=str(vm.uuid)).order_by("-id").first()
    assert job.params == {"id": str(vm.uuid), "forced": "true"} and job.command == "stopVirtualMachine"
    act(client, capture, vm, "destroy")
    assert state() == VmState.DESTROYED
    # users may not recover or expunge (allow.user.expunge.recover.vm is false): no buttons, and the
    # service's sentence when posted anyway
    assert buttons() == []
    response = act(client, capture, vm, "recover")
    assert response.status_code == 200 and action_error(response).startswith("Only administrators may expunge")
    response = act(client, capture, vm, "expunge")
    assert response.status_code == 200 and action_error(response).startswith("Only administrators may expunge")
    # once the setting allows it, the owner may
    config.set_value("allow.user.expunge.recover.vm", "true", scope="account", scope_uuid=str(tenant_a.account.uuid))
    assert buttons() == ["Recover", "Expunge"]
    response = act(client, capture, vm, "recover")
    assert response.status_code == 302 and state() == VmState.STOPPED
    assert "VM web-1 recovered: it is Stopped." in page_text(client.get(url))


def test_an_admin_expunges_a_destroyed_vm(sim, tenant_a, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    vm = deploy(tenant_a.user, sim, capture, "web-1")
    address = vm.nics.get().address.address
    admin = logged_in(sim.admin)
    act(admin, capture, vm, "destroy")
    assert "Recover" in text(admin.get(f"/client/instances/{vm.uuid}"))
    response = act(admin, capture, vm, "expunge")
    assert response.status_code == 302 and response["Location"] == "/client/instances"
    body = page_text(admin.get("/client/instances"))
    assert "Expunging VM web-1…" in body and address not in body and 'id="vm-' not in body
    assert VirtualMachine.objects.get(pk=vm.pk).removed is not None
    assert admin.get(f"/client/instances/{vm.uuid}").status_code == 404


def test_the_detail_page_polls_while_transitional_or_a_job_runs(sim, tenant_a, django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    client = logged_in(tenant_a.user)
    url = f"/client/instances/{vm.uuid}"

    def live_div(body: str) -> str:
        return re.search(r'<div id="instance-live"[^>]*>', body).group(0)

    assert 'data-live="false"' in live_div(text(client.get(url)))
    # a job on it still pending (a worker has not picked it up): the page follows it
    client.post(f"{url}/stop")  # not captured: the job stays pending
    job = AsyncJob.objects.filter(instance_uuid=str(vm.uuid)).order_by("-id").first()
    assert job.status == JobStatus.PENDING
    body = text(client.get(url))
    div = live_div(body)
    assert 'data-live="true"' in div and 'hx-trigger="every 2s"' in div
    assert "stopVirtualMachine is running" in page_text(client.get(url))
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', div).group(1))
    assert poll.startswith(f"{url}/status?seen=")
    assert client.get(poll).status_code == 204
    # the worker claims it: Stopping, still live
    VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPING)
    response = client.get(poll)
    assert response.status_code == 200 and 'data-state="Stopping"' in text(response)
    assert 'data-live="true"' in live_div(text(response))
    # done: the answer polls no more
    from portal import jobs

    VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.run(str(job.uuid))
    response = client.get(poll)
    assert response.status_code == 200
    assert 'data-live="false"' in live_div(text(response)) and "hx-get" not in live_div(text(response))
    assert "stopVirtualMachine succeeded" in page_text(response)
    assert VirtualMachine.objects.get(pk=vm.pk).state == VmState.STOPPED


def test_a_vm_whose_start_failed_shows_what_happened_and_only_admins_the_cause(sim, tenant_a,
                                                                              django_capture_on_commit_callbacks):
    stored = images.stored_path(TemplateZone.objects.get(template=sim.template, zone=sim.zone))
    stored.rename(stored.with_suffix(".gone"))  # the copy to primary storage fails for real
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    assert vm.state == VmState.ERROR
    client = logged_in(tenant_a.user)
    body = page_text(client.get(f"/client/instances/{vm.uuid}"))
    assert "deployVirtualMachine failed" in body and "could not build or start it" in body
    assert "Reason" not in body and "Cannot copy" not in body  # the cause is for admins
    assert f"host {sim.host.name}" not in body  # and so are host names
    assert "VM.START" in body
    page = text(client.get(f"/client/instances/{vm.uuid}"))
    actions = page.split('id="instance-actions"', 1)[1].split("</section>")[0]
    assert re.findall(r'<button type="submit"[^>]*>([^<]+)</button>', actions) == ["Destroy"]
    admin_body = page_text(logged_in(admin_user()).get(f"/client/instances/{vm.uuid}"))
    assert "Reason" in admin_body and "Cannot copy template" in admin_body


# -- the browser -----------------------------------------------------------------------------------------
def _chromium():
    from pathlib import Path

    from playwright import sync_api  # a dev dependency: a missing one is a failure, never a skip

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium, or make deps)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return sync_api


@pytest.mark.browser
def test_deploy_stop_start_destroy_in_the_browser(live_server, transactional_db, tmp_path, threaded_jobs):
    sync_api = _chromium()
    bootstrap_cloud()
    make_account("tenant-a")
    sim = build_sim(tmp_path)
    second_zone(sim)
    expect = sync_api.expect
    expect.set_options(timeout=15_000)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(10_000)
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto(live_server.url + "/client/login")
                page.get_by_label("Username").fill("tenant-a")
                page.get_by_label("Password").fill("secret-pw-1")
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("heading", name="Dashboard").wait_for()

                page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
                expect(page.get_by_role("heading", name="Instances")).to_be_visible()
                page.get_by_role("link", name="Deploy VM").click()
                # choosing a zone refreshes its templates and its network in place
                page.get_by_label("Zone").select_option(label="z2")
                expect(page.locator("#template-section")).to_contain_text("No template or ISO is ready in zone z2")
                expect(page.locator("#network-section")).to_contain_text("gateway 10.2.0.1")
                page.get_by_label("Zone").select_option(label="z1")
                expect(page.locator("#template-section #no-templates")).to_have_count(0)
                expect(page.locator("#network-section")).to_contain_text("gateway 10.1.0.1")
                page.get_by_label("Template or ISO").select_option(label="tiny")
                page.get_by_label("Service offering").select_option(label="Tiny — 1 vCPU × 500 MHz, 128 MiB")
                expect(page.locator("#network-section")).to_contain_text("guestNetworkForBasicZone")
                page.get_by_label("User data").fill("#cloud-config\nhostname: web-1\n")
                page.get_by_role("textbox", name="Name", exact=True).fill("web-1")
                page.screenshot(path=str(ARTIFACTS / "instance-form.png"), full_page=True)
                page.get_by_role("button", name="Review").click()
                expect(page.locator("#deploy-review")).to_contain_text("Tiny — 1 vCPU × 500 MHz, 128 MiB")
                page.screenshot(path=str(ARTIFACTS / "instance-review.png"), full_page=True)
                page.get_by_role("button", name="Deploy VM").click()

                expect(page.get_by_role("heading", name="VM web-1")).to_be_visible()
                state = page.locator("#instance-state")
                live = page.locator("#instance-live")
                expect(state).to_have_text("Running")  # followed live, without reloading
                expect(live).to_have_attribute("data-live", "false")
                expect(page.locator("#instance-ip")).to_have_text(RANGE)
                expect(page.locator("#instance-volumes")).to_contain_text("ROOT-")
                expect(page.locator("#instance-events")).to_contain_text("VM.START")
                expect(page.get_by_role("button", name="View console")).to_have_attribute(
                    "href", re.compile(r"/client/instances/[-0-9a-f]+/console$"))
                page.screenshot(path=str(ARTIFACTS / "instance-running.png"), full_page=True)

                page.get_by_role("button", name="Stop", exact=True).click()
                expect(state).to_have_text("Stopped")
                expect(live).to_have_attribute("data-live", "false")
                expect(page.get_by_role("button", name="Start")).to_be_visible()
                page.get_by_role("button", name="Start").click()
                expect(state).to_have_text("Running")
                expect(live).to_have_attribute("data-live", "false")
                page.get_by_role("button", name="Destroy").click()
                expect(state).to_have_text("Destroyed")
                expect(page.locator("#instance-job")).to_contain_text("destroyVirtualMachine succeeded")
                expect(page.locator("#instance-actions").get_by_role("button", name="Recover")).to_have_count(0)

                page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
                expect(page.locator("#instance-rows")).to_contain_text("Destroyed")
                page.screenshot(path=str(ARTIFACTS / "instances-list.png"), full_page=True)
            finally:
                browser.close()
    finally:
        for thread in threaded_jobs:
            thread.join(30)
    vm = VirtualMachine.objects.get(name="web-1")
    assert vm.state == VmState.DESTROYED
    assert base64.b64decode(vm.user_data) == b"#cloud-config\nhostname: web-1\n"  # through the review's hidden field
    assert Template.objects.filter(pk=sim.template.pk).exists()
