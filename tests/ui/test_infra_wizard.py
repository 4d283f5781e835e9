"""The basic-installation wizard: each step validated on the server with errors next to the
field, answers kept in the session, a review, and "Launch" running the whole set-up as one
async job (setupBasicZone) whose progress page shows each step; and setup_basic_zone itself:
progress per step, and on failure an error naming the step with everything it created undone."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from compute import services, wizard
from compute.choices import AllocationState, HostState, Hypervisor
from compute.models import Cluster, GuestIpAddress, Host, Pod, VlanIpRange, Zone
from portal.errors import ApiError, PermissionDenied, ResourceUnavailable
from portal.models import AsyncJob, Event, JobStatus
from storage.models import ImageStore, StoragePool
from tests.factories import admin_user, make_account

from .test_infra_pages import field_error, make_sim_zone, text

WIZARD = "/client/infrastructure/wizard"


def answers(tmp_path, **changes) -> dict[str, dict[str, str]]:
    """Valid answers for every step: a Simulator cluster and storage under tmp_path."""
    steps = {
        "zone": {"name": "zone-w", "dns1": "9.9.9.9", "internal_dns1": "10.0.0.2"},
        "pod": {"name": "pod1", "gateway": "192.168.50.1", "netmask": "255.255.255.0", "start_ip": "192.168.50.10",
                "end_ip": "192.168.50.20"},
        "range": {"gateway": "192.168.50.1", "netmask": "255.255.255.0", "start_ip": "192.168.50.100",
                  "end_ip": "192.168.50.150"},
        "cluster": {"name": "cluster1", "hypervisor": "Simulator"},
        "host": {"url": "http://sim/w/h1", "username": "", "password": ""},
        "primary": {"name": "primary1", "url": f"file://{tmp_path}/primary"},
        "secondary": {"url": f"file://{tmp_path}/secondary"},
    }
    for step, values in changes.items():
        steps[step] = {**steps[step], **values}
    return steps


def spec(tmp_path, **changes) -> wizard.BasicZoneSpec:
    a = answers(tmp_path)
    values = dict(
        zone_name=a["zone"]["name"], dns1="9.9.9.9", internal_dns1="10.0.0.2", pod_name="pod1",
        pod_gateway="192.168.50.1", pod_netmask="255.255.255.0", pod_start_ip="192.168.50.10",
        pod_end_ip="192.168.50.20", guest_gateway="192.168.50.1", guest_netmask="255.255.255.0",
        guest_start_ip="192.168.50.100", guest_end_ip="192.168.50.150", cluster_name="cluster1",
        hypervisor="Simulator", host_url="http://sim/w/h1", primary_name="primary1",
        primary_url=a["primary"]["url"], secondary_url=a["secondary"]["url"])
    values.update(changes)
    return wizard.BasicZoneSpec(**values)


def fill(client, steps: dict[str, dict[str, str]], until: str | None = None) -> None:
    for key, data in steps.items():
        if key == until:
            return
        response = client.post(f"{WIZARD}/{key}", data)
        assert response.status_code == 302, (key, re.findall(r'class="nubo-field-error">([^<]*)<', text(response)))


def no_infrastructure_left() -> None:
    for model in (Zone, Pod, VlanIpRange, GuestIpAddress, Cluster, Host, StoragePool, ImageStore):
        assert not model.objects.exists(), model.__name__


# -- steps -----------------------------------------------------------------------------------------------
def test_wizard_starts_at_the_first_step_and_keeps_order(admin_ui, cloud, tmp_path):
    response = admin_ui.get(WIZARD)
    assert response["Location"] == f"{WIZARD}/zone"
    assert admin_ui.get(f"{WIZARD}/host")["Location"] == f"{WIZARD}/zone"  # no skipping ahead
    assert admin_ui.get(f"{WIZARD}/review")["Location"] == f"{WIZARD}/zone"
    body = text(admin_ui.get(f"{WIZARD}/zone"))
    assert "Step 1 of 7: Zone" in body and '<span aria-current="step">Zone</span>' in body
    for field in ("name", "dns1", "internal_dns1"):
        assert f'<label for="id_{field}">' in body and f'id="id_{field}"' in body
    response = admin_ui.post(f"{WIZARD}/zone", answers(tmp_path)["zone"])
    assert response["Location"] == f"{WIZARD}/pod"
    assert admin_ui.get(f"{WIZARD}/range")["Location"] == f"{WIZARD}/pod"
    assert admin_ui.get(WIZARD)["Location"] == f"{WIZARD}/pod"
    body = text(admin_ui.get(f"{WIZARD}/zone"))  # going back shows the answers
    assert 'value="zone-w"' in body and 'value="9.9.9.9"' in body


def test_zone_step_validation(admin_ui, cloud):
    response = admin_ui.post(f"{WIZARD}/zone", {"name": "", "dns1": "9.9.9", "internal_dns1": "fe80::1"})
    assert response.status_code == 200
    assert field_error(response, "id_name") == "This field is required."
    assert field_error(response, "id_dns1") == "Enter an IPv4 address such as 192.168.1.10"
    assert field_error(response, "id_internal_dns1") == "Enter an IPv4 address such as 192.168.1.10"
    assert 'aria-invalid="true"' in text(response)
    services.create_zone(admin_user(), name="taken", dns1="9.9.9.9", internal_dns1="10.0.0.2")
    response = admin_ui.post(f"{WIZARD}/zone", {"name": "TAKEN", "dns1": "9.9.9.9", "internal_dns1": "10.0.0.2"})
    assert field_error(response, "id_name") == "A zone named TAKEN already exists"
    assert "nubo_zone_wizard" not in admin_ui.session


@pytest.mark.parametrize("data, field, message", [
    ({"netmask": "255.0.255.0"}, "netmask", "255.0.255.0 is not a netmask; use one such as 255.255.255.0"),
    ({"netmask": "255.255.255.254"}, "netmask", "leaves no room for addresses"),
    ({"gateway": "192.168.50.0"}, "gateway", "192.168.50.0 is the network or broadcast address of 192.168.50.0/24"),
    ({"start_ip": "192.168.51.10"}, "start_ip", "192.168.51.10 is outside the network 192.168.50.0/24"),
    ({"end_ip": "192.168.50.255"}, "end_ip", "192.168.50.255 is the network or broadcast address"),
    ({"start_ip": "192.168.50.30", "end_ip": "192.168.50.20"}, "end_ip",
     "The end IP 192.168.50.20 comes before the start IP 192.168.50.30"),
    ({"gateway": "192.168.50.15"}, "gateway", "The gateway 192.168.50.15 lies inside the reserved range "
                                              "192.168.50.10–192.168.50.20; leave it out of the range"),
    ({"start_ip": ""}, "start_ip", "This field is required."),
    ({"name": ""}, "name", "This field is required."),
])
def test_pod_step_validation(admin_ui, cloud, tmp_path, data, field, message):
    steps = answers(tmp_path)
    fill(admin_ui, steps, until="pod")
    response = admin_ui.post(f"{WIZARD}/pod", {**steps["pod"], **data})
    assert response.status_code == 200
    assert message in field_error(response, f"id_{field}")
    assert "pod" not in admin_ui.session["nubo_zone_wizard"]


def test_pod_reserved_end_is_optional(admin_ui, cloud, tmp_path):
    steps = answers(tmp_path, pod={"end_ip": ""})
    fill(admin_ui, steps, until="range")
    assert admin_ui.session["nubo_zone_wizard"]["pod"]["end_ip"] == ""


def test_guest_range_step_starts_from_the_pod_network_and_refuses_overlaps(admin_ui, cloud, tmp_path):
    steps = answers(tmp_path)
    fill(admin_ui, steps, until="range")
    body = text(admin_ui.get(f"{WIZARD}/range"))
    assert re.search(r'name="gateway" value="192.168.50.1"', body) and 'value="255.255.255.0"' in body
    response = admin_ui.post(f"{WIZARD}/range", {**steps["range"], "start_ip": "192.168.50.15"})
    assert field_error(response, "id_start_ip") == ("The guest range 192.168.50.15–192.168.50.150 overlaps the pod's "
                                                     "reserved range 192.168.50.10–192.168.50.20")
    response = admin_ui.post(f"{WIZARD}/range", {**steps["range"], "netmask": "255.255.0.0", "start_ip": "192.168.0.1",
                                                 "end_ip": "192.168.255.254", "gateway": "192.168.50.1"})
    assert "lies inside the guest IP range" in field_error(response, "id_gateway")
    response = admin_ui.post(f"{WIZARD}/range", {**steps["range"], "end_ip": ""})
    assert field_error(response, "id_end_ip") == "This field is required."


def test_cluster_and_host_steps(admin_ui, cloud, tmp_path):
    steps = answers(tmp_path, cluster={"hypervisor": "KVM"})
    fill(admin_ui, steps, until="cluster")
    body = text(admin_ui.get(f"{WIZARD}/cluster"))
    assert '<fieldset class="nubo-radio-group"' in body and "<legend>Hypervisor</legend>" in body
    response = admin_ui.post(f"{WIZARD}/cluster", {"name": "c", "hypervisor": "XenServer"})
    assert "Select a valid choice" in field_error(response, "id_hypervisor")
    fill(admin_ui, {"cluster": steps["cluster"]})
    body = text(admin_ui.get(f"{WIZARD}/host"))
    assert 'value="qemu:///system"' in body and 'type="password"' in body  # the default: this machine
    response = admin_ui.post(f"{WIZARD}/host", {"url": "test:///default"})
    assert field_error(response, "id_url") == "test:/// URIs are for Simulator clusters; this cluster is KVM"
    response = admin_ui.post(f"{WIZARD}/host", {"url": "ftp://host/x"})
    assert "is not a host address" in field_error(response, "id_url")
    make_sim_zone("other", net=7)
    response = admin_ui.post(f"{WIZARD}/host", {"url": "http://sim/other/h1"})
    assert field_error(response, "id_url") == "A host with URL http://sim/other/h1 is already added"
    response = admin_ui.post(f"{WIZARD}/host", {"url": "qemu+ssh://root@kvm1.example.org/system", "username": "root",
                                                "password": "s3cret"})
    assert response["Location"] == f"{WIZARD}/primary"
    # the password is not shown again, and kept when the step is submitted again without it
    assert "s3cret" not in text(admin_ui.get(f"{WIZARD}/host"))
    fill(admin_ui, {"host": {"url": "qemu+ssh://root@kvm1.example.org/system", "username": "root"}})
    assert admin_ui.session["nubo_zone_wizard"]["host"]["password"] == "s3cret"


def test_storage_steps(admin_ui, cloud, tmp_path):
    steps = answers(tmp_path)
    fill(admin_ui, steps, until="primary")
    body = text(admin_ui.get(f"{WIZARD}/primary"))
    assert 'value="file:///var/lib/nubo/primary"' in body
    for url, message in (("http://x/y", "is not supported"), ("file://relative/dir", "names 'relative' as a host"),
                         ("nfs:///export", "names no NFS server"), ("file:///", "cannot be / itself")):
        response = admin_ui.post(f"{WIZARD}/primary", {"name": "p", "url": url})
        assert message in field_error(response, "id_url"), url
    fill(admin_ui, {"primary": steps["primary"]})
    body = text(admin_ui.get(f"{WIZARD}/secondary"))
    assert 'value="file:///var/lib/nubo/secondary"' in body and ">Review</button>" in body
    used = make_sim_zone("other", net=7).store
    response = admin_ui.post(f"{WIZARD}/secondary", {"url": used.url})
    assert field_error(response, "id_url") == f"Secondary storage other-secondary of zone other already uses {used.url}"
    response = admin_ui.post(f"{WIZARD}/secondary", steps["secondary"])
    assert response["Location"] == f"{WIZARD}/review"


def test_review_lists_every_answer_and_hides_the_password(admin_ui, cloud, tmp_path):
    steps = answers(tmp_path, host={"username": "root", "password": "s3cret"})
    fill(admin_ui, steps)
    body = text(admin_ui.get(f"{WIZARD}/review"))
    flat = re.sub(r"\s+", " ", body)
    for expected in ("<dt>Zone name</dt><dd>zone-w</dd>", "<dt>Reserved start IP</dt><dd>192.168.50.10</dd>",
                     "<dt>Guest end IP</dt><dd>192.168.50.150</dd>",
                     "<dt>Hypervisor</dt><dd>Simulator (no real guests; for tests)</dd>",
                     "<dt>Host URL</dt><dd>http://sim/w/h1</dd>", "<dt>Password</dt><dd>(set)</dd>",
                     f"<dt>Secondary storage URL</dt><dd>file://{tmp_path}/secondary</dd>"):
        assert expected in flat, expected
    assert "s3cret" not in body
    assert f'<a href="{WIZARD}/host" aria-label="Change host">Change</a>' in body
    assert '<form method="post" action="/client/infrastructure/wizard/launch"' in body


def test_start_over_clears_the_answers(admin_ui, cloud, tmp_path):
    fill(admin_ui, answers(tmp_path), until="cluster")
    response = admin_ui.post(f"{WIZARD}/reset")
    assert response["Location"] == f"{WIZARD}/zone"
    assert "nubo_zone_wizard" not in admin_ui.session


def test_wizard_posts_need_csrf(admin, tmp_path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    assert client.post(f"{WIZARD}/zone", answers(tmp_path)["zone"]).status_code == 403
    assert client.post(f"{WIZARD}/launch").status_code == 403
    assert client.get(f"{WIZARD}/launch").status_code == 405


# -- launch ----------------------------------------------------------------------------------------------
def test_launch_runs_the_setup_job_and_shows_its_progress(admin_ui, admin, tmp_path,
                                                          django_capture_on_commit_callbacks):
    fill(admin_ui, answers(tmp_path))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_ui.post(f"{WIZARD}/launch")
    job = AsyncJob.objects.get(command="setupBasicZone")
    assert response["Location"] == f"/client/infrastructure/setup/{job.uuid}"
    assert job.status == JobStatus.SUCCEEDED, job.result
    zone = Zone.objects.get(name="zone-w")
    assert zone.allocation_state == AllocationState.ENABLED
    host = Host.objects.get(zone=zone)
    assert host.state == HostState.UP and host.cluster.hypervisor == Hypervisor.SIMULATOR
    assert StoragePool.objects.get(zone=zone).name == "primary1"
    assert ImageStore.objects.get(zone=zone).name == "zone-w-secondary"
    assert VlanIpRange.objects.get(zone=zone).start_ip == "192.168.50.100"
    assert job.result["zone"]["id"] == str(zone.uuid)
    assert Event.objects.filter(type="ZONE.SETUP", resource_uuid=str(zone.uuid)).exists()

    body = text(admin_ui.get(response["Location"]))
    assert "Setting up zone zone-w" in body
    assert 'data-status="succeeded"' in body and "hx-trigger" not in body  # finished: no more polling
    assert f'<a href="/client/infrastructure/zones/{zone.uuid}">Open zone zone-w</a>' in body
    assert body.count('class="nubo-setup-done"') == 8
    assert "nubo_zone_wizard" not in admin_ui.session  # answers forgotten once the zone exists
    assert admin_ui.get(WIZARD)["Location"] == f"{WIZARD}/zone"


def test_failed_setup_names_the_step_and_keeps_the_answers(admin_ui, cloud, tmp_path,
                                                           django_capture_on_commit_callbacks):
    fill(admin_ui, answers(tmp_path, cluster={"hypervisor": "KVM"}, host={"url": "qemu+tcp://127.0.0.1:1/system"}))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_ui.post(f"{WIZARD}/launch")
    job = AsyncJob.objects.get(command="setupBasicZone")
    assert job.status == JobStatus.FAILED
    no_infrastructure_left()
    body = text(admin_ui.get(response["Location"]))
    assert 'data-status="failed"' in body and "hx-trigger" not in body
    error = re.search(r'id="setup-error">\s*<p>(.*?)</p>', body, re.S).group(1)
    assert "Step 5 of 8 (add the host) failed: Cannot add host qemu+tcp://127.0.0.1:1/system" in error
    assert "Connection refused" in error
    states = re.findall(r'<li class="nubo-setup-(\w+)" id="setup-step-(\d)">', body)
    assert states == [("undone", "1"), ("undone", "2"), ("undone", "3"), ("undone", "4"), ("failed", "5"),
                      ("skipped", "6"), ("skipped", "7"), ("skipped", "8")]
    assert f'<a href="{WIZARD}/host">Change the answers of this step</a>' in body
    # the answers are kept: fix the host and launch again
    assert admin_ui.get(WIZARD)["Location"] == f"{WIZARD}/review"


def test_launch_checks_the_answers_again(admin_ui, cloud, tmp_path):
    fill(admin_ui, answers(tmp_path))
    services.create_zone(admin_user(), name="zone-w", dns1="9.9.9.9", internal_dns1="10.0.0.2")  # taken meanwhile
    response = admin_ui.post(f"{WIZARD}/launch")
    assert response["Location"] == f"{WIZARD}/zone?check=1"
    response = admin_ui.get(response["Location"])
    assert field_error(response, "id_name") == "A zone named zone-w already exists"
    assert "The zone step needs another look before launching." in text(response)
    assert not AsyncJob.objects.filter(command="setupBasicZone").exists()


def test_progress_of_a_running_setup_is_polled(admin_ui, admin, cloud):
    job = AsyncJob.objects.create(command="setupBasicZone", params={"name": "zone-p"}, user=admin.user,
                                  account=admin.account, progress=wizard.step_percent(4),
                                  progress_text=wizard.progress_text(4, "adding host http://sim/p/h1"))
    url = f"/client/infrastructure/setup/{job.uuid}"
    body = text(admin_ui.get(url))
    assert '<div aria-live="polite">' in body and "/static/vendor/htmx.org/dist/htmx.min.js" in body
    assert f'hx-get="{url}/status?seen=' in body and 'hx-trigger="every 1s"' in body
    states = re.findall(r'<li class="nubo-setup-(\w+)"', body)
    assert states == ["done"] * 4 + ["running"] + ["waiting"] * 3
    assert "adding host http://sim/p/h1" in body and 'value="50" max="100"' in body
    fragment = admin_ui.get(f"{url}/status")
    assert fragment.status_code == 200 and text(fragment).startswith('<div id="setup-status"')
    seen = re.search(r"\?seen=([0-9a-f]+)", text(fragment)).group(1)
    assert admin_ui.get(f"{url}/status?seen={seen}").status_code == 204  # nothing new: nothing to swap
    AsyncJob.objects.filter(pk=job.pk).update(progress=62, progress_text=wizard.progress_text(5, "adding storage"))
    fragment = admin_ui.get(f"{url}/status?seen={seen}")
    assert fragment.status_code == 200 and re.findall(r'<li class="nubo-setup-(\w+)"', text(fragment))[5] == "running"
    other = AsyncJob.objects.create(command="reconnectHost", params={}, user=admin.user, account=admin.account)
    assert admin_ui.get(f"/client/infrastructure/setup/{other.uuid}").status_code == 404


# -- setup_basic_zone -------------------------------------------------------------------------------------
def test_setup_basic_zone_reports_each_step(cloud, tmp_path):
    reports: list[tuple[int, str]] = []
    zone = wizard.setup_basic_zone(admin_user(), spec(tmp_path), progress=lambda p, t: reports.append((p, t)))
    assert zone.allocation_state == AllocationState.ENABLED
    assert [p for p, _ in reports] == [0, 12, 25, 37, 50, 62, 75, 87, 100]
    assert [wizard.step_index(t) for _, t in reports[:-1]] == list(range(8))
    assert reports[4][1] == "Step 5 of 8: adding host http://sim/w/h1"
    assert Host.objects.get(zone=zone).state == HostState.UP


def test_unreachable_host_undoes_everything(cloud, tmp_path):
    with pytest.raises(ResourceUnavailable) as failure:
        wizard.setup_basic_zone(admin_user(),
                                spec(tmp_path, hypervisor="KVM", host_url="qemu+tcp://127.0.0.1:1/system"))
    message = failure.value.message
    assert message.startswith("Step 5 of 8 (add the host) failed: Cannot add host qemu+tcp://127.0.0.1:1/system: ")
    assert message.endswith("Removed what this setup had created (cluster cluster1, guest IP range "
                            "192.168.50.100-192.168.50.150, pod pod1, zone zone-w).")
    assert failure.value.errorcode == 534
    no_infrastructure_left()
    assert Event.objects.filter(type="ZONE.DELETE").count() == 1


def test_failing_secondary_storage_undoes_the_host_and_primary_storage(cloud, tmp_path):
    (tmp_path / "secondary").write_text("a file where the directory should be")
    with pytest.raises(ApiError) as failure:
        wizard.setup_basic_zone(admin_user(), spec(tmp_path))
    assert failure.value.message.startswith("Step 7 of 8 (add secondary storage) failed: The secondary storage path ")
    assert "primary storage primary1, host h1, cluster cluster1" in failure.value.message
    no_infrastructure_left()


def test_a_taken_zone_name_creates_nothing(cloud, tmp_path):
    existing = make_sim_zone("zone-w", net=9)
    with pytest.raises(ApiError) as failure:
        wizard.setup_basic_zone(admin_user(), spec(tmp_path))
    assert failure.value.message == "Step 1 of 8 (create the zone) failed: A zone named zone-w already exists."
    assert list(Zone.objects.values_list("name", flat=True)) == ["zone-w"]
    assert Host.objects.get().pk == existing.host.pk


def test_an_unexpected_crash_is_undone_too(cloud, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "add_cluster", crash)
    with pytest.raises(ApiError) as failure:
        wizard.setup_basic_zone(admin_user(), spec(tmp_path))
    assert failure.value.message.startswith("Step 4 of 8 (add the cluster) failed: internal error")
    assert "boom" not in failure.value.message
    no_infrastructure_left()


def test_only_root_admins_set_up_zones(domain_admin, tmp_path):
    with pytest.raises(PermissionDenied):
        wizard.setup_basic_zone(domain_admin.user, spec(tmp_path))
    assert not Zone.objects.exists()


def test_setup_through_the_api_forgets_the_password(api, tmp_path):
    params = spec(tmp_path, host_username="root", host_password="s3cret").as_params()
    result = api("setupBasicZone", **params)
    assert result.status == 200, result
    answer = api.job(result)
    assert answer["jobstatus"] == 1, answer
    assert answer["jobresult"]["zone"]["name"] == "zone-w"
    assert answer["jobresult"]["zone"]["allocationstate"] == "Enabled"
    job = AsyncJob.objects.get(uuid=result.inner["jobid"])
    assert "password" not in job.params and job.params["username"] == "root"
    denied = api.as_(make_account("plain-user"))("setupBasicZone", **params)
    assert denied.status == 401


def test_setup_through_the_api_refuses_bad_shapes_at_once(api, tmp_path):
    for change, name in (({"podgateway": "10.0.0"}, "podgateway"), ({"hypervisor": "XenServer"}, "hypervisor")):
        result = api("setupBasicZone", **{**spec(tmp_path).as_params(), **change})
        assert result.status == 431 and f"Invalid parameter {name} value=" in result.errortext, result
    assert not AsyncJob.objects.filter(command="setupBasicZone").exists()
