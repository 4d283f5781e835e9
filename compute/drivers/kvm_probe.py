"""The KVM probe guest: a 64 KiB firmware image and the domain XML that boots it.

Why a boot and not a look at /dev/kvm: on nested hosts (this project's own machines among them,
see ../shared/notes/platform.md) /dev/kvm exists and libvirt's domain capabilities claim KVM, yet
KVM there is PVM: it runs the guest's firmware and mode switches in its instruction emulator, and
stops the guest with "KVM internal error … emulation failure" at the first instruction the emulator
cannot run (SSE arithmetic, which every real kernel executes early). So the probe boots a guest
that does exactly that, without a BIOS, a disk or any device but a serial port:

    reset vector -> long mode with paging -> 2^22 SSE2 adds -> "NUBO-KVM-OK" on the serial port
    -> reset (on_reboot=destroy ends the domain)

and reads the verdict from what the guest did: ended with the marker on its serial port = KVM
works; paused (QEMU status internal-error) = KVM cannot run a real guest; still running at the
deadline = KVM hung or crawls. Natively the guest needs milliseconds; the whole probe (pool, upload,
QEMU start, clean-up) under a second. The source is kvm_probe.S beside this file; the bytes below
are its assembly (as --32, objcopy -O binary), checked by tests/compute/test_kvm_probe_image.py.

No libvirt import here: LibvirtDriver.probe_kvm() runs it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

MARKER = b"NUBO-KVM-OK"
IMAGE_SIZE = 0x10000  # QEMU's pc machine wants a BIOS image of a multiple of 64 KiB

# kvm_probe.S, assembled: the payload at offset 0 (copied to 0x7c00 and run from RAM), the copy
# stub at 0xff00, the far jump at the reset vector 0xfff0; zeros elsewhere.
_PAYLOAD = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007cbf0010b90018fcf3abc70600100320c70600200330c706003083000f20e0660d20"
    "0600000f22e066b8001000000f22d866b9800000c00f32660d000100000f30660f0116c87c0f20c06625fbffff"
    "9f660d030000800f22c066ea6c7c0000080066b810008ed88ec08ed0660fefc0660f76c9b900004000660ffbc1"
    "ffc975f8bece7c00008a0684c0740a66baf803ee48ffc6ebf066baf90cb006eef4ebfd8db40000669000000000"
    "0000000000000000009a200000000000009200001700b07c00004e55424f2d4b564d2d4f4b0d0a"
)
_COPY_STUB = bytes.fromhex("fab800f08ed831c08ec031f6bf007cb90001fcf3a5ea007c0000")
_RESET_VECTOR = bytes.fromhex("ea00ff00f0")


def firmware_image() -> bytes:
    image = bytearray(IMAGE_SIZE)
    image[0 : len(_PAYLOAD)] = _PAYLOAD
    image[0xFF00 : 0xFF00 + len(_COPY_STUB)] = _COPY_STUB
    image[0xFFF0 : 0xFFF0 + len(_RESET_VECTOR)] = _RESET_VECTOR
    return bytes(image)


def probe_domain_xml(name: str, virt_type: str, firmware_path: str, serial_path: str) -> str:
    """A transient, diskless domain whose firmware is the probe image."""
    domain = ET.Element("domain", type=virt_type)
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = "16"
    ET.SubElement(domain, "vcpu").text = "1"
    os_ = ET.SubElement(domain, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_, "loader", type="rom").text = firmware_path
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(domain, event).text = "destroy"
    devices = ET.SubElement(domain, "devices")
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=serial_path)
    ET.SubElement(ET.SubElement(devices, "video"), "model", type="none")
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(domain, encoding="unicode")
