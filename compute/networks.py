"""Basic-zone guest networking: the zone's shared guest network, guest addresses and MACs, and
the libvirt network each host runs for a pod.

Allocation is in the database, inside the caller's transaction: an address is taken with a
conditional UPDATE on a row locked with SKIP LOCKED (concurrent deploys take different rows, and a
NIC's one-to-one link to the address makes a double allocation impossible even for code that
forgets); a MAC is random and unique by constraint. On a host, the pod's libvirt network is a
bridge that holds the pod's gateway address with a DHCP server that answers only the static
leases of that host's VMs (compute.drivers NetworkSpec), so every VM gets exactly the address
allocated here."""
from __future__ import annotations

import ipaddress
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from compute.drivers import DhcpHost, NetworkSpec
from portal import config
from portal.errors import InsufficientCapacity, InvalidParameterValue

from .models import GuestIpAddress, GuestNetwork, Host, Nic, Pod, VirtualMachine, VlanIpRange, Zone

MAC_PREFIX = "1e:00"  # CloudStack's guest NICs start with 1e:00 too


def guest_network(zone: Zone) -> GuestNetwork:
    network, _ = GuestNetwork.objects.get_or_create(zone=zone)
    return network


def allocate_address(zone: Zone, *, pod: Pod | None = None, wanted: str | None = None) -> GuestIpAddress:
    """Take a free guest address of the zone (of `pod` when given), or exactly `wanted`. Must run
    inside the caller's transaction, which keeps the address if it commits."""
    free = GuestIpAddress.objects.filter(zone=zone, allocated__isnull=True)
    if pod is not None:
        free = free.filter(ip_range__pod=pod)
    if wanted:
        try:
            ipaddress.IPv4Address(wanted)
        except ValueError:
            raise InvalidParameterValue(f"ipaddress {wanted} is not an IPv4 address") from None
        row = GuestIpAddress.objects.filter(zone=zone, address=wanted).select_related("ip_range").first()
        if row is None:
            ranges = ", ".join(f"{r.start_ip}-{r.end_ip}" for r in VlanIpRange.objects.filter(zone=zone))
            raise InvalidParameterValue(f"The address {wanted} is not in a guest IP range of zone {zone.name} "
                                        f"({ranges or 'none'})")
        taken = GuestIpAddress.objects.filter(pk=row.pk, allocated__isnull=True).update(allocated=timezone.now())
        if not taken:
            raise InvalidParameterValue(f"The address {wanted} is already in use in zone {zone.name}")
        row.refresh_from_db()
        return row
    for _ in range(5):
        row = free.select_for_update(skip_locked=True).order_by("id").first()
        if row is None:
            break
        if GuestIpAddress.objects.filter(pk=row.pk, allocated__isnull=True).update(allocated=timezone.now()):
            row.refresh_from_db()
            return row
    where = f"pod {pod.name}" if pod is not None else f"zone {zone.name}"
    total = GuestIpAddress.objects.filter(zone=zone, **({"ip_range__pod": pod} if pod else {})).count()
    raise InsufficientCapacity(f"No free guest IP address in {where}: all {total} addresses of its guest IP "
                               f"ranges are allocated; add a range or expunge VMs")


def release_address(address: GuestIpAddress | None) -> None:
    if address is not None:
        GuestIpAddress.objects.filter(pk=address.pk).update(allocated=None)


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(4))


def create_nic(vm: VirtualMachine, *, wanted_ip: str | None = None) -> Nic:
    """The VM's NIC on its zone's guest network, with an address and a MAC (inside the caller's
    transaction)."""
    address = allocate_address(vm.zone, pod=vm.pod, wanted=wanted_ip)
    network = guest_network(vm.zone)
    for _ in range(10):
        try:
            with transaction.atomic():
                return Nic.objects.create(virtual_machine=vm, network=network, address=address, mac=random_mac())
        except IntegrityError:
            continue  # a MAC collision (1 in 4 billion): draw again
    raise InsufficientCapacity("Could not draw a free MAC address")


