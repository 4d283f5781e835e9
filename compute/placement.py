"""Placement: which host runs a VM. Capacity-aware over enabled pods, clusters and hosts that are
Up and not in maintenance, honouring overprovisioning factors, host tags, the template's
hypervisor and the primary storage a cluster has; `vm.allocation.algorithm` picks among the hosts
that fit (firstfit: the first; firstfitleastconsumed (default): the least allocated, spreading
load; random). When nothing fits, the error says what was short, and where.

Allocated capacity is computed from VM rows (cpu, memory of the VMs in VM_ON_HOST_STATES), the
same rows the capacity model reads, inside the caller's transaction with the candidate hosts
locked, so two deploys cannot both take the last free memory of a host."""
from __future__ import annotations

import random
from dataclasses import dataclass

from django.db.models import F, Sum

from portal import config
from portal.errors import InsufficientCapacity

from .choices import AllocationState, HostState, Hypervisor, ResourceState, StoragePoolState, StorageScope, VM_ON_HOST_STATES
from .models import Host, VirtualMachine, Zone


@dataclass
class Fit:
    host: Host
    free_mhz: int
    free_mib: int
    pool: object  # storage.models.StoragePool


def _factor(name: str, host: Host) -> float:
    return float(config.get_value(name, scope="cluster", scope_uuid=str(host.cluster.uuid)))


def allocated(hosts, exclude_vm: VirtualMachine | None = None, *,
              by: str = "host_id") -> dict[int, tuple[int, int]]:
    """host pk (or, by="host__cluster_id", cluster pk) -> (MHz, MiB) held by the VMs on the
    hosts (a list or a queryset of hosts)."""
    vms = VirtualMachine.objects.filter(host__in=hosts, state__in=VM_ON_HOST_STATES)
    if exclude_vm is not None:
        vms = vms.exclude(pk=exclude_vm.pk)
    rows = vms.order_by().values(by).annotate(mhz=Sum(F("cpu_number") * F("cpu_speed")), mib=Sum("memory"))
    return {r[by]: (int(r["mhz"] or 0), int(r["mib"] or 0)) for r in rows}


def _free(host: Host, held: tuple[int, int]) -> tuple[int, int]:
    """(MHz, MiB) of `host` free for allocation: its capacity times its cluster's overprovisioning
    factors, less `held` (what its VMs hold)."""
    mhz_total = int(host.cpu_number * host.cpu_speed * _factor("cpu.overprovisioning.factor", host))
    mib_total = int(host.memory_total / (1 << 20) * _factor("mem.overprovisioning.factor", host))
    return mhz_total - held[0], mib_total - held[1]


def check_growth(vm: VirtualMachine, *, cpu_number: int, cpu_speed: int, memory: int) -> Host:
    """Whether the host a running VM is on has room for it to grow to cpu_number x cpu_speed MHz and
    `memory` MiB, counted as choose_host counts (overprovisioning included); raises
    InsufficientCapacity saying what is short. Call inside a transaction: the host stays locked
    until it ends, so two VMs growing on it (or a deploy) cannot both take its last free memory."""
    host = Host.objects.select_for_update(of=("self",)).select_related("cluster").get(pk=vm.host_id)
    free_mhz, free_mib = _free(host, allocated([host], exclude_vm=vm).get(host.pk, (0, 0)))
    more_mib, more_mhz = memory - vm.memory, cpu_number * cpu_speed - vm.cpu_number * vm.cpu_speed
    where = f"Cannot scale VM {vm.name} on its host {host.name}"
    if host.cpu_number < cpu_number:
        raise InsufficientCapacity(f"{where}: it needs {cpu_number} vCPUs; the host has {host.cpu_number} CPUs")
    if free_mib < memory:
        raise InsufficientCapacity(f"{where}: it needs {more_mib} MiB more memory; the host has "
                                   f"{max(free_mib - vm.memory, 0)} MiB free")
    if free_mhz < cpu_number * cpu_speed:
        raise InsufficientCapacity(f"{where}: it needs {more_mhz} MHz more CPU; the host has "
                                   f"{max(free_mhz - vm.cpu_number * vm.cpu_speed, 0)} MHz free")
    return host


