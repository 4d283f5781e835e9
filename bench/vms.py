"""User VMs: deploy against raw libvirt, parallel deploys, and listVirtualMachines at 10,000 VMs
(run by bench/run.py as `python -m bench.vms`, DJANGO_SETTINGS_MODULE=portal.settings, against the
scratch database after bootstrap; prints one JSON object on stdout).

In-process with NUBO_JOBS_EAGER=1 (jobs run where they are enqueued, as a worker would run them).

1. deployVirtualMachine → Running on this machine's qemu:///system, for a cached template, against
   raw libvirt. The infrastructure is built through the services as tests/compute/
   test_instances_qemu.py's `kvm` fixture does: a zone, a pod with a guest range on a free
   10.2xx.3.0/24, a KVM cluster, host qemu:///system, a directory pool and an image store in a
   temporary directory, the built-in Tiny Linux template registered and downloaded, an offering of
   builtin.MIN_MEMORY_MIB. One untimed deploy puts the template's base volume on the pool (and is
   destroyed); a second VM is then deployed and left running through the rounds, as a host normally
   has other guests: the first DHCP lease on a pod's network makes libvirt restart the network's
   dnsmasq (about 2 s here, reported as first_on_network_seconds), later ones are a SIGHUP. Once it
   has booted (its vCPU time stops growing), ROUNDS alternating rounds of
     ours: compute.instances.allocate (in a transaction) + start_on_host(first=True), until it
           returns with the VM Running (placement, address, MAC, rows, copy-on-write root disk,
           config drive ISO, the pod network's DHCP lease, define, start);
     raw:  `qemu-img create -f qcow2 -b <the base volume> -F qcow2` + defineXML of the same kind of
           domain (compute.drivers.domain_xml, same memory, vCPU, emulation and NIC on the pod's
           network; no config drive, no lease) + create, on one open libvirt connection.
   Each VM or domain is destroyed and removed after its timing (untimed). Medians; ratio = ours / raw.
2. 20 deploys (allocate + start_on_host) through 2 threads, each with its own database connection,
   taking deploys from one queue, on a Simulator host (libvirt's test:///default, in-process) whose
   pool already holds the template's base: the total seconds for the 20. A deploy that fails is
   counted and reported (failed, errors), not retried, and the run goes on.
3. listVirtualMachines listall=true pagesize=500 with 10 and with 10,000 VMs (bulk-created rows, each
   with a NIC and an allocated guest address of a /18 range, owned by 4 accounts), through the real
   URL routing and middleware (django.test.Client, signed with BENCH_API_KEY/BENCH_SECRET, or new
   admin keys when those are not set): the SQL queries per page (must be equal, with their time) and
   the in-process latency of pages 1 and 2 (median of LATENCY_RUNS). The loaded tables are ANALYZEd
   first, as autovacuum would soon do (with stale statistics and bench.seed's 500 accounts, the
   page's SQL takes 0.45 s instead of 2 ms).

Everything made in libvirt (our VMs' domains and disks, the nubo-bench-* domains, the pools under
the temporary directory, the pod's network) is removed at the end, also on failure."""
from __future__ import annotations

import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

QEMU = "qemu:///system"
ROUNDS = 5
PARALLEL_DEPLOYS = 20
WORKERS = 2
LIST_VMS = 10_000
LIST_FIRST = 10
LIST_OWNERS = 4
PAGE_SIZE = 500
LATENCY_RUNS = 7
RAW_PREFIX = "nubo-bench-raw-"


def warn(text: str) -> None:
    print(f"bench.vms: {text}", file=sys.stderr, flush=True)


def free_third_octet() -> int:
    """A third octet in 200-249 whose 10.x.3.0/24 no interface of this machine uses (the pod's
    libvirt network puts its gateway on a bridge here)."""
    import secrets

    used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    taken = {int(part.split(".")[1]) for part in used.split() if part.startswith("10.") and part.count(".") == 3}
    free = [n for n in range(200, 250) if n not in taken]
    if not free:
        raise SystemExit("no free 10.2xx.3.0/24 for the benchmark's pod network")
    return free[secrets.randbelow(len(free))]


