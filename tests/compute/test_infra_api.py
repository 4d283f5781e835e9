"""The infrastructure commands through the signed API (the `api` fixture: real URL routing,
middleware and signatures; async jobs run eagerly): CloudStack's response shapes, the sentence of
every refusal, who may call what, and the event each change leaves.

Hosts here are Simulator hosts (libvirt's in-process test:///default); the real KVM host is in
test_infra_kvm.py. Unreachable hosts are real URIs nothing listens on."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from compute.models import Cluster, GuestIpAddress, Host, Pod, VlanIpRange, Zone
from portal.api.registry import REGISTRY
from portal.models import Event

ADMIN_ONLY_COMMANDS = [
    "createZone", "updateZone", "deleteZone", "createPod", "listPods", "updatePod", "deletePod",
    "createVlanIpRange", "listVlanIpRanges", "deleteVlanIpRange", "addCluster", "listClusters", "updateCluster",
    "deleteCluster", "addHost", "listHosts", "updateHost", "deleteHost", "reconnectHost",
    "prepareHostForMaintenance", "cancelHostMaintenance", "listCapacity", "listAlerts",
]
EVERYONE_COMMANDS = ["listZones", "listHypervisors"]


# -- helpers ---------------------------------------------------------------------------------------
def ok(result) -> dict:
    assert result.status == 200, result
    return result.inner


def refused(result, code: int, *words: str) -> str:
    """The answer is error `code`, and its sentence names every one of `words`."""
    assert result.status == code, result
    inner = result.inner
    assert int(inner["errorcode"]) == code, inner
    text = inner["errortext"]
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return text


def event_of(command: str, resource_uuid: str | None = None) -> Event:
    """The newest event of the type `command` declares (on `resource_uuid`, when given)."""
    declared = REGISTRY[command].event
    assert declared, f"{command} declares no event type"
    events = Event.objects.filter(type=declared)
    if resource_uuid:
        events = events.filter(resource_uuid=resource_uuid)
    event = events.order_by("-id").first()
    assert event is not None, f"no {declared} event{' on ' + resource_uuid if resource_uuid else ''}"
    return event


def job_ok(api, answer, key: str) -> dict:
    job = api.job(answer)
    assert int(job["jobstatus"]) == 1 and int(job["jobresultcode"]) == 0, job
    assert key in job["jobresult"], job
    return job["jobresult"][key]


def job_failed(api, answer, code: int, *words: str) -> str:
    job = api.job(answer)
    assert int(job["jobstatus"]) == 2 and int(job["jobresultcode"]) == code, job
    text = job["jobresult"]["errortext"]
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return text


def zone_params(name: str = "z1", **extra) -> dict:
    return {"name": name, "networktype": "Basic", "dns1": "8.8.8.8", "internaldns1": "10.0.0.1", **extra}


def pod_params(zone_id: str, name: str = "p1", octet: int = 1, **extra) -> dict:
    return {"zoneid": zone_id, "name": name, "gateway": f"10.{octet}.0.1", "netmask": "255.255.255.0",
            "startip": f"10.{octet}.0.10", "endip": f"10.{octet}.0.20", **extra}


def range_params(pod_id: str, octet: int = 1, start: int = 100, end: int = 120, **extra) -> dict:
    return {"podid": pod_id, "gateway": f"10.{octet}.0.1", "netmask": "255.255.255.0",
            "startip": f"10.{octet}.0.{start}", "endip": f"10.{octet}.0.{end}", "forvirtualnetwork": False, **extra}


def sim_host_params(w, name: str = "h1", **extra) -> dict:
    return {"zoneid": w.zone, "podid": w.pod, "clusterid": w.cluster, "hypervisor": "Simulator",
            "url": f"http://sim/{name}", **extra}


def build(api, name: str = "z1", octet: int = 1, host: bool = True) -> SimpleNamespace:
    """Zone > pod > guest range > Simulator cluster [> host], through the API; their uuids."""
    w = SimpleNamespace()
    w.zone = ok(api("createZone", **zone_params(name)))["zone"]["id"]
    w.pod = ok(api("createPod", **pod_params(w.zone, f"{name}-p1", octet)))["pod"]["id"]
    w.range = ok(api("createVlanIpRange", **range_params(w.pod, octet)))["vlan"]["id"]
    w.cluster = ok(api("addCluster", zoneid=w.zone, podid=w.pod, clustername=f"{name}-c1", clustertype="CloudManaged",
                       hypervisor="Simulator"))["cluster"][0]["id"]
    w.host = ok(api("addHost", **sim_host_params(w, f"{name}-h1")))["host"][0]["id"] if host else None
    return w


@pytest.fixture
def world(api):
    return build(api)


# -- zones -----------------------------------------------------------------------------------------
def test_create_zone_json_and_xml(api):
    zone = ok(api("createZone", **zone_params("z1", dns2="8.8.4.4", guestcidraddress="10.1.1.0/24")))["zone"]
    assert uuid.UUID(zone["id"]) and zone["name"] == "z1"
    assert zone["networktype"] == "Basic" and zone["allocationstate"] == "Disabled"
    assert (zone["dns1"], zone["dns2"], zone["internaldns1"]) == ("8.8.8.8", "8.8.4.4", "10.0.0.1")
    assert zone["guestcidraddress"] == "10.1.1.0/24"
    assert zone["securitygroupsenabled"] is False and zone["localstorageenabled"] is False
    assert "capacity" not in zone and "internaldns2" not in zone  # nulls are omitted
    event = event_of("createZone", zone["id"])
    assert event.level == "INFO" and "z1" in event.description

    answer = api.xml()("createZone", **zone_params("z2", allocationstate="Enabled"))
    assert answer.status == 200 and answer.text.startswith("<?xml"), answer
    assert answer.body["createzoneresponse"]["zone"]["name"] == "z2"
    assert answer.body["createzoneresponse"]["zone"]["allocationstate"] == "Enabled"
    assert Zone.objects.filter(name="z2").exists()


BAD_ZONES = [
    ({"networktype": "Advanced"}, 431, ["Advanced", "not supported", "Basic"]),
    ({"dns1": "8.8.8"}, 431, ["dns1", "8.8.8", "IPv4"]),
    ({"internaldns1": "dns.example"}, 431, ["internaldns1", "dns.example"]),
    ({"guestcidraddress": "10.1.1.0/33"}, 431, ["guestcidraddress", "10.1.1.0/33"]),
    ({"allocationstate": "Sleeping"}, 431, ["allocationstate", "Sleeping"]),
    ({"name": ""}, 431, ["name"]),
]


def test_create_zone_bad_input(api):
    for params, code, words in BAD_ZONES:
        refused(api("createZone", **{**zone_params("bad"), **params}), code, *words)
    assert not Zone.objects.exists()
    assert not Event.objects.filter(type="ZONE.CREATE").exists()


def test_create_zone_missing_parameter_and_duplicate_name(api):
    params = zone_params("z1")
    del params["internaldns1"]
    refused(api("createZone", **params), 431, "missing parameter internaldns1")
    ok(api("createZone", **zone_params("z1")))
    refused(api("createZone", **zone_params("Z1")), 431, "zone named Z1 already exists")
    assert Zone.objects.count() == 1


def test_list_zones_admin_sees_all_users_see_enabled_only(api, tenant_a, domain_admin):
    enabled = ok(api("createZone", **zone_params("open", allocationstate="Enabled")))["zone"]["id"]
    disabled = ok(api("createZone", **zone_params("closed")))["zone"]["id"]

    listed = ok(api("listZones"))
    assert listed["count"] == 2 and {z["id"] for z in listed["zone"]} == {enabled, disabled}
    assert ok(api("listZones", id=disabled))["zone"][0]["name"] == "closed"
    assert ok(api("listZones", name="open"))["count"] == 1
    assert ok(api("listZones", keyword="clos"))["zone"][0]["id"] == disabled
    assert ok(api("listZones", id=str(uuid.uuid4()))) == {}  # no match: empty answer, not an error

    for who in (tenant_a, domain_admin):
        seen = ok(api.as_(who)("listZones"))
        assert seen["count"] == 1 and [z["id"] for z in seen["zone"]] == [enabled], who.account.name
        assert ok(api.as_(who)("listZones", id=disabled)) == {}
    xml = api.as_(tenant_a).xml()("listZones")
    assert xml.status == 200 and xml.body["listzonesresponse"]["count"] == "1"
    assert xml.body["listzonesresponse"]["zone"]["id"] == enabled


def test_update_zone(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    updated = ok(api("updateZone", id=zone, name="zone-one", allocationstate="Enabled", dns2="1.1.1.1",
                     description="first"))["zone"]
    assert (updated["name"], updated["allocationstate"], updated["dns2"], updated["description"]) == \
        ("zone-one", "Enabled", "1.1.1.1", "first")
    assert event_of("updateZone", zone).description == "Zone zone-one updated"
    ok(api("createZone", **zone_params("z2")))
    refused(api("updateZone", id=zone, name="z2"), 431, "z2 already exists")
    refused(api("updateZone", id=zone, dns1="nine"), 431, "dns1", "nine")
    refused(api("updateZone", id=zone, allocationstate="On"), 431, "allocationstate", "On")
    assert Zone.objects.get(uuid=zone).name == "zone-one"


def test_delete_zone_refuses_while_it_has_pods_and_names_them(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "rack-7")))["pod"]["id"]
    text = refused(api("deleteZone", id=zone), 536, "z1", "pods rack-7", "delete them first")
    assert text.startswith("Zone z1 still has")
    assert ok(api("deletePod", id=pod)) == {"success": True}
    assert ok(api("deleteZone", id=zone)) == {"success": True}
    assert not Zone.objects.exists()
    assert event_of("deleteZone").description == "Zone z1 deleted"


# -- pods ------------------------------------------------------------------------------------------
def test_create_pod_response_lists_its_range(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]
    pod = ok(api("createPod", **pod_params(zone["id"], "p1")))["pod"]
    assert (pod["name"], pod["zoneid"], pod["zonename"]) == ("p1", zone["id"], "z1")
    assert (pod["gateway"], pod["netmask"]) == ("10.1.0.1", "255.255.255.0")
    assert pod["startip"] == ["10.1.0.10"] and pod["endip"] == ["10.1.0.20"]  # lists, as CloudStack's
    assert pod["allocationstate"] == "Enabled"
    assert event_of("createPod", pod["id"]).resource_name == "p1"

    xml = api.xml()("createPod", **pod_params(zone["id"], "p2", octet=2, startip="10.2.0.5", endip=None))
    assert xml.status == 200, xml
    assert xml.body["createpodresponse"]["pod"]["startip"] == "10.2.0.5"
    assert xml.body["createpodresponse"]["pod"]["endip"] == "10.2.0.5"  # a one-address range

    listed = ok(api("listPods", zoneid=zone["id"]))
    assert listed["count"] == 2 and [p["name"] for p in listed["pod"]] == ["p1", "p2"]
    assert ok(api("listPods", name="p2"))["pod"][0]["startip"] == ["10.2.0.5"]


BAD_PODS = [
    ({"startip": "10.9.0.10"}, ["start IP 10.9.0.10", "outside the network 10.1.0.0/24", "gateway 10.1.0.1"]),
    ({"endip": "10.1.1.20"}, ["end IP 10.1.1.20", "outside the network 10.1.0.0/24"]),
    ({"startip": "10.1.0.30", "endip": "10.1.0.20"}, ["start IP 10.1.0.30 is after its end IP 10.1.0.20"]),
    ({"gateway": "10.1.0.15"}, ["gateway 10.1.0.15 lies inside", "10.1.0.10-10.1.0.20"]),
    ({"netmask": "255.255.0.255"}, ["netmask 255.255.0.255"]),
    ({"netmask": "255.255.255.254"}, ["netmask 255.255.255.254", "no room"]),
    ({"gateway": "10.1.0.256"}, ["gateway", "10.1.0.256"]),
    ({"startip": "10.1.0.0"}, ["10.1.0.0", "network or broadcast"]),
    ({"gateway": None}, ["gateway and netmask"]),
    ({"startip": None}, ["endip needs startip"]),
]


def test_create_pod_bad_input(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    for changes, words in BAD_PODS:
        refused(api("createPod", **{**pod_params(zone, "p1"), **changes}), 431, *words)
    assert not Pod.objects.exists()
    assert not Event.objects.filter(type="POD.CREATE").exists()


def test_create_pod_conflicts(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    other_zone = ok(api("createZone", **zone_params("z2")))["zone"]["id"]
    ok(api("createPod", **pod_params(zone, "p1")))
    refused(api("createPod", **pod_params(zone, "P1", octet=2)), 431, "pod named P1 already exists in zone z1")
    refused(api("createPod", **pod_params(zone, "p2", gateway="10.1.0.200", startip="10.1.0.210",
                                          endip="10.1.0.220")),
            431, "10.1.0.0/24 overlaps pod p1's network")
    refused(api("createPod", **pod_params(zone, "wide", octet=1, netmask="255.255.0.0", startip="10.1.5.10",
                                          endip="10.1.5.20")), 431, "overlaps pod p1")
    # The same name and network in another zone are fine.
    ok(api("createPod", **pod_params(other_zone, "p1")))
    refused(api("createPod", **pod_params(str(uuid.uuid4()), "p9", octet=9)), 431, "zoneid")
    assert Pod.objects.count() == 2


def test_create_pod_range_colliding_with_a_guest_range(api):
    """A pod's reserved range may not take addresses a guest IP range of its zone already holds
    (in another pod's guest network that happens to be this pod's network)."""
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod1 = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    ok(api("createVlanIpRange", **range_params(pod1, octet=7, start=10, end=30)))
    refused(api("createPod", **pod_params(zone, "p2", octet=7, startip="10.7.0.25", endip="10.7.0.40")), 431,
            "10.7.0.25-10.7.0.40", "guest IP range 10.7.0.10-10.7.0.30")
    assert Pod.objects.count() == 1
    ok(api("createPod", **pod_params(zone, "p2", octet=7, startip="10.7.0.31", endip="10.7.0.40")))


def test_update_pod(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    ok(api("createPod", **pod_params(zone, "p2", octet=2)))
    updated = ok(api("updatePod", id=pod, name="p1-new", startip="10.1.0.5", endip="10.1.0.9",
                     allocationstate="Disabled"))["pod"]
    assert (updated["name"], updated["startip"], updated["endip"], updated["allocationstate"]) == \
        ("p1-new", ["10.1.0.5"], ["10.1.0.9"], "Disabled")
    assert event_of("updatePod", pod).description == "Pod p1-new updated"
    refused(api("updatePod", id=pod, name="p2"), 431, "pod named p2 already exists")
    refused(api("updatePod", id=pod, startip="10.1.0.40"), 431, "start IP 10.1.0.40 is after its end IP 10.1.0.9")
    refused(api("updatePod", id=pod, gateway="10.2.0.1", startip="10.2.0.50", endip="10.2.0.60"), 431,
            "10.2.0.0/24 overlaps pod p2")
    ok(api("createVlanIpRange", **range_params(pod, start=100, end=120)))
    refused(api("updatePod", id=pod, endip="10.1.0.110"), 431,
            "pod range 10.1.0.5-10.1.0.110 collides with the guest IP range 10.1.0.100-10.1.0.120")
    refused(api("updatePod", id=str(uuid.uuid4()), name="x"), 431, "id")
    assert Pod.objects.get(uuid=pod).start_ip == "10.1.0.5"


def test_delete_pod_refuses_while_it_has_clusters_or_ranges(api):
    w = build(api, host=False)
    refused(api("deletePod", id=w.pod), 536, "z1-p1", "clusters z1-c1", "guest IP ranges 10.1.0.100-10.1.0.120")
    ok(api("deleteCluster", id=w.cluster))
    refused(api("deletePod", id=w.pod), 536, "guest IP ranges 10.1.0.100-10.1.0.120")
    ok(api("deleteVlanIpRange", id=w.range))
    assert ok(api("deletePod", id=w.pod)) == {"success": True}
    assert event_of("deletePod").description == "Pod z1-p1 deleted"
    assert not Pod.objects.exists()


# -- guest IP ranges -------------------------------------------------------------------------------
def test_create_and_list_vlan_ip_range(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    vlan = ok(api("createVlanIpRange", zoneid=zone, **range_params(pod)))["vlan"]
    assert (vlan["startip"], vlan["endip"], vlan["gateway"], vlan["netmask"]) == \
        ("10.1.0.100", "10.1.0.120", "10.1.0.1", "255.255.255.0")
    assert (vlan["zoneid"], vlan["podid"], vlan["podname"], vlan["vlan"]) == (zone, pod, "p1", "untagged")
    assert vlan["forvirtualnetwork"] is False and vlan["forsystemvms"] is False
    assert GuestIpAddress.objects.filter(ip_range__uuid=vlan["id"]).count() == 21
    assert event_of("createVlanIpRange", vlan["id"]).description.startswith("Guest IP range 10.1.0.100-10.1.0.120")

    xml = api.xml()("createVlanIpRange", **range_params(pod, start=130, end=130))
    assert xml.status == 200 and xml.body["createvlaniprangeresponse"]["vlan"]["endip"] == "10.1.0.130", xml
    listed = ok(api("listVlanIpRanges", podid=pod))  # items are `vlaniprange` here, `vlan` on create
    assert listed["count"] == 2 and [r["startip"] for r in listed["vlaniprange"]] == ["10.1.0.100", "10.1.0.130"]
    assert ok(api("listVlanIpRanges", id=vlan["id"]))["vlaniprange"][0]["endip"] == "10.1.0.120"
    assert ok(api("listVlanIpRanges", forvirtualnetwork=True)) == {}


BAD_RANGES = [
    ({"startip": "10.1.0.110", "endip": "10.1.0.140"}, ["10.1.0.110-10.1.0.140 overlaps the existing range "
                                                        "10.1.0.100-10.1.0.120"]),
    ({"startip": "10.1.0.15", "endip": "10.1.0.40"}, ["collides with pod p1's reserved range 10.1.0.10-10.1.0.20"]),
    ({"startip": "10.1.1.10", "endip": "10.1.1.20"}, ["start IP 10.1.1.10 is outside the network 10.1.0.0/24",
                                                      "gateway 10.1.0.1"]),
    ({"gateway": "10.2.0.1"}, ["outside the network 10.2.0.0/24", "gateway 10.2.0.1"]),
    ({"startip": "10.1.0.200", "endip": "10.1.0.150"}, ["start IP 10.1.0.200 is after its end IP 10.1.0.150"]),
    ({"gateway": "10.1.0.160", "startip": "10.1.0.150", "endip": "10.1.0.170"},
     ["gateway 10.1.0.160 lies inside the IP range 10.1.0.150-10.1.0.170"]),
    ({"forvirtualnetwork": True, "startip": "10.1.0.150", "endip": "10.1.0.170"}, ["forvirtualnetwork=false"]),
    ({"vlan": "100", "startip": "10.1.0.150", "endip": "10.1.0.170"}, ["untagged"]),
    ({"podid": None}, ["podid"]),
    ({"startip": "10.1.0.x"}, ["10.1.0.x", "IPv4"]),
]


def test_create_vlan_ip_range_bad_input(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    ok(api("createVlanIpRange", **range_params(pod)))
    before = GuestIpAddress.objects.count()
    for changes, words in BAD_RANGES:
        refused(api("createVlanIpRange", **{**range_params(pod), **changes}), 431, *words)
    assert VlanIpRange.objects.count() == 1 and GuestIpAddress.objects.count() == before
    assert Event.objects.filter(type="VLAN.IP.RANGE.CREATE").count() == 1


def test_create_vlan_ip_range_pod_of_another_zone(api):
    zone1 = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    zone2 = ok(api("createZone", **zone_params("z2")))["zone"]["id"]
    pod1 = ok(api("createPod", **pod_params(zone1, "p1")))["pod"]["id"]
    refused(api("createVlanIpRange", zoneid=zone2, **range_params(pod1)), 431, "Pod p1 is not in zone z2")
    refused(api("createVlanIpRange", **range_params(str(uuid.uuid4()))), 431, "podid")
    assert not VlanIpRange.objects.exists()


def test_guest_range_size_limit(api):
    from portal import config

    config.set_value("guest.ip.range.max.size", "10")
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    refused(api("createVlanIpRange", **range_params(pod, start=100, end=110)), 431, "holds 11 addresses",
            "at most 10", "guest.ip.range.max.size")


def test_delete_vlan_ip_range_refuses_while_addresses_are_in_use(api):
    from django.utils import timezone

    w = build(api, host=False)
    GuestIpAddress.objects.filter(ip_range__uuid=w.range, address="10.1.0.105").update(allocated=timezone.now())
    refused(api("deleteVlanIpRange", id=w.range), 536, "10.1.0.100-10.1.0.120", "in use", "10.1.0.105")
    GuestIpAddress.objects.update(allocated=None)
    assert ok(api("deleteVlanIpRange", id=w.range)) == {"success": True}
    assert not GuestIpAddress.objects.exists()
    assert event_of("deleteVlanIpRange").description == "Guest IP range 10.1.0.100-10.1.0.120 deleted"
    refused(api("deleteVlanIpRange", id=w.range), 431, "id")


# -- clusters --------------------------------------------------------------------------------------
def test_add_cluster_answers_a_list(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    answer = ok(api("addCluster", zoneid=zone, podid=pod, clustername="c1", clustertype="CloudManaged",
                    hypervisor="KVM"))
    assert answer["count"] == 1 and isinstance(answer["cluster"], list) and len(answer["cluster"]) == 1
    cluster = answer["cluster"][0]
    assert (cluster["name"], cluster["podid"], cluster["podname"], cluster["zoneid"], cluster["zonename"]) == \
        ("c1", pod, "p1", zone, "z1")
    assert (cluster["hypervisortype"], cluster["clustertype"], cluster["allocationstate"],
            cluster["managedstate"]) == ("KVM", "CloudManaged", "Enabled", "Managed")
    assert cluster["cpuovercommitratio"] == "1.0" and cluster["memoryovercommitratio"] == "1.0"
    assert cluster["emulation"] == "auto"
    assert event_of("addCluster", cluster["id"]).description == "Cluster c1 added to pod p1"

    xml = api.xml()("addCluster", zoneid=zone, podid=pod, clustername="c2", clustertype="CloudManaged",
                    hypervisor="simulator", emulation="qemu")
    assert xml.status == 200, xml
    body = xml.body["addclusterresponse"]
    assert body["count"] == "1" and body["cluster"]["hypervisortype"] == "Simulator"
    assert body["cluster"]["emulation"] == "qemu"


def test_add_cluster_bad_input(api):
    zone = ok(api("createZone", **zone_params("z1")))["zone"]["id"]
    zone2 = ok(api("createZone", **zone_params("z2")))["zone"]["id"]
    pod = ok(api("createPod", **pod_params(zone, "p1")))["pod"]["id"]
    base = {"zoneid": zone, "podid": pod, "clustername": "c1", "clustertype": "CloudManaged", "hypervisor": "KVM"}
    ok(api("addCluster", **base))
    refused(api("addCluster", **{**base, "clustername": "C1"}), 431, "cluster named C1 already exists in pod p1")
    refused(api("addCluster", **{**base, "clustername": "c2", "zoneid": zone2}), 431, "Pod p1 is not in zone z2")
    refused(api("addCluster", **{**base, "clustername": "c2", "hypervisor": "XenServer"}), 431,
            "XenServer is not supported", "KVM or Simulator")
    refused(api("addCluster", **{**base, "clustername": "c2", "clustertype": "ExternalManaged"}), 431,
            "ExternalManaged is not supported", "CloudManaged")
    refused(api("addCluster", **{**base, "clustername": "c2", "emulation": "fast"}), 431, "emulation", "fast")
    refused(api("addCluster", **{**base, "clustername": "c2", "podid": str(uuid.uuid4())}), 431, "podid")
    params = dict(base, clustername="c2")
    del params["clustertype"]
    refused(api("addCluster", **params), 431, "missing parameter clustertype")
    assert list(Cluster.objects.values_list("name", flat=True)) == ["c1"]


def test_list_update_delete_cluster(api):
    w = build(api)
    listed = ok(api("listClusters", zoneid=w.zone))
    assert listed["count"] == 1 and listed["cluster"][0]["id"] == w.cluster
    assert ok(api("listClusters", hypervisor="simulator"))["count"] == 1
    assert ok(api("listClusters", hypervisor="KVM")) == {}
    assert "capacity" not in listed["cluster"][0]

    updated = ok(api("updateCluster", id=w.cluster, clustername="renamed", allocationstate="Disabled",
                     emulation="kvm"))["cluster"]
    assert (updated["name"], updated["allocationstate"], updated["emulation"]) == ("renamed", "Disabled", "kvm")
    assert event_of("updateCluster", w.cluster).description == "Cluster renamed updated"
    refused(api("updateCluster", id=w.cluster, managedstate="Sometimes"), 431, "managedstate", "Sometimes")

    refused(api("deleteCluster", id=w.cluster), 536, "Cluster renamed still has hosts z1-h1")
    ok(api("prepareHostForMaintenance", id=w.host))
    ok(api("deleteHost", id=w.host))
    assert ok(api("deleteCluster", id=w.cluster)) == {"success": True}
    assert event_of("deleteCluster").description == "Cluster renamed deleted"
    refused(api("deleteCluster", id=w.cluster), 431, "id")


# -- hosts -----------------------------------------------------------------------------------------
def test_add_simulator_host_answers_a_list(api):
    w = build(api, host=False)
    answer = ok(api("addHost", **sim_host_params(w, "h1", hosttags="ssd, fast ,")))
    assert answer["count"] == 1 and isinstance(answer["host"], list) and len(answer["host"]) == 1
    host = answer["host"][0]
    assert (host["name"], host["state"], host["resourcestate"], host["type"], host["hypervisor"]) == \
        ("h1", "Up", "Enabled", "Routing", "Simulator")
    assert (host["zoneid"], host["podid"], host["clusterid"], host["clustername"]) == \
        (w.zone, w.pod, w.cluster, "z1-c1")
    assert host["cpunumber"] > 0 and host["cpuspeed"] > 0 and host["memorytotal"] > 0
    assert host["hosttags"] == "ssd,fast"
    assert host["kvmusable"] is False and host["effectiveemulation"] == "qemu"
    assert host["lastpinged"] and host["created"] and "disconnected" not in host
    event = event_of("addHost", host["id"])
    assert event.level == "INFO" and event.description == "Host h1 added to cluster z1-c1"

    xml = api.xml()("addHost", **sim_host_params(w, "h2", allocationstate="Disabled"))
    assert xml.status == 200, xml
    body = xml.body["addhostresponse"]
    assert body["count"] == "1" and body["host"]["name"] == "h2" and body["host"]["resourcestate"] == "Disabled"

    # clustername instead of clusterid (CloudStack accepts either)
    params = sim_host_params(w, "h3", clustername="z1-c1")
    del params["clusterid"]
    assert ok(api("addHost", **params))["host"][0]["clustername"] == "z1-c1"
    assert Host.objects.count() == 3


def test_add_host_bad_input(api):
    w = build(api, host=False)
    kvm = ok(api("addCluster", zoneid=w.zone, podid=w.pod, clustername="kvm", clustertype="CloudManaged",
                 hypervisor="KVM"))["cluster"][0]["id"]
    zone2 = ok(api("createZone", **zone_params("z2")))["zone"]["id"]
    ok(api("addHost", **sim_host_params(w, "h1")))

    refused(api("addHost", **sim_host_params(w, "h1")), 431, "host with url http://sim/h1 is already added")
    refused(api("addHost", zoneid=w.zone, podid=w.pod, clusterid=kvm, hypervisor="KVM", url="test:///default"), 431,
            "test:/// URIs are for Simulator clusters")
    refused(api("addHost", **sim_host_params(w, "h2", hypervisor="KVM")), 431,
            "z1-c1 is a Simulator cluster", "not KVM")
    refused(api("addHost", **sim_host_params(w, "h2", zoneid=zone2)), 431, "not in pod z1-p1 of zone z2")
    refused(api("addHost", zoneid=w.zone, podid=w.pod, clusterid=kvm, hypervisor="KVM", url="ftp://h/x"), 431,
            "'ftp://h/x' is not a host address", "qemu+ssh://")
    refused(api("addHost", **sim_host_params(w, "h2", clusterid=None, clustername="nope")), 431,
            "clusterid (or the clustername")
    refused(api("addHost", **sim_host_params(w, "h2", clusterid=str(uuid.uuid4()))), 431, "clusterid")
    assert list(Host.objects.values_list("name", flat=True)) == ["h1"]
    assert Event.objects.filter(type="HOST.ADD").count() == 1


@pytest.mark.parametrize("url, words", [
    # Nothing listens on port 1: refused at once, the sentence says where and what to check.
    ("qemu+tcp://127.0.0.1:1/system", ["Cannot add host qemu+tcp://127.0.0.1:1/system", "127.0.0.1:1",
                                       "Connection refused", "is libvirtd running on 127.0.0.1"]),
    # A local socket that does not exist: libvirt's own reason, and how to start libvirtd.
    ("qemu:///system?socket=/nonexistent/libvirt-sock", ["Failed to connect socket", "/nonexistent/libvirt-sock",
                                                         "is libvirtd running"]),
    # A name that does not resolve.
    ("qemu+ssh://root@no-such-host.invalid/system", ["no-such-host.invalid", "does not resolve"]),
])
def test_add_unreachable_kvm_host_leaves_nothing(api, url, words):
    w = build(api, host=False)
    kvm = ok(api("addCluster", zoneid=w.zone, podid=w.pod, clustername="kvm", clustertype="CloudManaged",
                 hypervisor="KVM"))["cluster"][0]["id"]
    answer = api("addHost", zoneid=w.zone, podid=w.pod, clusterid=kvm, hypervisor="KVM", url=url,
                 username="root", password="secret")
    text = refused(answer, 534, *words)  # ResourceUnavailable: the host, not the request, is the problem
    assert "secret" not in text
    assert not Host.objects.exists()
    assert not Event.objects.filter(type="HOST.ADD").exists()


def test_list_hosts_filters(api):
    w = build(api)
    ok(api("addHost", **sim_host_params(w, "h2", hosttags="gpu")))
    listed = ok(api("listHosts"))
    assert listed["count"] == 2 and [h["name"] for h in listed["host"]] == ["z1-h1", "h2"]
    assert ok(api("listHosts", id=w.host))["host"][0]["name"] == "z1-h1"
    assert ok(api("listHosts", name="h2"))["host"][0]["hosttags"] == "gpu"
    assert ok(api("listHosts", clusterid=w.cluster, state="up", type="routing", hypervisor="Simulator"))["count"] == 2
    assert ok(api("listHosts", keyword="sim/h2"))["count"] == 1
    assert ok(api("listHosts", state="Alert")) == {}
    assert ok(api("listHosts", resourcestate="Maintenance")) == {}
    assert ok(api("listHosts", hahost=True)) == {}
    page = ok(api("listHosts", page=2, pagesize=1))
    assert page["count"] == 2 and [h["name"] for h in page["host"]] == ["h2"]
    refused(api("listHosts", zoneid=str(uuid.uuid4())), 431, "zoneid")
    xml = api.xml()("listHosts", pagesize=500, page=1)
    assert xml.status == 200 and xml.body["listhostsresponse"]["count"] == "2"
    assert [h["name"] for h in xml.body["listhostsresponse"]["host"]] == ["z1-h1", "h2"]


def test_update_host(api):
    w = build(api)
    host = ok(api("updateHost", id=w.host, hosttags="a,b", name="renamed", allocationstate="Disable"))["host"]
    assert (host["name"], host["hosttags"], host["resourcestate"]) == ("renamed", "a,b", "Disabled")
    assert event_of("updateHost", w.host).description == "Host renamed updated"
    host = ok(api("updateHost", id=w.host, allocationstate="Enable", emulation="kvm"))["host"]
    assert host["resourcestate"] == "Enabled" and host["emulation"] == "kvm" and host["effectiveemulation"] == "kvm"
    refused(api("updateHost", id=w.host, allocationstate="Maintenance"), 431, "Enable or Disable")
    refused(api("updateHost", id=w.host, emulation="turbo"), 431, "emulation", "turbo")
    ok(api("prepareHostForMaintenance", id=w.host))
    refused(api("updateHost", id=w.host, allocationstate="Disable"), 431, "Maintenance", "cancel maintenance")


def test_maintenance_and_reconnect_are_async(api):
    w = build(api)
    answer = api("prepareHostForMaintenance", id=w.host)
    assert set(ok(answer)) == {"jobid"}  # a plain async command: the job id only
    host = job_ok(api, answer, "host")
    assert host["id"] == w.host and host["resourcestate"] == "Maintenance"
    assert Host.objects.get(uuid=w.host).resource_state == "Maintenance"
    assert event_of("prepareHostForMaintenance", w.host).description == "Host z1-h1 entered maintenance"
    job = api.job(answer)
    assert job["jobinstancetype"] == "Host" and job["jobinstanceid"] == w.host, job
    job_failed(api, api("prepareHostForMaintenance", id=w.host), 431, "Host z1-h1 is already in Maintenance")

    host = job_ok(api, api("cancelHostMaintenance", id=w.host), "host")
    assert host["resourcestate"] == "Enabled" and host["state"] == "Up"
    assert event_of("cancelHostMaintenance", w.host).description == "Host z1-h1 left maintenance"
    job_failed(api, api("cancelHostMaintenance", id=w.host), 431, "not in maintenance", "Enabled")

    Host.objects.filter(uuid=w.host).update(state="Disconnected", state_reason="test")
    xml = api.xml()("reconnectHost", id=w.host)
    assert xml.status == 200, xml
    job = api.xml().job(xml)
    assert job["jobstatus"] == "1" and job["jobinstancetype"] == "Host" and job["jobinstanceid"] == w.host, job
    assert job["jobresult"]["host"]["state"] == "Up"
    assert event_of("reconnectHost", w.host).description == "Host z1-h1 reconnected (was Disconnected)"


def test_delete_host(api):
    w = build(api)
    refused(api("deleteHost", id=w.host), 431, "Host z1-h1 is Up and in use", "maintenance", "forced=true")
    assert Host.objects.count() == 1
    assert ok(api("deleteHost", id=w.host, forced=True)) == {"success": True}
    assert event_of("deleteHost").description == "Host z1-h1 deleted"
    host2 = ok(api("addHost", **sim_host_params(w, "h2")))["host"][0]["id"]
    ok(api("updateHost", id=host2, allocationstate="Disable"))
    assert ok(api("deleteHost", id=host2)) == {"success": True}
    assert not Host.objects.exists()
    for command in ("deleteHost", "updateHost", "reconnectHost", "prepareHostForMaintenance",
                    "cancelHostMaintenance"):
        refused(api(command, id=host2), 431, "id")


# -- hypervisors, capacity, alerts -----------------------------------------------------------------
def test_list_hypervisors(api, tenant_a):
    assert {h["name"] for h in ok(api("listHypervisors"))["hypervisor"]} == {"KVM", "Simulator"}
    w = build(api, host=False)
    assert ok(api("listHypervisors", zoneid=w.zone))["hypervisor"] == [{"name": "Simulator"}]
    assert ok(api.as_(tenant_a)("listHypervisors"))["count"] == 2
    # A tenant does not see a Disabled zone, so cannot ask about it.
    refused(api.as_(tenant_a)("listHypervisors", zoneid=w.zone), 431, "zoneid")


def test_list_capacity_and_alerts_shapes(api):
    w = build(api)
    rows = ok(api("listCapacity", zoneid=w.zone))["capacity"]
    by_type = {r["type"]: r for r in rows}
    assert {0, 1, 8, 90} <= set(by_type)
    memory = by_type[0]
    assert memory["name"] == "MEMORY" and memory["zoneid"] == w.zone and memory["zonename"] == "z1"
    assert isinstance(memory["capacitytotal"], int) and isinstance(memory["percentused"], str)
    assert by_type[8]["capacitytotal"] == 21 and by_type[8]["capacityused"] == 0
    assert ok(api("listCapacity", type=8))["capacity"] == [by_type[8]]
    refused(api("listCapacity", type="memory"), 431, "type")

    assert ok(api("listAlerts")) == {}
    from compute.services import raise_alert

    alert = raise_alert(7, "ALERT.HOST", "Host z1-h1 is Alert: gone")
    listed = ok(api("listAlerts"))
    assert listed["count"] == 1
    assert listed["alert"][0] == {"id": str(alert.uuid), "type": 7, "name": "ALERT.HOST",
                                  "description": "Host z1-h1 is Alert: gone", "sent": listed["alert"][0]["sent"]}
    assert ok(api("listAlerts", type="7"))["count"] == 1 and ok(api("listAlerts", type="2")) == {}
    refused(api("listAlerts", type="host"), 431, "alert types are numbers")


# -- who may call what -----------------------------------------------------------------------------
def test_admin_only_commands_refuse_users_and_domain_admins(api, tenant_a, domain_admin):
    w = build(api)
    params = {"id": w.host, "zoneid": w.zone, "podid": w.pod, "clusterid": w.cluster, "name": "x"}
    before = Event.objects.count()
    for command in ADMIN_ONLY_COMMANDS:
        for who in (tenant_a, domain_admin):
            refused(api.as_(who)(command, **params), 401, command, "not available for user")
        refused(api.as_(tenant_a).xml()(command, **params), 401, command)
    assert Event.objects.count() == before
    assert Zone.objects.count() == 1 and Host.objects.get().state == "Up"


def test_everyone_may_list_zones_and_hypervisors(api, tenant_a, domain_admin):
    for command in EVERYONE_COMMANDS:
        for who in (tenant_a, domain_admin):
            assert api.as_(who)(command).status == 200, (command, who.account.name)


def test_declared_roles_of_the_infrastructure_commands():
    from accounts.access import ADMIN_ONLY, ALL_ROLE_TYPES

    for command in ADMIN_ONLY_COMMANDS:
        assert REGISTRY[command].roles == ADMIN_ONLY, command
    for command in EVERYONE_COMMANDS:
        assert REGISTRY[command].roles == ALL_ROLE_TYPES, command
    mutating = [c for c in ADMIN_ONLY_COMMANDS if not c.startswith("list")]
    assert all(REGISTRY[c].event for c in mutating), [c for c in mutating if not REGISTRY[c].event]


# -- list pages cost a constant number of queries --------------------------------------------------
def test_list_queries_do_not_grow_with_rows(api):
    """listHosts/listClusters/listPods/listVlanIpRanges/listZones: the same number of SQL
    queries for a page of 1 row as for a page of many (ClusterResponse reads its overcommit
    ratios from the settings snapshot, not per row; showcapacities=true computes the page's
    capacity once, not per zone or cluster)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from compute import services
    from portal import config
    from tests.factories import admin_user

    def queries(command: str, **params) -> int:
        api(command, **params)  # fill per-process caches first
        with CaptureQueriesContext(connection) as ctx:
            answer = api(command, **params)
        assert answer.status == 200, answer
        return len(ctx.captured_queries)

    commands = [("listHosts", {}), ("listClusters", {}), ("listPods", {}), ("listVlanIpRanges", {}),
                ("listZones", {}), ("listZones", {"showcapacities": True}),
                ("listClusters", {"showcapacities": True})]
    w = build(api)
    few = {(c, tuple(p)): queries(c, **p) for c, p in commands}
    admin = admin_user()
    zone, pod = Zone.objects.get(uuid=w.zone), Pod.objects.get(uuid=w.pod)
    for i in range(2, 7):
        extra_zone = services.create_zone(admin, name=f"extra-{i}", dns1="8.8.8.8", internal_dns1="10.0.0.1")
        extra_pod = services.create_pod(admin, zone=extra_zone, name=f"xp{i}", gateway=f"10.{i}.0.1",
                                        netmask="255.255.255.0")
        services.create_vlan_ip_range(admin, pod=extra_pod, gateway=f"10.{i}.0.1", netmask="255.255.255.0",
                                      start_ip=f"10.{i}.0.100", end_ip=f"10.{i}.0.101")
        cluster = services.add_cluster(admin, zone=zone, pod=pod, name=f"c{i}", hypervisor="Simulator")
        config.set_value("cpu.overprovisioning.factor", "2", scope="cluster", scope_uuid=str(cluster.uuid))
        for j in range(2):
            services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=f"http://sim/c{i}/h{j}",
                              hypervisor="Simulator")
    many = {(c, tuple(p)): queries(c, **p) for c, p in commands}
    assert Host.objects.count() == 11 and Cluster.objects.count() == 6 and Zone.objects.count() == 6
    assert many == few
