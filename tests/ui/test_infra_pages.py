"""Infrastructure pages: the overview's counts and states, the paginated lists, the detail pages
with capacity bars and the KVM verdict, and every action (a CSRF POST calling one service; a
refused action shows the service's sentence in place). Root admin only: 404 for everyone else."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
from django.test import Client

from compute import services
from compute.choices import AllocationState, Emulation, HostState, Hypervisor, ResourceState
from compute.models import Cluster, Host, Pod, VlanIpRange, Zone
from portal.models import AsyncJob, Event, JobStatus
from storage.models import ImageStore, StoragePool
from tests.factories import admin_user

GIB = 1024 ** 3


def text(response) -> str:
    return response.content.decode()


def alert_text(response) -> str:
    """The action error shown in place on a detail page."""
    match = re.search(r'id="action-error">\s*<p>([^<]*)</p>', text(response))
    return html.unescape(match.group(1)) if match else ""


def field_error(response, field_id: str) -> str:
    match = re.search(rf'<small id="{field_id}_error" class="nubo-field-error">([^<]*)</small>', text(response))
    return html.unescape(match.group(1)) if match else ""


def follow(client, response) -> str:
    assert response.status_code == 302, (response.status_code, text(response)[:2000])
    return text(client.get(response["Location"]))


# -- a small simulated cloud ---------------------------------------------------------------------------
@dataclass
class SimZone:
    zone: Zone
    pod: Pod
    ip_range: VlanIpRange
    cluster: Cluster
    host: Host
    pool: StoragePool
    store: ImageStore


def make_sim_zone(name: str = "zone1", *, net: int = 1, enabled: bool = True) -> SimZone:
    """Zone > pod > guest range > Simulator cluster > host (through the services), plus primary
    and secondary storage rows (the storage services are another engineer's work)."""
    caller = admin_user()
    zone = services.create_zone(caller, name=name, dns1="9.9.9.9", internal_dns1="10.0.0.2",
                                allocation_state=AllocationState.ENABLED if enabled else AllocationState.DISABLED)
    pod = services.create_pod(caller, zone=zone, name="pod1", gateway=f"10.{net}.0.1", netmask="255.255.255.0",
                              start_ip=f"10.{net}.0.10", end_ip=f"10.{net}.0.20")
    ip_range = services.create_vlan_ip_range(caller, pod=pod, gateway=f"10.{net}.0.1", netmask="255.255.255.0",
                                             start_ip=f"10.{net}.0.100", end_ip=f"10.{net}.0.199")
    cluster = services.add_cluster(caller, zone=zone, pod=pod, name="cluster1", hypervisor=Hypervisor.SIMULATOR)
    host = services.add_host(caller, zone=zone, pod=pod, cluster=cluster, url=f"http://sim/{name}/h1")
    pool = StoragePool.objects.create(name=f"{name}-primary", zone=zone, pod=pod, cluster=cluster, scope="CLUSTER",
                                      url="file:///var/lib/nubo/primary", type="Filesystem",
                                      path="/var/lib/nubo/primary", capacity_bytes=100 * GIB, used_bytes=25 * GIB,
                                      allocated_bytes=10 * GIB)
    store = ImageStore.objects.create(name=f"{name}-secondary", zone=zone, url="file:///var/lib/nubo/secondary",
                                      protocol="file", mount_path="/var/lib/nubo/secondary",
                                      capacity_bytes=200 * GIB, used_bytes=50 * GIB)
    return SimZone(zone, pod, ip_range, cluster, host, pool, store)


def make_kvm_host(sim: SimZone, *, url: str = "qemu+tcp://127.0.0.1:1/system", kvm_usable: bool | None = False,
                  kvm_reason: str = "the probe guest hung under KVM") -> Host:
    """A KVM host row as addHost would have left it (no libvirtd needed to render pages)."""
    cluster = Cluster.objects.filter(pod=sim.pod, name="kvm1").first() or services.add_cluster(
        admin_user(), zone=sim.zone, pod=sim.pod, name="kvm1", hypervisor=Hypervisor.KVM)
    return Host.objects.create(name="kvm-host", zone=sim.zone, pod=sim.pod, cluster=cluster, url=url,
                               hypervisor=Hypervisor.KVM, state=HostState.UP, hostname="kvm-host.example.org",
                               ip_address="127.0.0.1", arch="x86_64", cpu_sockets=1, cpu_number=4, cpu_speed=2400,
                               memory_total=8 * GIB, memory_used=2 * GIB, libvirt_version="9.0.0",
                               hypervisor_version="7.2.0", kvm_usable=kvm_usable, kvm_reason=kvm_reason)


@pytest.fixture
def sim(cloud) -> SimZone:
    return make_sim_zone()


# -- access --------------------------------------------------------------------------------------------
def infra_urls(sim: SimZone) -> list[tuple[str, str]]:
    z, p, c, h = sim.zone.uuid, sim.pod.uuid, sim.cluster.uuid, sim.host.uuid
    job = AsyncJob.objects.create(command="setupBasicZone", params={"name": "x"}, user=admin_user(),
                                  account=admin_user().account)
    return [
        ("get", "/client/infrastructure"), ("get", "/client/infrastructure/zones"),
        ("get", f"/client/infrastructure/zones/{z}"), ("post", f"/client/infrastructure/zones/{z}/disable"),
        ("post", f"/client/infrastructure/zones/{z}/delete"),
        ("get", "/client/infrastructure/pods"), ("get", f"/client/infrastructure/pods/{p}"),
        ("post", f"/client/infrastructure/pods/{p}/disable"),
        ("post", f"/client/infrastructure/ip-ranges/{sim.ip_range.uuid}/delete"),
        ("get", "/client/infrastructure/clusters"), ("get", f"/client/infrastructure/clusters/{c}"),
        ("post", f"/client/infrastructure/clusters/{c}/emulation"),
        ("get", "/client/infrastructure/hosts"), ("get", f"/client/infrastructure/hosts/{h}"),
        ("get", f"/client/infrastructure/hosts/{h}/status"), ("post", f"/client/infrastructure/hosts/{h}/maintenance"),
        ("post", f"/client/infrastructure/hosts/{h}/reconnect"), ("post", f"/client/infrastructure/hosts/{h}/delete"),
        ("get", "/client/infrastructure/primary-storage"),
        ("get", f"/client/infrastructure/primary-storage/{sim.pool.uuid}"),
        ("get", "/client/infrastructure/secondary-storage"),
        ("get", f"/client/infrastructure/secondary-storage/{sim.store.uuid}"),
        ("get", "/client/infrastructure/wizard"), ("get", "/client/infrastructure/wizard/zone"),
        ("post", "/client/infrastructure/wizard/zone"), ("get", "/client/infrastructure/wizard/review"),
        ("post", "/client/infrastructure/wizard/launch"), ("post", "/client/infrastructure/wizard/reset"),
        ("get", f"/client/infrastructure/setup/{job.uuid}"), ("get", f"/client/infrastructure/setup/{job.uuid}/status"),
    ]


def test_everyone_but_the_root_admin_gets_404(user_ui, domain_admin_ui, sim):
    urls = infra_urls(sim)
    for client in (user_ui, domain_admin_ui):
        for method, url in urls:
            assert getattr(client, method)(url).status_code == 404, (method, url)
    sim.zone.refresh_from_db()
    sim.host.refresh_from_db()
    assert sim.zone.allocation_state == AllocationState.ENABLED
    assert sim.host.resource_state == ResourceState.ENABLED
    assert not AsyncJob.objects.filter(command="reconnectHost").exists()


def test_anonymous_is_sent_to_login(client, sim):
    for method, url in infra_urls(sim):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/client/login?next="), url


def test_root_admin_reaches_every_page(admin_ui, sim):
    for method, url in infra_urls(sim):
        if method == "get":
            response = admin_ui.get(url)
            assert response.status_code in (200, 302), (url, response.status_code)


def test_actions_need_post_and_csrf(admin, sim):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    for method, url in infra_urls(sim):
        if method == "post":
            assert client.post(url).status_code == 403, url
    infra = "/client/infrastructure"
    for url in (f"{infra}/zones/{sim.zone.uuid}/disable", f"{infra}/hosts/{sim.host.uuid}/delete",
                f"{infra}/hosts/{sim.host.uuid}/reconnect", f"{infra}/wizard/launch",
                f"{infra}/clusters/{sim.cluster.uuid}/delete"):
        assert client.get(url).status_code == 405, url
    sim.zone.refresh_from_db()
    assert sim.zone.allocation_state == AllocationState.ENABLED and Host.objects.filter(pk=sim.host.pk).exists()


def test_unknown_objects_and_actions_are_404(admin_ui, sim):
    none = "00000000-0000-0000-0000-000000000000"
    for url in (f"/client/infrastructure/zones/{none}", f"/client/infrastructure/hosts/{none}",
                f"/client/infrastructure/pods/{none}", f"/client/infrastructure/clusters/{none}",
                f"/client/infrastructure/primary-storage/{none}", f"/client/infrastructure/setup/{none}",
                "/client/infrastructure/wizard/nope", f"/client/infrastructure/hosts?zone={none}",
                "/client/infrastructure/hosts?zone=not-a-uuid", "/client/infrastructure/hosts?state=sleeping"):
        assert admin_ui.get(url).status_code == 404, url
    for url in (f"/client/infrastructure/zones/{sim.zone.uuid}/explode",
                f"/client/infrastructure/hosts/{sim.host.uuid}/explode",
                f"/client/infrastructure/pods/{sim.pod.uuid}/explode",
                f"/client/infrastructure/clusters/{sim.cluster.uuid}/x"):
        assert admin_ui.post(url).status_code == 404, url


def test_navigation_entry_for_root_admins_only(admin_ui, domain_admin_ui, cloud):
    body = text(admin_ui.get("/client/infrastructure"))
    assert re.search(r'<a href="/client/infrastructure" aria-current="page">Infrastructure</a>', body)
    assert '<a href="/client/" aria-current="page">' not in body  # Dashboard is not the current section
    body = text(admin_ui.get("/client/"))
    assert '<a href="/client/infrastructure">Infrastructure</a>' in body
    assert "/client/infrastructure" not in text(domain_admin_ui.get("/client/"))


# -- overview ------------------------------------------------------------------------------------------
def card(body: str, key: str) -> str:
    match = re.search(rf'<article class="nubo-card nubo-infra-card" id="count-{key}">(.*?)</article>', body, re.S)
    assert match, key
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def test_overview_counts_and_states(admin_ui, cloud):
    empty = text(admin_ui.get("/client/infrastructure"))
    assert "No zone yet" in empty and "Start the basic installation wizard" in empty
    first = make_sim_zone("zone1", net=1)
    second = make_sim_zone("zone2", net=2, enabled=False)
    caller = admin_user()
    for i in range(2, 5):
        services.add_host(caller, zone=first.zone, pod=first.pod, cluster=first.cluster, url=f"http://sim/zone1/h{i}")
    Host.objects.filter(url="http://sim/zone1/h2").update(state=HostState.DISCONNECTED, state_reason="no answer")
    Host.objects.filter(url="http://sim/zone1/h3").update(state=HostState.ALERT, state_reason="no answer for 5 min")
    services.prepare_host_for_maintenance(caller, Host.objects.get(url="http://sim/zone1/h4"))
    services.update_pod(caller, second.pod, allocation_state=AllocationState.DISABLED)

    body = text(admin_ui.get("/client/infrastructure"))
    assert "No zone yet" not in body
    assert card(body, "zones") == "2 Zones Enabled 1 Disabled 1"
    assert card(body, "pods") == "2 Pods Enabled 1 Disabled 1"
    assert card(body, "clusters") == "2 Clusters Enabled 2 Disabled 0"
    assert card(body, "hosts") == "5 Hosts Up 2 Disconnected 1 Alert 1 Maintenance 1"
    assert card(body, "primary") == "2 Primary storage Up 2 Not up 0"
    assert card(body, "secondary") == "2 Secondary storage"
    assert 'href="/client/infrastructure/hosts?state=alert"' in body
    assert "software emulation" not in body  # no KVM host yet

    make_kvm_host(first)
    body = text(admin_ui.get("/client/infrastructure"))
    assert "1 KVM host runs guests under software emulation" in re.sub(r"<[^>]+>", "", body)
    assert 'href="/client/infrastructure/hosts?state=emulated"' in body


def test_overview_query_count_is_constant(admin_ui, cloud, django_assert_max_num_queries):
    for i in range(3):
        make_sim_zone(f"zone{i}", net=i + 1)
    with django_assert_max_num_queries(20):
        assert admin_ui.get("/client/infrastructure").status_code == 200


# -- lists ---------------------------------------------------------------------------------------------
def test_zone_list_is_paginated_and_searchable(admin_ui, cloud):
    caller = admin_user()
    for i in range(22):
        services.create_zone(caller, name=f"zone-{i:02d}", dns1="9.9.9.9", internal_dns1="10.0.0.2")
    rows = re.compile(r'href="/client/infrastructure/zones/[0-9a-f-]{36}"')
    body = text(admin_ui.get("/client/infrastructure/zones"))
    assert len(rows.findall(body)) == 20 and "Page 1 of 2" in body
    assert len(rows.findall(text(admin_ui.get("/client/infrastructure/zones?page=2")))) == 2
    body = text(admin_ui.get("/client/infrastructure/zones?q=zone-1"))
    assert len(rows.findall(body)) == 10
    assert "No zone matches" in text(admin_ui.get("/client/infrastructure/zones?q=nothing"))


def test_host_list_filters_by_state_and_parent(admin_ui, sim, django_assert_max_num_queries):
    caller = admin_user()
    for i in range(2, 26):
        services.add_host(caller, zone=sim.zone, pod=sim.pod, cluster=sim.cluster, url=f"http://sim/zone1/h{i}")
    Host.objects.filter(url__in=["http://sim/zone1/h2", "http://sim/zone1/h3"]).update(state=HostState.ALERT)
    rows = re.compile(r'href="/client/infrastructure/hosts/[0-9a-f-]{36}"')
    with django_assert_max_num_queries(12):
        body = text(admin_ui.get("/client/infrastructure/hosts"))
    assert len(rows.findall(body)) == 20 and "Page 1 of 2" in body and "25 in total" in body
    body = text(admin_ui.get("/client/infrastructure/hosts?state=alert"))
    assert len(rows.findall(body)) == 2 and "— Alert" in body
    assert '<a href="?state=alert" aria-current="true">Alert</a>' in body
    body = text(admin_ui.get(f"/client/infrastructure/hosts?cluster={sim.cluster.uuid}&q=h1"))
    assert {"h1", "h10", "h11"} <= set(re.findall(r'hosts/[0-9a-f-]{36}">([^<]+)<', body))
    assert "Showing the hosts of cluster <strong>cluster1</strong>" in body
    other = make_sim_zone("zone2", net=2)
    body = text(admin_ui.get(f"/client/infrastructure/hosts?zone={other.zone.uuid}"))
    assert len(rows.findall(body)) == 1
    # the search form keeps the filter
    assert f'<input type="hidden" name="zone" value="{other.zone.uuid}">' in body


def test_pod_cluster_and_storage_lists(admin_ui, sim):
    body = text(admin_ui.get("/client/infrastructure/pods"))
    assert f'href="/client/infrastructure/pods/{sim.pod.uuid}">pod1<' in body and "10.1.0.10 – 10.1.0.20" in body
    body = text(admin_ui.get(f"/client/infrastructure/clusters?zone={sim.zone.uuid}"))
    assert f'href="/client/infrastructure/clusters/{sim.cluster.uuid}">cluster1<' in body and "Simulator" in body
    body = text(admin_ui.get("/client/infrastructure/primary-storage"))
    assert "zone1-primary" in body and "25.0 GiB of 100.0 GiB used" in body
    body = text(admin_ui.get("/client/infrastructure/secondary-storage"))
    assert "zone1-secondary" in body and "50.0 GiB of 200.0 GiB used" in body


# -- zone ----------------------------------------------------------------------------------------------
def test_zone_detail_shows_capacity_with_units(admin_ui, sim):
    body = text(admin_ui.get(f"/client/infrastructure/zones/{sim.zone.uuid}"))
    flat = re.sub(r"\s+", " ", body)
    for name in ("CPU", "Memory", "Primary storage", "Secondary storage", "Guest IPs"):
        assert f"<h3>{name}</h3>" in body, name
    assert re.search(r"0 MHz of [\d.]+ GHz allocated", flat)
    assert re.search(r"[\d.]+ GiB of [\d.]+ GiB used", flat)  # memory of the simulated host
    assert "25.0 GiB of 100.0 GiB used" in flat  # primary storage, used
    assert "10.0 GiB of 200.0 GiB allocated" in flat  # primary, allocated against 2x overprovisioned total
    assert "50.0 GiB of 200.0 GiB used" in flat  # secondary
    assert "0 of 100 addresses allocated" in flat
    assert re.search(r'<progress class="nubo-bar-low" value="\d+" max="\d+" aria-label="CPU: ', body)
    assert "10.1.0.100 – 10.1.0.199" in body and "0 of 100" in body


def test_zone_without_capacity_says_what_is_missing(admin_ui, cloud):
    zone = services.create_zone(admin_user(), name="bare", dns1="9.9.9.9", internal_dns1="10.0.0.2")
    body = text(admin_ui.get(f"/client/infrastructure/zones/{zone.uuid}"))
    assert "No CPU yet: add a host" in body and "No guest IP range yet" in body and "<progress" not in body


def test_zone_enable_disable_and_refused_delete(admin_ui, sim):
    url = f"/client/infrastructure/zones/{sim.zone.uuid}"
    body = follow(admin_ui, admin_ui.post(url + "/disable"))
    assert "Zone zone1 disabled." in body and 'id="zone-state" class="nubo-status nubo-state-disabled">Disabled' in body
    sim.zone.refresh_from_db()
    assert sim.zone.allocation_state == AllocationState.DISABLED
    assert Event.objects.filter(type="ZONE.EDIT", resource_uuid=str(sim.zone.uuid)).exists()
    body = follow(admin_ui, admin_ui.post(url + "/enable"))
    assert "Zone zone1 enabled." in body
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 200
    assert alert_text(response) == ("Zone zone1 still has pods pod1 and primary storage zone1-primary and secondary "
                                    "storage zone1-secondary; delete them first")
    assert Zone.objects.filter(pk=sim.zone.pk).exists()


def test_delete_empty_zone(admin_ui, cloud):
    zone = services.create_zone(admin_user(), name="empty", dns1="9.9.9.9", internal_dns1="10.0.0.2")
    response = admin_ui.post(f"/client/infrastructure/zones/{zone.uuid}/delete")
    assert response["Location"] == "/client/infrastructure/zones"
    assert "Zone empty deleted." in follow(admin_ui, response)
    assert not Zone.objects.filter(pk=zone.pk).exists()


def test_zone_page_has_confirmations(admin_ui, sim):
    body = text(admin_ui.get(f"/client/infrastructure/zones/{sim.zone.uuid}"))
    assert 'data-confirm="Delete zone zone1? This cannot be undone."' in body
    assert 'data-confirm="Disable zone zone1? No new guests will be placed in it."' in body


# -- pod and cluster -----------------------------------------------------------------------------------
def test_pod_actions(admin_ui, sim):
    url = f"/client/infrastructure/pods/{sim.pod.uuid}"
    assert "Pod pod1 disabled." in follow(admin_ui, admin_ui.post(url + "/disable"))
    sim.pod.refresh_from_db()
    assert sim.pod.allocation_state == AllocationState.DISABLED
    assert "Pod pod1 enabled." in follow(admin_ui, admin_ui.post(url + "/enable"))
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 200
    assert alert_text(response) == ("Pod pod1 still has clusters cluster1 and guest IP ranges 10.1.0.100-10.1.0.199; "
                                    "delete them first")


def test_delete_guest_ip_range(admin_ui, sim):
    response = admin_ui.post(f"/client/infrastructure/ip-ranges/{sim.ip_range.uuid}/delete")
    assert "Guest IP range 10.1.0.100–10.1.0.199 deleted." in follow(admin_ui, response)
    assert not VlanIpRange.objects.filter(pk=sim.ip_range.pk).exists()


def test_cluster_detail_and_emulation_override(admin_ui, sim):
    url = f"/client/infrastructure/clusters/{sim.cluster.uuid}"
    body = text(admin_ui.get(url))
    assert "<h3>CPU</h3>" in body and "<h3>Guest IPs</h3>" not in body
    assert f'href="/client/infrastructure/hosts/{sim.host.uuid}">h1<' in body and "zone1-primary" in body
    assert 'name="emulation"' not in body  # Simulator clusters run no guests
    kvm = make_kvm_host(sim).cluster
    url = f"/client/infrastructure/clusters/{kvm.uuid}"
    body = text(admin_ui.get(url))
    assert re.search(r'<select name="emulation" [^>]*id="id_cluster_emulation">', body)
    assert '<label for="id_cluster_emulation">Guest emulation' in body
    assert "Cluster kvm1: guest emulation set to Software emulation." in follow(
        admin_ui, admin_ui.post(url + "/emulation", {"emulation": "qemu"}))
    kvm.refresh_from_db()
    assert kvm.emulation == Emulation.QEMU
    response = admin_ui.post(url + "/emulation", {"emulation": "turbo"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "id_cluster_emulation")
    kvm.refresh_from_db()
    assert kvm.emulation == Emulation.QEMU


def test_cluster_actions(admin_ui, sim):
    url = f"/client/infrastructure/clusters/{sim.cluster.uuid}"
    assert "Cluster cluster1 disabled." in follow(admin_ui, admin_ui.post(url + "/disable"))
    assert "Cluster cluster1 enabled." in follow(admin_ui, admin_ui.post(url + "/enable"))
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 200
    assert alert_text(response) == ("Cluster cluster1 still has hosts h1 and primary storage zone1-primary; "
                                    "delete them first")


# -- host ----------------------------------------------------------------------------------------------
def test_host_detail_shows_state_hardware_and_verdict(admin_ui, sim):
    Host.objects.filter(pk=sim.host.pk).update(state=HostState.ALERT, state_reason="no answer for 150 s")
    body = text(admin_ui.get(f"/client/infrastructure/hosts/{sim.host.uuid}"))
    assert 'class="nubo-status nubo-state-alert">Alert<' in body
    assert '<dd id="host-state-reason">no answer for 150 s</dd>' in body
    assert "Nothing: simulated host" in body and "emulation-warning" not in body
    assert "Last ping" in body and "UTC" in body
    assert re.search(r"<dt>Memory</dt><dd>[\d.]+ GiB \([\d.]+ \w+ used\)</dd>", body)
    assert 'hx-trigger="every 5s"' in body and "/static/vendor/htmx.org/dist/htmx.min.js" in body


def test_kvm_host_under_software_emulation_shows_a_warning(admin_ui, sim):
    host = make_kvm_host(sim)
    url = f"/client/infrastructure/hosts/{host.uuid}"
    body = text(admin_ui.get(url))
    warning = re.search(r'<div class="nubo-warning" role="alert" id="emulation-warning">(.*?)</div>', body, re.S)
    assert warning and "software emulation" in warning.group(1)
    assert "The KVM check found: the probe guest hung under KVM." in warning.group(1)
    assert '<dd id="host-kvm">KVM not usable: the probe guest hung under KVM</dd>' in body
    assert "4 cores at 2400 MHz (9.60 GHz in total)" in body and "8.0 GiB (2.0 GiB used)" in body
    # the admin overrides the verdict: the warning goes away
    assert "Host kvm-host: guest emulation set to KVM acceleration." in follow(
        admin_ui, admin_ui.post(url + "/emulation", {"emulation": "kvm"}))
    body = text(admin_ui.get(url))
    assert "emulation-warning" not in body and '<dd id="host-emulation">KVM acceleration</dd>' in body
    host.refresh_from_db()
    assert host.emulation == Emulation.KVM and host.effective_emulation == "kvm"
    # and a host whose KVM works shows none
    Host.objects.filter(pk=host.pk).update(emulation=Emulation.AUTO, kvm_usable=True, kvm_reason="")
    assert "emulation-warning" not in text(admin_ui.get(url))


def test_host_enable_disable_and_maintenance(admin_ui, sim):
    url = f"/client/infrastructure/hosts/{sim.host.uuid}"
    assert "Host h1 disabled." in follow(admin_ui, admin_ui.post(url + "/disable"))
    sim.host.refresh_from_db()
    assert sim.host.resource_state == ResourceState.DISABLED
    assert "Host h1 enabled." in follow(admin_ui, admin_ui.post(url + "/enable"))
    body = follow(admin_ui, admin_ui.post(url + "/maintenance"))
    assert "Host h1 is in maintenance." in body and ">Cancel maintenance</button>" in body
    assert ">Enable maintenance</button>" not in body
    sim.host.refresh_from_db()
    assert sim.host.resource_state == ResourceState.MAINTENANCE
    response = admin_ui.post(url + "/maintenance")  # twice: refused, in place
    assert response.status_code == 200 and alert_text(response) == "Host h1 is already in Maintenance"
    response = admin_ui.post(url + "/disable")
    assert alert_text(response) == "Host h1 is in Maintenance; cancel maintenance first"
    assert "Host h1 left maintenance." in follow(admin_ui, admin_ui.post(url + "/cancel-maintenance"))
    response = admin_ui.post(url + "/cancel-maintenance")
    assert alert_text(response) == "Host h1 is not in maintenance (it is Enabled)"
    assert Event.objects.filter(type="MAINT.PREPARE", resource_uuid=str(sim.host.uuid)).exists()


def test_host_delete_refused_while_up_then_forced(admin_ui, sim):
    url = f"/client/infrastructure/hosts/{sim.host.uuid}"
    body = text(admin_ui.get(url))
    assert 'data-confirm="Delete host h1?' in body and '<label class="nubo-cleanup" for="id_forced">' in body
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 200 and "Host h1 is Up and in use" in alert_text(response)
    assert Host.objects.filter(pk=sim.host.pk).exists()
    response = admin_ui.post(url + "/delete", {"forced": "on"})
    assert response["Location"] == f"/client/infrastructure/clusters/{sim.cluster.uuid}"
    assert "Host h1 deleted." in follow(admin_ui, response)
    assert not Host.objects.filter(pk=sim.host.pk).exists()


def test_reconnect_runs_as_a_job_and_its_result_shows_on_the_host_page(admin_ui, sim,
                                                                        django_capture_on_commit_callbacks):
    url = f"/client/infrastructure/hosts/{sim.host.uuid}"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_ui.post(url + "/reconnect")
    body = follow(admin_ui, response)
    job = AsyncJob.objects.get(command="reconnectHost", instance_uuid=str(sim.host.uuid))
    assert job.status == JobStatus.SUCCEEDED
    assert "Reconnecting host h1…" in body and 'id="host-job"' in body and "reconnectHost succeeded" in body


def test_failed_reconnect_shows_its_reason_on_the_host_page(admin_ui, sim, django_capture_on_commit_callbacks):
    host = make_kvm_host(sim)  # its libvirt URI answers nothing
    url = f"/client/infrastructure/hosts/{host.uuid}"
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_ui.post(url + "/reconnect")
    body = follow(admin_ui, response)
    job = AsyncJob.objects.get(command="reconnectHost", instance_uuid=str(host.uuid))
    assert job.status == JobStatus.FAILED
    note = re.search(r'<p id="host-job" class="nubo-job-note nubo-job-failed" role="alert">(.*?)</p>', body, re.S)
    assert note and "reconnectHost failed" in note.group(1) and "Cannot reconnect host kvm-host" in note.group(1)
    host.refresh_from_db()
    assert host.state == HostState.DISCONNECTED and host.state_reason
    assert f'<dd id="host-state-reason">{host.state_reason}</dd>' in body and "Connection refused" in host.state_reason


def test_host_status_fragment_is_polled_and_answers_204_when_unchanged(admin_ui, sim):
    url = f"/client/infrastructure/hosts/{sim.host.uuid}/status"
    response = admin_ui.get(url)
    body = text(response)
    assert response.status_code == 200 and body.lstrip().startswith('<div id="host-status"')
    assert "<html" not in body
    seen = re.search(r"\?seen=([0-9a-f]+)", body).group(1)
    assert admin_ui.get(f"{url}?seen={seen}").status_code == 204
    Host.objects.filter(pk=sim.host.pk).update(state=HostState.DISCONNECTED, state_reason="gone")
    response = admin_ui.get(f"{url}?seen={seen}")
    assert response.status_code == 200 and ">Disconnected<" in text(response)


# -- storage -------------------------------------------------------------------------------------------
def test_storage_detail_pages(admin_ui, sim):
    body = text(admin_ui.get(f"/client/infrastructure/primary-storage/{sim.pool.uuid}"))
    assert "Primary storage zone1-primary" in body and "25.0 GiB of 100.0 GiB used" in body
    assert f'href="/client/infrastructure/clusters/{sim.cluster.uuid}">cluster1<' in body
    body = text(admin_ui.get(f"/client/infrastructure/secondary-storage/{sim.store.uuid}"))
    assert "Secondary storage zone1-secondary" in body and "50.0 GiB of 200.0 GiB used" in body
    assert "/var/lib/nubo/secondary" in body


def test_storage_delete_calls_the_storage_service(admin_ui, sim, monkeypatch):
    from storage import services as storage_services

    calls = []
    monkeypatch.setattr(storage_services, "delete_storage_pool", lambda caller, pool: calls.append(pool.name),
                        raising=False)

    def refuse(caller, store):
        from portal.errors import ResourceInUse

        raise ResourceInUse(f"Image store {store.name} still holds templates")

    monkeypatch.setattr(storage_services, "delete_image_store", refuse, raising=False)
    body = text(admin_ui.get(f"/client/infrastructure/primary-storage/{sim.pool.uuid}"))
    assert 'data-confirm="Delete primary storage zone1-primary?' in body
    response = admin_ui.post(f"/client/infrastructure/primary-storage/{sim.pool.uuid}/delete")
    assert response["Location"] == "/client/infrastructure/primary-storage" and calls == ["zone1-primary"]
    response = admin_ui.post(f"/client/infrastructure/secondary-storage/{sim.store.uuid}/delete")
    assert response.status_code == 200 and alert_text(response) == "Image store zone1-secondary still holds templates"


# -- layout ----------------------------------------------------------------------------------------------
def test_pages_are_labelled_for_assistive_technology(admin_ui, sim):
    for url in ("/client/infrastructure", "/client/infrastructure/hosts",
                f"/client/infrastructure/zones/{sim.zone.uuid}"):
        body = text(admin_ui.get(url))
        assert '<nav class="nubo-subnav" aria-label="Infrastructure">' in body
        assert len(re.findall(r"<h1[ >]", body)) == 1
        for section in re.findall(r'<section aria-labelledby="([^"]+)">', body):
            assert f'id="{section}"' in body, (url, section)
    body = text(admin_ui.get("/client/infrastructure/hosts"))
    assert '<nav class="nubo-chips" aria-label="Filter hosts by state">' in body
    assert '<label for="id_q" class="visually-hidden">' in body

