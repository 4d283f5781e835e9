"""The contract every hypervisor driver keeps, run against each driver Nubo has:

- libvirt's test:///default (the Simulator hypervisor), always;
- the real qemu:///system of this machine, which `make test` starts (scripts/services.sh
  start-libvirtd). Not skipped when libvirtd is down: those tests fail and say how to start it.

Tests that boot QEMU are marked slow_qemu (seconds each; `-m "not slow_qemu"` leaves them out).
Everything a test creates is named nubo-test-<random>-… and removed afterwards, failed or not.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import re
import secrets
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterator

import pytest

from compute.drivers import (
    DiskSpec,
    DomainSpec,
    DomainState,
    DriverError,
    DriverNotFound,
    HypervisorDriver,
    StoragePoolSpec,
    cpu_utilisation,
    get_driver,
)
from compute.drivers.domain_xml import size_from_xml, volume_xml

SIMULATOR = "test:///default"
QEMU = "qemu:///system"
URIS = [pytest.param(SIMULATOR, id="simulator"), pytest.param(QEMU, id="qemu")]
BOOT_URIS = [pytest.param(SIMULATOR, id="simulator"), pytest.param(QEMU, id="qemu", marks=pytest.mark.slow_qemu)]

VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _open(uri: str) -> HypervisorDriver:
    driver = get_driver(uri)
    try:
        driver.connect()
    except DriverError as exc:
        pytest.fail(f"{exc.message}\nThe contract suite needs libvirtd: `make test` starts it, or run "
                    f"scripts/services.sh start-libvirtd as root.", pytrace=False)
    return driver


def _remove_everything_named(uri: str, prefix: str) -> None:
    with get_driver(uri) as driver:
        for domain in driver.list_domains():
            if domain.name.startswith(prefix):
                driver.stop_domain(domain.name, force=True)
                driver.undefine_domain(domain.name)
        for pool in driver.list_pools():
            if pool.spec.name.startswith(prefix):
                driver.delete_pool(pool.spec.name, force=True)


@pytest.fixture(params=URIS)
def driver(request: pytest.FixtureRequest) -> Iterator[HypervisorDriver]:
    d = _open(request.param)
    yield d
    d.close()


@pytest.fixture
def name(driver: HypervisorDriver) -> Iterator[Callable[[str], str]]:
    """name("pool") -> a unique nubo-test-… name; whatever carries one is removed afterwards."""
    prefix = f"nubo-test-{secrets.token_hex(3)}-"
    yield lambda what: prefix + what
    _remove_everything_named(driver.uri, prefix)


def _tiny_domain(name: str, **overrides: object) -> DomainSpec:
    """No disk, no NIC, 32 MiB, software emulation: boots SeaBIOS into "no bootable device"."""
    values: dict = dict(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=32, emulation="qemu",
                        boot=("hd",), vnc=False, serial_console=True)
    values.update(overrides)
    return DomainSpec(**values)


# --- host ---------------------------------------------------------------------------------------


def test_host_info_is_sane(driver: HypervisorDriver) -> None:
    info = driver.host_info()
    assert info.hostname
    assert info.cpu_sockets > 0 and info.cpu_cores > 0 and info.cpu_threads > 0 and info.cpu_mhz > 0
    assert info.memory_bytes > 0
    assert VERSION.match(info.libvirt_version), info.libvirt_version
    assert VERSION.match(info.hypervisor_version), info.hypervisor_version
    if driver.uri == SIMULATOR:
        assert info.hypervisor_type == "Simulator"
    else:  # this machine's own hardware
        assert info.hypervisor_type == "KVM"
        assert info.hostname == socket.gethostname()
        assert info.cpu_count == os.cpu_count()
        meminfo_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        assert info.memory_bytes == meminfo_kib * 1024
        assert info.arch == os.uname().machine


def test_ping_and_host_stats(driver: HypervisorDriver) -> None:
    driver.ping()
    first = driver.host_stats()
    second = driver.host_stats()
    assert 0 < first.memory_free_bytes <= first.memory_total_bytes
    assert first.memory_used_bytes == first.memory_total_bytes - first.memory_free_bytes
    utilisation = cpu_utilisation(first, second)
    assert utilisation is None or 0.0 <= utilisation <= 1.0


def test_methods_need_a_connection() -> None:
    with pytest.raises(DriverError, match="Not connected to test:///default"):
        get_driver(SIMULATOR).host_info()


# --- storage pools ------------------------------------------------------------------------------


def test_dir_pool_lifecycle(driver: HypervisorDriver, name: Callable[[str], str], tmp_path: Path) -> None:
    spec = StoragePoolSpec(name=name("pool"), kind="dir", path=str(tmp_path / "primary"))

    first = driver.ensure_pool(spec)
    again = driver.ensure_pool(spec)  # idempotent
    assert first.capacity_bytes > 0 and again.capacity_bytes > 0
    if driver.uri == QEMU:
        assert (tmp_path / "primary").is_dir()

    (listed,) = [p for p in driver.list_pools() if p.spec.name == spec.name]
    assert listed.active and listed.autostart
    assert listed.spec.kind == "dir" and Path(listed.spec.path) == tmp_path / "primary"

    stats = driver.pool_stats(spec.name)
    assert stats.capacity_bytes > 0
    assert 0 <= stats.available_bytes <= stats.capacity_bytes
    assert 0 <= stats.allocation_bytes <= stats.capacity_bytes

    driver.delete_pool(spec.name)
    assert spec.name not in [p.spec.name for p in driver.list_pools()]
    driver.delete_pool(spec.name)  # gone already: not an error
    with pytest.raises(DriverNotFound, match=spec.name):
        driver.pool_stats(spec.name)


def test_ensure_pool_refuses_a_name_taken_by_another_path(
    driver: HypervisorDriver, name: Callable[[str], str], tmp_path: Path
) -> None:
    spec = StoragePoolSpec(name=name("pool"), kind="dir", path=str(tmp_path / "a"))
    driver.ensure_pool(spec)
    other = StoragePoolSpec(name=spec.name, kind="dir", path=str(tmp_path / "b"))
    with pytest.raises(DriverError, match=r"already exists for directory .*/a; choose another name"):
        driver.ensure_pool(other)


def test_delete_pool_refuses_while_it_holds_volumes(
    driver: HypervisorDriver, name: Callable[[str], str], tmp_path: Path
) -> None:
    spec = StoragePoolSpec(name=name("pool"), kind="dir", path=str(tmp_path / "primary"))
    driver.ensure_pool(spec)
    driver.conn.storagePoolLookupByName(spec.name).createXML(volume_xml("disk-1.raw", 1 << 20), 0)

    with pytest.raises(DriverError, match=r"still holds 1 volume\(s\): disk-1.raw; delete them first"):
        driver.delete_pool(spec.name)
    assert spec.name in [p.spec.name for p in driver.list_pools()]

    driver.delete_pool(spec.name, force=True)
    assert spec.name not in [p.spec.name for p in driver.list_pools()]
    if driver.uri == QEMU:  # the pool definition goes, the data stays
        assert (tmp_path / "primary" / "disk-1.raw").exists()


# --- domains ------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", BOOT_URIS, indirect=True)
def test_domain_lifecycle(driver: HypervisorDriver, name: Callable[[str], str]) -> None:
    spec = _tiny_domain(name("vm"), vnc=True, vnc_password="s3cret")

    driver.define_domain(spec)
    status = driver.domain_state(spec.name)
    assert (status.state, status.uuid) == (DomainState.SHUTOFF, spec.uuid)

    driver.start_domain(spec.name)
    driver.start_domain(spec.name)  # running already: no-op
    assert driver.domain_state(spec.name).state == DomainState.RUNNING
    assert spec.name in [d.name for d in driver.list_domains()]
    if driver.uri == QEMU:
        console = driver.domain_console(spec.name)
        assert (console.protocol, console.host, console.password) == ("vnc", "127.0.0.1", "s3cret")
        assert console.port >= 5900
    else:  # the test driver allocates no VNC port: a simulated host names one where nothing listens
        console = driver.domain_console(spec.name)
        assert (console.protocol, console.host, console.port) == ("vnc", "127.0.0.1", 1)

    with pytest.raises(DriverError, match="is running .*; stop it before removing it"):
        driver.undefine_domain(spec.name)

    driver.stop_domain(spec.name, force=True)
    status = driver.domain_state(spec.name)
    assert (status.state, status.reason) == (DomainState.SHUTOFF, "destroyed")
    driver.stop_domain(spec.name, force=True)  # stopped already: no-op

    driver.undefine_domain(spec.name)
    with pytest.raises(DriverNotFound, match=spec.name):
        driver.domain_state(spec.name)
    assert spec.name not in [d.name for d in driver.list_domains()]
    driver.undefine_domain(spec.name)  # gone already: not an error


@pytest.mark.parametrize("driver", BOOT_URIS, indirect=True)
def test_graceful_stop(driver: HypervisorDriver, name: Callable[[str], str]) -> None:
    spec = _tiny_domain(name("vm"))
    driver.define_domain(spec)
    driver.start_domain(spec.name)
    if driver.uri == SIMULATOR:  # the test driver's guests obey the power button at once
        driver.stop_domain(spec.name, timeout_s=5)
        assert driver.domain_state(spec.name).state == DomainState.SHUTOFF
    else:  # a guest with no OS ignores it: the caller is told, and may force
        with pytest.raises(DriverError, match=r"did not shut down within 0.5 s .*stop it with force"):
            driver.stop_domain(spec.name, timeout_s=0.5)
        driver.stop_domain(spec.name, force=True)


def test_redefining_with_the_same_uuid_updates(driver: HypervisorDriver, name: Callable[[str], str]) -> None:
    spec = _tiny_domain(name("vm"))
    driver.define_domain(spec)
    driver.define_domain(dataclasses.replace(spec, memory_mib=48))
    assert "49152" in driver.conn.lookupByName(spec.name).XMLDesc(0)  # KiB


def _cdrom(driver: HypervisorDriver, name: str, target: str):
    """The <disk> of CD-ROM drive `target` in the domain's definition (what the next start uses)."""
    import libvirt

    xml = driver.conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    return next(d for d in ET.fromstring(xml).findall("devices/disk") if d.find("target").get("dev") == target)


