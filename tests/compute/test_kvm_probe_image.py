"""The probe firmware embedded in kvm_probe.py is exactly the assembly of kvm_probe.S."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compute.drivers import kvm_probe

SOURCE = Path(kvm_probe.__file__).with_name("kvm_probe.S")


def test_embedded_image_is_the_assembled_source(tmp_path: Path) -> None:
    if not (shutil.which("as") and shutil.which("objcopy")):
        pytest.fail("binutils (as, objcopy) missing: scripts/setup-system.sh libvirt installs gcc, which brings them")
    subprocess.run(["as", "--32", "-o", tmp_path / "probe.o", SOURCE], check=True)
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", tmp_path / "probe.o", tmp_path / "probe.bin"], check=True)
    assert (tmp_path / "probe.bin").read_bytes() == kvm_probe.firmware_image()


def test_image_shape() -> None:
    image = kvm_probe.firmware_image()
    assert len(image) == 0x10000
    assert image[0xFFF0] == 0xEA  # far jump at the reset vector
    assert kvm_probe.MARKER in image
