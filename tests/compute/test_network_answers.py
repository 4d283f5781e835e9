"""What a basic zone answers about networking (issue 5): the zone's shared guest network
(listNetworks), its offering (listNetworkOfferings), a VM's NICs (listNics), and the lists that are
empty in a basic zone (public IPs, rules, security and affinity groups, VPCs, …) answered as
CloudStack answers them, so that clients calling them while listing or deploying VMs keep working."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compute import services as compute_services
from compute.models import GuestNetwork, Zone
from compute.responses_network import fixed_uuid
from tests.compute.test_instances import deploy, sim  # noqa: F401  (the `sim` fixture)
from tests.factories import make_domain
from tests.storage.conftest import make_zone

EMPTY = ["listPublicIpAddresses", "listPortForwardingRules", "listIpForwardingRules", "listFirewallRules",
         "listLoadBalancerRules", "listSecurityGroups", "listAffinityGroups", "listAffinityGroupTypes", "listVPCs",
         "listVPCOfferings", "listProjects", "listTags"]


def hidden_zone(sim, name: str = "z-hidden", octet: int = 7) -> Zone:
    """An enabled zone with a guest IP range, dedicated to a domain the tenants are not in."""
    zone, pod = make_zone(sim.admin, name=name, octet=octet)
    compute_services.create_vlan_ip_range(sim.admin, pod=pod, gateway=f"10.{octet}.0.1", netmask="255.255.255.0",
                                          start_ip=f"10.{octet}.0.30", end_ip=f"10.{octet}.0.39")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled", domain=make_domain(f"d-{name}"))
    return zone


def networks_of(client, **params) -> list[dict]:
    answer = client("listNetworks", **params)
    assert answer.status == 200, answer
    return answer.inner.get("network", [])


# -- listNetworks ------------------------------------------------------------------------------------
def test_list_networks_shows_the_zones_guest_network(api, sim, tenant_a):
    network, = networks_of(api.as_(tenant_a))  # made on first sight: no VM has been deployed yet
    assert network["zoneid"] == str(sim.zone.uuid) and network["zonename"] == sim.zone.name
    assert network["id"] == str(GuestNetwork.objects.get(zone=sim.zone).uuid) == network["related"]
    assert (network["name"], network["displaytext"]) == ("guestNetworkForBasicZone", "guestNetworkForBasicZone")
    assert (network["type"], network["traffictype"], network["broadcastdomaintype"]) == ("Shared", "Guest", "Native")
    assert (network["gateway"], network["netmask"], network["cidr"]) == ("10.1.0.1", "255.255.255.0", "10.1.0.0/24")
    assert network["dns1"] == "8.8.8.8" and network["state"] == "Setup" and network["acltype"] == "Domain"
    assert network["isdefault"] is True and network["canusefordeploy"] is True and network["issystem"] is False
    assert network["specifyipranges"] is True and network["ispersistent"] is False and network["tags"] == []
    assert {s["name"] for s in network["service"]} == {"Dhcp", "Dns", "UserData"}
    assert all(s["provider"] == [{"name": "ConfigDrive"}] for s in network["service"])
    offering, = api.as_(tenant_a)("listNetworkOfferings").inner["networkoffering"]
    assert network["networkofferingid"] == offering["id"]
    assert network["networkofferingname"] == offering["name"] == "DefaultSharedNetworkOffering"
    # deploying uses the same network
    vm = api.as_(tenant_a).job(deploy(api.as_(tenant_a), sim, name="web"))["jobresult"]["virtualmachine"]
    assert vm["nic"][0]["networkid"] == network["id"]
    assert networks_of(api.as_(tenant_a)) == [network]


def test_a_zone_the_tenant_does_not_see_shows_no_network(api, sim, tenant_a):
    zone = hidden_zone(sim)
    assert {n["zoneid"] for n in networks_of(api.as_(tenant_a), listall="true")} == {str(sim.zone.uuid)}
    refused = api.as_(tenant_a)("listNetworks", zoneid=str(zone.uuid))
    assert refused.status == 431 and "does not exist" in refused.errortext
    assert not GuestNetwork.objects.filter(zone=zone).exists()  # the tenant's listing made nothing there
    everything = {n["zoneid"]: n for n in networks_of(api)}  # the root admin sees every zone's network
    assert set(everything) == {str(sim.zone.uuid), str(zone.uuid)}
    assert everything[str(zone.uuid)]["gateway"] == "10.7.0.1"
    assert networks_of(api.as_(tenant_a), id=everything[str(zone.uuid)]["id"]) == []
    refused = api.as_(tenant_a)("listPublicIpAddresses", associatednetworkid=everything[str(zone.uuid)]["id"])
    assert refused.status == 431 and "does not exist" in refused.errortext


def test_a_zone_without_guest_range_has_no_network(api, sim):
    zone, _ = make_zone(sim.admin, name="z-bare", octet=8)
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    assert networks_of(api, zoneid=str(zone.uuid)) == []
    assert not GuestNetwork.objects.filter(zone=zone).exists()


@pytest.mark.parametrize("params, shown", [
    ({"type": "Shared"}, True), ({"type": "shared"}, True), ({"type": "all"}, True), ({"type": "Isolated"}, False),
    ({"traffictype": "Guest"}, True), ({"traffictype": "Public"}, False), ({"issystem": "true"}, False),
    ({"isdefault": "true", "canusefordeploy": "true"}, True), ({"canusefordeploy": "false"}, False),
    ({"forvpc": "true"}, False), ({"vpcid": "00000000-0000-4000-8000-000000000000"}, False),
    ({"supportedservices": "UserData,Dhcp"}, True), ({"supportedservices": "SourceNat"}, False),
    ({"networkofferingid": fixed_uuid("network-offering/DefaultSharedNetworkOffering")}, True),
    ({"projectid": "-1"}, False), ({"networkfilter": "Account"}, False), ({"networkfilter": "all"}, True),
    ({"keyword": "guestNetwork"}, True), ({"keyword": "nothing-like-it"}, False),
    ({"listall": "true", "isrecursive": "true"}, True),
])
def test_list_networks_filters(api, sim, tenant_a, params, shown):
    assert bool(networks_of(api.as_(tenant_a), **params)) is shown


def test_list_networks_costs_the_same_for_more_zones(api, sim):
    networks_of(api)  # make the rows
    with CaptureQueriesContext(connection) as one:
        assert len(networks_of(api)) == 1
    for index in range(3):
        hidden_zone(sim, name=f"z-more-{index}", octet=20 + index)
    networks_of(api)  # make the new rows
    with CaptureQueriesContext(connection) as four:
        assert len(networks_of(api)) == 4
    assert len(four.captured_queries) == len(one.captured_queries)


# -- listNetworkOfferings ----------------------------------------------------------------------------
def test_list_network_offerings_shows_the_default_shared_offering(api, sim, tenant_a):
    offering, = api.as_(tenant_a)("listNetworkOfferings", zoneid=str(sim.zone.uuid)).inner["networkoffering"]
    assert offering["id"] == fixed_uuid("network-offering/DefaultSharedNetworkOffering")
    assert (offering["name"], offering["displaytext"]) == ("DefaultSharedNetworkOffering",
                                                           "Offering for Shared networks")
    assert (offering["guestiptype"], offering["traffictype"], offering["availability"], offering["state"]) == (
        "Shared", "Guest", "Optional", "Enabled")
    assert offering["isdefault"] is True and offering["specifyvlan"] is True and offering["forvpc"] is False
    assert {s["name"] for s in offering["service"]} == {"Dhcp", "Dns", "UserData"}
    a = api.as_(tenant_a)
    assert a("listNetworkOfferings", id=offering["id"]).inner["count"] == 1
    assert a("listNetworkOfferings", guestiptype="shared", state="Enabled", isdefault="true").inner["count"] == 1
    for excluded in ({"guestiptype": "Isolated"}, {"forvpc": "true"}, {"state": "Disabled"},
                     {"id": "00000000-0000-4000-8000-000000000000"}, {"sourcenatsupported": "true"},
                     {"supportedservices": "Lb"}, {"keyword": "Isolated"}):
        answer = a("listNetworkOfferings", **excluded)
        assert answer.status == 200 and answer.inner == {}, (excluded, answer)


# -- listNics --------------------------------------------------------------------------------------
def test_list_nics_of_the_own_vm(api, sim, tenant_a):
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim, name="nics"))["jobresult"]["virtualmachine"]
    listed = a("listVirtualMachines", id=vm["id"]).inner["virtualmachine"][0]["nic"][0]
    answer = a("listNics", virtualmachineid=vm["id"])
    assert answer.status == 200 and answer.inner["count"] == 1, answer
    nic, = answer.inner["nic"]
    assert nic["ipaddress"] == listed["ipaddress"] and nic["macaddress"] == listed["macaddress"]
    assert {k: v for k, v in nic.items() if k != "virtualmachineid"} == listed
    assert nic["virtualmachineid"] == vm["id"] and nic["secondaryip"] == []
    assert a("listNics", virtualmachineid=vm["id"], nicid=nic["id"]).inner["count"] == 1
    assert a("listNics", virtualmachineid=vm["id"], networkid=nic["networkid"]).inner["count"] == 1
    assert a("listNics", virtualmachineid=vm["id"], nicid="00000000-0000-4000-8000-000000000000").inner == {}
    xml = a.xml()("listNics", virtualmachineid=vm["id"])
    assert xml.inner["nic"]["macaddress"] == nic["macaddress"] and xml.inner["nic"]["isdefault"] == "true"


def test_list_nics_of_another_tenants_vm_is_not_found(api, sim, tenant_a, tenant_b):
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim, name="mine"))["jobresult"]["virtualmachine"]
    answer = api.as_(tenant_b)("listNics", virtualmachineid=vm["id"])
    assert answer.status == 431 and "does not exist" in answer.errortext
    missing = api.as_(tenant_b)("listNics", virtualmachineid="00000000-0000-4000-8000-000000000000")
    assert (missing.status, missing.errortext.split(" value=")[0]) == (431, answer.errortext.split(" value=")[0])
    assert api("listNics", virtualmachineid=vm["id"]).inner["count"] == 1  # the root admin sees it


# -- the empty lists -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", EMPTY)
def test_empty_lists_answer_as_cloudstack(api, sim, tenant_a, command):
    a = api.as_(tenant_a)
    answer = a(command)
    assert answer.status == 200 and answer.body == {f"{command.lower()}response": {}}, answer
    xml = a.xml()(command)
    assert xml.status == 200, xml
    root = ET.fromstring(xml.text)
    assert root.tag == f"{command.lower()}response" and list(root) == [] and root.get("cloud-stack-version")


def test_clients_calls_while_listing_vms_work(api, sim, tenant_a):
    """What cs/libcloud-style clients send: the network of the VM, scope and paging parameters."""
    a = api.as_(tenant_a)
    network, = networks_of(a)
    for command, params in [
        ("listPublicIpAddresses", {"associatednetworkid": network["id"], "listall": "true", "page": "1",
                                   "pagesize": "500"}),
        ("listPublicIpAddresses", {"zoneid": str(sim.zone.uuid), "allocatedonly": "true",
                                   "forvirtualnetwork": "false"}),
        ("listPortForwardingRules", {"networkid": network["id"], "listall": "true"}),
        ("listIpForwardingRules", {"listall": "true", "projectid": "-1"}),
        ("listFirewallRules", {"networkid": network["id"]}),
        ("listSecurityGroups", {"securitygroupname": "default", "domainid": str(tenant_a.domain.uuid),
                                "account": tenant_a.account.name}),
        ("listAffinityGroups", {"type": "host anti-affinity"}),
        ("listTags", {"resourcetype": "UserVm", "key": "env", "value": "prod"}),
        ("listVPCs", {"zoneid": str(sim.zone.uuid), "tags[0].key": "env", "tags[0].value": "prod"}),
    ]:
        answer = a(command, **params)
        assert answer.status == 200 and answer.inner == {}, (command, answer)


def test_empty_lists_still_check_their_parameters(api, sim, tenant_a):
    a = api.as_(tenant_a)
    for command, params, says in [
        ("listPublicIpAddresses", {"zoneid": str(hidden_zone(sim).uuid)}, "does not exist"),
        ("listSecurityGroups", {"virtualmachineid": "00000000-0000-4000-8000-000000000000"}, "does not exist"),
        ("listFirewallRules", {"id": "not-a-uuid"}, "Invalid parameter id"),
        ("listVPCs", {"account": "nobody"}, "Unable to find account nobody"),
        ("listProjects", {"pagesize": "501", "page": "1"}, "Page size can't exceed"),
    ]:
        answer = a(command, **params)
        assert answer.status == 431 and says in answer.errortext, (command, answer)
