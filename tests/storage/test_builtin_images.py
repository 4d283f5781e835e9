"""The built-in images (storage/images/builtin.py): they build from Debian packages, the build is
idempotent, and both really boot under qemu:///system (software emulation, as this machine's KVM
cannot run guests): the qcow2 template from a virtio disk and the live ISO from a CD-ROM, each with
an OpenStack config drive whose hostname, root password and SSH key the guest applies.

Never skipped: a missing Debian package or a stopped libvirtd fails with the command that fixes it.
The images are built once per session into settings.VAR_DIR/images (the place `manage.py
build_builtin_images` uses), which costs nothing when they are up to date; guests boot from a qcow2
overlay in the test's tmp dir, so the built image is never written. Domains are named
nubo-test-<random>-… and removed afterwards, failed or not.
"""
from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import libvirt
import pytest
from django.conf import settings

from compute.drivers import DiskSpec, DomainSpec, DomainState, DriverError, HypervisorDriver, NicSpec, get_driver
from storage.images import builtin
from storage.images.builtin import BuildError

QEMU = "qemu:///system"
ROOT = Path(__file__).resolve().parents[2]
HOSTNAME = "nubo-test-vm"
PASSWORD = "Nubo-test-pa$$"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINubotestkeyNubotestkeyNubotestkey0 nubo@test"
BOOT_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def images() -> dict:
    try:
        return builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    except BuildError as exc:
        pytest.fail(exc.message, pytrace=False)


# --- the build ----------------------------------------------------------------------------------


def test_template_is_a_standalone_qcow2(images: dict) -> None:
    template = images["images"]["template"]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", template["path"]], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2"
    assert "backing-filename" not in info and "data-file" not in info.get("format-specific", {}).get("data", {})
    assert info["virtual-size"] == template["virtual_size"] == 64 << 20
    assert template["format"] == "QCOW2" and template["name"] == "Tiny Linux"
    assert template["physical_size"] == Path(template["path"]).stat().st_size < 32 << 20  # kept small


def test_iso_is_an_el_torito_iso9660_image(images: dict) -> None:
    iso = images["images"]["iso"]
    with open(iso["path"], "rb") as image:
        image.seek(0x8001)
        assert image.read(5) == b"CD001"  # the primary volume descriptor
        image.seek(0x8801)
        assert image.read(5) == b"CD001"  # the El Torito boot record
    assert iso["format"] == "ISO" and iso["physical_size"] < 32 << 20


def test_manifest_records_what_was_built_from_what(images: dict) -> None:
    on_disk = builtin.read_manifest(images["out_dir"])
    assert on_disk is not None and on_disk["fingerprint"] == images["fingerprint"]
    packages = on_disk["packages"]
    assert any(name.startswith("linux-image-") for name in packages) and "busybox-static" in packages
    assert set(builtin.REQUIRED_PACKAGES) <= set(packages)
    for kind in ("template", "iso"):
        image = on_disk["images"][kind]
        assert set(image) >= {"name", "file", "format", "virtual_size", "physical_size", "sha256"}
        assert builtin._sha256(Path(images["out_dir"]) / image["file"]) == image["sha256"]
    assert on_disk["built_at"] and on_disk["marker"] == builtin.MARKER
    modules = on_disk["kernel"]["modules"]
    for dependency, module in (("virtio", "virtio_pci"), ("virtio_ring", "virtio_blk"), ("failover", "virtio_net"),
                               ("libata", "ata_piix"), ("cdrom", "sr_mod"), ("scsi_mod", "sr_mod"), ("fat", "vfat")):
        assert modules.index(dependency) < modules.index(module)


def test_a_second_build_finds_the_images_up_to_date(images: dict) -> None:
    paths = [Path(image["path"]) for image in images["images"].values()]
    before = [path.stat().st_mtime_ns for path in paths]
    started = time.monotonic()
    again = builtin.build(images["out_dir"], cache_dir=settings.VAR_DIR / "cache" / "images")
    assert again["built"] is False and again["fingerprint"] == images["fingerprint"]
    assert [path.stat().st_mtime_ns for path in paths] == before
    assert time.monotonic() - started < 2.0


