"""guest.network.uplink on Simulator hosts: the zone setting, the network each host gets, and the
address each host's DHCP server holds on the shared segment (taken once, given back with the
host, named when it keeps a range in use). Two real hosts on one segment: test_shared_segment.py."""
from __future__ import annotations

import pytest

from compute import networks
from compute import services as compute_services
from compute.models import GuestIpAddress, Host, VirtualMachine, VlanIpRange
from portal.errors import InsufficientCapacity, ResourceInUse
from tests.compute.test_instances import deploy, sim  # noqa: F401
from tests.compute.test_instances_iso import host as simulator  # noqa: F401


def set_uplink(api, sim, value: str):  # noqa: F811
    return api("updateConfiguration", name="guest.network.uplink", value=value, zoneid=str(sim.zone.uuid))


def test_the_setting_is_per_zone_and_takes_interface_names_only(api, sim, tenant_a):  # noqa: F811
    assert networks.uplink(sim.zone) == ""
    answer = set_uplink(api, sim, "bond0.100")
    assert answer.status == 200, answer
    assert answer.inner["configuration"]["scope"] == "zone"
    assert networks.uplink(sim.zone) == "bond0.100"
    bad = set_uplink(api, sim, "eth1; reboot")
    assert (bad.status, bad.inner["errorcode"]) == (431, 431)
    assert "network interface name" in bad.errortext
    assert set_uplink(api.as_(tenant_a), sim, "eth2").status == 401
    assert networks.uplink(sim.zone) == "bond0.100"


def test_without_an_uplink_each_host_keeps_its_private_pod_network(sim):  # noqa: F811
    spec = networks.host_network_spec(sim.host)
    assert (spec.mode, spec.address, spec.uplink) == ("nat", "10.1.0.1", "")
    assert Host.objects.get(pk=sim.host.pk).guest_address is None


def test_with_an_uplink_a_vm_runs_on_the_zones_bridge_and_its_host_holds_an_address(api, sim, simulator):  # noqa: F811
    assert set_uplink(api, sim, "eth1").status == 200
    job = api.job(deploy(api, sim, name="shared-1"))
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    host = Host.objects.select_related("guest_address").get(pk=sim.host.pk)
    assert host.guest_address.address not in ("10.1.0.1", vm["nic"][0]["ipaddress"])
    info = simulator.network_info(networks.shared_network_name(sim.zone))
    # (libvirt's test driver drops dnsmasq options: the router is checked on real hosts)
    assert (info.mode, info.uplink, info.address) == ("open", "eth1", host.guest_address.address)
    assert vm["nic"][0]["macaddress"] in [h.mac for h in info.hosts]
    # the address is the host's for good: asked again, the same one
    assert networks.host_dhcp_address(Host.objects.get(pk=host.pk)) == host.guest_address
    # listed as in use by the range it came from
    ip_range = VlanIpRange.objects.get(pod=sim.pod)
    with pytest.raises(ResourceInUse, match=f"{host.guest_address.address} \\(DHCP server of host {host.name}\\)"):
        compute_services.delete_vlan_ip_range(sim.admin, ip_range)
    # stopped: the VM's entry leaves the host's network
    assert api.job(api("stopVirtualMachine", id=vm["id"]))["jobstatus"] == 1
    assert vm["nic"][0]["macaddress"] not in [h.mac for h in
                                              simulator.network_info(networks.shared_network_name(sim.zone)).hosts]
    # the host deleted, its address is free again
    assert api.job(api("destroyVirtualMachine", id=vm["id"], expunge="true"))["jobstatus"] == 1
    compute_services.prepare_host_for_maintenance(sim.admin, host)
    compute_services.delete_host(sim.admin, host)
    assert GuestIpAddress.objects.get(pk=host.guest_address.pk).allocated is None


def test_a_host_finding_no_free_address_says_what_it_needed(api, sim):  # noqa: F811
    assert set_uplink(api, sim, "eth1").status == 200
    GuestIpAddress.objects.filter(ip_range__pod=sim.pod).update(allocated="2026-01-01T00:00:00Z")
    with pytest.raises(InsufficientCapacity, match="needs an address of its own in pod .* for its DHCP server"):
        networks.host_network_spec(Host.objects.get(pk=sim.host.pk))
    assert not VirtualMachine.objects.exists()


def test_reset_configuration_gives_the_zone_the_global_value_again(api, sim, tenant_a):  # noqa: F811
    from portal.models import Event

    assert set_uplink(api, sim, "eth1").status == 200
    assert api("updateConfiguration", name="guest.network.uplink", value="bond0").status == 200  # global
    assert networks.uplink(sim.zone) == "eth1"  # the zone's own value wins
    assert api("resetConfiguration", name="guest.network.uplink", zoneid=str(sim.zone.uuid),
               ).inner["configuration"]["value"] == "bond0"
    assert networks.uplink(sim.zone) == "bond0"  # inherited
    assert Event.objects.filter(type="CONFIGURATION.VALUE.EDIT",
                                description__contains="reset for zone").exists()
    assert api("resetConfiguration", name="guest.network.uplink").inner["configuration"]["value"] == ""
    refused = api("resetConfiguration", name="guest.network.uplink", clusterid=str(sim.cluster.uuid))
    assert refused.status == 431 and "can be set global or zone, not per cluster" in refused.errortext
    assert api.as_(tenant_a)("resetConfiguration", name="guest.network.uplink").status == 401
