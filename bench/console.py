"""The browser console: RFB framebuffer updates through the console proxy against a direct TCP
connection to the same VNC port, in the same run (run by bench/run.py as `python -m bench.console`,
DJANGO_SETTINGS_MODULE=portal.settings, against the scratch database after bootstrap; prints one
JSON object on stdout).

In-process with NUBO_JOBS_EAGER=1. A zone whose host is this machine's qemu:///system is built
through the services as bench/vms.py does (pod with a guest range on a free 10.2xx.3.0/24, KVM
cluster, directory pool and image store in a temporary directory, the built-in Tiny Linux template,
an offering of builtin.MIN_MEMORY_MIB), one VM is deployed (compute.instances.allocate +
start_on_host; this database's VM ids first jump to a random number of seven digits, so its domain
name cannot be one a test run on another database gives its VM on the same qemu:///system) and left
to boot until its vCPU time stops growing. `manage.py consoleproxy` then
runs on a free port as a subprocess with the environment this step got (the same database).

Two ways to the same VNC server (the VM's, on the port libvirt gave it):
  direct: TCP to the VNC host:port of a fresh `compute.console.issue` session row, RFB 3.8 with
          VNC authentication and the VM's decrypted password (compute.drivers.vnc.login), ClientInit,
          ServerInit (what the proxy itself does before it relays);
  proxy:  a new single-use token per connection (`console.issue`, untimed), a websocket to
          ws://127.0.0.1:PORT/websockify?token=… with the token's Origin, RFB 3.8 with security
          type None (the proxy has logged in), ClientInit, ServerInit (what noVNC does).
The client is the same Python code both ways (`Rfb` below over a socket or a websocket), so the
proxy figures include the client's own cost of unframing websocket messages.

After one untimed warm-up round of each, ROUNDS alternating rounds (direct first in odd rounds). In
each round and for each way: SETUPS connections are opened, the time from connect to the end of
ServerInit is the set-up time; the last of them is then used for the updates: SetEncodings with only
Raw (0), WARMUP_REQUESTS untimed 1x1 requests and one untimed full-screen request (QEMU's refresh
interval moves for a few refreshes after a client connects; the proxy's longer set-up would otherwise
put its first requests at another point of that ramp than the direct client's), then
  latency:    LATENCY_REPS x a non-incremental FramebufferUpdateRequest for the 1x1 region at (0,0),
              timed until its FramebufferUpdate is fully read;
  full:       FULL_REPS x a non-incremental FramebufferUpdateRequest for the whole screen, timed
              until every rectangle of the update is read (raw: w*h*bytes-per-pixel of the ServerInit
              pixel format): seconds and MB/s (10^6 bytes of pixels over the round trip); and the
              delivery rate once the update flows: the bytes after the client's first read of the
              answer over the time from that read to the last byte (both clients read 64 KiB at a
              time: the direct one from its socket, the proxied one a websocket message, which
              websockify makes of each 64 KiB it reads from the VNC server);
  echo:       ECHO_REPS x the same 1x1 request after SetEncodings Raw + ExtendedDesktopSize (-308):
              QEMU answers a non-incremental request from such a client at once with an
              ExtendedDesktopSize rectangle (in the request's read handler), before the pixels, which
              follow on its next display refresh. Timed to that first update: a round trip through
              the VNC server that does not wait for QEMU's refresh timer.
QEMU sends pixels only on its display refresh timer (30 ms, growing by 50 ms per refresh in which
the guest's screen did not change, up to 3 s; halved when it changes — the text-mode cursor blink
here), so the latency and full-screen round trips measure mostly that timer, the same both ways;
the echo and the delivery rate show what the proxy itself adds.
Updates are parsed (several rectangles per update; SetColourMapEntries, Bell and ServerCutText are
skipped; anything else is an error). Medians; ratio = proxy / direct for times, direct / proxy for
MB/s.

Also reported: the proxy's child processes still alive a second after the last connection closed
(websockify forks one per connection) and the console sessions the run issued, connected and ended.

Everything made in libvirt (the VM's domain, its disks, the pools under the temporary directory, the
pod's network) is removed at the end, also on failure, and the proxy process is stopped."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

QEMU = "qemu:///system"
ORIGIN = "http://bench-console.invalid"
ROUNDS = 5
SETUPS = 3
LATENCY_REPS = 20
FULL_REPS = 10
ECHO_REPS = 20
WARMUP_REQUESTS = 6  # untimed 1x1 requests at the start of each measured connection
IO_TIMEOUT = 30.0
READ_SIZE = 65536  # the direct client's socket reads: the size of websockify's reads (one message each)

ENC_RAW = 0
ENC_DESKTOP_SIZE = -223
ENC_EXT_DESKTOP_SIZE = -308


def warn(text: str) -> None:
    print(f"bench.console: {text}", file=sys.stderr, flush=True)


# -- the RFB client -------------------------------------------------------------------------------
class Rfb:
    """The client side of an RFB session after the security handshake, over `chunk()` (the next
    bytes from the server: a socket read or a websocket message) and `send(bytes)`."""

    def __init__(self, chunk, send, close):
        self._next = chunk
        self.send = send
        self.close = close
        self.buffer = bytearray()
        self.width = self.height = self.bytes_per_pixel = 0
        self.name = b""
        self.skipped: dict[str, int] = {}
        self.first_at: float | None = None  # when the first bytes after mark() arrived
        self.first_bytes = 0

    def mark(self) -> None:
        """Note the arrival of the next bytes from the server (the start of an answer)."""
        if self.buffer:  # something unsolicited came in (nothing does from QEMU): count it as first
            self.first_at, self.first_bytes = time.perf_counter(), len(self.buffer)
        else:
            self.first_at, self.first_bytes = None, 0

    def _chunk(self) -> bytes:
        data = self._next()
        if self.first_at is None:
            self.first_at, self.first_bytes = time.perf_counter(), len(data)
        return data

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._chunk()
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def skip(self, n: int) -> None:
        """Consume n bytes without keeping them (the pixels)."""
        take = min(n, len(self.buffer))
        del self.buffer[:take]
        n -= take
        while n:
            data = self._chunk()
            if len(data) <= n:
                n -= len(data)
            else:
                self.buffer += memoryview(data)[n:]
                n = 0

    def init(self) -> None:
        """ClientInit (shared) and ServerInit."""
        self.send(b"\x01")
        self.width, self.height = struct.unpack(">HH", self.read(4))
        pixel_format = self.read(16)
        bits, _depth, _big_endian, true_colour = pixel_format[:4]
        if bits not in (8, 16, 32) or not true_colour:
            raise RuntimeError(f"unexpected ServerInit pixel format {pixel_format.hex()}")
        self.bytes_per_pixel = bits // 8
        (length,) = struct.unpack(">I", self.read(4))
        self.name = self.read(length)

    def set_encodings(self, *encodings: int) -> None:
        self.send(struct.pack(">BxH", 2, len(encodings)) + b"".join(struct.pack(">i", e) for e in encodings))

    def request(self, x: int, y: int, w: int, h: int, incremental: bool = False) -> None:
        self.send(struct.pack(">BBHHHH", 3, int(incremental), x, y, w, h))

    def update(self) -> dict:
        """Read server messages until one FramebufferUpdate has been read whole; returns what it
        held (raw pixels covered and their bytes, rectangles, pseudo-rectangles)."""
        while True:
            (kind,) = self.read(1)
            if kind == 0:  # FramebufferUpdate
                (count,) = struct.unpack(">xH", self.read(3))
                out = {"rects": count, "pixels": 0, "bytes": 0, "pseudo": []}
                for _ in range(count):
                    x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
                    if encoding == ENC_RAW:
                        size = w * h * self.bytes_per_pixel
                        self.skip(size)
                        out["pixels"] += w * h
                        out["bytes"] += size
                    elif encoding == ENC_EXT_DESKTOP_SIZE:
                        screens = self.read(4)[0]
                        self.skip(16 * screens)
                        out["pseudo"].append(encoding)
                    elif encoding == ENC_DESKTOP_SIZE:
                        self.width, self.height = w, h
                        out["pseudo"].append(encoding)
                    else:
                        raise RuntimeError(f"a rectangle in encoding {encoding}, which was not asked for")
                return out
            if kind == 1:  # SetColourMapEntries
                _first, colours = struct.unpack(">xHH", self.read(5))
                self.skip(6 * colours)
                name = "SetColourMapEntries"
            elif kind == 2:
                name = "Bell"
            elif kind == 3:  # ServerCutText (a negative length is the extended-clipboard form)
                (length,) = struct.unpack(">3xi", self.read(7))
                self.skip(abs(length))
                name = "ServerCutText"
            else:
                raise RuntimeError(f"unexpected RFB server message type {kind}")
            self.skipped[name] = self.skipped.get(name, 0) + 1

    def until_covered(self, pixels: int) -> dict:
        """FramebufferUpdates until their raw rectangles cover `pixels` (QEMU answers a
        non-incremental request with one update holding the region, rounded to 16-pixel columns)."""
        total = {"updates": 0, "rects": 0, "pixels": 0, "bytes": 0}
        while total["pixels"] < pixels:
            got = self.update()
            total["updates"] += 1
            for key in ("rects", "pixels", "bytes"):
                total[key] += got[key]
        return total


def open_direct(host: str, port: int, password: str) -> Rfb:
    from compute.drivers import vnc

    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        vnc.login(*vnc.socket_io(sock), password)  # reads exactly what the handshake needs

        def chunk() -> bytes:
            data = sock.recv(READ_SIZE)
            if not data:
                raise RuntimeError("the VNC server closed the connection")
            return data

        rfb = Rfb(chunk, sock.sendall, sock.close)
        rfb.init()
        return rfb
    except BaseException:
        sock.close()
        raise


def open_proxy(port: int, token: str) -> Rfb:
    from websockets.sync.client import connect

    conn = connect(f"ws://127.0.0.1:{port}/websockify?token={token}", origin=ORIGIN, compression=None, proxy=None,
                   max_size=None, open_timeout=IO_TIMEOUT, close_timeout=5, legacy=True)
    try:
        def chunk() -> bytes:
            data = conn.recv(timeout=IO_TIMEOUT)
            if isinstance(data, str):
                raise RuntimeError("the proxy sent a text message")
            return data

        rfb = Rfb(chunk, conn.send, conn.close)
        if rfb.read(12) != b"RFB 003.008\n":
            raise RuntimeError("the proxy did not greet as an RFB 3.8 server")
        rfb.send(b"RFB 003.008\n")
        (count,) = rfb.read(1)
        types = rfb.read(count)
        if types != b"\x01":
            raise RuntimeError(f"the proxy offered security types {list(types)}, not [1] (None)")
        rfb.send(b"\x01")
        if rfb.read(4) != b"\0\0\0\0":
            raise RuntimeError("the proxy's SecurityResult is not OK")
        rfb.init()
        return rfb
    except BaseException:
        conn.close()
        raise


# -- the measurements -----------------------------------------------------------------------------
def measure(rfb: Rfb, *, latency_reps: int, full_reps: int, echo_reps: int) -> dict:
    w, h = rfb.width, rfb.height
    rfb.set_encodings(ENC_RAW)
    clock = time.perf_counter
    # Untimed: a new client changes QEMU's refresh interval for a few refreshes (and the proxy's
    # longer set-up puts its first requests elsewhere on that ramp); then one full screen.
    for _ in range(WARMUP_REQUESTS):
        rfb.request(0, 0, 1, 1)
        rfb.until_covered(1)
    rfb.request(0, 0, w, h)
    rfb.until_covered(w * h)
    latency, full, full_bytes, flowing, echo = [], [], [], [], []
    for _ in range(latency_reps):
        started = clock()
        rfb.request(0, 0, 1, 1)
        rfb.until_covered(1)
        latency.append(clock() - started)
    for _ in range(full_reps):
        rfb.mark()
        started = clock()
        rfb.request(0, 0, w, h)
        got = rfb.until_covered(w * h)
        ended = clock()
        full.append(ended - started)
        full_bytes.append(got["bytes"])
        # once the update flows: the bytes after the first read, over the time since that read
        flowing.append((got["bytes"] + 4 * got["updates"] + 12 * got["rects"] - rfb.first_bytes, ended - rfb.first_at,
                        rfb.first_bytes))
    rfb.set_encodings(ENC_RAW, ENC_EXT_DESKTOP_SIZE)
    for rep in range(echo_reps + 1):
        started = clock()
        rfb.request(0, 0, 1, 1)
        first = rfb.update()
        elapsed = clock() - started
        if ENC_EXT_DESKTOP_SIZE not in first["pseudo"] or first["pixels"]:
            raise RuntimeError(f"the VNC server did not answer with an ExtendedDesktopSize rectangle first: {first}")
        rfb.until_covered(1)  # the pixel follows on the next refresh
        if rep:  # the first is untimed
            echo.append(elapsed)
    return {"latency": latency, "full": full, "full_bytes": full_bytes, "flowing": flowing, "echo": echo}


def ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 3)


def summary(values: list[float]) -> dict:
    return {"median_ms": ms(values), "min_ms": round(min(values) * 1000, 3), "max_ms": round(max(values) * 1000, 3),
            "n": len(values)}


def run_rounds(vm, admin, proxy_port: int, *, rounds: int, setups: int, latency_reps: int, full_reps: int,
               echo_reps: int) -> dict:
    from accounts import crypto
    from compute import console

    password = crypto.decrypt(vm.vnc_password) if vm.vnc_password else ""
    samples = {way: {"setup": [], "latency": [], "full": [], "full_bytes": [], "flowing": [], "echo": [], "issue": []}
               for way in ("direct", "proxy")}
    screen: dict = {}
    skipped: dict[str, dict[str, int]] = {"direct": {}, "proxy": {}}
    clock = time.perf_counter

    def connect(way: str) -> tuple[Rfb, float, float]:
        started = clock()
        token, session = console.issue(admin, vm, origin=ORIGIN)  # the direct way reads the endpoint from it
        issued = clock() - started
        started = clock()
        rfb = open_direct(session.vnc_host, session.vnc_port, password) if way == "direct" else \
            open_proxy(proxy_port, token)
        return rfb, clock() - started, issued

    def one(way: str, timed: bool) -> None:
        rfb = None
        for _ in range(setups):
            if rfb is not None:
                rfb.close()
            rfb, setup, issued = connect(way)
            if timed:
                samples[way]["setup"].append(setup)
                samples[way]["issue"].append(issued)
        try:
            got = measure(rfb, latency_reps=latency_reps, full_reps=full_reps, echo_reps=echo_reps)
            screen.update(width=rfb.width, height=rfb.height, bytes_per_pixel=rfb.bytes_per_pixel,
                          name=rfb.name.decode("utf-8", "replace"))
            for name, count in rfb.skipped.items():
                skipped[way][name] = skipped[way].get(name, 0) + count
        finally:
            rfb.close()
        if timed:
            for key in ("latency", "full", "full_bytes", "flowing", "echo"):
                samples[way][key].extend(got[key])

    one("direct", False)
    one("proxy", False)
    for round_no in range(1, rounds + 1):
        for way in (("direct", "proxy") if round_no % 2 else ("proxy", "direct")):
            one(way, True)

    full_bytes = {b for way in samples.values() for b in way["full_bytes"]}
    expected = screen["width"] * screen["height"] * screen["bytes_per_pixel"]
    if full_bytes != {expected}:
        raise RuntimeError(f"full-screen updates held {sorted(full_bytes)} bytes of raw pixels, not {expected}")
    out: dict = {"screen": screen, "full_update_bytes": expected, "skipped_server_messages": skipped}
    for way, got in samples.items():
        flowing = [size / seconds / 1e6 for size, seconds, _ in got["flowing"]]
        out[way] = {"setup": summary(got["setup"]), "latency": summary(got["latency"]), "full": summary(got["full"]),
                    "full_mb_s": round(statistics.median(expected / t / 1e6 for t in got["full"]), 2),
                    "transfer_mb_s": round(statistics.median(flowing), 1),
                    "transfer_mb_s_min_max": [round(min(flowing), 1), round(max(flowing), 1)],
                    "transfer_first_read_bytes_median": statistics.median(first for _, _, first in got["flowing"]),
                    "transfer_ms_median": round(statistics.median(t for _, t, _ in got["flowing"]) * 1000, 3),
                    "echo": summary(got["echo"]), "issue_token": summary(got["issue"]),
                    **{f"{key}_ms": [round(t * 1000, 3) for t in got[key]]
                       for key in ("setup", "latency", "full", "echo")}}
    d, p = out["direct"], out["proxy"]
    out["ratios"] = {
        "latency": round(p["latency"]["median_ms"] / d["latency"]["median_ms"], 3),
        "full": round(p["full"]["median_ms"] / d["full"]["median_ms"], 3),
        "full_mb_s": round(d["full_mb_s"] / p["full_mb_s"], 3),
        "transfer_mb_s": round(d["transfer_mb_s"] / p["transfer_mb_s"], 3),
        "echo": round(p["echo"]["median_ms"] / d["echo"]["median_ms"], 3),
        "setup": round(p["setup"]["median_ms"] / d["setup"]["median_ms"], 3),
    }
    return out


# -- the VM ---------------------------------------------------------------------------------------
def deploy_vm(root: Path, made: dict):
    import secrets

    from django.conf import settings
    from django.db import transaction

    from bench.vms import free_third_octet
    from compute import instances
    from compute import services as compute_services
    from compute.drivers import get_driver
    from compute.models import Host, ServiceOffering, Zone
    from storage import services as storage_services
    from storage.images import builtin
    from storage.images import services as images
    from storage.models import TemplateZone
    from tests.factories import admin_user

    with get_driver(QEMU) as driver:
        driver.ping()
    built = builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    admin = admin_user()
    third = free_third_octet()
    tag = secrets.token_hex(3)  # names of their own: a kept database may hold an earlier run's rows
    zone = compute_services.create_zone(admin, name=f"bench-console-kvm-{tag}", dns1="8.8.8.8",
                                        internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    made["zone"] = zone.pk
    pod = compute_services.create_pod(admin, zone=zone, name=f"bench-console-pod-{tag}", gateway=f"10.{third}.3.1",
                                      netmask="255.255.255.0")
    made["pod"] = pod.pk
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway=f"10.{third}.3.1", netmask="255.255.255.0",
                                          start_ip=f"10.{third}.3.100", end_ip=f"10.{third}.3.109")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name=f"bench-console-c-{tag}", hypervisor="KVM")
    # A database holds one host per URL: bench.vms (the step before) leaves its qemu:///system host
    # row behind, its VMs expunged and its libvirt side removed. Delete it as an admin would.
    for stale in Host.objects.filter(url=QEMU):
        compute_services.delete_host(admin, stale, forced=True)
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=QEMU)
    storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name=f"bench-console-pool-{tag}",
                                         url=f"file://{root}/primary")
    storage_services.add_image_store(admin, zone=zone, name=f"bench-console-store-{tag}",
                                     url=f"file://{root}/secondary")
    image = built["images"]["template"]
    row, = images.register(admin, is_iso=False, name=f"bench-console-tiny-{tag}", url=f"file://{image['path']}",
                           zoneid=str(zone.uuid), format="QCOW2", hypervisor="KVM", is_public=True, check_url=False)
    images.run_download(row.pk)
    ready = TemplateZone.objects.get(pk=row.pk)
    if not ready.is_ready:
        raise SystemExit(f"the Tiny Linux template did not become Ready: {ready.status_text}")
    offering = ServiceOffering.objects.create(name=f"bench-console-tiny-{tag}", display_text="bench console tiny",
                                              cpu_number=1, cpu_speed=500, memory=builtin.MIN_MEMORY_MIB)
    avoid_name_clashes()
    started = time.perf_counter()
    with transaction.atomic():
        vm = instances.allocate(admin, owner=admin.account, zone=zone, offering=offering, template=row.template,
                                name="bench-console")
    made.setdefault("vms", []).append((vm.instance_name, str(vm.uuid)))
    made["admin"], made["vm"] = admin, vm.pk
    vm = instances.start_on_host(admin, vm, first=True)
    deployed = time.perf_counter() - started
    if vm.state != "Running":
        raise SystemExit(f"VM {vm.name} is {vm.state}, not Running: {vm.state_reason}")
    return admin, vm, host, round(deployed, 3)


def avoid_name_clashes() -> None:
    """Domains are named i-<account id>-<VM id>-VM, and qemu:///system is shared with every other
    database on this machine (the test suite's, another benchmark's): in a freshly migrated one the
    first VM is i-2-1-VM there too, and whoever removes theirs by name removes ours. Start this
    database's VM ids at a random high number (a scratch database; PostgreSQL only)."""
    import secrets

    from django.db import connection

    from compute.models import VirtualMachine

    if connection.vendor != "postgresql":
        return
    table, column = VirtualMachine._meta.db_table, VirtualMachine._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
        (highest,) = cursor.fetchone()
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                       [table, column, max(highest, 0) + 1_000_000 + secrets.randbelow(9_000_000)])


