"""The XML the driver sends to libvirt, built from dataclasses (no libvirt needed)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from compute.drivers import DiskSpec, DomainSpec, DriverError, NicSpec, StoragePoolSpec, libvirt_uri
from compute.drivers.domain_xml import (
    console_from_xml,
    dimm_xml,
    domain_xml,
    pool_spec_from_xml,
    pool_xml,
    same_pool,
    size_from_xml,
    with_dimm,
    with_media,
)

HOSTILE = "x'\"><devices><disk/></devices><!--&amp;"


def _spec(**overrides: object) -> DomainSpec:
    values: dict = dict(name="vm-1", uuid="6b1f2c4e-0000-4000-8000-000000000001", vcpus=2, memory_mib=128)
    values.update(overrides)
    return DomainSpec(**values)


def test_domain_xml_from_spec() -> None:
    spec = _spec(
        emulation="kvm",
        disks=(DiskSpec(target="vda", path="/pool/root.qcow2", boot_order=1),
               DiskSpec(target="hdc", pool="secondary", volume="tiny.iso", device="cdrom", bus="ide", format="raw")),
        nics=(NicSpec(mac="02:00:00:00:00:01", network="guest"),),
        vnc_password="pw",
    )
    root = ET.fromstring(domain_xml(spec, "kvm"))
    assert root.get("type") == "kvm"
    assert (root.findtext("name"), root.findtext("uuid")) == ("vm-1", spec.uuid)
    assert (root.find("memory").get("unit"), root.findtext("memory"), root.findtext("vcpu")) == ("MiB", "128", "2")
    assert root.find("os/type").attrib == {"arch": "x86_64", "machine": "pc"}
    assert root.find("os/boot") is None  # disks carry boot order
    assert root.find("cpu") is None  # no host-model/passthrough: they abort QEMU on nested hosts
    assert root.find("maxMemory") is None and root.find("vcpu").attrib == {}  # no room to grow asked for
    disk, cdrom = root.findall("devices/disk")
    assert disk.find("source").get("file") == "/pool/root.qcow2" and disk.find("boot").get("order") == "1"
    assert disk.find("driver").get("type") == "qcow2"
    assert cdrom.get("type") == "volume" and cdrom.find("source").attrib == {"pool": "secondary", "volume": "tiny.iso"}
    assert cdrom.find("readonly") is not None
    nic = root.find("devices/interface")
    assert nic.get("type") == "network" and nic.find("mac").get("address") == "02:00:00:00:00:01"
    graphics = root.find("devices/graphics")
    assert graphics.attrib["passwd"] == "pw" and graphics.attrib["listen"] == "127.0.0.1"
    assert root.find("devices/serial").get("type") == "pty"


def test_hostile_values_stay_values() -> None:
    spec = _spec(description=HOSTILE, vnc_password=HOSTILE, disks=(DiskSpec(target="vda", path=HOSTILE),))
    root = ET.fromstring(domain_xml(spec, "qemu"))
    assert root.findtext("description") == HOSTILE
    assert root.find("devices/graphics").get("passwd") == HOSTILE
    assert root.find("devices/disk/source").get("file") == HOSTILE
    assert len(root.findall("devices/disk")) == 1


def test_media_of_a_cdrom_drive() -> None:
    empty = DiskSpec(target="hdd", device="cdrom", bus="ide", format="raw", boot_order=1)
    xml = domain_xml(_spec(disks=(DiskSpec(target="vda", path="/pool/root.qcow2", boot_order=2), empty)), "qemu")
    disk, whole = with_media(xml, DiskSpec(target="hdd", device="cdrom", pool="p", volume=HOSTILE, format="raw"))
    drive = ET.fromstring(disk)
    assert drive.get("type") == "volume" and drive.find("source").attrib == {"pool": "p", "volume": HOSTILE}
    assert drive.find("boot").get("order") == "1" and drive.find("target").attrib == {"dev": "hdd", "bus": "ide"}
    assert drive.find("readonly") is not None
    assert len(ET.fromstring(whole).findall("devices/disk")) == 2
    assert ET.fromstring(whole).find("devices/disk/source").get("file") == "/pool/root.qcow2"  # the disk is untouched
    ejected, _ = with_media(whole, empty)
    assert ET.fromstring(ejected).find("source") is None and ET.fromstring(ejected).get("type") == "file"
    assert with_media(xml, DiskSpec(target="vda", device="cdrom")) is None  # vda is no CD-ROM drive


def test_console_from_live_xml() -> None:
    live = domain_xml(_spec(vnc_password="pw"), "qemu").replace("port=\"-1\"", "port=\"5901\"")
    console = console_from_xml(live)
    assert (console.protocol, console.host, console.port, console.password) == ("vnc", "127.0.0.1", 5901, "pw")
    assert console_from_xml(domain_xml(_spec(), "qemu")) is None  # not running: port -1
    assert console_from_xml(domain_xml(_spec(vnc=False), "qemu")) is None


def test_pool_xml_round_trip() -> None:
    for spec in (StoragePoolSpec("p1", "dir", "/srv/primary"),
                 StoragePoolSpec("p2", "netfs", "/mnt/p2", nfs_host="nfs.lan", nfs_export="/export/primary")):
        back = pool_spec_from_xml(pool_xml(spec))
        assert back == spec and same_pool(back, spec)
    assert same_pool(StoragePoolSpec("p", "dir", "/srv/x/"), StoragePoolSpec("p", "dir", "/srv/x"))
    with pytest.raises(ValueError, match="needs nfs_host and nfs_export"):
        StoragePoolSpec("p", "netfs", "/mnt/p")


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("qemu:///system", "qemu:///system"),
        ("qemu+tls://kvm1.lan/system", "qemu+tls://kvm1.lan/system"),
        ("test:///default", "test:///default"),
        ("kvm1.lan", "qemu+ssh://root@kvm1.lan/system"),
        ("http://10.0.0.5", "qemu+ssh://root@10.0.0.5/system"),  # CloudStack's addHost url for KVM
        ("fe80::1", "qemu+ssh://root@[fe80::1]/system"),
    ],
)
def test_libvirt_uri_for_add_host_urls(url: str, uri: str) -> None:
    assert libvirt_uri(url) == uri


def test_libvirt_uri_rejects_what_is_not_a_host() -> None:
    with pytest.raises(DriverError, match="is not a host address"):
        libvirt_uri("ftp://x/y")


def test_a_scalable_domain_is_defined_with_room_to_grow() -> None:
    """CloudStack's KVM layout: <vcpu current=N>MAX</vcpu>, <maxMemory slots=16>, and the guest NUMA
    cell DIMMs plug into, holding every possible vCPU and the boot memory."""
    root = ET.fromstring(domain_xml(_spec(vcpus=1, memory_mib=128, max_vcpus=4, max_memory_mib=2048), "qemu"))
    assert (root.findtext("vcpu"), root.find("vcpu").get("current")) == ("4", "1")
    assert root.find("maxMemory").attrib == {"slots": "16", "unit": "MiB"} and root.findtext("maxMemory") == "2048"
    assert root.findtext("memory") == "128"
    assert root.find("cpu/numa/cell").attrib == {"id": "0", "cpus": "0-3", "memory": "128", "unit": "MiB"}
    assert root.find("features/acpi") is not None  # QEMU plugs DIMMs through ACPI
    size = size_from_xml(ET.tostring(root, encoding="unicode"))
    assert (size.vcpus, size.max_vcpus, size.memory_mib, size.max_memory_mib) == (1, 4, 128, 2048)
    assert (size.memory_slots, size.dimms) == (16, 0)
    with pytest.raises(ValueError, match="below"):
        _spec(vcpus=2, max_vcpus=1)
    # no memory to grow by: no DIMM slots (QEMU refuses slots when maxmem equals the memory)
    cpus_only = ET.fromstring(domain_xml(_spec(vcpus=1, memory_mib=128, max_vcpus=2, max_memory_mib=128), "qemu"))
    assert cpus_only.find("maxMemory") is None and cpus_only.find("cpu") is None
    assert (cpus_only.findtext("vcpu"), cpus_only.find("vcpu").get("current")) == ("2", "1")


def test_a_dimm_and_what_plugging_it_leaves() -> None:
    dimm = ET.fromstring(dimm_xml(256))
    assert (dimm.tag, dimm.get("model")) == ("memory", "dimm")
    assert (dimm.find("target/size").text, dimm.find("target/size").get("unit"), dimm.findtext("target/node")) == \
        ("256", "MiB", "0")
    # libvirt writes KiB: the size is read in any unit
    plugged = with_dimm(domain_xml(_spec(memory_mib=128, max_vcpus=2, max_memory_mib=1024), "test")
                        .replace('<memory unit="MiB">128</memory>', '<memory unit="KiB">131072</memory>'), 256)
    size = size_from_xml(plugged)
    assert (size.memory_mib, size.dimms, size.max_memory_mib) == (384, 1, 1024)


def test_guest_network_xml_for_a_host_on_a_shared_segment() -> None:
    from compute.drivers import DhcpHost, NetworkSpec
    from compute.drivers.domain_xml import DNSMASQ_NS, NUBO_NETWORK_NS, network_info_from_xml, network_xml

    spec = NetworkSpec(name="nubo-zone-1", bridge="nuboz1", address="10.1.0.5", netmask="255.255.255.0", mode="open",
                       uplink="eth1", router="10.1.0.1", hosts=(DhcpHost("1E:00:00:00:00:01", "10.1.0.30", "a"),))
    root = ET.fromstring(network_xml(spec))
    assert root.find("forward").get("mode") == "open"
    assert root.find(f"metadata/{{{NUBO_NETWORK_NS}}}uplink").get("dev") == "eth1"  # what the hook reads
    options = [o.get("value") for o in root.iter(f"{{{DNSMASQ_NS}}}option")]
    assert options == ["dhcp-option=option:router,10.1.0.1", "dhcp-ignore=tag:!known"]
    assert [h.get("mac") for h in root.findall("ip/dhcp/host")] == ["1e:00:00:00:00:01"]
    assert root.find("ip/dhcp/range") is None  # static entries only
    info = network_info_from_xml(network_xml(spec), True)
    assert info.matches(spec)
    assert not info.matches(NetworkSpec(**{**spec.__dict__, "address": "10.1.0.6"}))
    # a private (NAT) network ignores strangers too, and names no router of its own
    nat = network_info_from_xml(network_xml(NetworkSpec(name="p", bridge="nubop1", address="10.1.0.1",
                                                        netmask="255.255.255.0")), True)
    assert (nat.mode, nat.router, nat.uplink, nat.ignores_unknown) == ("nat", "", "", True)


@pytest.mark.parametrize("fields", [dict(mode="open"), dict(mode="open", uplink="eth1"),
                                    dict(uplink="eth1", router="10.1.0.1"),
                                    dict(mode="open", uplink="eth1; reboot", router="10.1.0.1")])
def test_an_open_network_needs_a_plain_uplink_and_a_router(fields) -> None:
    from compute.drivers import NetworkSpec

    with pytest.raises(ValueError):
        NetworkSpec(name="n", bridge="nuboz1", address="10.1.0.5", netmask="255.255.255.0", **fields)
