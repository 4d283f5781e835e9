"""`manage.py doctor` checks for hosts: libvirt, KVM, the hostname, local storage, the console proxy's port
(see portal/doctor.py)."""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

from portal.doctor import CheckResult, check, port_free_or_ours

LOCAL_URI = "qemu:///system"
START_LIBVIRTD = "make run starts it; or, as root: scripts/services.sh start-libvirtd"


@check("libvirt")
def libvirt_reachable() -> CheckResult:
    from compute.drivers import DriverError, get_driver

    try:
        with get_driver(LOCAL_URI) as driver:
            info = driver.host_info()
    except DriverError as exc:
        return CheckResult.fail(exc.message, START_LIBVIRTD)
    return CheckResult.ok(f"libvirt {info.libvirt_version}, QEMU {info.hypervisor_version} at {LOCAL_URI} "
                          f"({info.cpu_count} CPUs, {info.memory_bytes / 2**30:.1f} GiB)")


@check("kvm", requires=("libvirt",))
def kvm_usable() -> CheckResult:
    """Boots a throw-away guest under KVM (about a second): /dev/kvm existing proves nothing."""
    from compute.drivers import DriverError, get_driver

    try:
        with get_driver(LOCAL_URI) as driver:
            probe = driver.probe_kvm(timeout_s=20)
    except DriverError as exc:
        return CheckResult.fail(exc.message, START_LIBVIRTD)
    if probe.usable:
        return CheckResult.ok(f"{probe.reason}: guests run with KVM acceleration")
    return CheckResult.warn(
        f"KVM is not usable here: {probe.reason}; guests will run under software emulation (slower)",
        "for KVM, enable VT-x/AMD-V in the firmware, or nested virtualisation (with vmx/svm passed to this "
        "machine) on the hypervisor below it; otherwise nothing to do",
    )


NETWORK_HOOK = Path("/etc/libvirt/hooks/network.d/nubo")


@check("network-hook")
def network_hook_installed() -> CheckResult:
    """Zones whose hosts share a guest segment (guest.network.uplink) need Nubo's libvirt network
    hook on every host; this checks this machine's."""
    source = Path(__file__).resolve().parent.parent / "scripts" / "libvirt-network-hook"
    fix = ("as root: scripts/services.sh start-libvirtd (installs it and restarts libvirtd), or "
           f"install -D -m 0755 scripts/libvirt-network-hook {NETWORK_HOOK} and restart libvirtd")
    if not NETWORK_HOOK.exists():
        return CheckResult.warn(f"{NETWORK_HOOK} is missing: this host cannot join a zone whose hosts share a guest "
                                f"segment (guest.network.uplink)", fix)
    if NETWORK_HOOK.read_bytes() != source.read_bytes():
        return CheckResult.warn(f"{NETWORK_HOOK} differs from this checkout's scripts/libvirt-network-hook", fix)
    return CheckResult.ok(f"{NETWORK_HOOK} installed (guest uplinks of shared-segment zones)")


@check("dev-kvm")
def dev_kvm_present() -> CheckResult:
    """Information only: the device can exist while KVM is unusable (see the kvm check)."""
    modules = sorted(m for m in ("kvm_intel", "kvm_amd", "kvm_pvm") if os.path.isdir(f"/sys/module/{m}"))
    loaded = f"modules: {', '.join(modules)}" if modules else "no kvm_intel/kvm_amd module loaded"
    if not os.path.exists("/dev/kvm"):
        return CheckResult.warn(f"/dev/kvm is missing ({loaded})",
                                "load kvm_intel or kvm_amd (modprobe), after enabling VT-x/AMD-V in the firmware")
    note = " (nested PVM: KVM runs only PVM-aware guests)" if "kvm_pvm" in modules else ""
    return CheckResult.ok(f"/dev/kvm present, {loaded}{note}")


@check("hostname")
def hostname_is_fqdn() -> CheckResult:
    short = socket.gethostname()
    fqdn = socket.getfqdn()
    fix = (f"give this machine a fully qualified name: a line '<its IP> {short}.<your domain> {short}' "
           f"in /etc/hosts, or a DNS record")
    if "." not in fqdn or fqdn.startswith("localhost"):
        return CheckResult.warn(f"hostname {short!r} does not resolve to a fully qualified domain name ({fqdn!r})", fix)
    try:
        address = socket.gethostbyname(fqdn)
    except OSError as exc:
        return CheckResult.warn(f"{fqdn} does not resolve: {exc}", fix)
    return CheckResult.ok(f"{fqdn} resolves to {address}")


@check("storage-path", requires=("var",))
def storage_path_writable() -> CheckResult:
    from django.conf import settings

    path = Path(getattr(settings, "NUBO_STORAGE_DIR", Path(settings.VAR_DIR) / "storage"))
    fix = f"mkdir -p {path} && chown {os.getuid()} {path} (local primary and secondary storage live under it)"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult.fail(f"{path} is not writable: {exc.strerror or exc}", fix)
    free = shutil.disk_usage(path).free
    return CheckResult.ok(f"{path} is writable, {free / 2**30:.1f} GiB free")


@check("console-port")
def console_port_free() -> CheckResult:
    """The console proxy's address (NUBO_CONSOLE_BIND): free, or served by manage.py consoleproxy."""
    from django.conf import settings

    host, _, port = settings.NUBO_CONSOLE_BIND.rpartition(":")
    return port_free_or_ours(host.strip("[]") or "0.0.0.0", int(port), ours=("manage.py consoleproxy",),
                             setting="NUBO_CONSOLE_BIND")