def cleanup(root: Path, made: dict) -> None:
    """What this run left, whatever failed: the VM is destroyed and expunged through Nubo; then in
    qemu:///system its domain if still there (looked up by its UUID, so a domain of the same name
    that another database made is never touched), the pod's network, the pools under `root` with
    their volumes (clones before their bases)."""
    import libvirt

    from compute import instances, networks
    from compute.drivers import DriverError, get_driver
    from tests.compute.kvm import remove_network_and_pools
    from compute.models import Pod, VirtualMachine

    if "vm" in made:  # as a user would: destroy and expunge (a kept database then holds no live VM)
        try:
            vm = VirtualMachine.objects.filter(pk=made["vm"], removed__isnull=True).first()
            if vm is not None:
                instances.destroy(made["admin"], vm, expunge=True)
        except Exception as exc:  # noqa: BLE001 - libvirt is cleaned below whatever happened here
            warn(f"cleanup: destroying the VM through Nubo failed: {exc!r}")
    try:
        conn = libvirt.open(QEMU)
    except libvirt.libvirtError as exc:
        warn(f"cleanup: cannot connect to {QEMU}: {exc}")
        return
    try:
        for name, uuid in made.get("vms", []):
            try:
                domain = conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError:
                continue  # never defined, or already gone
            try:
                if domain.isActive():
                    domain.destroy()
                domain.undefine()
            except libvirt.libvirtError as exc:
                warn(f"cleanup: domain {name}: {exc}")
    finally:
        conn.close()
    network = None
    if "pod" in made:
        try:
            network = networks.pod_network_spec(Pod.objects.get(pk=made["pod"])).name
        except Exception as exc:  # noqa: BLE001 - the database may be what failed
            warn(f"cleanup could not read the pod's network from the database: {exc!r}")
    try:
        with get_driver(QEMU) as driver:
            remove_network_and_pools(driver, network=network, under=str(root), warn=warn)
    except DriverError as exc:
        warn(f"cleanup: {exc.message}")


