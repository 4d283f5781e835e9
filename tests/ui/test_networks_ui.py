"""Networks pages: each zone's shared guest network for everyone who may deploy there; root
admins also see address usage and the guest IP ranges; a tenant sees its own VMs' addresses only,
and a network of a zone it may not use is a 404."""
from __future__ import annotations

import pytest

from compute.models import GuestNetwork, Zone

from .conftest import logged_in
from .test_instances_ui import build_sim, deploy, text, words


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


def test_everyone_sees_the_networks_of_its_zones(sim, tenant_a, tenant_b, domain_admin,
                                                 django_capture_on_commit_callbacks):
    vm_a = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "a-web")
    vm_b = deploy(tenant_b.user, sim, django_capture_on_commit_callbacks, "b-web")
    network = GuestNetwork.objects.get(zone=sim.zone)
    for user in (tenant_a.user, domain_admin.user, sim.admin):
        page = words(logged_in(user).get("/client/networks"))
        assert "guestNetworkForBasicZone" in page and "z1" in page and "10.1.0.0/24" in page
    a_page = text(logged_in(tenant_a.user).get(f"/client/networks/{network.uuid}"))
    assert "a-web" in a_page and "b-web" not in a_page
    assert "Guest IP ranges" not in a_page and "Guest addresses in use" not in a_page
    admin_page = words(logged_in(sim.admin).get(f"/client/networks/{network.uuid}"))
    assert "a-web" in admin_page and "b-web" in admin_page
    assert "10.1.0.30 – 10.1.0.39" in admin_page and "2 of 10" in admin_page
    assert "2 of 10" in words(logged_in(sim.admin).get("/client/networks"))
    assert vm_a.pk != vm_b.pk


def test_a_network_of_a_zone_a_tenant_may_not_use_is_not_found(sim, tenant_a):
    network = GuestNetwork.objects.get_or_create(zone=sim.zone)[0]
    Zone.objects.filter(pk=sim.zone.pk).update(allocation_state="Disabled")
    client = logged_in(tenant_a.user)
    assert client.get(f"/client/networks/{network.uuid}").status_code == 404
    assert "guestNetworkForBasicZone" not in text(client.get("/client/networks"))
    assert client.get("/client/networks/not-a-uuid").status_code == 404
    assert logged_in(sim.admin).get(f"/client/networks/{network.uuid}").status_code == 200


def test_root_admins_see_how_the_hosts_share_the_segment_and_their_dhcp_addresses(sim, tenant_a,
                                                                                  django_capture_on_commit_callbacks):
    from compute.models import Host
    from portal import config

    network = GuestNetwork.objects.get_or_create(zone=sim.zone)[0]
    page = words(logged_in(sim.admin).get(f"/client/networks/{network.uuid}"))
    assert "private to each host, NAT'd through it" in page and "DHCP servers" not in page
    config.set_value("guest.network.uplink", "eth1", scope="zone", scope_uuid=str(sim.zone.uuid))
    deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "a-web")
    host = Host.objects.select_related("guest_address").get(zone=sim.zone, guest_address__isnull=False)
    page = words(logged_in(sim.admin).get(f"/client/networks/{network.uuid}"))
    assert "through their interface eth1" in page
    assert f"{host.name} (pod {host.pod.name}): {host.guest_address.address}" in page
    assert "2 of 10" in page  # the host's address is in use too
    tenant_page = words(logged_in(tenant_a.user).get(f"/client/networks/{network.uuid}"))
    assert "eth1" not in tenant_page and host.guest_address.address not in tenant_page
