"""Capacity equals a recomputation from rows, after adds and deletes: hosts' memory and CPU times
the overprovisioning factors (global settings, one cluster overriding), usage as hosts last
reported it, guest IP totals and the addresses in use; per zone, pod and cluster, through
listCapacity, listZones showcapacities=true and listClusters showcapacities=true.

The expected numbers are computed here from the rows with this test's own loop and the factors
this test set, not with compute.capacity."""
from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
from django.utils import timezone

from compute import services
from compute.models import GuestIpAddress, Host
from portal import config
from tests.factories import admin_user

CPU_FACTOR = 2.0  # global, set through updateConfiguration
MEM_FACTOR = 1.5  # global, set through updateConfiguration
C2_MEM_FACTOR = 3.0  # cluster c2's own value
MEMORY, CPU, DIRECT_IP, CPU_CORE = 0, 1, 8, 90
NAMES = {MEMORY: "MEMORY", CPU: "CPU", DIRECT_IP: "DIRECT_ATTACHED_PUBLIC_IP", CPU_CORE: "CPU_CORE"}


def ok(result) -> dict:
    assert result.status == 200, result
    return result.inner


def sim_host(w, cluster, name: str, **facts) -> Host:
    host = services.add_host(w.admin, zone=cluster.zone, pod=cluster.pod, cluster=cluster, url=f"http://sim/{name}",
                             hypervisor="Simulator")
    if facts:  # as the monitoring job would have found them
        Host.objects.filter(pk=host.pk).update(**facts)
    return host


