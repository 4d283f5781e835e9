"""Host monitoring against a real libvirtd that this test stops and starts.

The machine's own libvirtd serves every other test, so this one starts a PRIVATE libvirtd: the
same binary, as root, in its own mount namespace (`unshare -m`) where /run/libvirt,
/var/lib/libvirt and /var/cache/libvirt are tmpfs (the last seeded with a copy of the QEMU
capabilities cache) and /etc/libvirt is a copy of the
machine's *.conf files without the domain/pool/network definitions — so its drivers take their own
locks and state and never touch the main daemon's. Its socket lives in a tmp directory outside the
namespace, reached as qemu:///system?socket=<tmp>/sock/libvirt-sock: the real QEMU driver, a real
daemon to kill. (qemu:///session is no way out: as root here it is answered without a daemon of its own.)

Checked: a reachable host stays Up and a management restart (old last-pinged) changes nothing;
stopped daemon -> Disconnected at once (event WARN, alert), still Disconnected on the next ping
(no duplicate), Alert once ping.interval x ping.timeout has passed (event ERROR, alert), Up again
after a restart (event INFO)."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from compute import jobs, services
from compute.models import Alert, Host
from portal import config
from portal.models import Event
from tests.e2e.procs import Proc
from tests.factories import admin_user

START_SCRIPT = """\
set -e
mount --make-rprivate /
for dir in /run/libvirt /var/lib/libvirt /var/cache/libvirt; do
    mkdir -p "$dir" && mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