def wait_idle(domain, limit_s: float = 90.0) -> float:
    """Wait until a just-started guest has booted: its vCPU time grows by less than 5% of a CPU
    over a second (at most `limit_s`). Returns the seconds waited."""
    started = time.monotonic()
    last = domain.info()[4]
    while time.monotonic() - started < limit_s:
        time.sleep(1.0)
        now = domain.info()[4]
        if now - last < 0.05e9:
            break
        last = now
    return round(time.monotonic() - started, 1)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["NUBO_JOBS_EAGER"] = "1"
    import django

    django.setup()

    import libvirt

    root = Path(tempfile.mkdtemp(prefix="nubo-bench-vms-"))
    made: dict = {}
    # libvirt's test:///default keeps its state (the Simulator's pools, volumes, domains) only while
    # a connection to it is open in this process: hold one, as a long-lived worker effectively does.
    simulator = libvirt.open("test:///default")
    try:
        result = {}
        result["deploy"] = deploy_vs_raw(root, made)
        result["parallel"] = parallel_deploys(root)
        result["list"] = list_at_scale()
        print(json.dumps(result))
        sys.stdout.flush()
    finally:
        cleanup(root, made)
        simulator.close()
        shutil.rmtree(root, ignore_errors=True)


# -- 1. deploy vs raw libvirt -----------------------------------------------------------------------
def deploy_vs_raw(root: Path, made: dict) -> dict:
    import libvirt
    from django.conf import settings
    from django.db import transaction

    from compute import instances, networks
    from compute import services as compute_services
    from compute.drivers import DiskSpec, DomainSpec, NicSpec, get_driver
    from compute.drivers.domain_xml import domain_xml
    from compute.models import ServiceOffering, Zone
    from storage import services as storage_services
    from storage.images import builtin
    from storage.images import services as images
    from storage.models import TemplateZone, Volume
    from tests.factories import admin_user

    with get_driver(QEMU) as driver:
        driver.ping()
    built = builtin.build(settings.VAR_DIR / "images", cache_dir=settings.VAR_DIR / "cache" / "images")
    admin = admin_user()
    third = free_third_octet()
    zone = compute_services.create_zone(admin, name="bench-vm-kvm", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    made["kvm_zone"] = zone.pk
    pod = compute_services.create_pod(admin, zone=zone, name="bench-vm-kvm-pod", gateway=f"10.{third}.3.1",
                                      netmask="255.255.255.0")
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway=f"10.{third}.3.1", netmask="255.255.255.0",
                                          start_ip=f"10.{third}.3.100", end_ip=f"10.{third}.3.109")
    made["kvm_pod"] = pod.pk
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="bench-vm-kvm-c", hypervisor="KVM")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=QEMU)
    pool = storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name="bench-vm-kvm-pool",
                                                url=f"file://{root}/primary")
    storage_services.add_image_store(admin, zone=zone, name="bench-vm-kvm-store", url=f"file://{root}/secondary")
    image = built["images"]["template"]
    row, = images.register(admin, is_iso=False, name="bench-tiny-linux", url=f"file://{image['path']}",
                           zoneid=str(zone.uuid), format="QCOW2", hypervisor="KVM", is_public=True, check_url=False)
    images.run_download(row.pk)  # already done when the eager job ran at commit: then a no-op
    if not TemplateZone.objects.get(pk=row.pk).is_ready:
        raise SystemExit(f"the Tiny Linux template did not become Ready: {TemplateZone.objects.get(pk=row.pk).status_text}")
    template = row.template
    offering = ServiceOffering.objects.create(name="bench-vm-tiny", display_text="bench tiny", cpu_number=1,
                                              cpu_speed=500, memory=builtin.MIN_MEMORY_MIB)
    emulation = str(host.effective_emulation)

    def ours(name: str) -> tuple[float, object]:
        started = time.perf_counter()
        with transaction.atomic():
            vm = instances.allocate(admin, owner=admin.account, zone=zone, offering=offering, template=template,
                                    name=name)
        vm = instances.start_on_host(admin, vm, first=True)
        elapsed = time.perf_counter() - started
        if vm.state != "Running":
            raise SystemExit(f"VM {vm.name} is {vm.state}, not Running: {vm.state_reason}")
        return elapsed, vm

    # Warm the template cache: the base volume lands on the pool.
    _, vm = ours("bench-warm")
    base_path = Volume.objects.select_related("base").get(virtual_machine=vm, type="ROOT").base.path
    instances.destroy(admin, vm, expunge=True)
    conn = libvirt.open(QEMU)
    made["raw_conn"] = conn
    # The first VM on the pod's network of a host costs more: its first DHCP lease makes libvirt
    # restart the network's dnsmasq (about 2 s here; later leases are a SIGHUP, about 0.35 s). That
    # VM stays running through the rounds, as a host normally has other guests; once it has booted.
    first_on_network, resident = ours("bench-resident")
    settle = wait_idle(conn.lookupByName(resident.instance_name))
    spec = networks.pod_network_spec(pod)
    with get_driver(QEMU) as driver:
        driver.ensure_network(spec)  # the raw domains' NIC is on the same network
    raw_dir = root / "raw"
    raw_dir.mkdir()

    def raw(index: int) -> float:
        name = f"{RAW_PREFIX}{index}"
        overlay = raw_dir / f"{name}.qcow2"
        xml = domain_xml(DomainSpec(
            name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=builtin.MIN_MEMORY_MIB, emulation=emulation,
            disks=(DiskSpec(target="vda", path=str(overlay), format="qcow2", bus="virtio", boot_order=1),),
            nics=(NicSpec(mac=networks.random_mac(), network=spec.name),), vnc=True,
            description="Nubo benchmark: raw libvirt baseline"), emulation)
        started = time.perf_counter()
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base_path, "-F", "qcow2", str(overlay)],
                       check=True)
        domain = conn.defineXML(xml)
        domain.create()
        elapsed = time.perf_counter() - started
        domain.destroy()
        domain.undefine()
        overlay.unlink()
        return elapsed

    raw(0)  # untimed, like the warm-up deploy
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for round_no in range(1, ROUNDS + 1):
        order = ("ours", "raw") if round_no % 2 else ("raw", "ours")
        for which in order:
            os.sync()
            if which == "ours":
                elapsed, vm = ours(f"bench-vm-{round_no}")
                instances.destroy(admin, vm, expunge=True)
            else:
                elapsed = raw(round_no)
            times[which].append(elapsed)
    instances.destroy(admin, resident, expunge=True)
    conn.close()
    made.pop("raw_conn", None)
    template.refresh_from_db()
    mine, theirs = statistics.median(times["ours"]), statistics.median(times["raw"])
    return {"rounds": ROUNDS, "emulation": emulation, "template_bytes": template.size,
            "ours_seconds": [round(t, 3) for t in times["ours"]], "raw_seconds": [round(t, 3) for t in times["raw"]],
            "ours_median": round(mine, 3), "raw_median": round(theirs, 3), "ratio": round(mine / theirs, 3),
            "first_on_network_seconds": round(first_on_network, 3), "resident_settle_seconds": settle,
            "how": "ours = allocate + start_on_host until Running, one other VM running on the pod network; raw = "
                   "qemu-img create -b + defineXML + create on one open connection (no config drive, no lease)"}


