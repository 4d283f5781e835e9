"""The built-in images: a tiny bootable x86-64 Linux, as a qcow2 template and as a live ISO, built on
this machine from Debian packages only (nothing from the internet but Debian's mirror, through apt).

    build(out_dir, force=False, cache_dir=None) -> dict     (the manifest, plus "built" and paths)

writes into `out_dir`:

    tiny-linux.qcow2   64 MiB disk: syslinux's mbr.bin, an MBR partition table (sfdisk) and one FAT16
                       partition (mkfs.vfat) holding SYSLINUX (`syslinux --install`, the mtools
                       installer), the kernel and the initramfs (mcopy) — no loop device, no mount
    tiny-linux.iso     a hybrid isolinux live ISO (xorriso) of the same kernel and initramfs
    manifest.json      name, format, sizes and sha256 of each, the package versions, the fingerprint

The kernel is Debian's cloud kernel (linux-image-cloud-amd64's current dependency, else the generic
linux-image-amd64) and busybox comes from busybox-static: both are fetched with `apt-get download`
into `cache_dir` and only unpacked, never installed. The tools that do the work (REQUIRED_PACKAGES)
are installed by scripts/setup-system.sh's `images` component (`make` runs it).

The initramfs is the whole system: busybox init, auto-login root shells on tty1 and ttyS0, the
kernel modules a QEMU/KVM guest needs (virtio, IDE, CD-ROM, ISO9660, FAT; loaded in dependency order
computed here from each module's .modinfo, since the package ships no modules.dep), DHCP on eth0,
and a config drive reader (label config-2: OpenStack's openstack/latest/meta_data.json; label cidata:
NoCloud) that applies hostname, root password and SSH keys; vCPUs and memory the host hot-plugs
(scaleVirtualMachine) come online at once. The boot scripts are plain files under
initramfs/ beside this module. When the guest is ready it prints one line on its serial console:

    NUBO-TINY-LINUX READY hostname=<name> ip=<IPv4|none> config=<config-2|cidata|none>
    NUBO-TINY-LINUX READY (iso) hostname=…                      (booted from the ISO)

Idempotent: the outputs are rebuilt only when `force` or when the recorded fingerprint differs —
the versions of every Debian package used (the kernel and busybox-static candidates, the installed
tools) and a hash of initramfs/ and this file. Concurrent builds into one directory are serialised
with a lock. Reproducible: the same inputs give the same bytes (fixed timestamps, volume ids and
disk signature), so an image's sha256 is the same on every machine. No Django here: callers pass
the directories (settings.VAR_DIR/images, …/cache/images).
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tarfile
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

TEMPLATE_FILE = "tiny-linux.qcow2"
ISO_FILE = "tiny-linux.iso"
MANIFEST_FILE = "manifest.json"
MARKER = "NUBO-TINY-LINUX READY"  # + " (iso)" when booted from the ISO, then hostname= ip= config=
MIN_MEMORY_MIB = 128  # 64 MiB panics: the kernel's init_size must fit above its load address

# Debian packages whose programs or files the build runs or copies (installed by setup-system.sh).
REQUIRED_PACKAGES = ("dosfstools", "mtools", "syslinux", "syslinux-common", "isolinux", "fdisk", "xorriso",
                     "qemu-utils")
# Debian packages fetched with apt-get download and only unpacked.
KERNEL_META_PACKAGES = ("linux-image-cloud-amd64", "linux-image-amd64")
BUSYBOX_PACKAGE = "busybox-static"

_PROGRAMS = {"mkfs.vfat": "dosfstools", "mcopy": "mtools", "syslinux": "syslinux", "sfdisk": "fdisk",
             "xorriso": "xorriso", "qemu-img": "qemu-utils", "apt-get": "apt", "apt-cache": "apt",
             "dpkg-deb": "dpkg", "dpkg-query": "dpkg"}
MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
ISOHYBRID_MBR = Path("/usr/lib/ISOLINUX/isohdpfx.bin")
_FILES = {MBR_BIN: "syslinux-common", LDLINUX_C32: "syslinux-common", ISOLINUX_BIN: "isolinux",
          ISOHYBRID_MBR: "isolinux"}

INITRAMFS_DIR = Path(__file__).with_name("initramfs")

# Kernel modules for a QEMU/KVM guest, in the order they are wanted; each is preceded by what it
# depends on. The first group must exist in the kernel package; the others are used when present.
REQUIRED_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ata_piix", "sr_mod", "isofs", "vfat")
OPTIONAL_MODULES = ("virtio_scsi", "sd_mod", "ata_generic", "ahci", "e1000", "virtio_balloon", "virtio_rng",
                    "nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1", "button", "evdev")

DISK_SIZE = 64 << 20
PARTITION_START_SECTOR = 2048  # 1 MiB: the usual alignment
VOLUME_ID = "4e55424f"  # "NUBO": FAT serial number and MBR disk signature, so builds are comparable
# Serial last: /dev/console is the serial port. cryptomgr.notests: the crypto self-tests cost about
# 1.5 s of a 5 s boot under software emulation. memhp_default_state=online: memory the host
# hot-plugs (scaleVirtualMachine) is used at once (vCPUs are brought online by lib/nubo/hotplug).
CMDLINE = "console=tty0 console=ttyS0,115200n8 quiet cryptomgr.notests memhp_default_state=online swiotlb=2048"

# Build tools live in /usr/sbin and /sbin (mkfs.vfat, sfdisk), which a non-root PATH may lack.
_PATH = os.pathsep.join(dict.fromkeys([*os.environ.get("PATH", "").split(os.pathsep),
                                       "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"]))
# One fixed time for every timestamp the tools write (FAT and ISO9660 dates, file times), so the
# same inputs give the same image bytes (and sha256) on every machine.
SOURCE_DATE_EPOCH = 1262304000  # 2010-01-01


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": _PATH, "LC_ALL": "C", "TZ": "UTC", "MTOOLS_SKIP_CHECK": "1",
            "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}


class BuildError(Exception):
    """The images could not be built. `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the entry point ----------------------------------------------------------------------------


def build(out_dir: str | os.PathLike, force: bool = False, cache_dir: str | os.PathLike | None = None) -> dict:
    """Build (or find up to date) the built-in images in `out_dir`; returns the manifest plus
    "built" (False when nothing needed doing) and "path" of each image. `cache_dir` keeps the
    downloaded .deb files (default: out_dir/cache). Raises BuildError."""
    out = Path(out_dir).resolve()
    cache = Path(cache_dir).resolve() if cache_dir else out / "cache"
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(out / ".build.lock"):
        for stale in [*out.glob(".build-*"), *cache.glob(".download-*")]:  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        check_requirements()
        started = time.monotonic()
        inputs = _resolve_inputs(cache)
        fingerprint = _fingerprint(inputs)
        manifest = None if force else _current_manifest(out, fingerprint)
        built = manifest is None
        if manifest is None:
            manifest = _build(out, cache, inputs, fingerprint)
            manifest["build_seconds"] = round(time.monotonic() - started, 2)
            _write_atomic(out / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
            _prune_cache(cache, keep=[inputs["kernel"]["deb"], inputs["busybox"]["deb"]])
    result = dict(manifest, built=built, out_dir=str(out))
    result["images"] = {kind: dict(image, path=str(out / image["file"])) for kind, image in manifest["images"].items()}
    return result


def check_requirements() -> None:
    """Raise BuildError naming the missing Debian packages and the command that installs them."""
    missing = {package for program, package in _PROGRAMS.items() if not shutil.which(program, path=_PATH)}
    missing |= {package for path, package in _FILES.items() if not path.is_file()}
    if missing:
        packages = " ".join(sorted(missing))
        raise BuildError(f"Building the built-in images needs the Debian packages {packages}. Install them with: "
                         f"apt-get install -y --no-install-recommends {packages} "
                         f"(as root; `make` does it: scripts/setup-system.sh images)")


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The manifest of the last build in out_dir, or None."""
    try:
        return json.loads((Path(out_dir) / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


# --- inputs and fingerprint ---------------------------------------------------------------------


def _resolve_inputs(cache: Path) -> dict:
    """What a build would use now: the kernel and busybox-static candidates (from apt's lists, else
    the newest .deb already in the cache; apt-get update only when neither knows), the installed
    tools' versions and the hash of our sources. No download here."""
    resolved = _resolve_packages(cache)
    if resolved is None:
        _apt_update("apt does not know linux-image-cloud-amd64 or busybox-static yet")
        resolved = _resolve_packages(cache)
    if resolved is None:
        raise BuildError(f"No Debian kernel package or busybox-static found: apt knows none of "
                         f"{', '.join(KERNEL_META_PACKAGES)} or {BUSYBOX_PACKAGE}; check /etc/apt/sources.list "
                         f"(Debian's main component) and run apt-get update")
    kernel, busybox = resolved
    return {
        "kernel": {"package": kernel[0], "version": kernel[1], "deb": _deb_name(*kernel)},
        "busybox": {"package": busybox[0], "version": busybox[1], "deb": _deb_name(*busybox)},
        "tools": _installed_versions(REQUIRED_PACKAGES),
        "sources_sha256": _sources_hash(),
    }


def _resolve_packages(cache: Path) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """(kernel package, version), (busybox-static, version). Asking apt costs about a second here
    (no pkgcache.bin), so the answer is remembered in the cache until apt's lists change."""
    memo = cache / "apt-candidates.json"
    stamp = _apt_lists_stamp()
    try:
        saved = json.loads(memo.read_text())
        if saved["stamp"] == stamp:
            return (saved["kernel"][0], saved["kernel"][1]), (saved["busybox"][0], saved["busybox"][1])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    fields = _apt_fields(*KERNEL_META_PACKAGES, BUSYBOX_PACKAGE)
    kernel = _kernel_from(fields)
    busybox = (BUSYBOX_PACKAGE, fields[BUSYBOX_PACKAGE]["Version"]) if BUSYBOX_PACKAGE in fields else None
    if kernel and busybox:
        _write_atomic(memo, json.dumps({"stamp": stamp, "kernel": kernel, "busybox": busybox}).encode())
    kernel = kernel or _newest_cached(cache, "linux-image-*.deb")
    busybox = busybox or _newest_cached(cache, f"{BUSYBOX_PACKAGE}_*.deb")
    return (kernel, busybox) if kernel and busybox else None


def _apt_lists_stamp() -> str:
    """Changes whenever apt's candidates may have: its package lists or its pinning preferences."""
    entries = []
    for directory in (Path("/var/lib/apt/lists"), Path("/etc/apt/preferences.d"), Path("/etc/apt")):
        try:
            for entry in os.scandir(directory):
                if entry.is_file() and (directory.name != "apt" or entry.name == "preferences"):
                    info = entry.stat()
                    entries.append(f"{entry.path} {info.st_size} {info.st_mtime_ns}")
        except OSError:
            continue
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def _fingerprint(inputs: dict) -> str:
    significant = {**inputs, **{key: [inputs[key]["package"], inputs[key]["version"]] for key in ("kernel", "busybox")}}
    return hashlib.sha256(json.dumps(significant, sort_keys=True).encode()).hexdigest()


def _sources_hash() -> str:
    digest = hashlib.sha256()
    for path in [Path(__file__), *sorted(p for p in INITRAMFS_DIR.rglob("*") if p.is_file())]:
        name = "builtin.py" if path == Path(__file__) else str(path.relative_to(INITRAMFS_DIR))
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _current_manifest(out: Path, fingerprint: str) -> dict | None:
    """The manifest when the outputs in `out` are complete, intact and built from these inputs."""
    manifest = read_manifest(out)
    if not manifest or manifest.get("fingerprint") != fingerprint:
        return None
    try:
        for image in manifest["images"].values():
            path = out / image["file"]
            if path.stat().st_size != image["physical_size"] or _sha256(path) != image["sha256"]:
                return None
    except (OSError, KeyError, TypeError, AttributeError):
        return None
    return manifest


# --- apt ----------------------------------------------------------------------------------------


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(cmd, capture_output=True, env=_env(), **kwargs)
    except OSError as exc:
        raise BuildError(f"Cannot {what}: {cmd[0]}: {exc.strerror or exc}") from exc
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace") if isinstance(result.stderr, bytes) else result.stderr
        tail = " ".join((err or "").strip().splitlines()[-3:]) or f"exit status {result.returncode}"
        raise BuildError(f"Cannot {what}: {' '.join(map(str, cmd[:3]))}…: {tail}")
    return result


def _apt_fields(*packages: str) -> dict[str, dict[str, str]]:
    """The candidate version's fields of each package apt's lists know (local, no network)."""
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages], capture_output=True, text=True,
                            env=_env())
    found: dict[str, dict[str, str]] = {}
    for stanza in result.stdout.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and fields.get("Version"):
            found.setdefault(fields["Package"], fields)
    return found


def _kernel_from(fields: dict[str, dict[str, str]]) -> tuple[str, str] | None:
    """The real kernel package (linux-image-6.1.0-56-cloud-amd64) a meta-package pulls in now,
    with the exact version it pins ("(= 6.1.192-2)"), else that package's candidate."""
    for meta in KERNEL_META_PACKAGES:
        for dependency in fields.get(meta, {}).get("Depends", "").split(","):
            words = dependency.split("|")[0].replace("(", " ").replace(")", " ").split()
            if not words or not words[0].startswith("linux-image-"):
                continue
            if len(words) == 3 and words[1] == "=":
                return words[0], words[2]
            real = _apt_fields(words[0]).get(words[0])
            if real:
                return words[0], real["Version"]
    return None


def _apt_update(why: str) -> None:
    if os.geteuid() != 0:
        raise BuildError(f"{why}: run `apt-get update` as root, then build again")
    _run(["apt-get", "update", "-q"], "update apt's package lists (apt-get update)")


def _installed_versions(packages: tuple[str, ...]) -> dict[str, str]:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n", *packages],
                            capture_output=True, text=True, env=_env())
    versions = {}
    for line in result.stdout.splitlines():
        name, version, status = (line.split(" ", 2) + ["", ""])[:3]
        if status.startswith("ii"):
            versions[name] = version
    missing = [p for p in packages if p not in versions]
    if missing:
        raise BuildError(f"Building the built-in images needs the Debian packages {' '.join(missing)}. Install them "
                         f"with: apt-get install -y --no-install-recommends {' '.join(missing)} "
                         f"(as root; `make` does it: scripts/setup-system.sh images)")
    return versions


def _deb_name(package: str, version: str) -> str:
    """apt-get download's file name (an epoch's colon becomes %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_amd64.deb"


def _deb_fields(deb: Path) -> tuple[str, str] | None:
    result = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True,
                            env=_env())
    if result.returncode != 0:
        return None
    fields = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    return (fields["Package"], fields["Version"]) if "Package" in fields and "Version" in fields else None


def _newest_cached(cache: Path, pattern: str) -> tuple[str, str] | None:
    for deb in sorted(cache.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True):
        fields = _deb_fields(deb)
        if fields and deb.name == _deb_name(*fields):
            return fields
    return None


def _fetch(cache: Path, package: str, version: str) -> Path:
    """The .deb of package=version in the cache, downloaded with apt-get download when missing
    (into a scratch directory first, so an interrupted download never looks complete)."""
    target = cache / _deb_name(package, version)
    if target.is_file() and _deb_fields(target) == (package, version):
        return target
    options = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []  # _apt cannot write here
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as scratch:
        command = ["apt-get", "download", "-q", *options, f"{package}={version}"]
        what = f"download {package} {version} (apt-get download)"
        try:
            _run(command, what, cwd=scratch)
        except BuildError:
            _apt_update(f"apt-get download {package}={version} failed")
            _run(command, what, cwd=scratch)
        debs = list(Path(scratch).glob("*.deb"))
        if len(debs) != 1 or _deb_fields(debs[0]) != (package, version):
            raise BuildError(f"apt-get download {package}={version} did not leave that package's .deb")
        os.replace(debs[0], target)
    return target


def _prune_cache(cache: Path, keep: list[str]) -> None:
    for deb in cache.glob("*.deb"):
        if deb.name not in keep:
            deb.unlink(missing_ok=True)


# --- the build ----------------------------------------------------------------------------------


def _build(out: Path, cache: Path, inputs: dict, fingerprint: str) -> dict:
    kernel_deb = _fetch(cache, inputs["kernel"]["package"], inputs["kernel"]["version"])
    busybox_deb = _fetch(cache, inputs["busybox"]["package"], inputs["busybox"]["version"])
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as scratch:
        work = Path(scratch)
        vmlinuz, release, modules = _unpack_kernel(kernel_deb)
        busybox = _unpack_file(busybox_deb, "./bin/busybox")
        initrd = _initramfs(busybox, modules)
        (work / "vmlinuz").write_bytes(vmlinuz)
        (work / "initrd.gz").write_bytes(initrd)

        _disk_image(work, work / TEMPLATE_FILE)
        _iso_image(work, work / ISO_FILE)
        images = {
            "template": _describe(work / TEMPLATE_FILE, "Tiny Linux", "QCOW2"),
            "iso": _describe(work / ISO_FILE, "Tiny Linux ISO", "ISO"),
        }
        for image in images.values():
            os.replace(work / image["file"], out / image["file"])
    return {
        "fingerprint": fingerprint,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "images": images,
        "packages": {inputs["kernel"]["package"]: inputs["kernel"]["version"],
                     inputs["busybox"]["package"]: inputs["busybox"]["version"], **inputs["tools"]},
        "sources_sha256": inputs["sources_sha256"],
        "kernel": {"release": release, "cmdline": CMDLINE, "vmlinuz_size": len(vmlinuz),
                   "initrd_size": len(initrd), "modules": [name for name, _ in modules]},
        "marker": MARKER,
        "min_memory_mib": MIN_MEMORY_MIB,
    }


def _describe(path: Path, name: str, fmt: str) -> dict:
    info = json.loads(_run(["qemu-img", "info", "--output=json", str(path)], f"inspect {path.name}",
                           text=True).stdout)
    if fmt == "QCOW2" and (info.get("format") != "qcow2" or info.get("backing-filename")):
        raise BuildError(f"{path.name} came out as {info.get('format')} with backing file "
                         f"{info.get('backing-filename')!r}; expected a standalone qcow2")
    return {"name": name, "file": path.name, "format": fmt, "virtual_size": int(info["virtual-size"]),
            "physical_size": path.stat().st_size, "sha256": _sha256(path)}


# --- kernel package -----------------------------------------------------------------------------


def _deb_members(deb: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Stream the data archive of a .deb (dpkg-deb --fsys-tarfile), member by member."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=errors,
                                   env=_env())
        assert process.stdout is not None
        complete = False
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    yield member, archive
            complete = True
        except tarfile.TarError as exc:
            raise BuildError(f"Cannot read {deb.name}: {exc}; delete it to fetch it again") from exc
        finally:
            process.stdout.close()
            if not complete:  # the caller found what it wanted, or failed
                process.kill()
            process.wait()
        if process.returncode != 0:
            errors.seek(0)
            raise BuildError(f"Cannot read {deb.name}: dpkg-deb: {errors.read().decode(errors='replace').strip()}; "
                             f"delete it to fetch it again")


def _unpack_file(deb: Path, member_name: str) -> bytes:
    for member, archive in _deb_members(deb):
        if member.name == member_name and member.isfile():
            handle = archive.extractfile(member)
            assert handle is not None
            return handle.read()
    raise BuildError(f"{deb.name} has no {member_name}")


def _unpack_kernel(deb: Path) -> tuple[bytes, str, list[tuple[str, bytes]]]:
    """vmlinuz, the kernel release, and the modules to load, in load order (dependencies first)."""
    vmlinuz = b""
    release = ""
    found: dict[str, tuple[list[str], bytes]] = {}  # module name -> (its dependencies, the .ko)
    for member, archive in _deb_members(deb):
        name = member.name
        if not member.isfile():
            continue
        if name.startswith("./boot/vmlinuz-"):
            release = name.removeprefix("./boot/vmlinuz-")
            vmlinuz = archive.extractfile(member).read()  # type: ignore[union-attr]
        elif "/kernel/" in name and name.endswith((".ko", ".ko.xz", ".ko.gz")):
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if name.endswith(".xz"):
                data = lzma.decompress(data)
            elif name.endswith(".gz"):
                data = gzip.decompress(data)
            module, depends = _modinfo(data, Path(name).name.split(".ko")[0])
            found[module] = (depends, data)
    if not vmlinuz:
        raise BuildError(f"{deb.name} holds no /boot/vmlinuz-*")
    missing = [m for m in REQUIRED_MODULES if m not in found]
    if missing:
        raise BuildError(f"{deb.name} lacks the kernel modules {', '.join(missing)} (built in or compressed "
                         f"differently?); Tiny Linux needs them as modules of this kernel")
    order: list[str] = []

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in order or module in path:
            return
        if module not in found:
            raise BuildError(f"kernel module {path[-1]} depends on {module}, which {deb.name} does not hold")
        for dependency in found[module][0]:
            visit(dependency, (*path, module))
        order.append(module)

    for module in (*REQUIRED_MODULES, *(m for m in OPTIONAL_MODULES if m in found)):
        visit(module, ())
    return vmlinuz, release, [(module, found[module][1]) for module in order]


def _modinfo(ko: bytes, fallback_name: str) -> tuple[str, list[str]]:
    """A module's name and dependencies from its ELF .modinfo section ("name=…", "depends=a,b")."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2 or ko[5] != 1:  # 64-bit little-endian only (x86-64)
        raise BuildError(f"kernel module {fallback_name} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", ko, shoff + index * shentsize)
        return name, offset, size

    _, strtab, _ = section(shstrndx)
    name = fallback_name.replace("-", "_")
    depends: list[str] = []
    for index in range(shnum):
        name_offset, offset, size = section(index)
        if ko[strtab + name_offset : ko.index(b"\0", strtab + name_offset)] != b".modinfo":
            continue
        for entry in ko[offset : offset + size].split(b"\0"):
            key, _, value = entry.decode(errors="replace").partition("=")
            if key == "name" and value:
                name = value
            elif key == "depends" and value:
                depends = [d.replace("-", "_") for d in value.split(",") if d]
        break
    return name, depends


# --- initramfs ----------------------------------------------------------------------------------


class _Cpio:
    """A newc ("070701") cpio archive as the kernel unpacks it: root-owned entries, mtime 0, so the
    same inputs give the same bytes, and device nodes without needing root to create them."""

    def __init__(self) -> None:
        self.data = io.BytesIO()
        self.inode = 0

    def _entry(self, name: str, mode: int, body: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        self.inode += 1
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = (self.inode, mode, 0, 0, nlink, 0, len(body), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.data.write(b"070701" + "".join(f"{v:08X}" for v in fields).encode() + encoded)
        self._pad()
        self.data.write(body)
        self._pad()

    def _pad(self) -> None:
        self.data.write(b"\0" * (-self.data.tell() % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, body: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, body)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.data.getvalue()


def _initramfs(busybox: bytes, modules: list[tuple[str, bytes]]) -> bytes:
    """The gzip-compressed initramfs: busybox, our files from initramfs/, the modules and their
    load order (/etc/modules.order, read by /etc/init.d/rcS)."""
    files: dict[str, tuple[bytes, int]] = {"bin/busybox": (busybox, 0o755)}
    for path in sorted(p for p in INITRAMFS_DIR.rglob("*") if p.is_file()):
        name = path.relative_to(INITRAMFS_DIR).as_posix()
        body = path.read_bytes()
        mode = 0o600 if name == "etc/shadow" else 0o755 if body.startswith(b"#!") else 0o644
        files[name] = (body, mode)
    for module, ko in modules:
        files[f"lib/modules/{module}.ko"] = (ko, 0o644)
    files["etc/modules.order"] = ("".join(f"{module}.ko\n" for module, _ in modules).encode(), 0o644)

    special = {"root": 0o700, "tmp": 0o1777}
    directories = {"dev", "proc", "sys", "run", "tmp", "mnt", "root", "sbin", "usr", "usr/bin", "usr/sbin", "var",
                   "var/log"}
    for name in files:
        parts = name.split("/")[:-1]
        directories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    archive = _Cpio()
    for directory in sorted(directories):
        archive.directory(directory, special.get(directory, 0o755))
    archive.char_device("dev/console", 5, 1, 0o600)  # the kernel opens it before /init runs
    archive.char_device("dev/null", 1, 3, 0o666)
    archive.symlink("var/run", "/run")
    for name, (body, mode) in sorted(files.items()):
        archive.file(name, body, mode)
    return gzip.compress(archive.finish(), compresslevel=6, mtime=0)


# --- disk image and ISO -------------------------------------------------------------------------


def _bootloader_config(boot: str) -> bytes:
    return (f"DEFAULT tiny\nPROMPT 0\nTIMEOUT 0\nSERIAL 0 115200\n"
            f"LABEL tiny\n  KERNEL /vmlinuz\n  INITRD /initrd.gz\n  APPEND {CMDLINE} nubo.boot={boot}\n").encode()


def _disk_image(work: Path, target: Path) -> None:
    """MBR + one bootable FAT16 partition with SYSLINUX, vmlinuz and initrd.gz, as qcow2."""
    start = PARTITION_START_SECTOR * 512
    fat = work / "fat.img"
    (work / "syslinux.cfg").write_bytes(_bootloader_config("disk"))
    _run(["mkfs.vfat", "--invariant", "-F", "16", "-n", "TINYLINUX", "-i", VOLUME_ID, "-h", str(PARTITION_START_SECTOR),
          "-C", str(fat), str((DISK_SIZE - start) // 1024)], "create the FAT file system (mkfs.vfat)")
    _run(["syslinux", "--install", str(fat)], "install SYSLINUX (syslinux --install)")
    for name in ("vmlinuz", "initrd.gz", "syslinux.cfg"):
        os.utime(work / name, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    _run(["mcopy", "-m", "-i", str(fat), str(work / "vmlinuz"), str(work / "initrd.gz"), str(work / "syslinux.cfg"),
          "::/"], "copy the kernel and initramfs into the FAT file system (mcopy)")

    raw = work / "disk.raw"
    with raw.open("wb") as disk:
        disk.truncate(DISK_SIZE)
    table = (f"label: dos\nlabel-id: 0x{VOLUME_ID}\nunit: sectors\n\n"
             f"start={PARTITION_START_SECTOR}, type=e, bootable\n")
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", "--wipe-partitions", "never",
          str(raw)], "write the partition table (sfdisk)", input=table.encode())
    with raw.open("r+b") as disk, fat.open("rb") as partition:
        disk.write(MBR_BIN.read_bytes()[:440])  # boot code only: the table and signature stay
        disk.seek(start)
        shutil.copyfileobj(partition, disk, 1 << 20)
    _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(target)],
         "convert the disk image to qcow2 (qemu-img convert)")


def _iso_image(work: Path, target: Path) -> None:
    """A hybrid isolinux ISO (bootable as a CD-ROM or as a disk) of the same kernel and initramfs."""
    tree = work / "iso"
    (tree / "isolinux").mkdir(parents=True)
    shutil.copyfile(ISOLINUX_BIN, tree / "isolinux" / "isolinux.bin")
    shutil.copyfile(LDLINUX_C32, tree / "isolinux" / "ldlinux.c32")
    (tree / "isolinux" / "isolinux.cfg").write_bytes(_bootloader_config("iso"))
    shutil.copyfile(work / "vmlinuz", tree / "vmlinuz")
    shutil.copyfile(work / "initrd.gz", tree / "initrd.gz")
    for path in [tree, *tree.rglob("*")]:
        os.utime(path, (SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH))
    _run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(target), "-V", "TINY_LINUX", "-J", "-R",
          "-isohybrid-mbr", str(ISOHYBRID_MBR), "-c", "isolinux/boot.cat", "-b", "isolinux/isolinux.bin",
          "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(tree)], "create the ISO (xorriso)")


# --- small helpers ------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
