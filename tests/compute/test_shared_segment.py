"""A zone whose two KVM hosts share one guest segment (guest.network.uplink), for real: each host
is a libvirtd of its own in a network namespace of its own (tests/compute/nethosts.py), their
uplinks are ports of one bridge that also holds the pod's gateway (the segment's router), and
Nubo drives them as it drives any two hosts. Each host's bridge nuboz<zone> gets its uplink from
Nubo's network hook, its DHCP server an address of its own from the pod's range; each VM gets the
address Nubo allocated from its own host, reaches the router and the other host's VM, and no host
answers the other's guests or a stranger (their DHCP lease files say so)."""
from __future__ import annotations

import ipaddress
import json
import secrets
import sys
from pathlib import Path

import pytest

from compute import networks
from compute import services as compute_services
from compute.drivers import get_driver
from compute.models import GuestIpAddress, Host, VirtualMachine
from tests.compute.kvm import make_kvm_zone, remove_kvm_zone
from tests.compute.nethosts import UPLINK, NetnsHost, Segment, new_tag
from tests.storage.test_builtin_images import BOOT_TIMEOUT_S, SerialConsole

pytestmark = pytest.mark.slow_qemu
PROBE = Path(__file__).with_name("dhcp_probe.py")


@pytest.fixture
def kvm_pair(cloud, tmp_path):
    tag = new_tag()
    third = 200 + secrets.randbelow(50)
    gateway = f"10.{third}.3.1"
    hosts = [NetnsHost(f"{tag}{side}") for side in "ab"]
    segment = Segment(tag, gateway)
    started: list = []
    try:
        for part in (*hosts, segment):
            started.append(part.start())
        for host in hosts:
            segment.plug(host)
        kvm = make_kvm_zone(tmp_path, urls=tuple(host.uri for host in hosts), third=third)
        kvm.netns_hosts, kvm.segment = hosts, segment
        yield kvm
        remove_kvm_zone(kvm)
    finally:
        for part in reversed(started):
            part.stop()


def deploy(api, kvm, host: Host, name: str) -> dict:
    job = api.job(api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                      templateid=str(kvm.template.uuid), hostid=str(host.uuid), name=name))
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]


