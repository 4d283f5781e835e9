"""libvirt XML built from (and read back into) the driver's dataclasses, with ElementTree only:
no string formatting, so no value can break out of its attribute or element."""
from __future__ import annotations

import os.path
import xml.etree.ElementTree as ET

from compute.drivers.base import (
    ConsoleInfo,
    DhcpHost,
    MEMORY_SLOTS,
    DiskSpec,
    DomainSize,
    DomainSpec,
    NetworkInfo,
    NetworkSpec,
    NicSpec,
    StoragePoolSpec,
    VolumeInfo,
)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


# --- domains ------------------------------------------------------------------------------------


def domain_xml(spec: DomainSpec, virt_type: str) -> str:
    """`virt_type` is the <domain type>: "kvm" or "qemu" on a QEMU host, "test" on test:///."""
    domain = ET.Element("domain", type=virt_type)
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", spec.uuid)
    if spec.description:
        _sub(domain, "description", spec.description)
    if spec.max_memory_mib > spec.memory_mib:  # QEMU refuses DIMM slots with no memory to put in them
        _sub(domain, "maxMemory", str(spec.max_memory_mib), slots=str(MEMORY_SLOTS), unit="MiB")
    _sub(domain, "memory", str(spec.memory_mib), unit="MiB")
    if spec.max_vcpus:
        _sub(domain, "vcpu", str(spec.max_vcpus), current=str(spec.vcpus))
    else:
        _sub(domain, "vcpu", str(spec.vcpus))

    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", arch=spec.arch, machine=spec.machine)
    if not any(d.boot_order for d in spec.disks):
        for dev in spec.boot:
            _sub(os_, "boot", dev=dev)

    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    # No <cpu mode>: host-model/host-passthrough abort QEMU on nested hosts (platform.md).
    if spec.max_memory_mib > spec.memory_mib:  # DIMMs plug into a guest NUMA node: one cell with every vCPU and the boot memory
        numa = _sub(_sub(domain, "cpu"), "numa")
        _sub(numa, "cell", id="0", cpus=f"0-{max(spec.max_vcpus, spec.vcpus) - 1}", memory=str(spec.memory_mib),
             unit="MiB")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    for disk in spec.disks:
        _disk(devices, disk)
    for nic in spec.nics:
        _nic(devices, nic)
    if spec.serial_console:
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "target", port="0")
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="serial", port="0")
    if spec.vnc:
        attrs = {"type": "vnc", "port": "-1", "autoport": "yes", "listen": spec.vnc_listen}
        if spec.vnc_password:
            attrs["passwd"] = spec.vnc_password
        graphics = _sub(devices, "graphics", **attrs)
        _sub(graphics, "listen", type="address", address=spec.vnc_listen)
        _sub(devices, "input", type="tablet", bus="usb")
        _sub(_sub(devices, "video"), "model", type="vga")
    else:
        _sub(_sub(devices, "video"), "model", type="none")
    _sub(devices, "memballoon", model="virtio" if virt_type != "test" else "none")
    return ET.tostring(domain, encoding="unicode")


def _disk(devices: ET.Element, disk: DiskSpec) -> None:
    source_type = "volume" if disk.pool else "file"
    element = _sub(devices, "disk", type=source_type, device=disk.device)
    _sub(element, "driver", name="qemu", type=disk.format)
    if disk.pool:
        _sub(element, "source", pool=disk.pool, volume=disk.volume)
    elif disk.path:
        _sub(element, "source", file=disk.path)
    _sub(element, "target", dev=disk.target, bus=disk.bus)
    if disk.readonly or disk.device == "cdrom":
        _sub(element, "readonly")
    if disk.boot_order:
        _sub(element, "boot", order=str(disk.boot_order))


