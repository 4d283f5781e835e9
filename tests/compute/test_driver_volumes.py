"""Volumes in storage pools ("template on primary" and copy-on-write root disks), part of the driver
contract: run against libvirt's test:///default (the Simulator: sizes and formats, no bytes) and the
real qemu:///system of this machine (bytes checked with qemu-img and qemu-io). Not skipped when
libvirtd is down: those tests fail and say how to start it (see test_driver_contract.py).

Every test gets a private dir pool nubo-test-<random>-pool under its tmp_path; the pool, its
volumes and the directory are removed afterwards, failed or not.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import struct
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import pytest

from compute.drivers import DriverError, DriverNotFound, HypervisorDriver, StoragePoolSpec, VolumeInfo, get_driver
from compute.drivers.domain_xml import volume_info_from_xml, volume_xml
from tests.compute.test_driver_contract import QEMU, SIMULATOR, URIS, _open

MIB = 1 << 20
HOSTILE = "x'\"><backingStore><path>/etc/shadow</path></backingStore><!--&amp;"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install Debian's qemu-utils", pytrace=False)
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _qemu_img_info(path: str) -> dict:
    return json.loads(_run(_tool("qemu-img"), "info", "--output=json", "-U", path))


def _reads_pattern(path: str, pattern: int, offset: int, length: int) -> bool:
    """qemu-io reads through the whole backing chain, as the guest would."""
    result = subprocess.run([_tool("qemu-io"), "-r", "-U", "-f", "qcow2", "-c",
                             f"read -P {pattern:#x} {offset} {length}", path], capture_output=True, text=True)
    return result.returncode == 0 and "Pattern verification failed" not in result.stdout + result.stderr


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(params=URIS)
def driver(request: pytest.FixtureRequest) -> Iterator[HypervisorDriver]:
    d = _open(request.param)
    yield d
    d.close()


@pytest.fixture
def pool(driver: HypervisorDriver, tmp_path: Path) -> Iterator[str]:
    """A private, running dir pool; afterwards its volumes (clones first), the pool and the directory go."""
    name = f"nubo-test-{secrets.token_hex(3)}-pool"
    path = tmp_path / "pool"
    driver.ensure_pool(StoragePoolSpec(name=name, kind="dir", path=str(path)))
    try:
        yield name
    finally:
        with get_driver(driver.uri) as cleaner:  # a connection of its own: the test's may be broken
            try:
                libvirt_pool = cleaner.conn.storagePoolLookupByName(name)
                libvirt_pool.refresh(0)
                volumes = libvirt_pool.listAllVolumes(0)
                volumes.sort(key=lambda v: "<backingStore>" not in v.XMLDesc(0))  # clones before bases
                for volume in volumes:
                    volume.delete(0)
            except Exception:  # noqa: BLE001 - best effort, the pool goes anyway
                pass
            cleaner.delete_pool(name, force=True)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Source files, as the image store would hold them."""
    root = tmp_path_factory.mktemp("images")
    base = root / "base.qcow2"
    _run(_tool("qemu-img"), "create", "-q", "-f", "qcow2", str(base), "64M")
    _run(_tool("qemu-io"), "-f", "qcow2", "-c", "write -P 0xab 0 1M", str(base))

    raw = root / "disk.raw"  # 8 MiB, sparse: data at 0 and at 4 MiB, the rest holes
    with raw.open("wb") as f:
        f.write(b"\x5a" * MIB)
        f.seek(4 * MIB)
        f.write(b"\x5b" * MIB)
        f.truncate(8 * MIB)

    iso = root / "tiny.iso"  # an ISO 9660 volume descriptor where libvirt looks for one
    with iso.open("wb") as f:
        f.truncate(MIB)
        f.seek(0x8001)
        f.write(b"CD001")

    chained = root / "chained.qcow2"  # a qcow2 that points at another file of the host
    _run(_tool("qemu-img"), "create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", str(chained))

    big = root / "big.qcow2"  # 64 MiB of data: the upload throughput case
    _run(_tool("qemu-img"), "create", "-q", "-f", "qcow2", str(big), "64M")
    _run(_tool("qemu-io"), "-f", "qcow2", "-c", "write -P 0xcd 0 64M", str(big))
    return {"base": base, "raw": raw, "iso": iso, "chained": chained, "big": big}


