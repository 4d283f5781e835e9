"""Benchmark data for listHosts, and its in-process SQL query count (run by bench/run.py as
`python -m bench.hosts`, DJANGO_SETTINGS_MODULE=portal.settings, against the scratch database,
after bench.seed).

Adds Simulator hosts IN-PROCESS through compute.services.add_host (the service the addHost command
calls: each host is reached through libvirt's test:///default driver, its facts read and its row,
event and pools written), in clusters of --per-cluster hosts spread over two pods of one zone —
first --first hosts, then up to --total. After each step it counts the SQL queries of a signed
listHosts page (page=1, pagesize=500) answered through the real URL routing and middleware
(django.test.Client); with --total hosts also of page 2. Signs with the admin keys bench.seed
made (BENCH_API_KEY / BENCH_SECRET in the environment: registering new keys would void them).
Prints one JSON object on stdout."""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--total", type=int, default=1000)
    parser.add_argument("--per-cluster", type=int, default=50)
    args = parser.parse_args()
    if args.total < 1000:
        raise SystemExit("--total must be at least 1000 (two full 500-row pages)")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from bench.loadgen import signed_query
    from bench.seed import normalise
    from compute import services

    api_key, secret = os.environ["BENCH_API_KEY"], os.environ["BENCH_SECRET"]
    admin = User.objects.select_related("account__domain", "account__role").get(username="admin", domain__path="/")
    client = Client()

    zone = services.create_zone(admin, name="bench-zone", dns1="8.8.8.8", internal_dns1="10.0.0.1",
                                allocation_state="Enabled")
    pods = [services.create_pod(admin, zone=zone, name=f"bench-pod-{i}", gateway=f"10.{i}.0.1",
                                netmask="255.255.0.0") for i in range(2)]
    clusters: list = []

    def add(start: int, stop: int) -> float:
        began = time.perf_counter()
        for index in range(start, stop):
            number = index // args.per_cluster
            while len(clusters) <= number:
                pod = pods[len(clusters) % len(pods)]
                clusters.append(services.add_cluster(admin, zone=zone, pod=pod, name=f"bench-c{len(clusters):03d}",
                                                     hypervisor="Simulator"))
            cluster = clusters[number]
            services.add_host(admin, zone=zone, pod=cluster.pod, cluster=cluster, hypervisor="Simulator",
                              url=f"http://sim/{cluster.name}/h{index:05d}")
        return time.perf_counter() - began

    def count_queries(page: int) -> dict:
        query = signed_query("listHosts", {"page": str(page), "pagesize": "500"}, api_key, secret)
        runs = []
        for _ in range(3):  # the first call may fill per-process caches; report the steady state
            with CaptureQueriesContext(connection) as ctx:
                began = time.perf_counter()
                response = client.get(f"/client/api?{query}")
                elapsed = time.perf_counter() - began
            runs.append(([q["sql"] for q in ctx.captured_queries], elapsed))
        assert response.status_code == 200, response.content[:500]
        body = json.loads(response.content)["listhostsresponse"]
        # The fewest of the later calls: a settings or role-rule snapshot that expires (every few
        # seconds) mid-measurement adds a query that has nothing to do with the rows.
        steady = min((r[0] for r in runs[1:]), key=len)
        return {"queries": len(steady), "first_call_queries": len(runs[0][0]), "rows": len(body.get("host", [])),
                "count": body.get("count", 0), "in_process_ms": round(min(r[1] for r in runs) * 1000, 2),
                "sql": steady}

    first_seconds = add(0, args.first)
    small = count_queries(1)
    rest_seconds = add(args.first, args.total)
    large = count_queries(1)
    large_p2 = count_queries(2)

    repeats = []
    if small["queries"] != large["queries"]:
        a = collections.Counter(normalise(s) for s in small["sql"])
        b = collections.Counter(normalise(s) for s in large["sql"])
        for sql, n in (b - a).most_common():
            repeats.append({"sql": sql, f"times_with_{args.first}": a.get(sql, 0), f"times_with_{args.total}": n})
    added_seconds = first_seconds + rest_seconds
    print(json.dumps({
        "hosts": {"first": args.first, "total": args.total, "clusters": len(clusters), "pods": len(pods),
                  "how": "in-process compute.services.add_host, Simulator hypervisor (libvirt test:///default)"},
        "add_seconds": round(added_seconds, 2),
        "add_ms_per_host": round(added_seconds * 1000 / args.total, 2),
        "small": {k: v for k, v in small.items() if k != "sql"},
        "large": {k: v for k, v in large.items() if k != "sql"},
        "large_page2": {k: v for k, v in large_p2.items() if k != "sql"},
        "small_sql": [normalise(s) for s in small["sql"]],
        "repeats": repeats,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