def with_media(xml: str, cdrom: DiskSpec) -> tuple[str, str] | None:
    """A domain's XML with its CD-ROM drive `cdrom.target` holding the media of `cdrom` (a pool's
    volume or a file; neither: empty), as (that <disk> element, the whole domain); None when the
    domain has no CD-ROM drive of that target. The drive keeps the rest: bus, address, boot order."""
    domain = ET.fromstring(xml)
    for disk in domain.findall("./devices/disk[@device='cdrom']"):
        target = disk.find("target")
        if target is None or target.get("dev") != cdrom.target:
            continue
        for old in disk.findall("source") + disk.findall("backingStore"):
            disk.remove(old)
        disk.set("type", "volume" if cdrom.pool else "file")
        driver = disk.find("driver")
        if driver is None:
            driver = ET.Element("driver", name="qemu")
            disk.insert(0, driver)
        driver.set("type", cdrom.format)
        if cdrom.pool:
            disk.insert(list(disk).index(driver) + 1, ET.Element("source", pool=cdrom.pool, volume=cdrom.volume))
        elif cdrom.path:
            disk.insert(list(disk).index(driver) + 1, ET.Element("source", file=cdrom.path))
        return ET.tostring(disk, encoding="unicode"), ET.tostring(domain, encoding="unicode")
    return None


def dimm_xml(size_mib: int) -> str:
    """A DIMM of `size_mib` MiB on guest NUMA node 0: the memory a running domain is grown by."""
    memory = ET.Element("memory", model="dimm")
    target = _sub(memory, "target")
    _sub(target, "size", str(size_mib), unit="MiB")
    _sub(target, "node", "0")
    return ET.tostring(memory, encoding="unicode")


def with_dimm(xml: str, size_mib: int) -> str:
    """A domain's XML with one more DIMM of `size_mib` MiB, its total memory (<memory>, and
    <currentMemory>: the balloon's target) grown by as much: what plugging it in leaves."""
    domain = ET.fromstring(xml)
    for tag in ("memory", "currentMemory"):
        element = domain.find(tag)
        if element is not None:
            element.text, element.attrib = str(_mib(element) + size_mib), {"unit": "MiB"}
    devices = domain.find("devices")
    if devices is None:
        devices = _sub(domain, "devices")
    devices.append(ET.fromstring(dimm_xml(size_mib)))
    return ET.tostring(domain, encoding="unicode")


def _mib(element: ET.Element | None) -> int:
    if element is None or not (element.text or "").strip():
        return 0
    return int(element.text.strip()) * _UNITS.get(element.get("unit", "KiB").lower(), 1) >> 20


def size_from_xml(xml: str) -> DomainSize:
    """A domain's DomainSize from its XML (libvirt's <memory> is the boot memory plus every DIMM)."""
    domain = ET.fromstring(xml)
    vcpu = domain.find("vcpu")
    max_vcpus = int((vcpu.text or "1").strip()) if vcpu is not None else 1
    vcpus = int(vcpu.get("current", max_vcpus)) if vcpu is not None else 1
    memory = _mib(domain.find("memory"))
    max_memory = domain.find("maxMemory")
    return DomainSize(vcpus=vcpus, max_vcpus=max_vcpus, memory_mib=memory,
                      max_memory_mib=_mib(max_memory) if max_memory is not None else memory,
                      memory_slots=int(max_memory.get("slots", "0")) if max_memory is not None else 0,
                      dimms=len(domain.findall("./devices/memory[@model='dimm']")))


def _nic(devices: ET.Element, nic: NicSpec) -> None:
    if nic.network:
        element = _sub(devices, "interface", type="network")
        _sub(element, "source", network=nic.network)
    elif nic.bridge:
        element = _sub(devices, "interface", type="bridge")
        _sub(element, "source", bridge=nic.bridge)
    else:  # QEMU's user-mode network: NAT and a DHCP server inside the QEMU process
        element = _sub(devices, "interface", type="user")
    _sub(element, "mac", address=nic.mac)
    _sub(element, "model", type=nic.model)


