"""storage/doctor.py checks, and the storage app reaching hosts only through compute.drivers."""
from __future__ import annotations

import ast
from pathlib import Path

from django.utils.module_loading import autodiscover_modules

import storage
from portal.doctor import FAIL, OK, REGISTRY, WARN
from storage import doctor, services


def test_doctor_finds_the_storage_checks():
    autodiscover_modules("doctor")
    checks = {c.name: c.requires for c in REGISTRY}
    assert checks["nfs-client"] == ()
    assert checks["primary-storage"] == ("migrations",)
    assert checks["secondary-storage"] == ("migrations",)


def test_nfs_client_check_says_what_is_missing(monkeypatch):
    result = doctor.nfs_client()
    assert result.status in (OK, WARN)
    monkeypatch.setattr(services, "mount_nfs_helper", lambda: None)
    result = doctor.nfs_client()
    assert result.status == WARN
    assert "mount.nfs is missing" in result.detail and "nfs-common" in result.fix
    monkeypatch.setattr(services, "mount_nfs_helper", lambda: "/sbin/mount.nfs")
    monkeypatch.setattr(doctor, "_nfs_in_kernel", lambda: False)
    assert "kernel has no NFS client" in doctor.nfs_client().detail
    monkeypatch.setattr(doctor, "_nfs_in_kernel", lambda: True)
    assert doctor.nfs_client().status == OK


def test_primary_storage_check(api, infra, fake_hosts, monkeypatch, tmp_path):
    assert doctor.primary_storage_writable().status == OK  # nothing on this machine yet
    directory = tmp_path / "primary"
    assert api("createStoragePool", zoneid=infra.zone.uuid, clusterid=infra.cluster.uuid, name="p",
               url=str(directory)).status == 200
    assert "no primary storage" in doctor.primary_storage_writable().detail  # a Simulator host is not this machine
    monkeypatch.setattr(services, "_is_local", lambda uri: True)
    result = doctor.primary_storage_writable()
    assert result.status == FAIL and f"p: {directory} is missing" in result.detail
    directory.mkdir()
    result = doctor.primary_storage_writable()
    assert result.status == OK and str(directory) in result.detail


def test_secondary_storage_check(api, infra, tmp_path):
    assert doctor.secondary_storage_writable().status == OK
    root = tmp_path / "sec"
    assert api("addImageStore", provider="NFS", zoneid=infra.zone.uuid, url=str(root), name="s").status == 200
    assert doctor.secondary_storage_writable().status == OK
    for relative in ("template/tmpl", "template", "iso", "snapshots", ""):
        (root / relative).rmdir()
    result = doctor.secondary_storage_writable()
    assert result.status == FAIL and f"s: {root} is missing" in result.detail


def test_storage_imports_no_libvirt():
    for path in Path(storage.__file__).parent.glob("**/*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {"libvirt", "libvirt_qemu"} & names, f"{path.name} imports libvirt: use compute.drivers"
