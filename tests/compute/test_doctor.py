"""compute/doctor.py: its checks are found by `manage.py doctor` and say something true here."""
from __future__ import annotations

import os

from django.utils.module_loading import autodiscover_modules

from portal.doctor import OK, REGISTRY, WARN


def test_doctor_finds_the_compute_checks() -> None:
    autodiscover_modules("doctor")
    names = [c.name for c in REGISTRY]
    for name in ("libvirt", "kvm", "dev-kvm", "hostname", "storage-path", "console-port", "network-hook"):
        assert name in names
    assert dict((c.name, c.requires) for c in REGISTRY)["kvm"] == ("libvirt",)


def test_libvirt_and_kvm_checks_on_this_machine() -> None:
    from compute import doctor

    libvirt = doctor.libvirt_reachable()
    assert libvirt.status == OK, libvirt  # make test starts libvirtd
    assert "at qemu:///system" in libvirt.detail

    kvm = doctor.kvm_usable()
    assert kvm.status in (OK, WARN)
    if os.path.isdir("/sys/module/kvm_pvm"):
        assert kvm.status == WARN
        assert "guests will run under software emulation" in kvm.detail
        assert "emulation failure (nested PVM)" in kvm.detail


def test_host_checks_answer(settings, tmp_path) -> None:
    from compute import doctor

    assert doctor.dev_kvm_present().status in (OK, WARN)
    hostname = doctor.hostname_is_fqdn()
    assert hostname.status in (OK, WARN) and (hostname.status == OK or hostname.fix)

    settings.NUBO_STORAGE_DIR = tmp_path / "storage"
    storage = doctor.storage_path_writable()
    assert storage.status == OK and (tmp_path / "storage").is_dir()
    (tmp_path / "ro").mkdir(mode=0o500)
    settings.NUBO_STORAGE_DIR = tmp_path / "ro" / "storage"
    if os.geteuid() != 0:  # root writes anywhere
        assert doctor.storage_path_writable().status == "FAIL"


def test_console_port_check_names_who_holds_the_port(settings) -> None:
    import socket

    from compute import doctor

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.NUBO_CONSOLE_BIND = f"127.0.0.1:{port}"
    assert doctor.console_port_free().status == OK
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        held = doctor.console_port_free()
    assert held.status == WARN and f"127.0.0.1:{port} is in use by pid {os.getpid()}" in held.detail
    assert held.fix == f"stop that process, or run Nubo elsewhere: NUBO_CONSOLE_BIND=127.0.0.1:{port + 1} make run"


def test_network_hook_check(monkeypatch, tmp_path) -> None:
    from compute import doctor

    installed = doctor.network_hook_installed()  # make test installs it (scripts/services.sh start-libvirtd)
    assert installed.status == OK, installed
    monkeypatch.setattr(doctor, "NETWORK_HOOK", tmp_path / "nubo")
    missing = doctor.network_hook_installed()
    assert missing.status == WARN and "is missing" in missing.detail and "services.sh start-libvirtd" in missing.fix
    (tmp_path / "nubo").write_text("#!/bin/sh\nexit 0\n")
    assert "differs" in doctor.network_hook_installed().detail