def console_from_xml(xml: str) -> ConsoleInfo | None:
    """The VNC console of a running domain's live XML (read with VIR_DOMAIN_XML_SECURE for the
    password), or None when it has none or it is not running (port -1)."""
    graphics = ET.fromstring(xml).find("./devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    port = int(graphics.get("port", "-1"))
    if port <= 0:
        return None
    listen = graphics.find("listen[@type='address']")
    host = (listen.get("address") if listen is not None else None) or graphics.get("listen") or "127.0.0.1"
    return ConsoleInfo(protocol="vnc", host=host, port=port, password=graphics.get("passwd", ""))


# --- storage pools ------------------------------------------------------------------------------


def pool_xml(spec: StoragePoolSpec) -> str:
    pool = ET.Element("pool", type=spec.kind)
    _sub(pool, "name", spec.name)
    if spec.kind == "netfs":
        source = _sub(pool, "source")
        _sub(source, "host", name=spec.nfs_host)
        _sub(source, "dir", path=spec.nfs_export)
        _sub(source, "format", type="nfs")
    target = _sub(pool, "target")
    _sub(target, "path", spec.path)
    return ET.tostring(pool, encoding="unicode")


def pool_spec_from_xml(xml: str) -> StoragePoolSpec | None:
    """The spec of a dir or netfs pool's XML; None for kinds Nubo does not manage (logical, rbd…)."""
    pool = ET.fromstring(xml)
    kind = pool.get("type", "")
    if kind not in ("dir", "netfs"):
        return None
    host = pool.find("./source/host")
    export = pool.find("./source/dir")
    return StoragePoolSpec(
        name=pool.findtext("name", ""),
        kind=kind,  # type: ignore[arg-type]
        path=pool.findtext("./target/path", ""),
        nfs_host=host.get("name", "") if host is not None else "",
        nfs_export=export.get("path", "") if export is not None else "",
    )


def same_pool(a: StoragePoolSpec, b: StoragePoolSpec) -> bool:
    def norm(path: str) -> str:
        return os.path.normpath(path) if path else ""

    return (a.kind, norm(a.path), a.nfs_host, norm(a.nfs_export)) == (b.kind, norm(b.path), b.nfs_host, norm(b.nfs_export))


# --- volumes ------------------------------------------------------------------------------------


def volume_xml(name: str, capacity_bytes: int, fmt: str = "raw", *, allocation_bytes: int | None = None,
               backing_path: str = "", backing_format: str = "") -> str:
    """A new volume of a dir/netfs pool. `allocation_bytes` None lets libvirt allocate the whole
    capacity up front; 0 makes a sparse file. With `backing_path` it is a copy-on-write clone of
    that file (`backing_format` given explicitly, so nothing is probed). qcow2 volumes are made as
    qcow2 v3 (compat 1.1), not libvirt's default 0.10."""
    volume = ET.Element("volume")
    _sub(volume, "name", name)
    _sub(volume, "capacity", str(capacity_bytes), unit="bytes")
    if allocation_bytes is not None:
        _sub(volume, "allocation", str(allocation_bytes), unit="bytes")
    target = _sub(volume, "target")
    _sub(target, "format", type=fmt)
    if fmt == "qcow2":
        _sub(target, "compat", "1.1")
    if backing_path:
        backing = _sub(volume, "backingStore")
        _sub(backing, "path", backing_path)
        _sub(backing, "format", type=backing_format or "raw")
    return ET.tostring(volume, encoding="unicode")


_UNITS = {"": 1, "b": 1, "bytes": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20,
          "g": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40}


def _bytes(parent: ET.Element, tag: str) -> int:
    element = parent.find(tag)
    if element is None or not (element.text or "").strip():
        return 0
    return int(element.text.strip()) * _UNITS.get(element.get("unit", "").lower(), 1)


def volume_is_file(xml: str) -> bool:
    """False for the subdirectories a dir pool lists as volumes of type 'dir'."""
    return ET.fromstring(xml).get("type", "file") not in ("dir", "netdir")


def volume_info_from_xml(xml: str) -> VolumeInfo:
    """A volume's XML (virStorageVolGetXMLDesc) as VolumeInfo."""
    volume = ET.fromstring(xml)
    target_format = volume.find("./target/format")
    return VolumeInfo(
        name=volume.findtext("name", ""),
        path=volume.findtext("./target/path", "") or volume.findtext("key", ""),
        format=target_format.get("type", "raw") if target_format is not None else "raw",
        capacity_bytes=_bytes(volume, "capacity"),
        allocation_bytes=_bytes(volume, "allocation"),
        backing_path=volume.findtext("./backingStore/path", "") or "",
    )


# --- guest networks ------------------------------------------------------------------------------
def dhcp_host_xml(host: DhcpHost) -> str:
    attrs = {"mac": host.mac.lower(), "ip": host.ip}
    if host.name:
        attrs["name"] = host.name
    return ET.tostring(ET.Element("host", attrs), encoding="unicode")


DNSMASQ_NS = "http://libvirt.org/schemas/network/dnsmasq/1.0"
NUBO_NETWORK_NS = "https://nubo.dev/xmlns/network/1"  # read by scripts/libvirt-network-hook
IGNORE_UNKNOWN = "dhcp-ignore=tag:!known"  # silence, not a refusal, for MACs without an entry
ET.register_namespace("dnsmasq", DNSMASQ_NS)
ET.register_namespace("nubo", NUBO_NETWORK_NS)


def network_xml(spec: NetworkSpec) -> str:
    """<network> with a bridge, the host's address, and DHCP for the listed hosts only (no range:
    libvirt then runs dnsmasq with a static-only range; dnsmasq ignores every other MAC, where
    libvirt's dhcp-authoritative would otherwise refuse a guest renewing another host's lease)."""
    net = ET.Element("network")
    _sub(net, "name", spec.name)
    if spec.uplink:
        metadata = _sub(net, "metadata")
        _sub(metadata, f"{{{NUBO_NETWORK_NS}}}uplink", dev=spec.uplink)
    if spec.mode == "nat":
        forward = _sub(net, "forward", mode="nat")
        _sub(forward, "nat")
    elif spec.mode == "open":
        _sub(net, "forward", mode="open")
    _sub(net, "bridge", name=spec.bridge, stp="on", delay="0")
    if spec.domain:
        _sub(net, "domain", name=spec.domain, localOnly="yes")
    ip = _sub(net, "ip", address=spec.address, netmask=spec.netmask)
    dhcp = _sub(ip, "dhcp")
    for host in spec.hosts:
        dhcp.append(ET.fromstring(dhcp_host_xml(host)))
    options = _sub(net, f"{{{DNSMASQ_NS}}}options")
    if spec.router:
        _sub(options, f"{{{DNSMASQ_NS}}}option", value=f"dhcp-option=option:router,{spec.router}")
    _sub(options, f"{{{DNSMASQ_NS}}}option", value=IGNORE_UNKNOWN)
    return ET.tostring(net, encoding="unicode")


def domain_networks(xml: str) -> set[str]:
    """The libvirt networks a domain's NICs are plugged into."""
    return {source.get("network", "") for source in ET.fromstring(xml).findall("devices/interface/source")} - {""}


def bridge_ports(xml: str) -> set[str]:
    """The interfaces enslaved to a bridge, from its <interface type='bridge'> (libvirt's udev backend)."""
    return {port.get("name", "") for port in ET.fromstring(xml).findall("bridge/interface")} - {""}


def network_info_from_xml(xml: str, active: bool) -> NetworkInfo:
    root = ET.fromstring(xml)
    bridge = root.find("bridge")
    forward = root.find("forward")
    ip = root.find("ip")
    hosts = tuple(DhcpHost(mac=h.get("mac", "").lower(), ip=h.get("ip", ""), name=h.get("name", ""))
                  for h in root.findall("ip/dhcp/host"))
    uplink = root.find(f"metadata/{{{NUBO_NETWORK_NS}}}uplink")
    options = [o.get("value", "") for o in root.findall(f"{{{DNSMASQ_NS}}}options/{{{DNSMASQ_NS}}}option")]
    router = next((o.rpartition(",")[2] for o in options if o.startswith("dhcp-option=option:router,")), "")
    domain = root.find("domain")
    return NetworkInfo(name=root.findtext("name", ""), bridge=bridge.get("name", "") if bridge is not None else "",
                       active=active, hosts=hosts,
                       mode=forward.get("mode", "nat") if forward is not None else "isolated",
                       address=ip.get("address", "") if ip is not None else "",
                       netmask=ip.get("netmask", "") if ip is not None else "",
                       uplink=uplink.get("dev", "") if uplink is not None else "", router=router,
                       domain=domain.get("name", "") if domain is not None else "",
                       ignores_unknown=IGNORE_UNKNOWN in options)