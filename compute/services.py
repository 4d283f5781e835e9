"""Infrastructure use cases (root admin only): zones, pods, guest IP ranges, clusters, hosts,
host monitoring and alerts. Each function checks the caller, owns its transaction and writes its
event; hosts are reached only through compute.drivers."""
from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal import config, events
from portal.errors import InvalidParameterValue, ParamError, PermissionDenied, ResourceInUse, ResourceUnavailable
from portal.models import EventLevel

from .choices import (
    AlertType,
    AllocationState,
    ClusterType,
    Emulation,
    HostState,
    Hypervisor,
    NetworkType,
    ResourceState,
)
from . import networks
from .drivers import SIMULATOR_URI, DriverError, get_driver, libvirt_uri
from .models import Alert, Cluster, GuestIpAddress, Host, Pod, VlanIpRange, Zone

log = logging.getLogger(__name__)


def require_root_admin(caller, what: str) -> None:
    if caller.account.type != 1:
        raise PermissionDenied(f"Only a root admin may {what}")


def _ip(value: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise InvalidParameterValue(f"The {what} {value!r} is not an IPv4 address such as 192.168.1.10") from None


def _network(gateway: str, netmask: str) -> ipaddress.IPv4Network:
    gw = _ip(gateway, "gateway")
    try:
        network = ipaddress.IPv4Network(f"{gw}/{_ip(netmask, 'netmask')}", strict=False)
    except ValueError:
        raise InvalidParameterValue(f"The netmask {netmask} is not a valid netmask such as 255.255.255.0") from None
    if network.prefixlen > 30:
        raise InvalidParameterValue(f"The netmask {netmask} leaves no room for addresses; use /30 or larger")
    return network


def _range(network: ipaddress.IPv4Network, gateway: str, start: str, end: str | None, what: str
           ) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    first = _ip(start, f"{what} start IP")
    last = _ip(end, f"{what} end IP") if end else first
    for addr, label in ((first, "start"), (last, "end")):
        if addr not in network:
            raise InvalidParameterValue(f"The {what} {label} IP {addr} is outside the network {network} "
                                        f"given by gateway {gateway} and its netmask")
        if addr in (network.network_address, network.broadcast_address):
            raise InvalidParameterValue(f"The {what} {label} IP {addr} is the network or broadcast address of {network}")
    if int(last) < int(first):
        raise InvalidParameterValue(f"The {what} start IP {first} is after its end IP {last}")
    gw = ipaddress.IPv4Address(gateway)
    if int(first) <= int(gw) <= int(last):
        raise InvalidParameterValue(f"The gateway {gw} lies inside the {what} {first}-{last}; leave it out of the range")
    return first, last


def _overlaps(a: tuple, b: tuple) -> bool:
    return int(a[0]) <= int(b[1]) and int(b[0]) <= int(a[1])


# -- zones --------------------------------------------------------------------------------------
def create_zone(caller, *, name: str, dns1: str, internal_dns1: str, network_type: str = NetworkType.BASIC,
                dns2: str | None = None, internal_dns2: str | None = None, guest_cidr: str = "",
                network_domain: str = "", domain=None, allocation_state: str | None = None,
                local_storage_enabled: bool = False, security_groups_enabled: bool = False) -> Zone:
    require_root_admin(caller, "create zones")
    name = (name or "").strip()
    if not name:
        raise ParamError("The zone name must not be empty")
    if network_type.capitalize() != NetworkType.BASIC:
        raise InvalidParameterValue(f"Network type {network_type} is not supported yet; create a Basic zone")
    if not dns1 or not internal_dns1:
        raise ParamError("A zone needs dns1 (for guests) and internaldns1 (for the hosts), e.g. 8.8.8.8 and 10.0.0.1")
    for value, what in ((dns1, "dns1"), (dns2, "dns2"), (internal_dns1, "internaldns1"), (internal_dns2, "internaldns2")):
        if value:
            _ip(value, what)
    if guest_cidr:
        try:
            ipaddress.IPv4Network(guest_cidr, strict=False)
        except ValueError:
            raise InvalidParameterValue(f"guestcidraddress {guest_cidr!r} is not a CIDR such as 10.1.1.0/24") from None
    state = _allocation(allocation_state) or AllocationState.DISABLED
    with transaction.atomic():
        if Zone.objects.filter(name__iexact=name).exists():
            raise InvalidParameterValue(f"A zone named {name} already exists")
        zone = Zone.objects.create(
            name=name, dns1=dns1, dns2=dns2 or None, internal_dns1=internal_dns1, internal_dns2=internal_dns2 or None,
            guest_cidr=guest_cidr or "", network_domain=network_domain or "", domain=domain,
            network_type=NetworkType.BASIC, allocation_state=state, local_storage_enabled=local_storage_enabled,
            security_groups_enabled=security_groups_enabled)
        events.record(caller, "ZONE.CREATE", f"Zone {name} created", resource=zone)
    return zone


def _allocation(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    for choice in AllocationState.values:
        if value.lower() == choice.lower():
            return choice
    raise InvalidParameterValue(f"allocationstate must be Enabled or Disabled, not {value}")


def update_zone(caller, zone: Zone, **changes: Any) -> Zone:
    require_root_admin(caller, "update zones")
    with transaction.atomic():
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        if changes.get("name") and changes["name"] != zone.name:
            if Zone.objects.filter(name__iexact=changes["name"]).exclude(pk=zone.pk).exists():
                raise InvalidParameterValue(f"A zone named {changes['name']} already exists")
            zone.name = changes["name"]
        for field in ("dns1", "dns2", "internal_dns1", "internal_dns2"):
            if changes.get(field):
                _ip(changes[field], field.replace("_", ""))
                setattr(zone, field, changes[field])
        for field in ("description", "network_domain", "guest_cidr"):
            if changes.get(field) is not None:
                setattr(zone, field, changes[field])
        state = _allocation(changes.get("allocation_state"))
        if state is not None:
            zone.allocation_state = state
        zone.save()
        events.record(caller, "ZONE.EDIT", f"Zone {zone.name} updated", resource=zone)
    return zone


def _refuse_if(parts: list[tuple[str, list[str]]], what: str) -> None:
    held = [f"{label} {', '.join(names)}" for label, names in parts if names]
    if held:
        raise ResourceInUse(f"{what} still has {' and '.join(held)}; delete them first")


def delete_zone(caller, zone: Zone) -> None:
    require_root_admin(caller, "delete zones")
    from storage.models import ImageStore, StoragePool

    with transaction.atomic():
        zone = Zone.objects.select_for_update().get(pk=zone.pk)
        _refuse_if([
            ("pods", list(zone.pods.values_list("name", flat=True)[:5])),
            ("primary storage", list(StoragePool.objects.filter(zone=zone).values_list("name", flat=True)[:5])),
            ("secondary storage", list(ImageStore.objects.filter(zone=zone).values_list("name", flat=True)[:5])),
            ("VMs", _vm_names(zone=zone)),
        ], f"Zone {zone.name}")
        _forget_expunged(zone=zone)
        name = zone.name
        zone.delete()
        events.record(caller, "ZONE.DELETE", f"Zone {name} deleted", resource_type="Zone")


def _vm_names(**where) -> list[str]:
    """Names of (up to five) VMs not expunged that are placed where `where` says."""
    from .models import VirtualMachine

    return list(VirtualMachine.objects.filter(removed__isnull=True, **where).order_by("id")
                .values_list("name", flat=True)[:5])


def _forget_expunged(**where) -> None:
    """Expunged VMs (kept for history) and their volumes let go of a zone or pod being deleted."""
    from storage.models import Volume

    from .models import VirtualMachine

    gone = VirtualMachine.objects.filter(removed__isnull=False, **where)
    if "zone" in where:
        Volume.objects.filter(virtual_machine__in=gone).delete()
        Volume.objects.filter(zone=where["zone"], removed__isnull=False).delete()
        gone.delete()
    else:
        gone.update(pod=None)


# -- pods ---------------------------------------------------------------------------------------
def create_pod(caller, *, zone: Zone, name: str, gateway: str, netmask: str, start_ip: str | None = None,
               end_ip: str | None = None, allocation_state: str | None = None) -> Pod:
    require_root_admin(caller, "create pods")
    network = _network(gateway, netmask)
    if start_ip:
        first, last = _range(network, gateway, start_ip, end_ip, "pod range")
    elif end_ip:
        raise ParamError("endip needs startip")
    with transaction.atomic():
        Zone.objects.select_for_update().get(pk=zone.pk)  # one range change per zone at a time
        if Pod.objects.filter(zone=zone, name__iexact=name).exists():
            raise InvalidParameterValue(f"A pod named {name} already exists in zone {zone.name}")
        _refuse_pod_collisions(zone, network, (first, last) if start_ip else None)
        pod = Pod.objects.create(zone=zone, name=name, gateway=gateway, netmask=netmask, start_ip=start_ip or None,
                                 end_ip=(end_ip or start_ip) or None,
                                 allocation_state=_allocation(allocation_state) or AllocationState.ENABLED)
        events.record(caller, "POD.CREATE", f"Pod {name} created in zone {zone.name}", resource=pod)
    return pod


def _refuse_pod_collisions(zone: Zone, network: ipaddress.IPv4Network, reserved: tuple | None,
                           exclude: Pod | None = None) -> None:
    """A pod's network may not overlap another pod's of its zone, nor its reserved range take
    addresses a guest IP range of the zone holds."""
    for other in Pod.objects.filter(zone=zone).exclude(pk=exclude.pk if exclude else None):
        if other.cidr.overlaps(network):
            raise InvalidParameterValue(f"The pod network {network} overlaps pod {other.name}'s network "
                                        f"{other.cidr} in zone {zone.name}")
    if reserved is None:
        return
    for ip_range in VlanIpRange.objects.filter(zone=zone):
        if _overlaps(reserved, (ipaddress.IPv4Address(ip_range.start_ip), ipaddress.IPv4Address(ip_range.end_ip))):
            raise InvalidParameterValue(f"The pod range {reserved[0]}-{reserved[1]} collides with the guest IP range "
                                        f"{ip_range.start_ip}-{ip_range.end_ip} of zone {zone.name}")


def update_pod(caller, pod: Pod, *, name: str | None = None, allocation_state: str | None = None,
               gateway: str | None = None, netmask: str | None = None, start_ip: str | None = None,
               end_ip: str | None = None) -> Pod:
    require_root_admin(caller, "update pods")
    with transaction.atomic():
        Zone.objects.select_for_update().get(pk=pod.zone_id)  # one range change per zone at a time
        pod = Pod.objects.select_for_update().get(pk=pod.pk)
        if name and name != pod.name:
            if Pod.objects.filter(zone=pod.zone, name__iexact=name).exclude(pk=pod.pk).exists():
                raise InvalidParameterValue(f"A pod named {name} already exists in zone {pod.zone.name}")
            pod.name = name
        if any(v is not None for v in (gateway, netmask, start_ip, end_ip)):
            gateway, netmask = gateway or pod.gateway, netmask or pod.netmask
            network = _network(gateway, netmask)
            start_ip, end_ip = start_ip or pod.start_ip, end_ip or pod.end_ip
            reserved = _range(network, gateway, start_ip, end_ip, "pod range") if start_ip else None
            _refuse_pod_collisions(pod.zone, network, reserved, exclude=pod)
            pod.gateway, pod.netmask, pod.start_ip, pod.end_ip = gateway, netmask, start_ip, end_ip
        state = _allocation(allocation_state)
        if state is not None:
            pod.allocation_state = state
        pod.save()
        events.record(caller, "POD.EDIT", f"Pod {pod.name} updated", resource=pod)
    return pod


def delete_pod(caller, pod: Pod) -> None:
    require_root_admin(caller, "delete pods")
    with transaction.atomic():
        pod = Pod.objects.select_for_update().get(pk=pod.pk)
        _refuse_if([
            ("clusters", list(pod.clusters.values_list("name", flat=True)[:5])),
            ("guest IP ranges", [f"{r.start_ip}-{r.end_ip}" for r in pod.ip_ranges.all()[:5]]),
            ("VMs", _vm_names(pod=pod)),
        ], f"Pod {pod.name}")
        _forget_expunged(pod=pod)
        name = pod.name
        pod.delete()
        events.record(caller, "POD.DELETE", f"Pod {name} deleted", resource_type="Pod")


# -- guest IP ranges ----------------------------------------------------------------------------
def create_vlan_ip_range(caller, *, pod: Pod, gateway: str, netmask: str, start_ip: str, end_ip: str | None = None,
                         for_virtual_network: bool = False, zone: Zone | None = None) -> VlanIpRange:
    require_root_admin(caller, "create IP ranges")
    if zone is not None and pod.zone_id != zone.pk:
        raise InvalidParameterValue(f"Pod {pod.name} is not in zone {zone.name}")
    if for_virtual_network:
        raise InvalidParameterValue("A basic zone has no virtual (public) networks; use forvirtualnetwork=false "
                                    "for the guest IP range")
    network = _network(gateway, netmask)
    first, last = _range(network, gateway, start_ip, end_ip, "IP range")
    size = int(last) - int(first) + 1
    limit = config.get_value("guest.ip.range.max.size")
    if size > limit:
        raise InvalidParameterValue(f"The range {first}-{last} holds {size} addresses; at most {limit} are allowed "
                                    "(guest.ip.range.max.size)")
    zone = pod.zone
    with transaction.atomic():
        Zone.objects.select_for_update().get(pk=zone.pk)  # one range change per zone at a time
        for other in VlanIpRange.objects.filter(zone=zone):
            other_range = (ipaddress.IPv4Address(other.start_ip), ipaddress.IPv4Address(other.end_ip))
            if _overlaps((first, last), other_range):
                raise InvalidParameterValue(f"The range {first}-{last} overlaps the existing range "
                                            f"{other.start_ip}-{other.end_ip} in zone {zone.name}")
        for other in Pod.objects.filter(zone=zone).exclude(start_ip=None):
            pod_range = (ipaddress.IPv4Address(other.start_ip), ipaddress.IPv4Address(other.end_ip or other.start_ip))
            if _overlaps((first, last), pod_range):
                raise InvalidParameterValue(f"The range {first}-{last} collides with pod {other.name}'s reserved "
                                            f"range {other.start_ip}-{other.end_ip}")
        ip_range = VlanIpRange.objects.create(zone=zone, pod=pod, gateway=gateway, netmask=netmask,
                                              start_ip=str(first), end_ip=str(last))
        try:
            GuestIpAddress.objects.bulk_create(
                [GuestIpAddress(zone=zone, ip_range=ip_range, address=str(ipaddress.IPv4Address(n)))
                 for n in range(int(first), int(last) + 1)], batch_size=2000)
        except IntegrityError:
            raise InvalidParameterValue(f"Some addresses of {first}-{last} are already in another range of "
                                        f"zone {zone.name}") from None
        events.record(caller, "VLAN.IP.RANGE.CREATE", f"Guest IP range {first}-{last} created in pod {pod.name}",
                      resource=ip_range, resource_type="VlanIpRange")
    return ip_range


def delete_vlan_ip_range(caller, ip_range: VlanIpRange) -> None:
    require_root_admin(caller, "delete IP ranges")
    with transaction.atomic():
        used = [f"{address} (DHCP server of host {host})" if host else address
                for address, host in ip_range.addresses.exclude(allocated=None).values_list("address", "host__name")[:5]]
        if used:
            raise ResourceInUse(f"IP range {ip_range.start_ip}-{ip_range.end_ip} has addresses in use "
                                f"({', '.join(used)}); release them first (expunge the VMs, delete the hosts)")
        text = f"{ip_range.start_ip}-{ip_range.end_ip}"
        ip_range.delete()
        events.record(caller, "VLAN.IP.RANGE.DELETE", f"Guest IP range {text} deleted", resource_type="VlanIpRange")


# -- clusters -----------------------------------------------------------------------------------
def _hypervisor(value: str) -> str:
    for choice in Hypervisor.values:
        if value.lower() == choice.lower():
            return choice
    raise InvalidParameterValue(f"Hypervisor {value} is not supported; use KVM or Simulator")


def _emulation(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value.lower() not in Emulation.values:
        raise InvalidParameterValue(f"emulation must be auto, kvm or qemu, not {value}")
    return value.lower()


def add_cluster(caller, *, zone: Zone, pod: Pod, name: str, hypervisor: str,
                cluster_type: str = ClusterType.CLOUD_MANAGED, allocation_state: str | None = None,
                emulation: str | None = None) -> Cluster:
    require_root_admin(caller, "add clusters")
    if pod.zone_id != zone.pk:
        raise InvalidParameterValue(f"Pod {pod.name} is not in zone {zone.name}")
    if cluster_type != ClusterType.CLOUD_MANAGED:
        raise InvalidParameterValue(f"clustertype {cluster_type} is not supported for KVM; use CloudManaged")
    with transaction.atomic():
        if Cluster.objects.filter(pod=pod, name__iexact=name).exists():
            raise InvalidParameterValue(f"A cluster named {name} already exists in pod {pod.name}")
        cluster = Cluster.objects.create(zone=zone, pod=pod, name=name, hypervisor=_hypervisor(hypervisor),
                                         cluster_type=cluster_type,
                                         allocation_state=_allocation(allocation_state) or AllocationState.ENABLED,
                                         emulation=_emulation(emulation) or Emulation.AUTO)
        events.record(caller, "CLUSTER.CREATE", f"Cluster {name} added to pod {pod.name}", resource=cluster)
    return cluster


def update_cluster(caller, cluster: Cluster, *, name: str | None = None, allocation_state: str | None = None,
                   managed_state: str | None = None, emulation: str | None = None) -> Cluster:
    require_root_admin(caller, "update clusters")
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        if name and name != cluster.name:
            if Cluster.objects.filter(pod=cluster.pod, name__iexact=name).exclude(pk=cluster.pk).exists():
                raise InvalidParameterValue(f"A cluster named {name} already exists in pod {cluster.pod.name}")
            cluster.name = name
        state = _allocation(allocation_state)
        if state is not None:
            cluster.allocation_state = state
        if managed_state:
            if managed_state not in ("Managed", "Unmanaged"):
                raise InvalidParameterValue(f"managedstate must be Managed or Unmanaged, not {managed_state}")
            cluster.managed_state = managed_state
        emulation = _emulation(emulation)
        if emulation is not None:
            cluster.emulation = emulation
        cluster.save()
        events.record(caller, "CLUSTER.EDIT", f"Cluster {cluster.name} updated", resource=cluster)
    return cluster


def delete_cluster(caller, cluster: Cluster) -> None:
    require_root_admin(caller, "delete clusters")
    from storage.models import StoragePool

    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        _refuse_if([
            ("hosts", list(cluster.hosts.values_list("name", flat=True)[:5])),
            ("primary storage", list(StoragePool.objects.filter(cluster=cluster).values_list("name", flat=True)[:5])),
        ], f"Cluster {cluster.name}")
        name = cluster.name
        cluster.delete()
        events.record(caller, "CLUSTER.DELETE", f"Cluster {name} deleted", resource_type="Cluster")


# -- hosts --------------------------------------------------------------------------------------
def driver_uri(host_or_url, hypervisor: str | None = None, username: str = "root") -> str:
    """The libvirt URI of a host: Simulator hosts all live in libvirt's test:///default driver
    (their url only names them), KVM hosts' urls are libvirt URIs or host names."""
    if isinstance(host_or_url, Host):
        hypervisor, url = host_or_url.hypervisor, host_or_url.url
    else:
        url = host_or_url
    if hypervisor == Hypervisor.SIMULATOR:
        return SIMULATOR_URI
    return libvirt_uri(url, username=username or "root")


def host_driver(host: Host):
    return get_driver(driver_uri(host))


def _name_from_url(url: str, fallback: str) -> str:
    """A host's name from its url: the host part, or for path-only and Simulator urls such as
    CloudStack's http://sim/c0/h0, the last path element."""
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"ssh://{url}")
    tail = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return tail or parts.hostname or fallback


def add_host(caller, *, zone: Zone, pod: Pod, cluster: Cluster, url: str, username: str = "", password: str = "",
             host_tags: str = "", hypervisor: str | None = None, allocation_state: str | None = None) -> Host:
    """Connect to the host, learn its hardware, probe KVM, create its storage pools; a host that
    cannot be reached is not added (nothing is left in the database or on the host)."""
    require_root_admin(caller, "add hosts")
    from storage import services as storage_services

    if pod.zone_id != zone.pk or cluster.pod_id != pod.pk:
        raise InvalidParameterValue(f"Cluster {cluster.name} is not in pod {pod.name} of zone {zone.name}")
    if hypervisor and _hypervisor(hypervisor) != cluster.hypervisor:
        raise InvalidParameterValue(f"Cluster {cluster.name} is a {cluster.hypervisor} cluster; its hosts must be "
                                    f"{cluster.hypervisor}, not {hypervisor}")
    url = (url or "").strip()
    if not url:
        raise ParamError("Give the host's url: a libvirt URI such as qemu:///system or qemu+ssh://root@host/system")
    if Host.objects.filter(url=url).exists():
        raise InvalidParameterValue(f"A host with url {url} is already added; reconnect it instead")
    try:
        uri = driver_uri(url, cluster.hypervisor, username=username)
    except DriverError as exc:
        raise InvalidParameterValue(exc.message) from None
    if cluster.hypervisor == Hypervisor.KVM and uri.startswith("test:"):
        raise InvalidParameterValue("test:/// URIs are for Simulator clusters; add this host to a Simulator cluster")
    try:
        with get_driver(uri, username=username if "+ssh" not in uri else "", password=password) as driver:
            info = driver.host_info()
            probe = None
            if cluster.hypervisor == Hypervisor.KVM:
                probe = driver.probe_kvm(timeout_s=config.get_value("host.kvm.probe.timeout"))
    except DriverError as exc:
        raise ResourceUnavailable(f"Cannot add host {url}: {exc.message}") from None
    simulated = cluster.hypervisor == Hypervisor.SIMULATOR
    name = _name_from_url(url, info.hostname) if simulated else info.hostname
    address = name if simulated else (urlsplit(uri).hostname or "127.0.0.1")
    now = timezone.now()
    with transaction.atomic():
        host = Host(zone=zone, pod=pod, cluster=cluster, url=url, name=name, hypervisor=cluster.hypervisor,
                    state=HostState.UP, hostname=info.hostname, ip_address=address,
                    arch=info.arch, cpu_sockets=info.cpu_sockets, cpu_number=info.cpu_count, cpu_speed=info.cpu_mhz,
                    memory_total=info.memory_bytes, libvirt_version=info.libvirt_version,
                    hypervisor_version=info.hypervisor_version, host_tags=_clean_tags(host_tags),
                    last_pinged=now, resource_state=ResourceState.ENABLED)
        if allocation_state and _allocation(allocation_state) == AllocationState.DISABLED:
            host.resource_state = ResourceState.DISABLED
        _apply_probe(host, probe)
        try:
            with transaction.atomic():
                host.save()
        except IntegrityError:
            raise InvalidParameterValue(f"A host with url {url} is already added; reconnect it instead") from None
        storage_services.connect_host_pools(host)  # raises (and undoes its pools) on failure
        warn = "" if probe is None or probe.usable else f"; guests will run under software emulation ({probe.reason})"
        events.record(caller, "HOST.ADD", f"Host {name} added to cluster {cluster.name}{warn}", resource=host,
                      level=EventLevel.WARN if warn else EventLevel.INFO)
    return host


def _clean_tags(tags: str | None) -> str:
    return ",".join(t.strip() for t in (tags or "").split(",") if t.strip())


def _apply_probe(host: Host, probe) -> None:
    if probe is None:
        host.kvm_usable, host.kvm_reason = False, "Simulator host: no guests run"
    else:
        host.kvm_usable, host.kvm_reason = probe.usable, probe.reason
    host.kvm_checked = timezone.now()


def update_host(caller, host: Host, *, name: str | None = None, host_tags: str | None = None,
                allocation_state: str | None = None, emulation: str | None = None) -> Host:
    require_root_admin(caller, "update hosts")
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if name:
            host.name = name
        if host_tags is not None:
            host.host_tags = _clean_tags(host_tags)
        if allocation_state:
            value = allocation_state.capitalize()
            if value == "Enable":
                value = "Enabled"
            if value == "Disable":
                value = "Disabled"
            if value not in (ResourceState.ENABLED, ResourceState.DISABLED):
                raise InvalidParameterValue(f"allocationstate must be Enable or Disable, not {allocation_state}")
            if host.resource_state in (ResourceState.MAINTENANCE, ResourceState.PREPARE_FOR_MAINTENANCE):
                raise InvalidParameterValue(f"Host {host.name} is in {host.resource_state}; cancel maintenance first")
            host.resource_state = value
        emulation = _emulation(emulation)
        if emulation is not None:
            host.emulation = emulation
        host.save()
        events.record(caller, "HOST.UPDATE", f"Host {host.name} updated", resource=host)
    return host


def delete_host(caller, host: Host, *, forced: bool = False) -> None:
    require_root_admin(caller, "delete hosts")
    from storage import services as storage_services

    with transaction.atomic():
        host = Host.objects.select_for_update().select_related("cluster").get(pk=host.pk)
        if not forced and host.state == HostState.UP and host.resource_state not in (
                ResourceState.MAINTENANCE, ResourceState.DISABLED):
            raise InvalidParameterValue(f"Host {host.name} is Up and in use; put it in maintenance (or disable it) "
                                        "before deleting it, or pass forced=true")
        running = _vm_names(host=host)
        if running:
            raise ResourceInUse(f"Host {host.name} runs VMs {', '.join(running)}; stop them first")
        storage_services.disconnect_host_pools(host, forced=forced)
        networks.release_host_address(host)
        name = host.name
        host.delete()
        events.record(caller, "HOST.DELETE", f"Host {name} deleted", resource_type="Host")


def reconnect_host(caller, host: Host) -> Host:
    """Connect again, refresh the hardware facts and the KVM verdict, and re-create the pools."""
    require_root_admin(caller, "reconnect hosts")
    from storage import services as storage_services

    try:
        with host_driver(host) as driver:
            info = driver.host_info()
            probe = driver.probe_kvm(timeout_s=config.get_value("host.kvm.probe.timeout")) \
                if host.hypervisor == Hypervisor.KVM else None
    except DriverError as exc:
        _host_unreachable(host, exc.message)
        raise ResourceUnavailable(f"Cannot reconnect host {host.name}: {exc.message}") from None
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        host.cpu_sockets, host.cpu_number, host.cpu_speed = info.cpu_sockets, info.cpu_count, info.cpu_mhz
        host.memory_total, host.libvirt_version = info.memory_bytes, info.libvirt_version
        host.hypervisor_version, host.arch = info.hypervisor_version, info.arch
        _apply_probe(host, probe)
        previous = host.state
        host.state, host.state_reason, host.last_pinged, host.disconnected = HostState.UP, "", timezone.now(), None
        host.save()
        storage_services.connect_host_pools(host)
        events.record(caller, "HOST.RECONNECT", f"Host {host.name} reconnected (was {previous})", resource=host)
    return host


def prepare_host_for_maintenance(caller, host: Host) -> Host:
    require_root_admin(caller, "put hosts in maintenance")
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if host.resource_state in (ResourceState.MAINTENANCE, ResourceState.PREPARE_FOR_MAINTENANCE):
            raise InvalidParameterValue(f"Host {host.name} is already in {host.resource_state}")
        running = _vm_names(host=host)
        if running:
            raise ResourceInUse(f"Host {host.name} runs VMs {', '.join(running)}; stop them first (live migration "
                                f"is not supported yet)")
        host.resource_state = ResourceState.MAINTENANCE
        host.save(update_fields=["resource_state"])
        events.record(caller, "MAINT.PREPARE", f"Host {host.name} entered maintenance", resource=host)
    return host


def cancel_host_maintenance(caller, host: Host) -> Host:
    require_root_admin(caller, "cancel host maintenance")
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if host.resource_state not in (ResourceState.MAINTENANCE, ResourceState.PREPARE_FOR_MAINTENANCE,
                                       ResourceState.ERROR_IN_MAINTENANCE):
            raise InvalidParameterValue(f"Host {host.name} is not in maintenance (it is {host.resource_state})")
        host.resource_state = ResourceState.ENABLED
        host.save(update_fields=["resource_state"])
        events.record(caller, "MAINT.CANCEL", f"Host {host.name} left maintenance", resource=host)
    return host


# -- monitoring ---------------------------------------------------------------------------------
def raise_alert(alert_type: int, name: str, subject: str, *, zone=None, pod=None, cluster=None) -> Alert:
    return Alert.objects.create(type=alert_type, name=name, subject=subject[:999], zone=zone, pod=pod, cluster=cluster)


def _host_unreachable(host: Host, reason: str) -> None:
    """Record a failed ping: Disconnected at once, Alert once it has lasted ping.interval x ping.timeout."""
    from accounts.services import system_user

    now = timezone.now()
    with transaction.atomic():
        host = Host.objects.select_for_update().select_related("zone", "pod", "cluster").get(pk=host.pk)
        since = host.disconnected or now
        limit = config.get_value("ping.interval") * config.get_value("ping.timeout")
        new_state = HostState.ALERT if (now - since).total_seconds() >= limit else HostState.DISCONNECTED
        changed = new_state != host.state
        host.state, host.state_reason, host.disconnected = new_state, reason[:512], since
        host.save(update_fields=["state", "state_reason", "disconnected"])
        if changed:
            events.record(system_user(), "HOST.STATE", f"Host {host.name} is {new_state}: {reason}", resource=host,
                          level=EventLevel.WARN if new_state == HostState.DISCONNECTED else EventLevel.ERROR)
            raise_alert(AlertType.HOST, "ALERT.HOST", f"Host {host.name} ({host.url}) is {new_state}: {reason}",
                        zone=host.zone, pod=host.pod, cluster=host.cluster)


def _host_answered(host: Host, stats) -> None:
    from accounts.services import system_user

    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        previous = host.state
        host.state, host.state_reason, host.disconnected, host.last_pinged = HostState.UP, "", None, timezone.now()
        if stats is not None:
            host.memory_used = stats.memory_used_bytes
        host.save(update_fields=["state", "state_reason", "disconnected", "last_pinged", "memory_used"])
        if previous != HostState.UP:
            events.record(system_user(), "HOST.STATE", f"Host {host.name} is Up again (was {previous})", resource=host)
    if previous != HostState.UP:
        # A host that was away may have missed pools created meanwhile (or lost them on reboot).
        from storage import services as storage_services

        try:
            storage_services.connect_host_pools(host)
        except Exception as exc:  # noqa: BLE001 - the host is Up; its storage problem is reported apart
            message = getattr(exc, "message", str(exc))
            log.warning("host %s is back but its storage pools could not be set up: %s", host.name, message)
            raise_alert(AlertType.STORAGE_MISC, "ALERT.STORAGE", f"Host {host.name} is Up again but its primary "
                        f"storage could not be set up: {message}", zone=host.zone, pod=host.pod, cluster=host.cluster)


def ping_host(host: Host) -> bool:
    try:
        with host_driver(host) as driver:
            driver.ping()
            stats = driver.host_stats() if host.hypervisor == Hypervisor.KVM else None
    except DriverError as exc:
        _host_unreachable(host, exc.message)
        return False
    _host_answered(host, stats)
    return True


def monitor_hosts() -> dict[str, int]:
    """The periodic job: ping every host not in maintenance, one connection each. A management
    restart changes nothing: states follow pings only."""
    counts = {"up": 0, "down": 0}
    for host in Host.objects.exclude(resource_state=ResourceState.MAINTENANCE).select_related("cluster"):
        counts["up" if ping_host(host) else "down"] += 1
    return counts