# -- main -----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--setups", type=int, default=SETUPS, help="connections per round and way")
    parser.add_argument("--latency-reps", type=int, default=LATENCY_REPS)
    parser.add_argument("--full-reps", type=int, default=FULL_REPS)
    parser.add_argument("--echo-reps", type=int, default=ECHO_REPS)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # the proxy runs as a server process would: without eager jobs
    proxy_env = {k: v for k, v in os.environ.items() if k != "NUBO_JOBS_EAGER"}
    os.environ["NUBO_JOBS_EAGER"] = "1"
    import django

    django.setup()

    from django.db import connections

    from bench.vms import wait_idle
    from tests.e2e.procs import REPO, Proc, descendants, free_port, pid_alive, wait_tcp

    root = Path(tempfile.mkdtemp(prefix="nubo-bench-console-"))
    made: dict = {}
    proxy = None
    ok = False
    try:
        admin, vm, host, deploy_seconds = deploy_vm(root, made)
        import libvirt

        conn = libvirt.open(QEMU)
        try:
            settle = wait_idle(conn.lookupByUUIDString(str(vm.uuid)))
        finally:
            conn.close()
        port = free_port()
        proxy = Proc("consoleproxy", [sys.executable, "manage.py", "consoleproxy", "--bind", f"127.0.0.1:{port}"],
                     env=proxy_env, log_dir=root, cwd=REPO)
        wait_tcp(port, [proxy], timeout=60)
        connections.close_all()  # nothing of ours is open in a transaction while the proxy reads the rows
        result = run_rounds(vm, admin, port, rounds=args.rounds, setups=args.setups, latency_reps=args.latency_reps,
                            full_reps=args.full_reps, echo_reps=args.echo_reps)
        if not proxy.alive():
            raise RuntimeError("the console proxy exited during the run")
        time.sleep(1.0)  # the last connection's child ends (it marks its session closed first)
        children = [pid for pid in descendants(proxy.pid) if pid_alive(pid)]
        result["proxy_children_left"] = len(children)  # websockify forks one per connection
        from compute.models import ConsoleSession

        sessions = ConsoleSession.objects.filter(virtual_machine=vm)
        result["console_sessions"] = {"issued": sessions.count(),
                                      "connected": sessions.filter(connected__isnull=False).count(),
                                      "ended": sessions.filter(ended__isnull=False).count()}
        result["setup"] = {
            "rounds": args.rounds, "connections_per_round_and_way": args.setups, "latency_reps": args.latency_reps,
            "full_reps": args.full_reps, "echo_reps": args.echo_reps, "emulation": str(host.effective_emulation),
            "deploy_seconds": deploy_seconds, "guest_settle_seconds": settle, "cpus": os.cpu_count(),
            "how": "direct = TCP + vnc.login (VNC auth) to the VM's VNC port; proxy = manage.py consoleproxy, a "
                   "new console token per connection, websocket (websockets.sync client) + RFB 3.8 security None; "
                   "same Python RFB client both ways, SetEncodings Raw only (the echo: + ExtendedDesktopSize); "
                   "non-incremental FramebufferUpdateRequests; medians of alternating rounds"}
        print(json.dumps(result))
        sys.stdout.flush()
        ok = True
    finally:
        if proxy is not None:
            proxy.stop()
            if not ok:
                warn(f"console proxy log:\n{proxy.log_tail(60)}")
        cleanup(root, made)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
