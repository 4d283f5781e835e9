"""The one capacity model: total x overprovisioning factor, allocated (from rows), used (as
last reported by hosts and pools). Computed here, on demand, from rows; listCapacity, the zone
and cluster responses and the UI all read it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, FloatField, Sum, Value
from django.db.models.functions import Coalesce

from portal import config

from .choices import CapacityType
from .models import Cluster, GuestIpAddress, Host, Pod, Zone


@dataclass
class CapacityRow:
    type: int
    zone: Zone | None = None
    pod: Pod | None = None
    cluster: Cluster | None = None
    total: int = 0
    used: int = 0
    allocated: int = 0

    @property
    def name(self) -> str:
        return CapacityType(self.type).label

    @property
    def percent_used(self) -> float:
        basis = self.allocated if self.type in (CapacityType.MEMORY, CapacityType.CPU, CapacityType.CPU_CORE,
                                                CapacityType.STORAGE_ALLOCATED) else self.used
        return round(basis * 100.0 / self.total, 2) if self.total else 0.0

    def as_response(self) -> dict[str, Any]:
        row: dict[str, Any] = {"type": self.type, "name": self.name}
        for prefix, obj in (("zone", self.zone), ("pod", self.pod), ("cluster", self.cluster)):
            if obj is not None:
                row[f"{prefix}id"] = str(obj.uuid)
                row[f"{prefix}name"] = obj.name
        row.update({"capacitytotal": int(self.total), "capacityused": int(self.used),
                    "capacityallocated": int(self.allocated), "percentused": f"{self.percent_used:.2f}"})
        return row


def _factor(name: str, cluster: Cluster) -> float:
    return float(config.get_value(name, scope="cluster", scope_uuid=str(cluster.uuid)))


def capacities(*, zone: Zone | None = None, pod: Pod | None = None, cluster: Cluster | None = None,
               capacity_type: int | None = None, level: str | None = None) -> list[CapacityRow]:
    """Capacity rows grouped by zone (default), pod (when `pod` is given or level="pod") or
    cluster (when `cluster` is given or level="cluster")."""
    from storage.models import ImageStore, StoragePool

    level = level or ("cluster" if cluster is not None else "pod" if pod is not None else "zone")
    hosts = Host.objects.all()
    pools = StoragePool.objects.select_related("zone", "pod", "cluster")
    ips = GuestIpAddress.objects.order_by()
    stores = ImageStore.objects.select_related("zone")
    if zone is not None:
        hosts, pools, ips, stores = (q.filter(zone=zone) for q in (hosts, pools, ips, stores))
    if pod is not None:
        hosts, pools, ips = hosts.filter(pod=pod), pools.filter(pod=pod), ips.filter(ip_range__pod=pod)
        stores = stores.none() if level != "zone" else stores
    if cluster is not None:
        hosts, pools = hosts.filter(cluster=cluster), pools.filter(cluster=cluster)
        ips, stores = ips.none(), stores.none()

    rows: dict[tuple, CapacityRow] = {}

    def row(kind: int, z: Zone, p: Pod | None, c: Cluster | None) -> CapacityRow:
        key_p = p if level in ("pod", "cluster") else None
        key_c = c if level == "cluster" else None
        key = (kind, z.pk, key_p.pk if key_p else None, key_c.pk if key_c else None)
        if key not in rows:
            rows[key] = CapacityRow(kind, z, key_p, key_c)
        return rows[key]

    from .placement import allocated as held_by_vms  # the rows placement counts

    # Hosts are summed per cluster in the database (a cluster's hosts share its overprovisioning
    # factors), so 1,000 hosts cost one small query, not 1,000 model instances.
    mhz = F("cpu_number") * F("cpu_speed")
    per_cluster = hosts.order_by().values("cluster_id").annotate(
        mhz=Sum(mhz), cores=Sum("cpu_number"), memory=Sum("memory_total"), memory_used=Sum("memory_used"),
        cpu_used=Sum(mhz * Coalesce(F("cpu_used_percent"), Value(0.0)) / Value(100.0), output_field=FloatField()))
    per_cluster = list(per_cluster)
    clusters = Cluster.objects.select_related("zone", "pod").in_bulk([r["cluster_id"] for r in per_cluster])
    held = held_by_vms(hosts, by="host__cluster_id")
    for r in per_cluster:
        c = clusters[r["cluster_id"]]
        cpu_factor, mem_factor = _factor("cpu.overprovisioning.factor", c), _factor("mem.overprovisioning.factor", c)
        held_mhz, held_mib = held.get(c.pk, (0, 0))
        mem = row(CapacityType.MEMORY, c.zone, c.pod, c)
        mem.total += int((r["memory"] or 0) * mem_factor)
        mem.used += r["memory_used"] or 0
        mem.allocated += held_mib << 20
        cpu = row(CapacityType.CPU, c.zone, c.pod, c)
        cpu.total += int((r["mhz"] or 0) * cpu_factor)
        cpu.used += int(r["cpu_used"] or 0)
        cpu.allocated += held_mhz
        cores = row(CapacityType.CPU_CORE, c.zone, c.pod, c)
        cores.total += r["cores"] or 0
    for pool in pools:
        factor = float(config.get_value("storage.overprovisioning.factor", scope="storagepool",
                                        scope_uuid=str(pool.uuid)))
        storage = row(CapacityType.STORAGE, pool.zone, pool.pod, pool.cluster)
        storage.total += pool.capacity_bytes
        storage.used += pool.used_bytes
        allocated = row(CapacityType.STORAGE_ALLOCATED, pool.zone, pool.pod, pool.cluster)
        allocated.total += int(pool.capacity_bytes * factor)
        allocated.allocated += pool.allocated_bytes
        allocated.used += pool.allocated_bytes
    counted = ips.values("zone_id", "ip_range__pod_id").annotate(total=Count("id"), used=Count("allocated"))
    zones_by_id = {z.pk: z for z in Zone.objects.filter(pk__in={c["zone_id"] for c in counted})}
    pods_by_id = {p.pk: p for p in Pod.objects.filter(pk__in={c["ip_range__pod_id"] for c in counted})}
    for c in counted:
        r = row(CapacityType.DIRECT_ATTACHED_PUBLIC_IP, zones_by_id[c["zone_id"]], pods_by_id[c["ip_range__pod_id"]], None)
        r.total += c["total"]
        r.used += c["used"]
        r.allocated += c["used"]
    for store in stores:
        r = row(CapacityType.SECONDARY_STORAGE, store.zone, None, None)
        r.total += store.capacity_bytes
        r.used += store.used_bytes
    result = list(rows.values())
    if capacity_type is not None:
        result = [r for r in result if r.type == capacity_type]
    return sorted(result, key=lambda r: (r.zone.pk if r.zone else 0, r.pod.pk if r.pod else 0,
                                          r.cluster.pk if r.cluster else 0, r.type))


def capacities_by(level: str) -> dict[int, list[CapacityRow]]:
    """Every zone's (level="zone") or cluster's (level="cluster") capacity rows, keyed by its pk,
    from one computation: what a page of zones or clusters with showcapacities=true shows, in a
    constant number of queries (the same rows capacities(zone=…) / capacities(cluster=…) give)."""
    grouped: dict[int, list[CapacityRow]] = {}
    for row in capacities(level=level):
        owner = row.zone if level == "zone" else row.cluster
        if owner is not None:
            grouped.setdefault(owner.pk, []).append(row)
    return grouped
