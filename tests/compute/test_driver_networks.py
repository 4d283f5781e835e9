"""Guest networks through the driver, on the Simulator and on this machine's qemu:///system: a
bridge with the host's address and a DHCP server that answers only the static entries Nubo adds
(no dynamic range), updated live without restarting the network. On qemu:///system the built-in
Tiny Linux boots on such a network and receives exactly the address listed for its MAC."""
from __future__ import annotations

import secrets
import subprocess
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from compute.drivers import DhcpHost, DiskSpec, DomainSpec, DriverError, NetworkSpec, NicSpec, get_driver
from compute.drivers.domain_xml import network_xml

SIMULATOR, QEMU = "test:///default", "qemu:///system"
URIS = [pytest.param(SIMULATOR, id="simulator"), pytest.param(QEMU, id="qemu")]


@pytest.fixture
def network_spec():
    tag = secrets.token_hex(3)
    third = 200 + secrets.randbelow(50)
    return NetworkSpec(name=f"nubo-test-{tag}-net", bridge=f"nubot{tag}", address=f"10.{third}.7.1",
                       netmask="255.255.255.0", hosts=(DhcpHost(mac="52:54:00:aa:00:01", ip=f"10.{third}.7.50",
                                                                 name="first"),))


@pytest.fixture
def driver_for():
    opened = []

    def open_(uri: str):
        driver = get_driver(uri)
        try:
            driver.connect()
        except DriverError as exc:
            pytest.fail(f"{exc.message}\nThese tests need libvirtd: `make test` starts it.", pytrace=False)
        opened.append(driver)
        return driver

    yield open_
    for driver in opened:
        for name in [n for n in _names(driver) if n.startswith("nubo-test-")]:
            driver.delete_network(name)
        driver.close()


def _names(driver) -> list[str]:
    return [n.name() for n in driver.conn.listAllNetworks(0)]


def _hostsfile(spec: NetworkSpec) -> str:
    path = Path(f"/var/lib/libvirt/dnsmasq/{spec.name}.hostsfile")
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("uri", URIS)
def test_a_network_with_static_leases_only(driver_for, network_spec, uri):
    driver = driver_for(uri)
    info = driver.ensure_network(network_spec)
    assert info.active and info.bridge == network_spec.bridge
    assert info.hosts == network_spec.hosts
    assert driver.ensure_network(network_spec) == info  # idempotent
    second = DhcpHost(mac="52:54:00:AA:00:02", ip=network_spec.address.rsplit(".", 1)[0] + ".51", name="second")
    driver.add_dhcp_host(network_spec.name, second)
    driver.add_dhcp_host(network_spec.name, second)  # again: nothing changes
    hosts = driver.network_info(network_spec.name).hosts
    assert [h.mac for h in hosts] == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"]
    moved = DhcpHost(mac=second.mac, ip=network_spec.address.rsplit(".", 1)[0] + ".52", name="second")
    driver.add_dhcp_host(network_spec.name, moved)  # the same MAC gets another address: replaced
    assert [h.ip for h in driver.network_info(network_spec.name).hosts][-1].endswith(".52")
    if uri == QEMU:
        live = _hostsfile(network_spec)
        assert "52:54:00:aa:00:02" in live and live.count("52:54:00:aa:00:02") == 1  # dnsmasq got it live
        conf = Path(f"/var/lib/libvirt/dnsmasq/{network_spec.name}.conf").read_text()
        assert "static" in conf  # no dynamic range: unknown MACs get nothing
    driver.remove_dhcp_host(network_spec.name, second.mac)
    driver.remove_dhcp_host(network_spec.name, second.mac)  # absent: fine
    assert [h.mac for h in driver.network_info(network_spec.name).hosts] == ["52:54:00:aa:00:01"]
    driver.delete_network(network_spec.name)
    driver.delete_network(network_spec.name)
    assert driver.network_info(network_spec.name) is None


@pytest.mark.parametrize("uri", URIS)
def test_updating_a_missing_network_says_so(driver_for, uri):
    driver = driver_for(uri)
    with pytest.raises(DriverError, match="nubo-test-missing is not defined"):
        driver.add_dhcp_host("nubo-test-missing", DhcpHost(mac="52:54:00:00:00:09", ip="10.9.9.9"))


def test_a_network_set_up_differently_is_redefined_unless_a_running_guest_uses_it(driver_for, network_spec):
    """A zone's networking changed (this host's address, its uplink) or a network made before
    Nubo ignored strangers: the next start redefines it, if no running guest is plugged in."""
    driver = driver_for(QEMU)
    old = network_xml(network_spec).replace('<dnsmasq:option value="dhcp-ignore=tag:!known" />', "")
    driver.conn.networkDefineXML(old).create()
    assert not driver.network_info(network_spec.name).ignores_unknown
    assert driver.ensure_network(network_spec).ignores_unknown
    moved = replace(network_spec, address=network_spec.address.rsplit(".", 1)[0] + ".2")
    assert driver.ensure_network(moved).address == moved.address
    assert "dhcp-ignore=tag:!known" in Path(f"/var/lib/libvirt/dnsmasq/{network_spec.name}.conf").read_text()
    guest = f"nubo-test-{secrets.token_hex(3)}"
    driver.define_domain(DomainSpec(name=guest, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=32, vnc=False,
                                    nics=(NicSpec(mac="52:54:00:aa:00:09", network=network_spec.name),)))
    try:
        driver.start_domain(guest)
        with pytest.raises(DriverError, match=f"stop its VMs \\({guest}\\) so Nubo can redefine it"):
            driver.ensure_network(network_spec)
        assert driver.network_info(network_spec.name).address == moved.address  # left as it was
    finally:
        driver.stop_domain(guest, force=True)
        driver.undefine_domain(guest)
    assert driver.ensure_network(network_spec).address == network_spec.address


def test_bad_bridge_names_are_refused():
    with pytest.raises(ValueError, match="1 to 15 characters"):
        NetworkSpec(name="n", bridge="a-bridge-name-too-long", address="10.0.0.1", netmask="255.255.255.0")


@pytest.mark.slow_qemu
def test_tiny_linux_gets_exactly_its_listed_address(driver_for, network_spec, tmp_path):
    from django.conf import settings

    from storage.images import builtin
    from tests.storage.test_builtin_images import BOOT_TIMEOUT_S, SerialConsole, _spec

    images = builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    driver = driver_for(QEMU)
    driver.ensure_network(network_spec)
    wanted = DhcpHost(mac="52:54:00:aa:00:07", ip=network_spec.address.rsplit(".", 1)[0] + ".57", name="tiny")
    driver.add_dhcp_host(network_spec.name, wanted)
    overlay = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", images["images"]["template"]["path"], "-F",
                    "qcow2", str(overlay)], check=True)
    name = f"nubo-test-{uuid.uuid4().hex[:6]}-net"
    spec = _spec(name, DiskSpec(target="vda", path=str(overlay), format="qcow2"), boot=("hd",),
                 nics=(NicSpec(mac=wanted.mac, network=network_spec.name),))
    driver.define_domain(spec)
    try:
        driver.start_domain(name)
        console = SerialConsole(driver, name)
        try:
            marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=(\S+)\r?\n",
                                      BOOT_TIMEOUT_S)
        finally:
            console.close()
        assert marker.group(2).decode() == wanted.ip
    finally:
        driver.stop_domain(name, force=True)
        driver.undefine_domain(name)