# -- 2. parallel deploys on the Simulator -----------------------------------------------------------
def parallel_deploys(root: Path) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from compute import instances
    from compute import services as compute_services
    from compute.models import ServiceOffering, VirtualMachine, Zone
    from storage import services as storage_services
    from storage.images import services as images
    from storage.models import TemplateZone
    from tests.factories import admin_user

    admin = admin_user()
    zone = compute_services.create_zone(admin, name="bench-vm-sim", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    zone.refresh_from_db()
    pod = compute_services.create_pod(admin, zone=zone, name="bench-vm-sim-pod", gateway="172.30.0.1",
                                      netmask="255.255.255.0")
    compute_services.create_vlan_ip_range(admin, pod=pod, gateway="172.30.0.1", netmask="255.255.255.0",
                                          start_ip="172.30.0.10", end_ip="172.30.0.59")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="bench-vm-sim-c", hypervisor="Simulator")
    compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url="http://sim/bench-vm-sim-c/h1",
                              hypervisor="Simulator")
    storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name="bench-vm-sim-pool",
                                         url=f"file://{root}/sim-primary")
    storage_services.add_image_store(admin, zone=zone, name="bench-vm-sim-store", url=f"file://{root}/sim-secondary")
    qcow2 = root / "sim-template.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "32M"], check=True)
    row, = images.register(admin, is_iso=False, name="bench-sim-tiny", url=qcow2.as_uri(), zoneid=str(zone.uuid),
                           format="QCOW2", hypervisor="KVM", is_public=True, check_url=False)
    images.run_download(row.pk)
    if not TemplateZone.objects.get(pk=row.pk).is_ready:
        raise SystemExit("the Simulator template did not become Ready")
    template = row.template
    offering = ServiceOffering.objects.create(name="bench-vm-sim", display_text="bench sim", cpu_number=1,
                                              cpu_speed=100, memory=64)

    def deploy(name: str):
        with transaction.atomic():
            vm = instances.allocate(admin, owner=admin.account, zone=zone, offering=offering, template=template,
                                    name=name)
        return instances.start_on_host(admin, vm, first=True)

    warm = deploy("bench-sim-warm")  # the template's base on the (simulated) pool, as in 1.
    instances.destroy(admin, warm, expunge=True)

    todo: queue.Queue[int] = queue.Queue()
    for index in range(PARALLEL_DEPLOYS):
        todo.put(index)
    done: list[tuple[int, float]] = []
    errors: list[str] = []

    def worker(number: int) -> None:
        try:
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                try:
                    vm = deploy(f"bench-sim-{index}")
                    if vm.state != "Running":
                        errors.append(f"bench-sim-{index}: {vm.state} {vm.state_reason}")
                    done.append((number, time.perf_counter() - started))
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    where = traceback.extract_tb(exc.__traceback__)
                    frame = next((f for f in reversed(where) if f.filename.endswith("compute/instances.py")), where[-1])
                    errors.append(f"bench-sim-{index}: {type(exc).__name__} in {frame.name} (compute/instances.py:"
                                  f"{frame.lineno}): {str(exc).splitlines()[0] if str(exc) else ''}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,), name=f"bench-worker-{n}") for n in range(WORKERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - started
    running = VirtualMachine.objects.filter(zone=zone, state="Running", removed__isnull=True).count()
    for message in errors:
        warn(f"parallel deploy failed: {message}")
    each = [t for _, t in done] or [0.0]
    for vm in VirtualMachine.objects.filter(zone=zone, removed__isnull=True).select_related("account__domain"):
        try:
            instances.destroy(admin, vm, expunge=True)  # untimed: the list below starts from no VM
        except Exception:  # noqa: BLE001 - a VM a failed deploy left behind (e.g. stuck in Starting)
            VirtualMachine.objects.filter(pk=vm.pk).update(removed=timezone.now())
    return {"deploys": PARALLEL_DEPLOYS, "workers": WORKERS, "total_seconds": round(total, 3),
            "running": running, "failed": len(errors), "errors": errors,
            "per_deploy_median_seconds": round(statistics.median(each), 3),
            "per_worker": {n: sum(1 for w, _ in done if w == n) for n in range(WORKERS)},
            "how": "2 threads, one database connection each, allocate + start_on_host, Simulator (test:///default)"}


# -- 3. listVirtualMachines at 10,000 VMs -----------------------------------------------------------
def list_at_scale() -> dict:
    from django.db import connection, transaction
    from django.db.models import CharField, Value
    from django.db.models.functions import Cast, Concat
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts import services as account_services
    from bench.loadgen import signed_query
    from bench.seed import normalise
    from compute import networks
    from compute import services as compute_services
    from compute.models import GuestIpAddress, Nic, ServiceOffering, VirtualMachine, Zone
    from storage.models import Template
    from tests.factories import admin_user

    admin = admin_user()
    api_key, secret = os.environ.get("BENCH_API_KEY"), os.environ.get("BENCH_SECRET")
    if not (api_key and secret):  # standalone: new admin keys (under run.py they would void bench.seed's)
        api_key, secret = account_services.register_user_keys(admin, admin)
    zone = compute_services.create_zone(admin, name="bench-vm-list", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    pod = compute_services.create_pod(admin, zone=zone, name="bench-vm-list-pod", gateway="10.64.0.1",
                                      netmask="255.255.192.0")
    ip_range = compute_services.create_vlan_ip_range(admin, pod=pod, gateway="10.64.0.1", netmask="255.255.192.0",
                                                     start_ip="10.64.0.10", end_ip="10.64.63.254")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="bench-vm-list-c", hypervisor="Simulator")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url="http://sim/bench-vm-list-c/h1",
                                     hypervisor="Simulator")
    owners = [account_services.create_account(admin, username=f"bench-vm-owner-{i}", password="bench-pw-1",
                                              email=f"vm-owner-{i}@example.org", firstname="VM", lastname=f"Owner {i}")
              for i in range(LIST_OWNERS)]
    template = Template.objects.get(name="bench-sim-tiny", removed__isnull=True)
    offering = ServiceOffering.objects.get(name="bench-vm-sim")
    network = networks.guest_network(zone)
    addresses = list(GuestIpAddress.objects.filter(ip_range=ip_range).order_by("id").values_list("id", flat=True))
    if len(addresses) < LIST_VMS:
        raise SystemExit(f"the /18 range holds {len(addresses)} addresses, fewer than {LIST_VMS}")
    client = Client()

    def add(start: int, stop: int) -> float:
        began = time.perf_counter()
        batch = 2000
        for low in range(start, stop, batch):
            high = min(stop, low + batch)
            with transaction.atomic():
                now = timezone.now()
                vms = VirtualMachine.objects.bulk_create([
                    VirtualMachine(name=f"bench-list-{n:05d}", display_name=f"bench list {n}",
                                   account=owners[n % LIST_OWNERS], zone=zone, pod=pod, host=host, last_host=host,
                                   template=template, service_offering=offering, state="Running",
                                   cpu_number=offering.cpu_number, cpu_speed=offering.cpu_speed,
                                   memory=offering.memory, emulation="qemu")
                    for n in range(low, high)], batch_size=batch)
                VirtualMachine.objects.filter(pk__in=[vm.pk for vm in vms]).update(
                    instance_name=Concat(Value("i-"), Cast("account_id", CharField()), Value("-"),
                                         Cast("id", CharField()), Value("-VM")))
                ids = addresses[low:high]
                GuestIpAddress.objects.filter(pk__in=ids).update(allocated=now)
                Nic.objects.bulk_create([
                    Nic(virtual_machine=vm, network=network, address_id=address_id,
                        mac=f"1e:00:be:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}")
                    for n, vm, address_id in zip(range(low, high), vms, ids)], batch_size=batch)
        # What autovacuum does within a minute of such a load: without fresh statistics the planner
        # takes the table for a few rows and joins the page's 10,000 VMs to every account in a nested
        # loop (0.45 s of SQL with bench.seed's 500 accounts, instead of 2 ms).
        with connection.cursor() as cursor:
            for table in ("compute_virtualmachine", "compute_nic", "compute_guestipaddress"):
                cursor.execute(f"ANALYZE {table}")
        return time.perf_counter() - began

    def page_query(page: int) -> str:
        return signed_query("listVirtualMachines", {"listall": "true", "page": str(page), "pagesize": str(PAGE_SIZE)},
                            api_key, secret)

    def count_queries(page: int) -> dict:
        query = page_query(page)
        runs = []
        for _ in range(3):  # the first call may fill per-process caches; report the steady state
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(f"/client/api?{query}")
            runs.append([(q["sql"], float(q["time"])) for q in ctx.captured_queries])
        if response.status_code != 200:
            raise SystemExit(f"listVirtualMachines answered HTTP {response.status_code}: {response.content[:500]!r}")
        body = json.loads(response.content)["listvirtualmachinesresponse"]
        # The fewest of the later calls: a settings or role-rule snapshot that expires mid-measurement
        # adds a query that has nothing to do with the rows.
        steady = min(runs[1:], key=len)
        return {"queries": len(steady), "first_call_queries": len(runs[0]),
                "sql_ms": round(sum(t for _, t in steady) * 1000, 2),
                "rows": len(body.get("virtualmachine", [])), "count": body.get("count", 0),
                "sql": [q for q, _ in steady]}

    def latency(page: int) -> dict:
        query = page_query(page)
        client.get(f"/client/api?{query}")  # warm-up
        times = []
        for _ in range(LATENCY_RUNS):
            began = time.perf_counter()
            response = client.get(f"/client/api?{query}")
            times.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise SystemExit(f"listVirtualMachines page {page} answered HTTP {response.status_code}")
        return {"median_ms": round(statistics.median(times) * 1000, 2), "min_ms": round(min(times) * 1000, 2),
                "max_ms": round(max(times) * 1000, 2), "runs": LATENCY_RUNS, "bytes": len(response.content)}

    first_seconds = add(0, LIST_FIRST)
    small = count_queries(1)
    small_latency = latency(1)
    rest_seconds = add(LIST_FIRST, LIST_VMS)
    large = count_queries(1)
    large_p2 = count_queries(2)
    for name, found, rows in (("10 VMs", small, LIST_FIRST), ("page 1", large, PAGE_SIZE), ("page 2", large_p2, PAGE_SIZE)):
        if found["rows"] != rows:
            raise SystemExit(f"listVirtualMachines {name} has {found['rows']} rows, not {rows}")
    if large["count"] != LIST_VMS:
        raise SystemExit(f"listVirtualMachines counts {large['count']} VMs, not {LIST_VMS}")
    page1, page2 = latency(1), latency(2)
    repeats = []
    if small["queries"] != large["queries"]:
        import collections

        a = collections.Counter(normalise(s) for s in small["sql"])
        b = collections.Counter(normalise(s) for s in large["sql"])
        for sql, n in (b - a).most_common():
            repeats.append({"sql": sql, f"times_with_{LIST_FIRST}": a.get(sql, 0), f"times_with_{LIST_VMS}": n})
    strip = lambda d: {k: v for k, v in d.items() if k != "sql"}  # noqa: E731
    return {"vms": LIST_VMS, "owners": LIST_OWNERS, "page_size": PAGE_SIZE,
            "bulk_create_seconds": round(first_seconds + rest_seconds, 2),
            "small": strip(small), "large": strip(large), "large_page2": strip(large_p2),
            "latency_10_vms_page1": small_latency, "latency_page1": page1, "latency_page2": page2,
            "small_sql": [normalise(s) for s in small["sql"]], "repeats": repeats,
            "how": "in-process django.test.Client, signed, listall=true; rows bulk-created (VM + NIC + address)"}