@pytest.fixture
def w(api):
    """z1: pod p1 (cluster c1: h1, h2), pod p2 (cluster c2: h3); z2: pod p3 (cluster c3: h4)."""
    w = SimpleNamespace(admin=admin_user())
    assert ok(api("updateConfiguration", name="cpu.overprovisioning.factor", value=str(CPU_FACTOR)))
    assert ok(api("updateConfiguration", name="mem.overprovisioning.factor", value=str(MEM_FACTOR)))
    w.z1 = services.create_zone(w.admin, name="z1", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    w.z2 = services.create_zone(w.admin, name="z2", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    w.p1 = services.create_pod(w.admin, zone=w.z1, name="p1", gateway="10.1.0.1", netmask="255.255.255.0")
    w.p2 = services.create_pod(w.admin, zone=w.z1, name="p2", gateway="10.2.0.1", netmask="255.255.255.0")
    w.p3 = services.create_pod(w.admin, zone=w.z2, name="p3", gateway="10.1.0.1", netmask="255.255.255.0")
    w.r1 = services.create_vlan_ip_range(w.admin, pod=w.p1, gateway="10.1.0.1", netmask="255.255.255.0",
                                         start_ip="10.1.0.100", end_ip="10.1.0.120")
    w.r2 = services.create_vlan_ip_range(w.admin, pod=w.p2, gateway="10.2.0.1", netmask="255.255.255.0",
                                         start_ip="10.2.0.100", end_ip="10.2.0.110")
    w.r3 = services.create_vlan_ip_range(w.admin, pod=w.p3, gateway="10.1.0.1", netmask="255.255.255.0",
                                         start_ip="10.1.0.50", end_ip="10.1.0.52")
    w.c1 = services.add_cluster(w.admin, zone=w.z1, pod=w.p1, name="c1", hypervisor="Simulator")
    w.c2 = services.add_cluster(w.admin, zone=w.z1, pod=w.p2, name="c2", hypervisor="Simulator")
    w.c3 = services.add_cluster(w.admin, zone=w.z2, pod=w.p3, name="c3", hypervisor="Simulator")
    config.set_value("mem.overprovisioning.factor", str(C2_MEM_FACTOR), scope="cluster", scope_uuid=str(w.c2.uuid))
    w.h1 = sim_host(w, w.c1, "h1", memory_total=8 << 30, memory_used=3 << 30, cpu_number=4, cpu_speed=2000,
                    cpu_used_percent=25.0)
    w.h2 = sim_host(w, w.c1, "h2")  # as libvirt's test driver describes itself
    w.h3 = sim_host(w, w.c2, "h3", memory_total=16 << 30, memory_used=1 << 30, cpu_number=8, cpu_speed=2500,
                    cpu_used_percent=12.5)
    w.h4 = sim_host(w, w.c3, "h4", memory_total=4 << 30, cpu_number=2, cpu_speed=1000)
    GuestIpAddress.objects.filter(address__in=["10.1.0.101", "10.1.0.102"], zone=w.z1).update(allocated=timezone.now())
    GuestIpAddress.objects.filter(address="10.2.0.100").update(allocated=timezone.now())
    return w


def factors(cluster, cpu_factor: float = CPU_FACTOR) -> tuple[float, float]:
    return cpu_factor, C2_MEM_FACTOR if cluster.name == "c2" else MEM_FACTOR


def expected(level: str = "zone", zone=None, pod=None, cluster=None, cpu_factor: float = CPU_FACTOR
             ) -> dict[tuple, dict]:
    """Capacity rows keyed (type, zoneid, podid, clusterid), recomputed from the rows."""
    rows: dict[tuple, dict] = defaultdict(lambda: {"total": 0, "used": 0, "allocated": 0})

    def key(kind, z, p, c):
        return (kind, str(z.uuid), str(p.uuid) if level in ("pod", "cluster") else None,
                str(c.uuid) if c is not None and level == "cluster" else None)

    hosts = Host.objects.select_related("zone", "pod", "cluster")
    ips = GuestIpAddress.objects.select_related("zone", "ip_range__pod")
    if zone is not None:
        hosts, ips = hosts.filter(zone=zone), ips.filter(zone=zone)
    if pod is not None:
        hosts, ips = hosts.filter(pod=pod), ips.filter(ip_range__pod=pod)
    if cluster is not None:
        hosts, ips = hosts.filter(cluster=cluster), ips.none()
    for h in hosts:
        mem_factor = factors(h.cluster)[1]
        mem = rows[key(MEMORY, h.zone, h.pod, h.cluster)]
        mem["total"] += int(h.memory_total * mem_factor)
        mem["used"] += h.memory_used
        cpu = rows[key(CPU, h.zone, h.pod, h.cluster)]
        cpu["total"] += int(h.cpu_number * h.cpu_speed * cpu_factor)
        cpu["used"] += int(h.cpu_number * h.cpu_speed * (h.cpu_used_percent or 0) / 100)
        rows[key(CPU_CORE, h.zone, h.pod, h.cluster)]["total"] += h.cpu_number
    for ip in ips:
        row = rows[key(DIRECT_IP, ip.zone, ip.ip_range.pod, None)]
        row["total"] += 1
        if ip.allocated is not None:
            row["used"] += 1
            row["allocated"] += 1
    return dict(rows)


def answered(rows: list[dict]) -> dict[tuple, dict]:
    out = {}
    for r in rows:
        k = (r["type"], r["zoneid"], r.get("podid"), r.get("clusterid"))
        assert k not in out, f"two rows for {k}"
        assert r["name"] == NAMES[r["type"]], r
        basis = r["capacityused"] if r["type"] == DIRECT_IP else r["capacityallocated"]
        share = basis * 100.0 / r["capacitytotal"] if r["capacitytotal"] else 0.0
        assert r["percentused"] == f"{round(share, 2):.2f}", r
        out[k] = {"total": r["capacitytotal"], "used": r["capacityused"], "allocated": r["capacityallocated"]}
    return out


def check(api, w, cpu_factor: float = CPU_FACTOR) -> None:
    """Every way of asking gives the recomputed numbers."""
    f = cpu_factor
    assert answered(ok(api("listCapacity")).get("capacity", [])) == expected(cpu_factor=f)
    for zone in (w.z1, w.z2):
        rows = ok(api("listCapacity", zoneid=str(zone.uuid))).get("capacity", [])
        assert answered(rows) == expected(zone=zone, cpu_factor=f)
        shown = ok(api("listZones", id=str(zone.uuid), showcapacities=True))["zone"][0]
        assert answered(shown.get("capacity", [])) == expected(zone=zone, cpu_factor=f)
    for pod in (w.p1, w.p2, w.p3):
        rows = ok(api("listCapacity", podid=str(pod.uuid))).get("capacity", [])
        assert answered(rows) == expected("pod", pod=pod, cpu_factor=f), pod.name
        assert all(r["podname"] == pod.name for r in rows)
    for cluster in (w.c1, w.c2, w.c3):
        rows = ok(api("listCapacity", clusterid=str(cluster.uuid))).get("capacity", [])
        assert answered(rows) == expected("cluster", cluster=cluster, cpu_factor=f), cluster.name
        listed = ok(api("listClusters", id=str(cluster.uuid), showcapacities=True))["cluster"][0]
        assert answered(listed.get("capacity", [])) == expected("cluster", cluster=cluster, cpu_factor=f)
        ratios = (float(listed["cpuovercommitratio"]), float(listed["memoryovercommitratio"]))
        assert ratios == factors(cluster, f), cluster.name
    for kind in (MEMORY, DIRECT_IP):
        rows = ok(api("listCapacity", type=kind))["capacity"]
        assert answered(rows) == {k: v for k, v in expected(cpu_factor=f).items() if k[0] == kind}


def test_capacity_is_a_recomputation_from_rows(api, w):
    z1 = expected(zone=w.z1)
    # The numbers this test expects, spelled out once for zone z1 (h2 is the test driver's host).
    h2 = Host.objects.get(pk=w.h2.pk)
    z1_memory = int((8 << 30) * MEM_FACTOR) + int(h2.memory_total * MEM_FACTOR) + int((16 << 30) * C2_MEM_FACTOR)
    z1_memory_used = (3 << 30) + (1 << 30) + h2.memory_used
    assert z1[(MEMORY, str(w.z1.uuid), None, None)] == {"total": z1_memory, "used": z1_memory_used, "allocated": 0}
    assert z1[(DIRECT_IP, str(w.z1.uuid), None, None)] == {"total": 21 + 11, "used": 3, "allocated": 3}
    assert z1[(CPU, str(w.z1.uuid), None, None)]["used"] == 2000 + 2500  # 25% of 4x2000 + 12.5% of 8x2500
    check(api, w)


def test_capacity_follows_adds_and_deletes(api, w):
    check(api, w)
    # A host leaves, another arrives, a guest range goes, addresses are taken and released.
    assert ok(api("deleteHost", id=str(w.h1.uuid), forced=True)) == {"success": True}
    sim_host(w, w.c2, "h5", memory_total=2 << 30, cpu_number=1, cpu_speed=3000, cpu_used_percent=50.0)
    GuestIpAddress.objects.filter(address="10.2.0.100").update(allocated=None)
    assert ok(api("deleteVlanIpRange", id=str(w.r2.uuid))) == {"success": True}
    services.create_vlan_ip_range(w.admin, pod=w.p1, gateway="10.1.0.1", netmask="255.255.255.0",
                                  start_ip="10.1.0.200", end_ip="10.1.0.249")
    GuestIpAddress.objects.filter(address="10.1.0.249").update(allocated=timezone.now())
    assert expected(zone=w.z1)[(DIRECT_IP, str(w.z1.uuid), None, None)] == {"total": 21 + 50, "used": 3,
                                                                           "allocated": 3}
    check(api, w)
    # A factor changes: the next answer uses it.
    assert ok(api("updateConfiguration", name="cpu.overprovisioning.factor", value="4"))
    check(api, w, cpu_factor=4.0)
    # The last host of cluster c3 goes: z2 keeps only its guest IPs.
    ok(api("deleteHost", id=str(w.h4.uuid), forced=True))
    assert [r["type"] for r in ok(api("listCapacity", zoneid=str(w.z2.uuid)))["capacity"]] == [DIRECT_IP]
    assert ok(api("listCapacity", clusterid=str(w.c3.uuid))) == {}


def test_zones_without_showcapacities_carry_no_capacity(api, w):
    for zone in ok(api("listZones"))["zone"]:
        assert "capacity" not in zone
    for cluster in ok(api("listClusters"))["cluster"]:
        assert "capacity" not in cluster


def test_cluster_override_through_update_configuration(api, w):
    answer = api("updateConfiguration", name="cpu.overprovisioning.factor", value="5", clusterid=str(w.c1.uuid))
    assert answer.status == 200, answer
    assert config.get_value("cpu.overprovisioning.factor") == CPU_FACTOR, "the global value changed"
    assert config.get_value("cpu.overprovisioning.factor", scope="cluster", scope_uuid=str(w.c1.uuid)) == 5.0
    cluster = ok(api("listClusters", id=str(w.c1.uuid)))["cluster"][0]
    assert cluster["cpuovercommitratio"] == "5.0"