# --- upload and clone ---------------------------------------------------------------------------


def test_upload_qcow2_then_linked_clones(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    progress: list[tuple[int, int]] = []
    base = driver.upload_volume(pool, "base.qcow2", str(images["base"]), "qcow2",
                                on_progress=lambda *a: progress.append(a))

    assert (base.name, base.format, base.capacity_bytes, base.backing_path) == ("base.qcow2", "qcow2", 64 * MIB, "")
    assert base.path.endswith("/pool/base.qcow2")
    assert base.allocation_bytes > 0
    assert driver.volume_info(pool, "base.qcow2") == base
    size = images["base"].stat().st_size
    assert progress and progress[-1] == (size, size)
    if driver.uri == QEMU:  # QEMU sees what libvirt says
        info = _qemu_img_info(base.path)
        assert (info["format"], info["virtual-size"]) == ("qcow2", 64 * MIB)
        assert "backing-filename" not in info
        assert _reads_pattern(base.path, 0xAB, 0, MIB)

    started = time.monotonic()
    first = driver.clone_volume(pool, "base.qcow2", "vm-1-root.qcow2")
    clone_seconds = time.monotonic() - started
    second = driver.clone_volume(pool, "base.qcow2", "vm-2-root.qcow2", capacity_bytes=128 * MIB)
    smaller = driver.clone_volume(pool, "base.qcow2", "vm-3-root.qcow2", capacity_bytes=MIB)  # never below the base

    assert clone_seconds < 2.0  # copy-on-write: milliseconds (platform.md: qemu-img alone 8-14 ms)
    for clone, capacity in ((first, 64 * MIB), (second, 128 * MIB), (smaller, 64 * MIB)):
        assert (clone.format, clone.capacity_bytes, clone.backing_path) == ("qcow2", capacity, base.path)
        assert driver.volume_info(pool, clone.name) == clone
        if driver.uri == QEMU:
            info = _qemu_img_info(clone.path)
            assert (info["format"], info["virtual-size"]) == ("qcow2", capacity)
            assert (info["backing-filename"], info["backing-filename-format"]) == (base.path, "qcow2")
            assert info["format-specific"]["data"]["compat"] == "1.1"
            assert info["actual-size"] < MIB  # no data copied
            assert _reads_pattern(clone.path, 0xAB, 0, MIB)  # the base's bytes, through the clone
            assert _reads_pattern(clone.path, 0x00, MIB, MIB)

    assert [v.name for v in driver.list_volumes(pool)] == [
        "base.qcow2", "vm-1-root.qcow2", "vm-2-root.qcow2", "vm-3-root.qcow2"]

    with pytest.raises(DriverError, match=r"it is the base of 3 clone\(s\): vm-1-root.qcow2, vm-2-root.qcow2, "
                                          r"vm-3-root.qcow2; delete them first"):
        driver.delete_volume(pool, "base.qcow2")
    assert driver.volume_info(pool, "base.qcow2") == base

    for clone in (first, second, smaller):
        driver.delete_volume(pool, clone.name)
        assert driver.volume_info(pool, clone.name) is None
    driver.delete_volume(pool, "base.qcow2")
    driver.delete_volume(pool, "base.qcow2")  # gone already: not an error
    assert driver.volume_info(pool, "base.qcow2") is None
    assert driver.list_volumes(pool) == []
    if driver.uri == QEMU:
        assert not Path(base.path).exists() and not Path(first.path).exists()


def test_upload_raw_keeps_holes_and_bytes(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    source = images["raw"]
    progress: list[tuple[int, int]] = []
    raw = driver.upload_volume(pool, "data.raw", str(source), "raw", on_progress=lambda *a: progress.append(a))

    assert (raw.format, raw.capacity_bytes, raw.backing_path) == ("raw", 8 * MIB, "")
    sent = [p[0] for p in progress]
    assert sent == sorted(set(sent)) and progress[-1] == (8 * MIB, 8 * MIB)
    assert all(total == 8 * MIB for _, total in progress)
    if driver.uri == QEMU:
        assert len(progress) >= 3  # about every MiB (at least 1 MiB, at most 1 %)
        assert Path(raw.path).read_bytes() == source.read_bytes()
        assert raw.allocation_bytes <= 3 * MIB  # the 6 MiB of holes stayed holes

        clone = driver.clone_volume(pool, "data.raw", "data-clone.qcow2")
        info = _qemu_img_info(clone.path)
        assert (info["backing-filename"], info["backing-filename-format"]) == (raw.path, "raw")
        assert _reads_pattern(clone.path, 0x5B, 4 * MIB, MIB)


def test_upload_iso_reports_libvirts_format(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    iso = driver.upload_volume(pool, "tiny.iso", str(images["iso"]), "raw")
    assert (iso.format, iso.capacity_bytes, iso.backing_path) == ("iso", MIB, "")  # libvirt probes ISO 9660
    assert [v.format for v in driver.list_volumes(pool)] == ["iso"]
    if driver.uri == QEMU:
        assert Path(iso.path).read_bytes() == images["iso"].read_bytes()
    clone = driver.clone_volume(pool, "tiny.iso", "tiny-clone.qcow2")  # QEMU has no "iso" driver: raw
    assert clone.backing_path == iso.path
    if driver.uri == QEMU:
        assert _qemu_img_info(clone.path)["backing-filename-format"] == "raw"


def test_upload_throughput_and_progress(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    source = images["big"]
    size = source.stat().st_size
    progress: list[tuple[int, int]] = []
    started = time.monotonic()
    big = driver.upload_volume(pool, "big.qcow2", str(source), "qcow2", on_progress=lambda *a: progress.append(a))
    seconds = time.monotonic() - started

    assert (big.format, big.capacity_bytes) == ("qcow2", 64 * MIB)
    sent = [p[0] for p in progress]
    assert sent == sorted(set(sent)) and progress[-1] == (size, size)
    if driver.uri == QEMU:
        assert 30 <= len(progress) <= 101  # about every MiB, never more than every 1 %
        assert _reads_pattern(big.path, 0xCD, 0, 64 * MIB)
        print(f"upload of {size / MIB:.0f} MiB: {seconds:.2f} s, {size / MIB / seconds:.0f} MiB/s")


def test_concurrent_clones_of_one_base(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    """Parallel deploys: libvirt refuses a pool refresh while it builds a volume; the driver waits."""
    driver.upload_volume(pool, "base.qcow2", str(images["base"]), "qcow2")
    errors: list[str] = []

    def clone(index: int) -> None:
        try:
            with get_driver(driver.uri) as own:
                for round_ in range(3):
                    own.clone_volume(pool, "base.qcow2", f"vm-{index}-{round_}.qcow2")
        except DriverError as exc:
            errors.append(exc.message)

    threads = [threading.Thread(target=clone, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(driver.list_volumes(pool)) == 1 + 6 * 3


# --- refusals -----------------------------------------------------------------------------------


def test_upload_refusals_leave_nothing_behind(driver: HypervisorDriver, pool: str, images: dict[str, Path],
                                              tmp_path: Path) -> None:
    with pytest.raises(DriverError, match=r"^Cannot upload .*/missing.qcow2 to storage pool .* as volume a: "
                                          r"No such file or directory$"):
        driver.upload_volume(pool, "a", str(tmp_path / "missing.qcow2"), "qcow2")
    with pytest.raises(DriverError, match="is not a regular file"):
        driver.upload_volume(pool, "a", str(tmp_path), "raw")
    (tmp_path / "empty").touch()
    with pytest.raises(DriverError, match="the file is empty"):
        driver.upload_volume(pool, "a", str(tmp_path / "empty"), "raw")
    with pytest.raises(DriverError, match=r"the file is a qcow2 image, not raw as declared; upload it as qcow2"):
        driver.upload_volume(pool, "a", str(images["base"]), "raw")
    with pytest.raises(DriverError, match=r"the file is a raw image, not qcow2 as declared; upload it as raw"):
        driver.upload_volume(pool, "a", str(images["raw"]), "qcow2")
    with pytest.raises(DriverError, match=r"the qcow2 image has a backing file \(/etc/hostname\); only "
                                          r"self-contained images can be uploaded"):
        driver.upload_volume(pool, "a", str(images["chained"]), "qcow2")
    with pytest.raises(DriverError, match=r"format 'vmdk' is not qcow2 or raw"):
        driver.upload_volume(pool, "a", str(images["base"]), "vmdk")  # type: ignore[arg-type]
    assert driver.list_volumes(pool) == []

    driver.upload_volume(pool, "a", str(images["raw"]), "raw")
    with pytest.raises(DriverError, match=r"volume a already exists in storage pool .*; delete it first"):
        driver.upload_volume(pool, "a", str(images["raw"]), "raw")
    assert [v.name for v in driver.list_volumes(pool)] == ["a"]


def test_progress_callback_can_cancel(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    class Cancelled(Exception):
        pass

    def cancel(sent: int, total: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        driver.upload_volume(pool, "a", str(images["big"]), "qcow2", on_progress=cancel)
    assert driver.volume_info(pool, "a") is None


def test_clone_refusals(driver: HypervisorDriver, pool: str, images: dict[str, Path]) -> None:
    with pytest.raises(DriverNotFound, match=r"^Cannot create volume c as a clone of volume nope in storage pool "
                                             r"nubo-test-.*: storage pool .* has no volume nope$"):
        driver.clone_volume(pool, "nope", "c")
    driver.upload_volume(pool, "base", str(images["base"]), "qcow2")
    driver.clone_volume(pool, "base", "c")
    with pytest.raises(DriverError, match="volume c already exists"):
        driver.clone_volume(pool, "base", "c")


def test_create_empty_volumes(driver: HypervisorDriver, pool: str) -> None:
    """Blank disks (an ISO install's root disk, data disks): thin, of the size asked, in the format asked."""
    disk = driver.create_volume(pool, "blank.qcow2", 2 << 30)
    assert (disk.name, disk.format, disk.capacity_bytes, disk.backing_path) == ("blank.qcow2", "qcow2", 2 << 30, "")
    assert disk.allocation_bytes < MIB  # a header, not 2 GiB
    raw = driver.create_volume(pool, "blank.raw", 16 * MIB, "raw")
    assert (raw.format, raw.capacity_bytes) == ("raw", 16 * MIB)
    assert driver.volume_info(pool, "blank.qcow2") == disk
    if driver.uri == QEMU:  # the bytes are a real, empty qcow2 v3 image
        info = _qemu_img_info(disk.path)
        assert (info["format"], info["virtual-size"], info["format-specific"]["data"]["compat"]) == (
            "qcow2", 2 << 30, "1.1")
        assert "backing-filename" not in info
    with pytest.raises(DriverError, match="volume blank.qcow2 already exists"):
        driver.create_volume(pool, "blank.qcow2", MIB)
    with pytest.raises(DriverError, match="the size must be positive"):
        driver.create_volume(pool, "zero", 0)
    with pytest.raises(DriverError, match="format 'vmdk' is not qcow2 or raw"):
        driver.create_volume(pool, "odd", MIB, "vmdk")  # type: ignore[arg-type]
    driver.delete_volume(pool, "blank.qcow2")
    assert driver.volume_info(pool, "blank.qcow2") is None


def test_missing_pool(driver: HypervisorDriver, images: dict[str, Path]) -> None:
    missing = f"nubo-test-{secrets.token_hex(3)}-missing"
    for call in (lambda: driver.upload_volume(missing, "a", str(images["raw"]), "raw"),
                 lambda: driver.clone_volume(missing, "a", "b"),
                 lambda: driver.create_volume(missing, "a", MIB),
                 lambda: driver.volume_info(missing, "a"),
                 lambda: driver.list_volumes(missing),
                 lambda: driver.delete_volume(missing, "a")):
        with pytest.raises(DriverNotFound, match=f": storage pool {missing} is not defined on {driver.uri}$"):
            call()


@pytest.mark.parametrize("driver", [pytest.param(QEMU, id="qemu")], indirect=True)
def test_volume_info_sees_files_made_by_others(driver: HypervisorDriver, pool: str, tmp_path: Path) -> None:
    """Another host of an NFS pool, or a tool, writes a file into the pool's directory."""
    _run(_tool("qemu-img"), "create", "-q", "-f", "qcow2", str(tmp_path / "pool" / "other.qcow2"), "16M")
    info = driver.volume_info(pool, "other.qcow2")
    assert info is not None and (info.format, info.capacity_bytes) == ("qcow2", 16 * MIB)
    (tmp_path / "pool" / "other.qcow2").unlink()
    assert driver.volume_info(pool, "other.qcow2") is None
    driver.delete_volume(pool, "other.qcow2")


# --- XML (no libvirt) ---------------------------------------------------------------------------


def test_clone_volume_xml() -> None:
    volume = ET.fromstring(volume_xml(HOSTILE, 10 * MIB, "qcow2", allocation_bytes=0,
                                      backing_path="/pool/base " + HOSTILE, backing_format="raw"))
    assert volume.findtext("name") == HOSTILE
    assert (volume.findtext("capacity"), volume.find("capacity").get("unit")) == (str(10 * MIB), "bytes")
    assert volume.findtext("allocation") == "0"
    assert volume.find("./target/format").get("type") == "qcow2"
    assert volume.findtext("./target/compat") == "1.1"
    assert len(volume.findall("backingStore")) == 1
    assert volume.findtext("./backingStore/path") == "/pool/base " + HOSTILE
    assert volume.find("./backingStore/format").get("type") == "raw"

    plain = ET.fromstring(volume_xml("disk-1.raw", MIB))  # as the contract suite and the KVM probe use it
    assert plain.find("allocation") is None and plain.find("backingStore") is None
    assert plain.find("./target/format").get("type") == "raw" and plain.find("./target/compat") is None


def test_volume_info_from_xml() -> None:
    xml = """<volume type='file'><name>vm-1.qcow2</name><key>/p/vm-1.qcow2</key>
      <capacity unit='bytes'>67108864</capacity><allocation unit='KiB'>196</allocation>
      <target><path>/p/vm-1.qcow2</path><format type='qcow2'/></target>
      <backingStore><path>/p/base</path><format type='qcow2'/></backingStore></volume>"""
    assert volume_info_from_xml(xml) == VolumeInfo(name="vm-1.qcow2", path="/p/vm-1.qcow2", format="qcow2",
                                                   capacity_bytes=64 * MIB, allocation_bytes=196 * 1024,
                                                   backing_path="/p/base")


def test_image_headers(tmp_path: Path) -> None:
    from compute.drivers.libvirt_driver import _read_image

    def image(data: bytes, size: int | None = None) -> object:
        path = tmp_path / "image"
        path.write_bytes(data)
        if size:
            os.truncate(path, size)
        fd = os.open(path, os.O_RDONLY)
        try:
            return _read_image(fd, path.stat().st_size)
        finally:
            os.close(fd)

    v3 = b"QFI\xfb" + struct.pack(">IQIIQI", 3, 0, 0, 16, 5 * MIB, 0) + bytes(36) + struct.pack(">Q", 4)
    header = image(v3, 4096)
    assert (header.format, header.virtual_size, header.external_data) == ("qcow2", 5 * MIB, True)
    assert image(b"QFI\xfb" + struct.pack(">IQIIQI", 2, 0, 0, 16, MIB, 1)).encrypted
    with_backing = b"QFI\xfb" + struct.pack(">IQIIQI", 2, 72, 11, 16, MIB, 0) + bytes(36) + b"/etc/shadow"
    assert image(with_backing).backing == "/etc/shadow"
    assert image(b"KDMV" + bytes(508)).format == "vmdk"
    assert image(b"conectix" + bytes(504)).format == "vpc"
    assert image(b"\x00" * 0x8001 + b"CD001" + bytes(100)).format == "iso"
    assert (image(b"hello").format, image(b"hello").virtual_size) == ("raw", 5)


@pytest.mark.parametrize("driver", [pytest.param(QEMU, id="qemu")], indirect=True)
def test_host_probe_has_the_last_word(driver: HypervisorDriver, pool: str, images: dict[str, Path],
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the local header check miss a format, libvirt's probe on the host after the upload
    catches it and the volume is removed."""
    import compute.drivers.libvirt_driver as libvirt_driver

    monkeypatch.setattr(libvirt_driver, "_read_image", lambda fd, size: libvirt_driver._Image("raw", size, size))
    with pytest.raises(DriverError, match=r"on qemu:///system: the file is a qcow2 image, not raw as declared"):
        driver.upload_volume(pool, "a", str(images["base"]), "raw")
    assert driver.list_volumes(pool) == []
    assert list((tmp_path / "pool").iterdir()) == []  # the partial file went too