def test_a_changed_input_changes_the_fingerprint(images: dict) -> None:
    inputs = builtin._resolve_inputs(Path(settings.VAR_DIR / "cache" / "images"))
    assert builtin._fingerprint(inputs) == images["fingerprint"]
    assert builtin._fingerprint({**inputs, "sources_sha256": "0" * 64}) != images["fingerprint"]
    newer_kernel = {**inputs, "kernel": {**inputs["kernel"], "version": inputs["kernel"]["version"] + "+1"}}
    assert builtin._fingerprint(newer_kernel) != images["fingerprint"]


def test_missing_tools_fail_with_the_apt_get_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(builtin, "_PATH", str(tmp_path))  # no program is found there
    with pytest.raises(BuildError, match=r"apt-get install -y --no-install-recommends .*dosfstools.*xorriso"):
        builtin.build(tmp_path / "out")


def test_make_installs_the_packages_the_build_needs() -> None:
    script = (ROOT / "scripts" / "setup-system.sh").read_text()
    body = re.search(r"^component_images\(\) \{\n(.*?)^\}", script, re.S | re.M)
    assert body, "scripts/setup-system.sh has no component_images"
    for package in builtin.REQUIRED_PACKAGES:
        assert re.search(rf"\b{re.escape(package)}\b", body.group(1)), f"component_images does not install {package}"
    assert re.search(r"^ALL_COMPONENTS=\(.*\bimages\b", script, re.M)
    makefile = (ROOT / "Makefile").read_text()
    for components in ("RUN_COMPONENTS", "TEST_COMPONENTS"):
        assert re.search(rf"^{components} := .*\bimages\b", makefile, re.M), f"{components} lacks images"


def test_config_drive_readers(images: dict, tmp_path: Path) -> None:
    """The guest's config drive parsers, run by the image's own busybox on this machine."""
    busybox = tmp_path / "busybox"
    cache = Path(settings.VAR_DIR / "cache" / "images")
    busybox.write_bytes(builtin._unpack_file(next(cache.glob("busybox-static_*.deb")), "./bin/busybox"))
    busybox.chmod(0o755)
    openstack = _openstack_drive_tree(tmp_path / "openstack", admin_pass='p"a\\ss/w:rd')
    nocloud = tmp_path / "nocloud"
    nocloud.mkdir()
    (nocloud / "meta-data").write_text("instance-id: iid-1\nlocal-hostname: \"nc-host\"\n")
    (nocloud / "user-data").write_text("#cloud-config\npassword: 'pa ss'\nssh_authorized_keys:\n"
                                       "  - ssh-ed25519 AAAA one@x\n  - \"ssh-rsa BBBB two@y\"\nruncmd:\n  - echo hi\n")
    lib = builtin.INITRAMFS_DIR / "lib" / "nubo"
    script = (f'json_awk={lib}/json.awk ssh_keys={tmp_path}/keys; . {lib}/config-drive.sh; '
              f'for d in "$@"; do : >"$ssh_keys"; case "$d" in *nocloud) read_nocloud "$d" ;; '
              f'*) read_openstack "$d" ;; esac; echo "[$new_hostname][$new_password]"; cat "$ssh_keys"; done')
    result = subprocess.run([str(busybox), "sh", "-c", script, "sh", str(openstack), str(nocloud)],
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        f'[{HOSTNAME}][p"a\\ss/w:rd]', SSH_KEY, "ssh-rsa AAAAB3 other@host", SSH_KEY,
        "[nc-host][pa ss]", "ssh-ed25519 AAAA one@x", "ssh-rsa BBBB two@y",
    ]


# --- booting them -------------------------------------------------------------------------------


