"""A DHCP client that reports every server's answer, for tests on a shared guest segment.

    python dhcp_probe.py IFACE MAC [REQUESTED_IP]

Without REQUESTED_IP it broadcasts a DHCPDISCOVER; with it, a DHCPREQUEST in the INIT-REBOOT
state (no server identifier: what a rebooting guest sends for the address it had, and what an
authoritative server that does not know the guest answers with a DHCPNAK). For 4 seconds it
collects the answers and prints one JSON line each: {"type": "OFFER"|"ACK"|"NAK", "server": …,
"yiaddr": …}. Run it as root in the segment's network namespace (it binds UDP port 68 to IFACE)."""
from __future__ import annotations

import json
import secrets
import socket
import struct
import sys
import time

TYPES = {2: "OFFER", 5: "ACK", 6: "NAK"}


def packet(mac: bytes, xid: bytes, requested: str | None) -> bytes:
    header = struct.pack("!BBBB4sHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4),
                         bytes(4), mac.ljust(16, b"\0"), bytes(64), bytes(128))
    options = b"\x63\x82\x53\x63"
    if requested:
        options += bytes([53, 1, 3]) + bytes([50, 4]) + socket.inet_aton(requested)
    else:
        options += bytes([53, 1, 1])
    options += bytes([61, 7, 1]) + mac + b"\xff"
    return header + options


def answers(data: bytes, xid: bytes) -> dict | None:
    if len(data) < 240 or data[4:8] != xid or data[236:240] != b"\x63\x82\x53\x63":
        return None
    found = {"yiaddr": socket.inet_ntoa(data[16:20])}
    i = 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        code, length = data[i], data[i + 1]
        value = data[i + 2:i + 2 + length]
        if code == 53:
            found["type"] = TYPES.get(value[0], str(value[0]))
        elif code == 54:
            found["server"] = socket.inet_ntoa(value)
        i += 2 + length
    return found


def main(iface: str, mac_text: str, requested: str | None = None) -> None:
    mac = bytes.fromhex(mac_text.replace(":", ""))
    xid = secrets.token_bytes(4)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    sock.bind(("0.0.0.0", 68))
    sock.sendto(packet(mac, xid, requested), ("255.255.255.255", 67))
    deadline = time.monotonic() + 4
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        found = answers(data, xid)
        if found:
            print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
