"""Config drives built by storage.configdrive: the ISO's label and files (read back by pycdlib and
by blkid/xorriso, as the guest's tools would), and the built-in Tiny Linux applying one built
this way when it boots under qemu:///system."""
from __future__ import annotations

import io
import json
import subprocess
import time
import uuid
from pathlib import Path

import pycdlib
import pytest

from compute.drivers import DiskSpec, NicSpec
from storage import configdrive
from storage.configdrive import ConfigDrive, NetworkInterface
from tests.storage.test_builtin_images import (  # noqa: F401  (fixtures)
    BOOT_TIMEOUT_S, HOSTNAME, PASSWORD, SSH_KEY, _boot, _check_the_config_drive_was_applied, _spec, images, qemu)


def _read(iso_path: Path, path: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/" + path)
        return out.getvalue()
    finally:
        iso.close()


def test_the_drive_carries_the_openstack_and_cloudstack_layouts(tmp_path):
    drive = ConfigDrive(uuid=str(uuid.uuid4()), hostname="web-1", public_keys={"mine": SSH_KEY}, password="pw-1",
                        user_data=b"#cloud-config\nruncmd: [echo hi]\n", zone="z1",
                        interfaces=(NetworkInterface(mac="52:54:00:00:00:01", ip="10.1.0.5", netmask="255.255.255.0",
                                                     gateway="10.1.0.1", dns=("10.1.0.1",)),))
    iso = configdrive.build(drive, tmp_path / "config.iso")
    label = subprocess.run(["blkid", "-o", "value", "-s", "LABEL", str(iso)], capture_output=True, text=True).stdout
    assert label.strip() == "config-2"
    meta = json.loads(_read(iso, "openstack/latest/meta_data.json"))
    assert (meta["uuid"], meta["hostname"], meta["admin_pass"]) == (drive.uuid, "web-1", "pw-1")
    assert meta["public_keys"] == {"mine": SSH_KEY} and meta["keys"][0]["data"] == SSH_KEY
    assert _read(iso, "openstack/latest/user_data") == drive.user_data
    assert _read(iso, "cloudstack/userdata/user_data.txt") == drive.user_data
    assert _read(iso, "cloudstack/password/vm_password.txt") == b"pw-1"
    network = json.loads(_read(iso, "openstack/latest/network_data.json"))
    assert network["links"][0]["ethernet_mac_address"] == "52:54:00:00:00:01"
    assert network["networks"][0]["ip_address"] == "10.1.0.5"
    assert network["networks"][0]["routes"][0]["gateway"] == "10.1.0.1"
    listing = subprocess.run(["xorriso", "-indev", str(iso), "-find", "/", "-type", "f"], capture_output=True,
                             text=True).stdout
    assert "'/openstack/latest/meta_data.json'" in listing  # the long names, as a Linux guest mounts them
    assert not list(tmp_path.glob("*.part"))


def test_without_password_or_user_data_those_files_are_absent(tmp_path):
    iso = configdrive.build(ConfigDrive(uuid=str(uuid.uuid4()), hostname="h"), tmp_path / "c.iso")
    names = set(configdrive.files(ConfigDrive(uuid="u", hostname="h")))
    assert "cloudstack/password/vm_password.txt" not in names and "openstack/latest/user_data" not in names
    network = json.loads(_read(iso, "openstack/latest/network_data.json"))
    assert network == {"links": [], "networks": [], "services": []}


@pytest.mark.slow_qemu
def test_tiny_linux_applies_a_drive_built_here(images: dict, qemu: tuple, tmp_path: Path) -> None:
    driver, prefix = qemu
    overlay = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", images["images"]["template"]["path"], "-F",
                    "qcow2", str(overlay)], check=True)
    drive = configdrive.build(ConfigDrive(uuid=str(uuid.uuid4()), hostname=HOSTNAME, password=PASSWORD,
                                          public_keys={"nubo": SSH_KEY, "other": "ssh-rsa AAAAB3 other@host"}),
                                 tmp_path / "config.iso")
    spec = _spec(prefix + "cd", DiskSpec(target="vda", path=str(overlay), format="qcow2", bus="virtio"),
                 DiskSpec(target="hdc", path=str(drive), format="raw", device="cdrom", bus="ide"),
                 boot=("hd",), nics=(NicSpec(mac="52:54:00:6e:75:64"),))
    console, started = _boot(driver, spec)
    try:
        marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=(\S+)\r?\n", BOOT_TIMEOUT_S)
        assert marker.group(1) == HOSTNAME.encode() and marker.group(3) == b"config-2"
        _check_the_config_drive_was_applied(console, marker.end())
    finally:
        console.close()
    print(f"config drive boot: start -> marker {time.monotonic() - started:.1f} s")
