"""Config drives: the small ISO (label config-2) an instance reads at boot for its hostname, SSH
keys, password, user data and network, in OpenStack's layout (what cloud-init and the built-in
Tiny Linux read) plus CloudStack's own directories (what CloudStack's config drive carries, for
images made for CloudStack).

    openstack/latest/meta_data.json     uuid, name, hostname, public_keys, keys, admin_pass, …
    openstack/latest/user_data          the user data, as given (when given)
    openstack/latest/network_data.json  links, networks (DHCP or a fixed address), services
    openstack/latest/vendor_data.json   {}
    cloudstack/userdata/user_data.txt   the user data
    cloudstack/password/vm_password.txt the password (when set)
    cloudstack/metadata/*.txt           instance-id, local-hostname, public-keys, …

Built in memory with pycdlib (ISO 9660 + Rock Ridge + Joliet, so every reader sees the long
names), written atomically. No Django here: callers pass plain values."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pycdlib

LABEL = "config-2"


@dataclass(frozen=True)
class NetworkInterface:
    mac: str
    ip: str = ""  # empty: DHCP
    netmask: str = ""
    gateway: str = ""
    dns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigDrive:
    uuid: str
    hostname: str
    public_keys: dict[str, str] = field(default_factory=dict)  # key pair name -> OpenSSH public key
    password: str = ""
    user_data: bytes = b""
    interfaces: tuple[NetworkInterface, ...] = ()
    zone: str = ""
    extra_metadata: dict[str, str] = field(default_factory=dict)


def _meta_data(drive: ConfigDrive) -> dict:
    meta: dict = {
        "uuid": drive.uuid, "name": drive.hostname, "hostname": drive.hostname, "launch_index": 0,
        "availability_zone": drive.zone, "public_keys": dict(drive.public_keys),
        "keys": [{"name": name, "type": "ssh", "data": key} for name, key in drive.public_keys.items()],
        "meta": dict(drive.extra_metadata),
    }
    if drive.password:
        meta["admin_pass"] = drive.password
    return meta


def _network_data(drive: ConfigDrive) -> dict:
    links, networks, services = [], [], []
    for index, nic in enumerate(drive.interfaces):
        link = f"eth{index}"
        links.append({"id": link, "type": "phy", "ethernet_mac_address": nic.mac, "mtu": 1500})
        if nic.ip:
            network = {"id": f"network{index}", "link": link, "type": "ipv4", "ip_address": nic.ip,
                       "netmask": nic.netmask, "routes": []}
            if nic.gateway:
                network["routes"].append({"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": nic.gateway})
            networks.append(network)
        else:
            networks.append({"id": f"network{index}", "link": link, "type": "ipv4_dhcp"})
        services.extend({"type": "dns", "address": address} for address in nic.dns)
    return {"links": links, "networks": networks, "services": services}


def files(drive: ConfigDrive) -> dict[str, bytes]:
    """Path (relative to the drive's root) -> content: what the ISO holds."""
    def as_json(value: object) -> bytes:
        return json.dumps(value, indent=2, sort_keys=True).encode()

    out = {
        "openstack/latest/meta_data.json": as_json(_meta_data(drive)),
        "openstack/latest/network_data.json": as_json(_network_data(drive)),
        "openstack/latest/vendor_data.json": b"{}",
        "cloudstack/metadata/instance-id.txt": drive.uuid.encode(),
        "cloudstack/metadata/vm-id.txt": drive.uuid.encode(),
        "cloudstack/metadata/local-hostname.txt": drive.hostname.encode(),
        "cloudstack/metadata/public-keys.txt": "\n".join(drive.public_keys.values()).encode(),
        "cloudstack/metadata/availability-zone.txt": drive.zone.encode(),
    }
    if drive.user_data:
        out["openstack/latest/user_data"] = drive.user_data
        out["cloudstack/userdata/user_data.txt"] = drive.user_data
    if drive.password:
        out["cloudstack/password/vm_password.txt"] = drive.password.encode()
    return out


def _iso_name(part: str, index: int, is_dir: bool) -> str:
    """An ISO 9660 level-1-safe name (the real name travels in Rock Ridge and Joliet)."""
    base = "".join(c for c in part.upper() if c.isalnum())[:6] or "F"
    base = f"{base}{index:02d}"[:8]
    return base if is_dir else f"{base}.;1"


def build(drive: ConfigDrive, dest: str | os.PathLike) -> Path:
    """Write the config drive ISO to `dest` (atomically) and return its path."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=LABEL)
    made: dict[str, str] = {"": ""}  # real directory path -> ISO path
    counter = 0
    try:
        for path, content in sorted(files(drive).items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                real = "/".join(parts[:depth])
                if real not in made:
                    counter += 1
                    iso_path = f"{made['/'.join(parts[:depth - 1])]}/{_iso_name(parts[depth - 1], counter, True)}"
                    iso.add_directory(iso_path, rr_name=parts[depth - 1], joliet_path="/" + real)
                    made[real] = iso_path
            counter += 1
            iso_path = f"{made['/'.join(parts[:-1])]}/{_iso_name(parts[-1], counter, False)}"
            iso.add_fp(io.BytesIO(content), len(content), iso_path, rr_name=parts[-1], joliet_path="/" + path)
        target = Path(dest)
        partial = target.with_name(target.name + ".part")
        iso.write(str(partial))
    finally:
        iso.close()
    os.replace(partial, target)
    return target