cp -a "{root}/cache/." /var/cache/libvirt/
mount --bind "{root}/etc" /etc/libvirt
exec libvirtd -f /etc/libvirt/libvirtd.conf -p "{root}/libvirtd.pid"
"""


class PrivateLibvirtd:
    """A libvirtd of our own (see the module docstring), started and stopped on demand."""

    def __init__(self) -> None:
        # A short path: a unix socket's path must fit in 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="nubo-lv-"))
        (self.root / "etc").mkdir()
        # The main daemon's QEMU capabilities cache: without it the first call that needs them
        # (the KVM probe) waits ~9 s for QEMU to be interrogated again.
        if Path("/var/cache/libvirt/qemu").is_dir():
            shutil.copytree("/var/cache/libvirt/qemu", self.root / "cache" / "qemu")
        else:
            (self.root / "cache").mkdir()
        (self.root / "sock").mkdir()
        for conf in glob.glob("/etc/libvirt/*.conf"):
            shutil.copy(conf, self.root / "etc")
        with open(self.root / "etc" / "qemu.conf", "a") as fh:
            fh.write('\nstdio_handler = "file"\n')  # no virtlogd in the namespace
        (self.root / "etc" / "libvirtd.conf").write_text(
            f'unix_sock_dir = "{self.root}/sock"\nunix_sock_rw_perms = "0700"\n'
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\nlog_outputs = "3:stderr"\n')
        (self.root / "start.sh").write_text(START_SCRIPT.format(root=self.root))
        self.socket = self.root / "sock" / "libvirt-sock"
        self.uri = f"qemu:///system?socket={self.socket}"
        self.proc: Proc | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0) -> None:
        self.starts += 1
        self.proc = Proc(f"libvirtd-{self.starts}", ["unshare", "-m", "sh", str(self.root / "start.sh")],
                         env=dict(os.environ), log_dir=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"the private libvirtd exited:\n{self.proc.describe()}")
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(self.socket))
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the private libvirtd did not listen on {self.socket}:\n{self.proc.describe()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def libvirtd():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("libvirtd") is None:
        pytest.skip("a private libvirtd needs root, unshare and libvirtd")
    daemon = PrivateLibvirtd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def infra(cloud):
    admin = admin_user()
    zone = services.create_zone(admin, name="mon", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    pod = services.create_pod(admin, zone=zone, name="pod", gateway="10.3.0.1", netmask="255.255.255.0")
    kvm = services.add_cluster(admin, zone=zone, pod=pod, name="kvm", hypervisor="KVM")
    sim = services.add_cluster(admin, zone=zone, pod=pod, name="sim", hypervisor="Simulator")
    return SimpleNamespace(admin=admin, zone=zone, pod=pod, kvm=kvm, sim=sim)


def host_events(host: Host) -> list[Event]:
    return list(Event.objects.filter(type="HOST.STATE", resource_uuid=str(host.uuid)).order_by("id"))


def test_a_stopped_libvirtd_goes_disconnected_then_alert_and_comes_back(api, infra, libvirtd):
    if libvirtd.proc is None:
        libvirtd.start()
    host = services.add_host(infra.admin, zone=infra.zone, pod=infra.pod, cluster=infra.kvm, url=libvirtd.uri)
    sim = services.add_host(infra.admin, zone=infra.zone, pod=infra.pod, cluster=infra.sim, url="http://sim/s1",
                            hypervisor="Simulator")
    assert host.state == "Up" and host.kvm_checked is not None

    # A management restart: hosts last pinged long ago, but answering, stay Up without a word.
    Host.objects.update(last_pinged=timezone.now() - timedelta(hours=3))
    assert jobs.monitor_hosts() == {"up": 2, "down": 0}
    host.refresh_from_db()
    assert host.state == "Up" and host.disconnected is None
    assert host.last_pinged > timezone.now() - timedelta(minutes=1)
    assert host.memory_used > 0  # usage read from the host on each ping
    assert not Event.objects.filter(type="HOST.STATE").exists() and not Alert.objects.exists()

    # The daemon stops: Disconnected at the first missed ping, with the driver's sentence.
    libvirtd.stop()
    assert services.monitor_hosts() == {"up": 1, "down": 1}
    host.refresh_from_db()
    assert host.state == "Disconnected" and host.disconnected is not None
    assert str(libvirtd.socket) in host.state_reason and "is libvirtd running" in host.state_reason
    [event] = host_events(host)
    assert event.level == "WARN" and event.description.startswith(f"Host {host.name} is Disconnected: ")
    [alert] = Alert.objects.all()
    assert alert.type == 7 and alert.name == "ALERT.HOST" and "Disconnected" in alert.subject
    assert alert.cluster_id == infra.kvm.pk and alert.zone_id == infra.zone.pk
    sim.refresh_from_db()
    assert sim.state == "Up"

    listed = api("listHosts", id=str(host.uuid)).inner["host"][0]
    assert listed["state"] == "Disconnected" and listed["statereason"] == host.state_reason
    assert listed["disconnected"]
    alerts = api("listAlerts").inner
    assert alerts["count"] == 1 and alerts["alert"][0]["id"] == str(alert.uuid)
    assert alerts["alert"][0]["description"] == alert.subject

    # Missed again, but not for long: still Disconnected, no second event or alert.
    config.set_value("ping.interval", "5")
    config.set_value("ping.timeout", "1.0")
    first_miss = host.disconnected
    services.monitor_hosts()
    host.refresh_from_db()
    assert host.state == "Disconnected" and host.disconnected == first_miss
    assert len(host_events(host)) == 1 and Alert.objects.count() == 1

    # ping.interval x ping.timeout (5 s) after the first missed ping: Alert.
    Host.objects.filter(pk=host.pk).update(disconnected=timezone.now() - timedelta(seconds=6))
    services.monitor_hosts()
    host.refresh_from_db()
    assert host.state == "Alert"
    events = host_events(host)
    assert len(events) == 2 and events[-1].level == "ERROR" and " is Alert: " in events[-1].description
    assert Alert.objects.count() == 2 and "is Alert" in Alert.objects.first().subject
    assert api("listHosts", state="Alert").inner["host"][0]["id"] == str(host.uuid)
    assert api("listAlerts").inner["count"] == 2

    # libvirtd is back: Up at the next ping.
    libvirtd.start()
    assert services.monitor_hosts() == {"up": 2, "down": 0}
    host.refresh_from_db()
    assert (host.state, host.state_reason, host.disconnected) == ("Up", "", None)
    events = host_events(host)
    assert len(events) == 3 and events[-1].level == "INFO"
    assert events[-1].description == f"Host {host.name} is Up again (was Alert)"
    assert Alert.objects.count() == 2  # coming back is an event, not an alert

    # A host in maintenance is not pinged.
    services.prepare_host_for_maintenance(infra.admin, host)
    libvirtd.stop()
    assert services.monitor_hosts() == {"up": 1, "down": 0}
    host.refresh_from_db()
    assert host.state == "Up" and len(host_events(host)) == 3


def test_reconnect_of_an_unreachable_host_says_why(api, infra, libvirtd):
    if libvirtd.proc is None:
        libvirtd.start()
    host = services.add_host(infra.admin, zone=infra.zone, pod=infra.pod, cluster=infra.kvm, url=libvirtd.uri)
    libvirtd.stop()
    try:
        job = api.job(api("reconnectHost", id=str(host.uuid)))
        assert int(job["jobstatus"]) == 2 and int(job["jobresultcode"]) == 534, job
        text = job["jobresult"]["errortext"]
        assert text.startswith(f"Cannot reconnect host {host.name}: ") and str(libvirtd.socket) in text
        host.refresh_from_db()
        assert host.state == "Disconnected" and host.state_reason
        failed = Event.objects.filter(type="HOST.RECONNECT", level="ERROR").get()
        assert "Cannot reconnect host" in failed.description
    finally:
        libvirtd.start()
    job = api.job(api("reconnectHost", id=str(host.uuid)))
    assert int(job["jobstatus"]) == 1 and job["jobresult"]["host"]["state"] == "Up", job