def _pool_for(host: Host, pools: list, disk_bytes: int):
    """The first Up pool the host's cluster (or zone) has with room for the root disk."""
    for pool in pools:
        if pool.scope == StorageScope.CLUSTER and pool.cluster_id != host.cluster_id:
            continue
        if pool.scope == StorageScope.ZONE and pool.hypervisor and pool.hypervisor != host.hypervisor:
            continue
        factor = float(config.get_value("storage.overprovisioning.factor", scope="storagepool",
                                        scope_uuid=str(pool.uuid)))
        if pool.allocated_bytes + disk_bytes <= pool.capacity_bytes * factor or not pool.capacity_bytes:
            return pool
    return None


def choose_host(zone: Zone, *, cpu_number: int, cpu_speed: int, memory: int, hypervisor: str, host_tags: list[str],
                disk_bytes: int, wanted: Host | None = None, exclude_vm: VirtualMachine | None = None) -> Fit:
    """Pick a host for cpu_number x cpu_speed MHz and `memory` MiB (and a pool for the root
    disk). Call inside a transaction: the candidate hosts stay locked until it ends."""
    from storage.models import StoragePool

    candidates = (Host.objects.select_for_update(of=("self",)).select_related("cluster", "pod")
                  .filter(zone=zone).order_by("id"))
    if wanted is not None:
        candidates = candidates.filter(pk=wanted.pk)
    if hypervisor and hypervisor != Hypervisor.SIMULATOR:
        # a KVM template runs on KVM hosts, and on Simulator hosts (which model KVM ones)
        candidates = candidates.filter(hypervisor__in=[hypervisor, Hypervisor.SIMULATOR])
    elif hypervisor == Hypervisor.SIMULATOR:
        candidates = candidates.filter(hypervisor=Hypervisor.SIMULATOR)
    hosts = list(candidates)
    where = f"host {wanted.name}" if wanted is not None else f"zone {zone.name}"
    if not hosts:
        raise InsufficientCapacity(f"No {hypervisor or ''} host in {where} can run this VM".replace("  ", " "))
    usable = [h for h in hosts if h.state == HostState.UP and h.resource_state == ResourceState.ENABLED
              and h.cluster.allocation_state == AllocationState.ENABLED
              and h.pod.allocation_state == AllocationState.ENABLED]
    if not usable:
        states = ", ".join(f"{h.name}: {h.state}/{h.resource_state}" for h in hosts[:5])
        raise InsufficientCapacity(f"No host in {where} is Up and enabled ({states})")
    tagged = [h for h in usable if set(host_tags) <= set(h.tags)]
    if not tagged:
        raise InsufficientCapacity(f"No Up host in {where} has the host tags {', '.join(host_tags)} the offering needs")
    pools = list(StoragePool.objects.filter(zone=zone, state=StoragePoolState.UP).order_by("id"))
    held = allocated(tagged, exclude_vm)
    need_mhz = cpu_number * cpu_speed
    fits: list[Fit] = []
    best: tuple[int, Host] | None = None
    short = ""
    for host in tagged:
        free_mhz, free_mib = _free(host, held.get(host.pk, (0, 0)))
        if host.cpu_number < cpu_number:
            short = short or f"needs {cpu_number} vCPUs; host {host.name} has {host.cpu_number} CPUs"
            continue
        if free_mib < memory:
            if best is None or free_mib > best[0]:
                best = (free_mib, host)
            continue
        if free_mhz < need_mhz:
            short = short or f"needs {need_mhz} MHz of CPU; host {host.name} has {free_mhz} MHz free"
            continue
        pool = _pool_for(host, pools, disk_bytes)
        if pool is None:
            short = short or (f"needs {disk_bytes >> 20} MiB of primary storage in the cluster of host {host.name}; "
                              f"no pool that is Up has room")
            continue
        fits.append(Fit(host, free_mhz, free_mib, pool))
    if not fits:
        if best is not None and not short:
            short = f"needs {memory} MiB of memory; the best host {best[1].name} has {max(best[0], 0)} MiB free"
        raise InsufficientCapacity(f"Unable to create a deployment for the VM in {where}: {short}")
    algorithm = config.get_value("vm.allocation.algorithm")
    if algorithm == "random":
        return random.choice(fits)
    if algorithm == "firstfit":
        return fits[0]
    return max(fits, key=lambda f: (f.free_mib, f.free_mhz))