@pytest.mark.parametrize("driver", BOOT_URIS, indirect=True)
def test_change_media_of_a_cdrom_drive(driver: HypervisorDriver, name: Callable[[str], str], tmp_path: Path) -> None:
    """attachIso / detachIso: an empty drive gets an ISO volume and loses it, running or not; the
    drive keeps its boot order."""
    pool = name("pool")
    driver.ensure_pool(StoragePoolSpec(name=pool, kind="dir", path=str(tmp_path / "pool")))
    iso = tmp_path / "x.iso"
    with iso.open("wb") as f:  # an ISO 9660 descriptor where libvirt and QEMU look for one
        f.truncate(1 << 20)
        f.seek(0x8001)
        f.write(b"CD001")
    driver.upload_volume(pool, "x.iso", str(iso), "raw")
    empty = DiskSpec(target="hdd", device="cdrom", bus="ide", format="raw", boot_order=1)
    spec = _tiny_domain(name("vm"), disks=(empty,))
    driver.define_domain(spec)
    loaded = dataclasses.replace(empty, pool=pool, volume="x.iso")

    driver.change_media(spec.name, loaded)  # defined, not running
    disk = _cdrom(driver, spec.name, "hdd")
    assert disk.find("source").attrib == {"pool": pool, "volume": "x.iso"} and disk.find("boot").get("order") == "1"
    driver.change_media(spec.name, empty)
    assert _cdrom(driver, spec.name, "hdd").find("source") is None

    driver.start_domain(spec.name)
    if driver.uri == QEMU:
        # this guest has nothing to boot: its firmware probes the CD drive for its first seconds and
        # keeps closing the tray (a booted guest does not); change media once it has given up
        time.sleep(3)
    driver.change_media(spec.name, loaded)  # running: the guest sees it at once (QEMU), and the definition
    assert _cdrom(driver, spec.name, "hdd").find("source").get("volume") == "x.iso"
    if driver.uri == QEMU:
        live = ET.fromstring(driver.conn.lookupByName(spec.name).XMLDesc(0))
        assert live.find("devices/disk/source").get("volume") == "x.iso"
    driver.change_media(spec.name, empty)
    assert _cdrom(driver, spec.name, "hdd").find("source") is None
    if driver.uri == QEMU:
        live = ET.fromstring(driver.conn.lookupByName(spec.name).XMLDesc(0))
        assert live.find("devices/disk/source") is None or not live.find("devices/disk/source").attrib.get("volume")

    with pytest.raises(DriverError, match="has no CD-ROM drive hdc"):
        driver.change_media(spec.name, dataclasses.replace(loaded, target="hdc"))
    with pytest.raises(DriverNotFound):
        driver.change_media(name("missing"), loaded)
    driver.stop_domain(spec.name, force=True)
    driver.undefine_domain(spec.name)
    driver.delete_volume(pool, "x.iso")