@pytest.fixture
def qemu() -> Iterator[tuple[HypervisorDriver, str]]:
    """A connection to this machine's qemu:///system and a nubo-test-… name prefix; every domain
    carrying the prefix is destroyed and undefined afterwards."""
    driver = get_driver(QEMU)
    try:
        driver.connect()
    except DriverError as exc:
        pytest.fail(f"{exc.message}\nBooting the built-in images needs libvirtd: `make test` starts it, or run "
                    f"scripts/services.sh start-libvirtd as root.", pytrace=False)
    prefix = f"nubo-test-{secrets.token_hex(3)}-"
    try:
        yield driver, prefix
    finally:
        for domain in driver.list_domains():
            if domain.name.startswith(prefix):
                driver.stop_domain(domain.name, force=True)
                driver.undefine_domain(domain.name)
        driver.close()


def _openstack_drive_tree(root: Path, admin_pass: str = PASSWORD) -> Path:
    latest = root / "openstack" / "latest"
    latest.mkdir(parents=True)
    meta = {"uuid": str(uuid.uuid4()), "hostname": HOSTNAME, "name": HOSTNAME, "admin_pass": admin_pass,
            "public_keys": {"nubo": SSH_KEY, "other": "ssh-rsa AAAAB3 other@host"},
            "keys": [{"name": "nubo", "type": "ssh", "data": SSH_KEY}], "launch_index": 0, "meta": {"a": True}}
    (latest / "meta_data.json").write_text(json.dumps(meta))
    return root


def _config_drive(tmp_path: Path) -> Path:
    """An ISO labelled config-2 in OpenStack's layout, as Nubo's instances will attach one."""
    tree = _openstack_drive_tree(tmp_path / "config-drive")
    iso = tmp_path / "config-drive.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), "-V", "config-2", "-J", "-R", str(tree)],
                   check=True, capture_output=True)
    return iso


class SerialConsole:
    """The guest's first serial port, through libvirt's console stream (the API `virsh console`
    uses), opened right after start, long before the kernel writes to it. A thread reads the
    stream (blocking: a non-blocking libvirt stream needs an event loop, which this process has
    not registered); wait_for() watches what it collected."""

    def __init__(self, driver: HypervisorDriver, name: str) -> None:
        conn = driver.conn  # type: ignore[attr-defined]
        self.stream = conn.newStream(0)
        conn.lookupByName(name).openConsole(None, self.stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        self.output = b""
        self.closed = ""
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"console-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = self.stream.recv(65536)
            except libvirt.libvirtError as exc:
                chunk, self.closed = b"", str(exc)
            with self._changed:
                if not isinstance(chunk, bytes) or not chunk:
                    self.closed = self.closed or "end of stream"
                    self._changed.notify_all()
                    return
                self.output += chunk
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout_s: float, since: int = 0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern.encode())
        with self._changed:
            while True:
                match = regex.search(self.output, since)
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    why = f"the console closed ({self.closed})" if self.closed else f"not within {timeout_s:g} s"
                    shown = self.output.decode(errors="replace")[-3000:]
                    pytest.fail(f"no {pattern!r} on the serial console: {why}; it showed:\n{shown}")
                self._changed.wait(min(left, 1.0))

    def send(self, text: str) -> None:
        self.stream.send(text.encode())

    def close(self) -> None:
        try:
            self.stream.abort()
        except libvirt.libvirtError:
            pass
        self._reader.join(timeout=5)


def _boot(driver: HypervisorDriver, spec: DomainSpec) -> tuple[SerialConsole, float]:
    driver.define_domain(spec)
    driver.start_domain(spec.name)
    return SerialConsole(driver, spec.name), time.monotonic()


