"""Hosts of their own on this machine, for tests of zones whose hosts share one guest segment.

One libvirtd cannot be two hosts: a zone's hosts all name their guest bridge nuboz<zone>. So each
`NetnsHost` is a libvirtd (and virtlogd) of its own, started in a network namespace of its own
(`ip netns exec`, which also gives it a mount namespace and that namespace's /sys) with private
/run, /etc/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt bound from a
directory under /tmp, Nubo's network hook installed as a real host has it, and its socket reachable
from the test process as qemu:///system?socket=…: to Nubo, a separate KVM host with its own
network stack, bridges, dnsmasq and QEMU processes. A `Segment` is the layer-2 network between
them: a bridge in a namespace of its own that also holds the pod's gateway address (the
segment's router), with one veth pair per host whose host end is named like a real uplink."""
from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

from compute.drivers import DriverError, get_driver

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "scripts" / "libvirt-network-hook"
UPLINK = "nuboup0"


def run(*args: str, check: bool = True, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


class NetnsHost:
    def __init__(self, tag: str):
        self.netns = f"nubo-{tag}"
        self.dir = Path(f"/tmp/nubo-netns-{tag}")
        self.uri = f"qemu:///system?socket={self.dir}/run/libvirt-sock"

    def start(self) -> "NetnsHost":
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("run", "lib/qemu", "lib/dnsmasq", "lib/network", "lib/images", "log/qemu", "cache"):
            (self.dir / sub).mkdir(parents=True)
        shutil.copytree("/etc/libvirt", self.dir / "etc", symlinks=True,
                        ignore=shutil.ignore_patterns("hooks", "qemu", "storage", "nwfilter"))
        (self.dir / "etc" / "hooks" / "network.d").mkdir(parents=True)
        shutil.copy2(HOOK, self.dir / "etc" / "hooks" / "network.d" / "nubo")
        run("ip", "netns", "add", self.netns)
        d = self.dir
        script = (f"mount -t tmpfs tmpfs /run && mkdir /run/libvirt /run/lock && mount --bind {d}/run /run/libvirt && "
                  f"mount --bind {d}/etc /etc/libvirt && mount --bind {d}/lib /var/lib/libvirt && "
                  f"mount --bind {d}/log /var/log/libvirt && mount --bind {d}/cache /var/cache/libvirt && "
                  f"ip link set lo up && "
                  f"LIBVIRT_LOG_OUTPUTS=3:file:/var/log/libvirt/virtlogd.log virtlogd -d && "
                  f"LIBVIRT_LOG_OUTPUTS=3:file:/var/log/libvirt/libvirtd.log libvirtd -d")
        run("ip", "netns", "exec", self.netns, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
        deadline = time.monotonic() + 30
        while True:
            try:
                with get_driver(self.uri) as driver:
                    driver.ping()
                return self
            except DriverError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"libvirtd in {self.netns} did not answer: {self.log()}") from None
                time.sleep(0.2)

    def log(self) -> str:
        path = self.dir / "log" / "libvirtd.log"
        return path.read_text()[-2000:] if path.exists() else "(no log)"

    def sh(self, command: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command in the host's network namespace (not its mount namespace)."""
        return run("ip", "netns", "exec", self.netns, "sh", "-c", command, check=check, timeout=timeout)

    def dnsmasq_file(self, name: str) -> str:
        path = self.dir / "lib" / "dnsmasq" / name
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        pids = run("ip", "netns", "pids", self.netns, check=False).stdout.split()
        if pids:
            run("kill", "-KILL", *pids, check=False)
            deadline = time.monotonic() + 10
            while run("ip", "netns", "pids", self.netns, check=False).stdout.split() and time.monotonic() < deadline:
                time.sleep(0.1)
        run("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Segment:
    """A layer-2 segment in namespace nubo-<tag>-seg: bridge `seg`, holding `gateway`."""

    def __init__(self, tag: str, gateway: str, prefix: int = 24):
        self.tag = tag
        self.netns = f"nubo-{tag}-seg"
        self.gateway, self.prefix = gateway, prefix
        self.ports = 0

    def start(self) -> "Segment":
        run("ip", "netns", "add", self.netns)
        self.ip("link", "set", "lo", "up")
        self.ip("link", "add", "seg", "type", "bridge")
        self.ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", "seg")
        self.ip("link", "set", "seg", "up")
        return self

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("ip", "-n", self.netns, *args, check=check)

    def sh(self, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", self.netns, "sh", "-c", command, check=check, timeout=timeout)

    def plug(self, host: NetnsHost, name: str = UPLINK) -> None:
        """A veth pair: one end the host's uplink `name`, the other a port of the segment's bridge."""
        self.ports += 1
        ours, theirs = f"nb{self.tag[:6]}s{self.ports}", f"nb{self.tag[:6]}h{self.ports}"
        run("ip", "link", "add", ours, "type", "veth", "peer", "name", theirs)
        run("ip", "link", "set", ours, "netns", self.netns)
        run("ip", "link", "set", theirs, "netns", host.netns)
        self.ip("link", "set", ours, "master", "seg", "up")
        run("ip", "-n", host.netns, "link", "set", theirs, "name", name)
        run("ip", "-n", host.netns, "link", "set", name, "up")

    def stop(self) -> None:
        run("ip", "netns", "del", self.netns, check=False)


def new_tag() -> str:
    return secrets.token_hex(3)