@pytest.mark.parametrize("driver", BOOT_URIS, indirect=True)
def test_scale_a_running_domain_up(driver: HypervisorDriver, name: Callable[[str], str]) -> None:
    """scaleVirtualMachine: a domain defined with room to grow gets vCPUs (hot-plugged) and memory (a
    DIMM) while it runs, in the guest and in its definition; never down, never past its room; one
    defined without room does not grow. The DIMM hot-plug needs QEMU: libvirt's test driver has no
    device attach, so the Simulator's definition models it (and domain_size reads that)."""
    import libvirt

    spec = _tiny_domain(name("vm"), vcpus=1, memory_mib=32, max_vcpus=2, max_memory_mib=512)
    driver.define_domain(spec)
    with pytest.raises(DriverError, match="it is not running"):
        driver.scale_domain(spec.name, 2, 32)
    driver.start_domain(spec.name)
    size = driver.domain_size(spec.name)
    assert (size.vcpus, size.max_vcpus, size.memory_mib, size.max_memory_mib, size.dimms) == (1, 2, 32, 512, 0)

    grown = driver.scale_domain(spec.name, 2, 160)
    assert (grown.vcpus, grown.memory_mib, grown.dimms) == (2, 160, 1)
    assert driver.domain_size(spec.name) == grown
    domain = driver.conn.lookupByName(spec.name)
    assert domain.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2  # the test driver's vCPUs change live too
    defined = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)  # what a restart by libvirt keeps
    assert size_from_xml(defined) == grown
    assert ET.fromstring(defined).find("devices/memory[@model='dimm']/target/size").text in ("128", str(128 << 10))
    if driver.uri == QEMU:  # the running guest has them: QEMU plugged a DIMM into a slot
        live = ET.fromstring(domain.XMLDesc(0))
        dimm = live.find("devices/memory[@model='dimm']")
        assert dimm.find("address").get("type") == "dimm" and dimm.find("alias").get("name") == "dimm0"
        assert int(live.findtext("memory")) == 160 << 10 and domain.info()[1] == 160 << 10

    with pytest.raises(DriverError, match="only grows"):
        driver.scale_domain(spec.name, 1, 160)
    with pytest.raises(DriverError, match="at most 2 vCPUs; stop and start it"):
        driver.scale_domain(spec.name, 3, 160)
    with pytest.raises(DriverError, match="at most 512 MiB"):
        driver.scale_domain(spec.name, 2, 1024)
    assert driver.domain_size(spec.name) == grown  # a refusal changes nothing

    fixed = _tiny_domain(name("fixed"))
    driver.define_domain(fixed)
    driver.start_domain(fixed.name)
    with pytest.raises(DriverError, match="at most 1 vCPUs and 32 MiB"):
        driver.scale_domain(fixed.name, 2, 64)
    with pytest.raises(DriverNotFound):
        driver.scale_domain(name("missing"), 2, 64)