def _check_the_config_drive_was_applied(console: SerialConsole, since: int) -> None:
    """Log in on the serial console's auto-login shell and read what the config drive set."""
    console.wait_for(rf"root@{HOSTNAME}:[^\r\n]*# ", 15, since)
    mark = len(console.output)
    console.send("cat /root/.ssh/authorized_keys; grep -c '^root:\\$6\\$' /etc/shadow; echo NUBO-CHECK-\"\"DONE\r")
    done = console.wait_for(r"NUBO-CHECK-DONE", 15, mark)
    shown = console.output[mark : done.start()].decode(errors="replace")
    assert SSH_KEY in shown and "ssh-rsa AAAAB3 other@host" in shown
    assert shown.count(SSH_KEY) == 1  # given twice (public_keys and keys), written once
    assert re.search(r"^1\r?$", shown, re.M), f"root's password was not set from admin_pass:\n{shown}"


def _spec(name: str, *disks: DiskSpec, boot: tuple[str, ...], nics: tuple = ()) -> DomainSpec:
    return DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=builtin.MIN_MEMORY_MIB, emulation="qemu",
                      machine="pc", disks=disks, nics=nics, boot=boot, vnc=False, serial_console=True)


@pytest.mark.slow_qemu
def test_template_boots_and_applies_the_config_drive(images: dict, qemu: tuple, tmp_path: Path) -> None:
    driver, prefix = qemu
    template = Path(images["images"]["template"]["path"])
    template_mtime = template.stat().st_mtime_ns
    overlay = tmp_path / "root.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(template), "-F", "qcow2", str(overlay)],
                   check=True)
    spec = _spec(prefix + "tiny", DiskSpec(target="vda", path=str(overlay), format="qcow2", bus="virtio"),
                 DiskSpec(target="hdc", path=str(_config_drive(tmp_path)), format="raw", device="cdrom", bus="ide"),
                 boot=("hd",), nics=(NicSpec(mac="52:54:00:6e:75:62"),))  # QEMU user-mode net: DHCP gives .15

    console, started = _boot(driver, spec)
    try:
        marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=(\S+)\r?\n", BOOT_TIMEOUT_S)
        boot_seconds = time.monotonic() - started
        assert marker.groups() == (HOSTNAME.encode(), b"10.0.2.15", b"config-2")  # the address came by DHCP
        _check_the_config_drive_was_applied(console, marker.end())
    finally:
        console.close()
    print(f"template: start -> marker {boot_seconds:.1f} s")

    stopping = time.monotonic()
    driver.stop_domain(spec.name, timeout_s=30)  # ACPI power button -> busybox acpid -> poweroff
    assert driver.domain_state(spec.name).state == DomainState.SHUTOFF
    print(f"template: graceful stop {time.monotonic() - stopping:.1f} s")
    assert template.stat().st_mtime_ns == template_mtime  # the guest wrote to its overlay only


@pytest.mark.slow_qemu
def test_iso_boots_from_the_cdrom(images: dict, qemu: tuple, tmp_path: Path) -> None:
    driver, prefix = qemu
    iso = images["images"]["iso"]["path"]  # a CD-ROM is read-only: the built file itself
    spec = _spec(prefix + "tiny-iso",
                 DiskSpec(target="hdc", path=iso, format="raw", device="cdrom", bus="ide"),
                 DiskSpec(target="hdd", path=str(_config_drive(tmp_path)), format="raw", device="cdrom", bus="ide"),
                 boot=("cdrom",))

    console, started = _boot(driver, spec)
    try:
        marker = console.wait_for(r"NUBO-TINY-LINUX READY \(iso\) hostname=(\S+) ip=(\S+) config=(\S+)\r?\n",
                                  BOOT_TIMEOUT_S)
        boot_seconds = time.monotonic() - started
        assert marker.groups() == (HOSTNAME.encode(), b"none", b"config-2")
        console.wait_for(rf"root@{HOSTNAME}:[^\r\n]*# ", 15, marker.end())
    finally:
        console.close()
    print(f"iso: start -> marker {boot_seconds:.1f} s")