def release_nics(vm: VirtualMachine) -> None:
    for nic in Nic.objects.filter(virtual_machine=vm).select_related("address"):
        address = nic.address
        nic.delete()
        release_address(address)


def _first_range(pod: Pod) -> VlanIpRange:
    ip_range = VlanIpRange.objects.filter(pod=pod).order_by("id").first()
    if ip_range is None:
        raise InvalidParameterValue(f"Pod {pod.name} has no guest IP range; add one with createVlanIpRange")
    return ip_range


def pod_network_spec(pod: Pod, hosts: tuple[DhcpHost, ...] = ()) -> NetworkSpec:
    """A host's private network for a pod's guests: the pod's gateway on the bridge, NAT'd
    through the host (zones without guest.network.uplink)."""
    ip_range = _first_range(pod)
    short = pod.uuid.hex[:8]
    return NetworkSpec(name=f"nubo-pod-{short}", bridge=f"nubop{short}", address=ip_range.gateway,
                       netmask=ip_range.netmask, mode="nat", hosts=hosts, domain=pod.zone.network_domain)


def uplink(zone: Zone) -> str:
    return config.get_value("guest.network.uplink", scope="zone", scope_uuid=str(zone.uuid))


def shared_network_name(zone: Zone) -> str:
    return f"nubo-zone-{zone.uuid.hex[:8]}"


def host_network_spec(host: Host, hosts: tuple[DhcpHost, ...] = ()) -> NetworkSpec:
    """The libvirt network the host's guests are plugged into. With the zone's
    guest.network.uplink set, the hosts share one layer-2 segment: every host's bridge has the same
    name (nuboz<zone>), its uplink in it, an address of the host's own from the pod's range for
    its DHCP server, and the pod's gateway (the segment's router) given to the guests."""
    device = uplink(host.zone)
    if not device:
        return pod_network_spec(host.pod, hosts)
    ip_range = _first_range(host.pod)
    short = host.zone.uuid.hex[:8]
    return NetworkSpec(name=shared_network_name(host.zone), bridge=f"nuboz{short}",
                       address=host_dhcp_address(host).address, netmask=ip_range.netmask, mode="open",
                       uplink=device, router=ip_range.gateway, hosts=hosts, domain=host.zone.network_domain)


def host_dhcp_address(host: Host) -> GuestIpAddress:
    """The host's address on its zone's shared guest segment, taken from its pod's guest range the
    first time it is needed (committed at once: the host keeps it until it is deleted)."""
    if host.guest_address_id:
        return host.guest_address
    with transaction.atomic():
        locked = Host.objects.select_for_update(of=("self",)).select_related("guest_address").get(pk=host.pk)
        if locked.guest_address_id is None:
            try:
                locked.guest_address = allocate_address(host.zone, pod=host.pod)
            except InsufficientCapacity as exc:
                raise InsufficientCapacity(f"Host {host.name} needs an address of its own in pod {host.pod.name}'s "
                                           f"guest IP range for its DHCP server on the zone's shared segment: "
                                           f"{exc.message}") from None
            Host.objects.filter(pk=host.pk).update(guest_address=locked.guest_address)
    host.guest_address = locked.guest_address
    return host.guest_address


def release_host_address(host: Host) -> None:
    """Inside the caller's transaction (deleting the host)."""
    address = host.guest_address
    if address is not None:
        Host.objects.filter(pk=host.pk).update(guest_address=None)
        release_address(address)


def network_names(vm: VirtualMachine) -> list[str]:
    """Every network a VM's NIC may be plugged into on its host (the zone's networking may have
    changed since it started): where its DHCP entry is removed."""
    return [pod_network_spec(vm.pod).name, shared_network_name(vm.zone)]


def dhcp_host(nic: Nic) -> DhcpHost:
    return DhcpHost(mac=nic.mac, ip=nic.address.address if nic.address else "", name=nic.virtual_machine.name)