def test_unknown_domain_is_not_found(driver: HypervisorDriver) -> None:
    with pytest.raises(DriverNotFound, match="nubo-test-missing"):
        driver.start_domain("nubo-test-missing")


# --- connection errors --------------------------------------------------------------------------


def test_unreachable_uri_says_what_to_check() -> None:
    with pytest.raises(DriverError) as caught:
        get_driver("qemu+tcp://127.0.0.1:1/system").connect()
    assert caught.value.message == (
        "Cannot connect to qemu+tcp://127.0.0.1:1/system: 127.0.0.1:1: Connection refused; "
        "is libvirtd running on 127.0.0.1 and listening there?"
    )


def test_local_libvirtd_down_names_the_fix() -> None:
    # The same connection as qemu:///system, to a socket where no libvirtd listens.
    with pytest.raises(DriverError, match=r"^Cannot connect to qemu:///system\?socket=/nonexistent/libvirt-sock: "
                                          r".*No such file or directory; is libvirtd running on this machine\? "
                                          r"Start it with: scripts/services.sh start-libvirtd"):
        get_driver("qemu:///system?socket=/nonexistent/libvirt-sock").connect()


def test_unsupported_uri() -> None:
    with pytest.raises(DriverError, match="unsupported URI; use qemu:///system"):
        get_driver("xen:///system").connect()


# --- KVM probe ----------------------------------------------------------------------------------


def _probe_leftovers() -> list[str]:
    with get_driver(QEMU) as d:
        names = [x.name for x in d.list_domains()] + [p.spec.name for p in d.list_pools()]
    return [n for n in names if n.startswith("nubo-kvm-probe-")] + glob.glob("/var/tmp/nubo-kvm-probe-*")


@pytest.mark.parametrize("driver", BOOT_URIS, indirect=True)
def test_probe_kvm_gives_a_verdict_with_a_reason(driver: HypervisorDriver) -> None:
    probe = driver.probe_kvm(timeout_s=20)
    assert probe.reason and probe.checked_at.tzinfo is not None
    if driver.uri == SIMULATOR:
        assert (probe.usable, probe.reason) == (False, "simulator")
        return
    assert _probe_leftovers() == []
    if not os.path.exists("/dev/kvm"):
        assert not probe.usable
    if os.path.isdir("/sys/module/kvm_pvm"):  # this project's machines: /dev/kvm exists, KVM does not work
        assert not probe.usable
        assert probe.reason == "KVM guest paused: emulation failure (nested PVM)"
        assert probe.seconds < 10


@pytest.mark.slow_qemu
def test_probe_guest_passes_under_software_emulation() -> None:
    """The same probe guest under TCG: proves the firmware reaches 64-bit code and reports success,
    so a failed KVM verdict is KVM's doing, not the probe's."""
    driver = _open(QEMU)
    try:
        probe = driver.run_probe_guest("qemu", timeout_s=20)
    finally:
        driver.close()
    assert probe.usable, probe.reason
    assert probe.reason.startswith("a 'qemu' guest ran 64-bit code in ")
    assert _probe_leftovers() == []