# -- cleanup ----------------------------------------------------------------------------------------
def cleanup(root: Path, made: dict) -> None:
    """Whatever this run left in qemu:///system, whatever failed: domains, the pod's network, the
    pools under `root` with their volumes (clones before their bases)."""
    conn = made.pop("raw_conn", None)
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    if "kvm_zone" not in made:
        return
    from compute import networks
    from compute.drivers import DriverError, get_driver
    from tests.compute.kvm import remove_network_and_pools
    from compute.models import Pod, VirtualMachine

    names: set[str] = set()
    network = None
    try:
        names = {n for n in VirtualMachine.objects.filter(zone_id=made["kvm_zone"]).values_list("instance_name", flat=True)
                 if n}
        if "kvm_pod" in made:
            network = networks.pod_network_spec(Pod.objects.get(pk=made["kvm_pod"])).name
    except Exception as exc:  # noqa: BLE001 - the database may be what failed
        warn(f"cleanup could not read the VMs' names from the database: {exc!r}")
    try:
        with get_driver(QEMU) as driver:
            names |= {d.name for d in driver.list_domains() if d.name.startswith(RAW_PREFIX)}
            for name in sorted(names):
                for step in (lambda: driver.stop_domain(name, force=True), lambda: driver.undefine_domain(name)):
                    try:
                        step()
                    except DriverError:
                        pass
            remove_network_and_pools(driver, network=network, under=str(root), warn=warn)
    except DriverError as exc:
        warn(f"cleanup: {exc.message}")


if __name__ == "__main__":
    main()
