"""The web UI at scale: the server time of the dashboard and of the instances list page (root
admin, page 1) with 10,000 VMs and 1,000 hosts in the database, against bare Django views that
render the same rows (bench/baseline_urls.py: /bench/ui/dashboard, /bench/ui/instances), and the
SQL queries of each page with 10 VMs and 10 hosts and with 10,000 VMs and 1,000 hosts (the counts
must be equal).

Run by bench/run.py as `python -m bench.ui` (DJANGO_SETTINGS_MODULE=bench.settings, against the
scratch database after bootstrap) and standalone the same way; prints one JSON object on stdout.

Everything it makes lives in one transaction that is rolled back at the end, so it leaves the
database as it found it (the later benchmark steps start from the same state). In it: a zone with
a pod, a /18 guest IP range, a Simulator cluster, a primary storage pool and an image store (rows,
no libvirt), one template and one offering, then bulk-created rows: Up Simulator hosts and Running
or Stopped VMs on them, each VM with a NIC holding an allocated guest address, owned by 4
accounts, and a few alerts and events, as bench/vms.py does for listVirtualMachines. The loaded
tables are ANALYZEd (as autovacuum soon would) before measuring. Requests go through the real URL
routing and middleware in-process (django.test.Client, logged in as the root admin): the time is
the server's, without a network. Median of RUNS after one warm-up."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

HOSTS = 1_000
VMS = 10_000
FIRST = 10
OWNERS = 4
RUNS = 9
PAGES = {
    "dashboard": ("/client/", "/bench/ui/dashboard"),
    "instances": ("/client/instances", "/bench/ui/instances"),
}


class Rollback(Exception):
    pass


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import transaction

    result: dict = {}
    try:
        with transaction.atomic():
            result = measure()
            raise Rollback
    except Rollback:
        pass
    print(json.dumps(result))
    sys.stdout.flush()


def measure() -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    from bench.seed import normalise
    from tests.factories import admin_user

    world = build()
    admin = admin_user()
    client = Client()
    client.force_login(admin)

    def sql(url: str) -> list[tuple[str, float]]:
        runs = []
        for _ in range(3):  # the first call may fill per-process caches; report the steady state
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered HTTP {response.status_code}: {response.content[:300]!r}")
            runs.append([(q["sql"], float(q["time"])) for q in ctx.captured_queries])
        return min(runs[1:], key=len)  # a settings snapshot expiring mid-run adds a query unrelated to rows

    def timed(url: str) -> dict:
        client.get(url)  # warm-up
        times = []
        for _ in range(RUNS):
            began = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered HTTP {response.status_code}")
        return {"median_ms": round(statistics.median(times) * 1000, 2), "min_ms": round(min(times) * 1000, 2),
                "max_ms": round(max(times) * 1000, 2), "runs": RUNS, "bytes": len(response.content)}

    out: dict = {"hosts": HOSTS, "vms": VMS, "first": FIRST, "owners": OWNERS}
    with override_settings(DEBUG=False):
        add(world, 0, FIRST, 0, FIRST)
        small = {name: sql(ours) for name, (ours, _) in PAGES.items()}
        add(world, FIRST, VMS, FIRST, HOSTS)
        large = {name: sql(ours) for name, (ours, _) in PAGES.items()}
        for name, (ours, bare) in PAGES.items():
            mine, theirs = timed(ours), timed(bare)
            repeats = []
            if len(small[name]) != len(large[name]):
                import collections

                a = collections.Counter(normalise(s) for s, _ in small[name])
                b = collections.Counter(normalise(s) for s, _ in large[name])
                repeats = [{"sql": s, f"times_with_{FIRST}": a.get(s, 0), f"times_with_{VMS}": n}
                           for s, n in (b - a).most_common()]
            out[name] = {
                "ours": mine, "bare": theirs, "ratio": round(mine["median_ms"] / theirs["median_ms"], 3),
                "queries_small": len(small[name]), "queries_large": len(large[name]),
                "sql_ms_large": round(sum(t for _, t in large[name]) * 1000, 2),
                "bare_queries": len(sql(bare)), "repeats": repeats,
            }
    out["how"] = ("in-process django.test.Client as the root admin, one transaction rolled back at the end; "
                  "rows bulk-created (hosts; VMs with a NIC and an allocated address), tables ANALYZEd")
    return out


def build() -> dict:
    """The zone and what the bulk rows hang on (service calls for the hierarchy, rows for the rest)."""
    from accounts import services as account_services
    from compute import networks
    from compute import services as compute_services
    from compute.models import GuestIpAddress, ServiceOffering, Zone
    from storage.models import ImageStore, StoragePool, Template
    from tests.factories import admin_user

    admin = admin_user()
    zone = compute_services.create_zone(admin, name="bench-ui", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    pod = compute_services.create_pod(admin, zone=zone, name="bench-ui-pod", gateway="10.96.0.1",
                                      netmask="255.255.192.0")
    ip_range = compute_services.create_vlan_ip_range(admin, pod=pod, gateway="10.96.0.1", netmask="255.255.192.0",
                                                     start_ip="10.96.0.10", end_ip="10.96.63.254")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="bench-ui-c", hypervisor="Simulator")
    StoragePool.objects.create(name="bench-ui-pool", zone=zone, pod=pod, cluster=cluster, url="file:///bench-ui",
                               type="Filesystem", path="/bench-ui", capacity_bytes=64 << 40, used_bytes=9 << 40,
                               allocated_bytes=20 << 40)
    ImageStore.objects.create(name="bench-ui-store", zone=zone, url="file:///bench-ui-store", protocol="file",
                              mount_path="/bench-ui-store", capacity_bytes=16 << 40, used_bytes=2 << 40)
    owners = [account_services.create_account(admin, username=f"bench-ui-owner-{i}", password="bench-pw-1",
                                              email=f"ui-owner-{i}@example.org", firstname="UI", lastname=f"Owner {i}")
              for i in range(OWNERS)]
    template = Template.objects.create(name="bench-ui-tiny", format="QCOW2", hypervisor="KVM", account=admin.account,
                                       url="file:///bench-ui-tiny.qcow2", is_public=True, size=32 << 20)
    offering = ServiceOffering.objects.create(name="bench-ui-small", display_text="bench ui", cpu_number=1,
                                              cpu_speed=500, memory=512)
    addresses = list(GuestIpAddress.objects.filter(ip_range=ip_range).order_by("id").values_list("id", flat=True))
    if len(addresses) < VMS:
        raise SystemExit(f"the /18 range holds {len(addresses)} addresses, fewer than {VMS}")
    return {"admin": admin, "zone": zone, "pod": pod, "cluster": cluster, "owners": owners, "template": template,
            "offering": offering, "network": networks.guest_network(zone), "addresses": addresses, "hosts": []}


def add(world: dict, vm_start: int, vm_stop: int, host_start: int, host_stop: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from compute.choices import AlertType
    from compute.models import Alert, GuestIpAddress, Host, Nic, VirtualMachine
    from portal import events

    zone, pod, cluster = world["zone"], world["pod"], world["cluster"]
    world["hosts"] += Host.objects.bulk_create([
        Host(name=f"bench-ui-h{n:04d}", zone=zone, pod=pod, cluster=cluster, url=f"http://sim/bench-ui/h{n:04d}",
             hypervisor="Simulator", state="Up" if n % 50 else "Alert", cpu_sockets=2, cpu_number=32,
             cpu_speed=2400, memory_total=256 << 30, memory_used=64 << 30, cpu_used_percent=25.0,
             last_pinged=timezone.now())
        for n in range(host_start, host_stop)], batch_size=1000)
    hosts, offering, batch = world["hosts"], world["offering"], 2000
    for low in range(vm_start, vm_stop, batch):
        high = min(vm_stop, low + batch)
        vms = VirtualMachine.objects.bulk_create([
            VirtualMachine(name=f"bench-ui-{n:05d}", display_name=f"bench ui {n}",
                           account=world["owners"][n % OWNERS], zone=zone, pod=pod, host=hosts[n % len(hosts)],
                           template=world["template"], service_offering=offering,
                           state="Running" if n % 4 else "Stopped", cpu_number=offering.cpu_number,
                           cpu_speed=offering.cpu_speed, memory=offering.memory, emulation="qemu")
            for n in range(low, high)], batch_size=batch)
        ids = world["addresses"][low:high]
        GuestIpAddress.objects.filter(pk__in=ids).update(allocated=timezone.now())
        Nic.objects.bulk_create([
            Nic(virtual_machine=vm, network=world["network"], address_id=address_id,
                mac=f"1e:00:bf:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}")
            for n, vm, address_id in zip(range(low, high), vms, ids)], batch_size=batch)
    for n in range(3):
        Alert.objects.create(type=AlertType.HOST, name="ALERT.HOST", subject=f"Host bench-ui-h{n} is Alert",
                             zone=zone, pod=pod, cluster=cluster)
        events.record(world["admin"], "VM.CREATE", f"bench event {vm_stop}-{n}")
    with connection.cursor() as cursor:
        for table in ("compute_virtualmachine", "compute_nic", "compute_guestipaddress", "compute_host",
                      "portal_event", "compute_alert"):
            cursor.execute(f"ANALYZE {table}")


if __name__ == "__main__":
    main()