def test_two_hosts_on_one_segment_each_serve_only_their_own_guests(api, kvm_pair):
    kvm = kvm_pair
    answer = api("updateConfiguration", name="guest.network.uplink", value=UPLINK, zoneid=str(kvm.zone.uuid))
    assert answer.status == 200, answer
    host_a, host_b = kvm.hosts
    vm_a, vm_b = deploy(api, kvm, host_a, "on-a"), deploy(api, kvm, host_b, "on-b")
    assert (vm_a["hostid"], vm_b["hostid"]) == (str(host_a.uuid), str(host_b.uuid))
    ip_a, ip_b = vm_a["nic"][0]["ipaddress"], vm_b["nic"][0]["ipaddress"]
    mac_a, mac_b = vm_a["nic"][0]["macaddress"], vm_b["nic"][0]["macaddress"]
    gateway = kvm.segment.gateway

    # Each host's DHCP server has an address of its own from the pod's range: not the router's,
    # not a guest's; the range counts them as used.
    dhcp = {host.pk: Host.objects.select_related("guest_address").get(pk=host.pk).guest_address.address
            for host in kvm.hosts}
    assert len({*dhcp.values(), ip_a, ip_b, gateway}) == 5
    subnet = ipaddress.IPv4Network(f"{gateway}/24", strict=False)
    assert all(ipaddress.IPv4Address(address) in subnet for address in dhcp.values())
    assert GuestIpAddress.objects.filter(address__in=dhcp.values(), allocated__isnull=False).count() == 2

    network = networks.shared_network_name(kvm.zone)
    bridge = f"nuboz{kvm.zone.uuid.hex[:8]}"
    consoles = {}
    try:
        for host, vm, netns_host in zip(kvm.hosts, (vm_a, vm_b), kvm.netns_hosts):
            driver = get_driver(host.url)
            driver.connect()
            info = driver.network_info(network)
            # the same bridge name on both hosts, the uplink in it, this host's VM only
            assert (info.bridge, info.mode, info.uplink, info.router) == (bridge, "open", UPLINK, gateway)
            assert [h.mac for h in info.hosts] == [vm["nic"][0]["macaddress"]]
            assert f"master {bridge}" in netns_host.sh(f"ip link show dev {UPLINK}").stdout
            row = VirtualMachine.objects.get(uuid=vm["id"])
            consoles[vm["name"]] = (SerialConsole(driver, row.instance_name), driver)
        for vm in (vm_a, vm_b):
            console = consoles[vm["name"]][0]
            marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=\S+\r?\n", BOOT_TIMEOUT_S)
            assert marker.groups() == (vm["name"].encode(), vm["nic"][0]["ipaddress"].encode())
            prompt = console.wait_for(rf"root@{vm['name']}:[^\r\n]*# ", 15, marker.end())
            # the default route is the segment's router, not the host
            console.send(f"ip route | grep default; ping -c 2 -W 2 {gateway} | grep -c 'bytes from'\n")
            routed = console.wait_for(r"default via (\S+).*?\r?\n(\d)\r?\n", 30, prompt.end())
            assert routed.groups() == (gateway.encode(), b"2")
        # across the segment: the guest on B reaches the guest on A
        console_b = consoles["on-b"][0]
        since = len(console_b.output)
        console_b.send(f"ping -c 2 -W 2 {ip_a} | grep -c 'bytes from'; echo PINGED\n")
        assert console_b.wait_for(r"(\d)\r?\nPINGED", 30, since).group(1) == b"2"
    finally:
        for console, driver in consoles.values():
            console.close()
            driver.close()

    # Each host's dnsmasq leased to its own guest only: the other's DHCP broadcasts reached it
    # over the segment and were ignored.
    lease_a = kvm.netns_hosts[0].dnsmasq_file(f"{bridge}.status")
    lease_b = kvm.netns_hosts[1].dnsmasq_file(f"{bridge}.status")
    assert mac_a in lease_a and mac_b not in lease_a
    assert mac_b in lease_b and mac_a not in lease_b
    # What the segment's other machines hear from the hosts' DHCP servers (tests/compute/dhcp_probe.py
    # on a port of the segment): a stranger's MAC gets no answer; a guest's MAC is answered by its
    # own host only, and a guest asking again for its address after a reboot (no server named) gets
    # its host's ACK and no NAK from the other host (libvirt's dnsmasq is authoritative: without
    # Nubo's dhcp-ignore it would refuse every guest it does not know).
    port = f"nbst{secrets.token_hex(2)}"
    kvm.segment.ip("link", "add", port, "type", "veth", "peer", "name", f"{port}p")
    kvm.segment.ip("link", "set", f"{port}p", "master", "seg", "up")
    kvm.segment.ip("link", "set", port, "up")

    def probe(mac: str, *requested: str) -> list[dict]:
        done = kvm.segment.sh(f"{sys.executable} {PROBE} {port} {mac} {' '.join(requested)}")
        return [json.loads(line) for line in done.stdout.splitlines()]

    stranger = "52:54:00:%02x:%02x:%02x" % tuple(secrets.token_bytes(3))
    assert probe(stranger) == []
    assert probe(stranger, ip_a) == []
    for mac, address, host in ((mac_a, ip_a, host_a), (mac_b, ip_b, host_b)):
        server = dhcp[host.pk]
        assert probe(mac) == [{"type": "OFFER", "server": server, "yiaddr": address}]
        assert probe(mac, address) == [{"type": "ACK", "server": server, "yiaddr": address}]

    # Stopping a VM takes its entry off its host's network; deleting a host gives its address back.
    assert api.job(api("stopVirtualMachine", id=vm_a["id"], forced="true"))["jobstatus"] == 1
    with get_driver(host_a.url) as driver:
        assert driver.network_info(network).hosts == ()
    assert api.job(api("destroyVirtualMachine", id=vm_a["id"], expunge="true"))["jobstatus"] == 1
    compute_services.prepare_host_for_maintenance(kvm.admin, host_a)
    compute_services.delete_host(kvm.admin, host_a)
    assert GuestIpAddress.objects.get(address=dhcp[host_a.pk], zone=kvm.zone).allocated is None


def test_a_host_whose_uplink_is_missing_fails_the_start_and_says_why(api, kvm_pair):
    kvm = kvm_pair
    api("updateConfiguration", name="guest.network.uplink", value="nosuch0", zoneid=str(kvm.zone.uuid))
    job = api.job(api("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                      templateid=str(kvm.template.uuid), hostid=str(kvm.hosts[0].uuid), name="cut-off"))
    assert job["jobstatus"] == 2
    assert "uplink nosuch0 does not exist on this host" in job["jobresult"]["errortext"]
    # nothing kept: only the host's own DHCP address is still taken, no domain is left on the host
    taken = list(GuestIpAddress.objects.filter(zone=kvm.zone, allocated__isnull=False))
    assert taken == [Host.objects.get(pk=kvm.hosts[0].pk).guest_address]
    with get_driver(kvm.hosts[0].url) as driver:
        assert not [d for d in driver.list_domains() if d.name.startswith("i-")]
