"""Nubo benchmarks (`make bench` = `.venv/bin/python bench/run.py`).

What it does, start to finish (about 5-6 minutes):
1. drops and re-creates a scratch PostgreSQL database (BENCH_DATABASE_URL, default
   postgresql://postgres@127.0.0.1:5432/nubo_bench; DATABASE_URL is deliberately NOT used, so a
   benchmark can never drop your real database), starts a private redis-server, migrates and
   bootstraps, and creates 500 accounts in 5 domains (bench/seed.py, which also counts the SQL
   queries of one listAccounts page with 10 and with 500 accounts);
2. starts gunicorn (2 workers x 4 threads, as the Procfile) with DJANGO_SETTINGS_MODULE=
   bench.settings, which serves the app plus a bare Django view answering the same bytes
   (bench/baseline_urls.py), and one `manage.py rqworker default`;
3. captures the answers of a signed listCapabilities and a signed listAccounts page=1&pagesize=500
   (500 rows), then drives each endpoint and its bare baseline at a fixed concurrency (8 client
   processes, closed loop, a fresh cs-style signature on every request, in alternating rounds);
4. runs a few async jobs through the worker, then reads the resident memory of the web (gunicorn
   master + workers) and the worker, against a bare `python -c "import django"` process;
5. downloads a 1 GiB image from a local HTTP server with storage.images.transfer.download and with
   curl, in alternating rounds (bench/download.py), and times registerTemplate until Ready against
   curl + qemu-img info (bench/register.py);
6. measures the UI in-process (bench/ui.py, right after the seed, in a transaction it rolls back):
   the dashboard and the instances page with 10,000 VMs and 1,000 hosts against bare Django views
   rendering the same rows, and their SQL queries with 10 and with 10,000 VMs;
7. deploys VMs in-process (bench/vms.py): deployVirtualMachine → Running on this machine's
   qemu:///system against raw libvirt (qemu-img create -b + defineXML + create), 20 deploys through
   2 worker threads on a Simulator host, and listVirtualMachines 500-row pages and their SQL
   queries with 10 and with 10,000 VMs;
8. opens a Tiny Linux VM's screen in-process (bench/console.py): RFB framebuffer updates through
   `manage.py consoleproxy` (a new console token and a websocket per connection) against a direct
   TCP connection to the same VNC port, in alternating rounds: 1x1 and full-screen update round
   trips, the delivery rate of a raw update, an RFB round trip that needs no display refresh, and
   the connection set-up time;
9. prints a table and writes bench/results.json; stops every process and drops the database.

Between 1 and 2 it also adds 1,000 Simulator hosts in-process through compute.services.add_host
(bench/hosts.py, which counts the SQL queries of a 500-row listHosts page with 10 and with 1,000
hosts), and step 3 drives listHosts page 1 and page 2 (500 rows each) like listAccounts.

Options: --seconds (measured seconds per endpoint and variant, default 8), --concurrency (8),
--accounts (500), --hosts (1000; 0 leaves the hosts out), --keep (keep the database and the work
directory with the logs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import download as bench_download  # noqa: E402
from bench import loadgen  # noqa: E402
from tests.e2e.procs import BIN, PrivateRedis, Proc, descendants, free_port, wait_http  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/nubo_bench"
RESULTS = Path(__file__).resolve().parent / "results.json"
TARGET_RATIO = 1.3
GUNICORN_ARGS = ["--workers", "2", "--threads", "4"]


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# -- the scratch database -------------------------------------------------------------------------
def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    parts = urlparse(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(f"BENCH_DATABASE_URL must be a PostgreSQL URL, not {url!r}")
    name = unquote(parts.path.lstrip("/"))
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: the benchmark database's name must contain 'bench'")
    conninfo = {"dbname": "postgres", "host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
                "user": unquote(parts.username or "postgres")}
    if parts.password:
        conninfo["password"] = unquote(parts.password)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                     (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_step(name: str, argv: list[str], env: dict[str, str], work: Path) -> str:
    started = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    (work / f"{name}.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({' '.join(argv)}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    say(f"{name}: {time.monotonic() - started:.1f}s")
    return done.stdout


# -- memory ---------------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def bare_django_rss(env: dict[str, str]) -> int:
    proc = subprocess.Popen([sys.executable, "-c", "import sys, django; print('ready', flush=True); sys.stdin.read()"],
                            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        return rss_kib(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


# -- the measured endpoints -------------------------------------------------------------------------
def capture(host: str, port: int, name: str, command: str, params: dict[str, str], keys: dict, capture_dir: Path) -> bytes:
    """Our endpoint's answer (body and Content-Type), stored for the baseline view, which must
    then answer the same bytes."""
    import requests

    query = loadgen.signed_query(command, params, keys["api_key"], keys["secret"])
    ours = requests.get(f"http://{host}:{port}/client/api?{query}", timeout=60)
    if ours.status_code != 200:
        raise SystemExit(f"{command} answered HTTP {ours.status_code}: {ours.text[:1000]}")
    (capture_dir / f"{name}.body").write_bytes(ours.content)
    (capture_dir / f"{name}.ctype").write_text(ours.headers["Content-Type"])
    base = requests.get(f"http://{host}:{port}/bench/baseline/{name}?{query}", timeout=60)
    if base.status_code != 200 or base.content != ours.content or base.headers["Content-Type"] != ours.headers["Content-Type"]:
        raise SystemExit(f"the baseline view for {name} does not answer the same bytes (HTTP {base.status_code})")
    return ours.content


def figure(name: str, value, unit: str, baseline=None, ratio=None, target=None, note: str = "", lower_is_better=True) -> dict:
    meets = None
    if target is not None and ratio is not None:
        meets = ratio <= target if lower_is_better else ratio >= target
    return {"name": name, "value": value, "unit": unit, "baseline": baseline,
            "ratio": None if ratio is None else round(ratio, 3), "target": target, "meets_target": meets,
            **({"note": note} if note else {})}


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_table(figures: list[dict]) -> None:
    headers = ["figure", "value", "unit", "baseline", "ratio", "target", "meets"]
    rows = [[f["name"], fmt(f["value"]), f["unit"], fmt(f["baseline"]), fmt(f["ratio"]),
             "-" if f["target"] is None else f"<= {f['target']}", fmt(f["meets_target"])] for f in figures]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i in (0, 2) else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def console_figures(con: dict) -> list[dict]:
    """The figures of bench/console.py: the console proxy against a direct VNC connection."""
    d, p, r, setup = con["direct"], con["proxy"], con["ratios"], con["setup"]
    screen = con["screen"]
    rounds = f"median of {setup['rounds']} alternating rounds"
    raw = (f"{screen['width']}x{screen['height']} at {screen['bytes_per_pixel']} B/pixel, "
           f"{con['full_update_bytes']:,} bytes")
    timer = "bound by QEMU's display refresh timer (30 ms, +50 ms per idle refresh, up to 3 s), the same both ways"
    return [
        figure("console: 1x1 screen update round trip, proxy vs direct VNC", p["latency"]["median_ms"], "ms",
               d["latency"]["median_ms"], r["latency"], TARGET_RATIO,
               note=f"non-incremental FramebufferUpdateRequest until its update is read, {d['latency']['n']} per "
                    f"way, {rounds}; {timer}; baseline = the same Python RFB client over TCP to the VM's VNC port "
                    "(VNC auth); ratio = proxy / direct"),
        figure("console: full-screen raw update round trip", p["full"]["median_ms"], "ms", d["full"]["median_ms"],
               r["full"], note=f"{raw}, {d['full']['n']} per way, {rounds}; {timer}; ratio = proxy / direct"),
        figure("console: full-screen raw update throughput", p["full_mb_s"], "MB/s", d["full_mb_s"], r["full_mb_s"],
               TARGET_RATIO, note="bytes of pixels / round trip (the figure above); ratio = direct MB/s / proxy MB/s"),
        figure("console: raw update delivery rate once flowing", p["transfer_mb_s"], "MB/s", d["transfer_mb_s"],
               r["transfer_mb_s"],
               note=f"the update's bytes after the client's first 64 KiB read / time from that read to the last "
                    f"byte ({p['transfer_ms_median']} ms through the proxy, {d['transfer_ms_median']} ms direct; QEMU "
                    "writes the whole update at once: direct is the client draining its socket, proxy is "
                    "websockify's relay; noisy); ratio = direct / proxy"),
        figure("console: RFB round trip without the refresh wait", p["echo"]["median_ms"], "ms",
               d["echo"]["median_ms"], r["echo"],
               note=f"1x1 request with ExtendedDesktopSize on: QEMU answers at once; the proxy adds "
                    f"{p['echo']['median_ms'] - d['echo']['median_ms']:.2f} ms per round trip; ratio = proxy / direct"),
        figure("console: connection set-up (connect → ServerInit)", p["setup"]["median_ms"], "ms",
               d["setup"]["median_ms"], r["setup"],
               note=f"{d['setup']['n']} connections per way; proxy = websocket + a forked child that checks and "
                    "uses up the token in the database, logs in to VNC, greets as RFB 3.8 security None (the token "
                    f"itself, issued in-process beforehand, {p['issue_token']['median_ms']:.1f} ms, is not "
                    "counted); direct = TCP + VNC auth; ratio = proxy / direct"),
    ]


# -- main -----------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 8)))
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per endpoint (seconds are split)")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=1000, help="Simulator hosts for listHosts (0: none)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the work directory (logs)")
    parser.add_argument("--only", choices=("all", "api"), default="all",
                        help="api: only the HTTP figures, memory and SQL counts (no download, register, VMs, UI, console)")
    args = parser.parse_args()
    if args.accounts < 500:
        raise SystemExit("--accounts must be at least 500 (the listAccounts page has 500 rows)")
    if args.hosts and args.hosts < 1000:
        raise SystemExit("--hosts must be 0 or at least 1000 (two listHosts pages of 500 rows)")

    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    work = Path(tempfile.mkdtemp(prefix="nubo-bench-"))
    capture_dir = work / "capture"
    capture_dir.mkdir()
    procs: list[Proc] = []
    redis = None
    ok = False
    started = time.monotonic()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        say(f"work directory {work}; database {db_url}")
        recreate_database(db_url)
        redis = PrivateRedis(work, fallback="redis://127.0.0.1:6379/10", override_env="BENCH_REDIS_URL")
        env = {k: v for k, v in os.environ.items()
               if k not in ("NUBO_DEBUG", "NUBO_JOBS_EAGER", "DJANGO_SETTINGS_MODULE", "NUBO_BIND", "PORT")}
        env.update({"DATABASE_URL": db_url, "REDIS_URL": redis.url, "NUBO_SECRET_KEY": secrets.token_urlsafe(50),
                    "NUBO_VAR_DIR": str(work / "var"), "NUBO_FAST_HASHER": "1", "PYTHONUNBUFFERED": "1",
                    "DJANGO_SETTINGS_MODULE": "portal.settings", "BENCH_CAPTURE_DIR": str(capture_dir),
                    "NUBO_LOG_LEVEL": os.environ.get("NUBO_LOG_LEVEL", "WARNING"),
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})

        run_step("migrate", [sys.executable, "manage.py", "migrate", "--noinput"], env, work)
        run_step("bootstrap", [sys.executable, "manage.py", "bootstrap"], env, work)
        seeded = json.loads(run_step("seed", [sys.executable, "-m", "bench.seed", "--first", "10",
                                              "--total", str(args.accounts)], env, work).strip().splitlines()[-1])
        keys = {"api_key": seeded["api_key"], "secret": seeded["secret"]}
        # The UI pages at 10,000 VMs and 1,000 hosts, in a transaction it rolls back: before the
        # hosts and VMs of the later steps exist, so its 10-row measurement has 10 rows.
        ui = None
        if args.only == "all":
            ui = json.loads(run_step("ui", [sys.executable, "-m", "bench.ui"],
                                     {**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}, work).strip().splitlines()[-1])
        hosts = None
        if args.hosts:
            hosts = json.loads(run_step("hosts", [sys.executable, "-m", "bench.hosts", "--first", "10",
                                                  "--total", str(args.hosts)],
                                        {**env, "BENCH_API_KEY": keys["api_key"], "BENCH_SECRET": keys["secret"]},
                                        work).strip().splitlines()[-1])

        port = free_port()
        web_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.settings"}
        procs.append(Proc("web", [str(BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                  *GUNICORN_ARGS], env=web_env, log_dir=work))
        procs.append(Proc("worker", [sys.executable, "manage.py", "rqworker", "default"], env=env, log_dir=work))
        wait_http(f"http://127.0.0.1:{port}/client/login", procs, timeout=60)

        targets = {
            "listcapabilities": ("listCapabilities", {}),
            "listaccounts_500": ("listAccounts", {"page": "1", "pagesize": "500"}),
        }
        if hosts:
            targets["listhosts_500_p1"] = ("listHosts", {"page": "1", "pagesize": "500"})
            targets["listhosts_500_p2"] = ("listHosts", {"page": "2", "pagesize": "500"})
        bodies = {name: capture("127.0.0.1", port, name, command, params, keys, capture_dir)
                  for name, (command, params) in targets.items()}
        rows = len(json.loads(bodies["listaccounts_500"])["listaccountsresponse"].get("account", []))
        if rows != 500:
            raise SystemExit(f"the listAccounts page has {rows} rows, not 500")
        for name in [n for n in bodies if n.startswith("listhosts_")]:
            rows = len(json.loads(bodies[name])["listhostsresponse"].get("host", []))
            if rows != 500:
                raise SystemExit(f"the listHosts page {name} has {rows} rows, not 500")

        results: dict[tuple[str, str], list[loadgen.Result]] = {}
        per_round = args.seconds / args.rounds
        for round_no in range(args.rounds):
            for name, (command, params) in targets.items():
                variants = [("ours", "/client/api"), ("baseline", f"/bench/baseline/{name}")]
                if name == "listaccounts_500":
                    variants.append(("orm", "/bench/orm/listaccounts_500"))
                for variant, path in variants:
                    spec = loadgen.Spec(host="127.0.0.1", port=port, path=path, command=command,
                                        params=tuple(sorted(params.items())), api_key=keys["api_key"],
                                        secret=keys["secret"], expected_body=bodies[name])
                    result, first_error = loadgen.run(spec, concurrency=args.concurrency, seconds=per_round,
                                                      warmup=args.warmup)
                    if result.errors:
                        say(f"{name} {variant}: {result.errors} bad answers, e.g. {first_error}")
                    say(f"round {round_no + 1} {name:17} {variant:8} {result.rps:8.1f} req/s  "
                        f"p50 {result.percentile(0.5) * 1000:7.2f} ms  p99 {result.percentile(0.99) * 1000:7.2f} ms")
                    results.setdefault((name, variant), []).append(result)
        for proc in procs:
            if not proc.alive():
                raise SystemExit(f"{proc.name} died during the load\n{proc.describe()}")

        # listHosts pages once more with a single client: the latency of one page, without queueing.
        single: dict[str, loadgen.Result] = {}
        for name in [n for n in targets if n.startswith("listhosts_")]:
            command, params = targets[name]
            spec = loadgen.Spec(host="127.0.0.1", port=port, path="/client/api", command=command,
                                params=tuple(sorted(params.items())), api_key=keys["api_key"], secret=keys["secret"],
                                expected_body=bodies[name])
            single[name], first_error = loadgen.run(spec, concurrency=1, seconds=max(args.seconds / 4, 2.0),
                                                    warmup=args.warmup)
            if single[name].errors:
                say(f"{name} one client: {single[name].errors} bad answers, e.g. {first_error}")
            p50 = single[name].percentile(0.5) * 1000
            say(f"{name:17} one client {single[name].rps:8.1f} req/s  p50 {p50:7.2f} ms")

        # Give the worker real work before reading its memory: async deletes polled by cs.
        from cs import CloudStack

        cs = CloudStack(endpoint=f"http://127.0.0.1:{port}/client/api", key=keys["api_key"], secret=keys["secret"],
                        poll_interval=0.05, job_timeout=60, fetch_result=True, timeout=60)
        for index in range(3):
            account = cs.createAccount(username=f"bench-victim-{index}", password="bench-pw-1", email="v@example.org",
                                       firstname="Victim", lastname=str(index))["account"]
            if cs.deleteAccount(id=account["id"]) != {"success": True}:
                raise SystemExit("an async deleteAccount did not succeed through the worker")

        web_pids = [procs[0].pid, *descendants(procs[0].pid)]
        web_kib = sum(rss_kib(pid) for pid in web_pids)
        worker_kib = rss_kib(procs[1].pid)
        bare_kib = bare_django_rss(env)

        figures: list[dict] = []
        details: dict[str, dict] = {}
        labels = {"listcapabilities": "listCapabilities (signed)", "listaccounts_500": "listAccounts 500 rows (signed)",
                  "listhosts_500_p1": f"listHosts page 1, 500 of {args.hosts} hosts (signed)",
                  "listhosts_500_p2": f"listHosts page 2, 500 of {args.hosts} hosts (signed)"}
        for name in targets:
            ours = loadgen.Result.merge(results[(name, "ours")])
            base = loadgen.Result.merge(results[(name, "baseline")])
            label = labels[name]
            # listHosts is measured, not held to the ratio target (the issue asks for its latency).
            # A page with a plain-ORM view is held to the target against that view: its bare view
            # serves captured bytes (Django's request handling alone, no database work), shown
            # for information.
            ratio_target = None if name.startswith("listhosts_") or (name, "orm") in results else TARGET_RATIO
            figures.append(figure(f"{label} throughput", round(ours.rps, 1), "req/s", round(base.rps, 1),
                                  base.rps / ours.rps if ours.rps else None, ratio_target,
                                  note="ratio = baseline req/s / our req/s"))
            for q, label_q, target in ((0.5, "p50", ratio_target), (0.99, "p99", None)):
                mine, theirs = ours.percentile(q) * 1000, base.percentile(q) * 1000
                figures.append(figure(f"{label} latency {label_q}", round(mine, 2), "ms", round(theirs, 2),
                                      mine / theirs if theirs else None, target,
                                      note="ratio = our latency / baseline latency"))
            if name in single:
                alone = single[name]
                figures.append(figure(f"{label} latency p50, one client", round(alone.percentile(0.5) * 1000, 2), "ms",
                                      note=f"{alone.requests} requests one after another (no queueing); "
                                           f"p99 {alone.percentile(0.99) * 1000:.2f} ms"))
            if (name, "orm") in results:
                orm = loadgen.Result.merge(results[(name, "orm")])
                figures.append(figure(f"{label} throughput vs plain-ORM view", round(ours.rps, 1), "req/s",
                                      round(orm.rps, 1), orm.rps / ours.rps if ours.rps else None, TARGET_RATIO,
                                      note="ratio = plain-ORM view req/s / our req/s"))
                mine, theirs = ours.percentile(0.5) * 1000, orm.percentile(0.5) * 1000
                figures.append(figure(f"{label} latency p50 vs plain-ORM view", round(mine, 2), "ms",
                                      round(theirs, 2), mine / theirs if theirs else None, TARGET_RATIO,
                                      note="baseline = a bare Django view building the same JSON from the "
                                           "database with .values() (framework overhead)"))
            details[name] = {
                "response_bytes": len(bodies[name]),
                **{f"{variant}_{k}": v for variant, res in (("ours", ours), ("baseline", base))
                   for k, v in (("requests", res.requests), ("errors", res.errors), ("seconds", res.seconds))},
            }
        procs_count = len(web_pids)
        figures.append(figure(f"web RSS (gunicorn master + {procs_count - 1} workers)", round(web_kib / 1024, 1), "MiB",
                              round(bare_kib * procs_count / 1024, 1), web_kib / (bare_kib * procs_count),
                              note=f"baseline = {procs_count} x a bare `python -c 'import django'` process"))
        figures.append(figure("worker RSS (manage.py rqworker)", round(worker_kib / 1024, 1), "MiB",
                              round(bare_kib / 1024, 1), worker_kib / bare_kib,
                              note="baseline = a bare `python -c 'import django'` process"))
        small, large = seeded["small"]["queries"], seeded["large"]["queries"]
        first = seeded["accounts"]["first"]
        figures.append(figure(f"SQL queries per listAccounts page, {first} accounts", small, "queries",
                              note=f"{seeded['small']['rows']} rows"))
        figures.append(figure(f"SQL queries per listAccounts page, {args.accounts} accounts", large, "queries", small,
                              large / small if small else None, 1.0,
                              note=f"{seeded['large']['rows']} rows; target: the same count as with {first} accounts"))
        if hosts:
            h_small, h_first = hosts["small"]["queries"], hosts["hosts"]["first"]
            figures.append(figure(f"add {args.hosts} Simulator hosts (in-process add_host)", hosts["add_ms_per_host"],
                                  "ms/host", note=f"{hosts['add_seconds']} s in all, {hosts['hosts']['clusters']} "
                                                  f"clusters; {hosts['hosts']['how']}"))
            figures.append(figure(f"SQL queries per listHosts page, {h_first} hosts", h_small, "queries",
                                  note=f"{hosts['small']['rows']} rows"))
            for key, page in (("large", 1), ("large_page2", 2)):
                n = hosts[key]["queries"]
                figures.append(figure(f"SQL queries per listHosts page {page}, {args.hosts} hosts", n, "queries",
                                      h_small, n / h_small if h_small else None, 1.0,
                                      note=f"{hosts[key]['rows']} rows; target: the same count as with "
                                           f"{h_first} hosts"))

        download = registered = vms = None
        if args.only == "all":
            say("download: a 1 GiB image from a local HTTP server, transfer.download against curl")
            download = bench_download.run(work)
            figures.append(figure("download 1 GiB vs curl (local HTTP)", download["nubo_mib_s"], "MiB/s",
                                  download["curl_mib_s"], download["ratio"],
                                  note=f"baseline = curl -o of the same file to the same disk; ratio = our time / "
                                       f"curl's time, median of {download['rounds']} alternating rounds"))

            say("register: registerTemplate of a 256 MiB qcow2 until Ready, against curl + qemu-img info")
            registered = json.loads(run_step("register", [sys.executable, "-m", "bench.register"], env, work))
            figures.append(figure("registerTemplate to Ready, 256 MiB", registered["ours_median"], "s",
                                  registered["baseline_median"], registered["ratio"],
                                  note="baseline = curl -o + qemu-img info of the same file; ratio = our time / "
                                       f"baseline, median of {registered['rounds']} alternating rounds"))

            say("vms: deploy vs raw libvirt, 20 parallel deploys, listVirtualMachines at 10,000 VMs")
            vms = json.loads(run_step("vms", [sys.executable, "-m", "bench.vms"],
                                      {**env, "BENCH_API_KEY": keys["api_key"], "BENCH_SECRET": keys["secret"]},
                                      work).strip().splitlines()[-1])
            deployed = vms["deploy"]
            figures.append(figure("deployVirtualMachine → Running vs raw libvirt (qcow2 overlay + define + start)",
                                  deployed["ours_median"], "s", deployed["raw_median"], deployed["ratio"],
                                  note=f"median of {deployed['rounds']} alternating rounds, cached template, "
                                       f"{deployed['emulation']} emulation, one other VM on the pod network (the first "
                                       f"VM on it: {deployed['first_on_network_seconds']} s, libvirt restarts dnsmasq); "
                                       "baseline = qemu-img create -b + defineXML + create (no config drive, no DHCP "
                                       "lease); ratio = our time / raw time"))
            parallel = vms["parallel"]
            figures.append(figure("20 parallel deploys, 2 workers (Simulator)", parallel["total_seconds"], "s",
                                  note=f"2 threads (own DB connections) x {parallel['deploys'] // parallel['workers']} "
                                       f"allocate + start_on_host each, test:///default; {parallel['failed']} failed"))
            listed = vms["list"]
            figures.append(figure(f"listVirtualMachines 500-row page at {listed['vms']:,} VMs",
                                  listed["latency_page1"]["median_ms"], "ms",
                                  note=f"in-process (django.test.Client), signed, listall=true, page 1, median of "
                                       f"{listed['latency_page1']['runs']}; page 2 {listed['latency_page2']['median_ms']} "
                                       f"ms; 10 VMs {listed['latency_10_vms_page1']['median_ms']} ms; SQL "
                                       f"{listed['large']['sql_ms']} ms of it"))
            q_small, q_large = listed["small"]["queries"], listed["large"]["queries"]
            figures.append(figure(f"SQL queries per listVirtualMachines page: 10 vs {listed['vms']:,} VMs", q_large,
                                  "queries", q_small, q_large / q_small if q_small else None, 1.0,
                                  note=f"{listed['large']['rows']} rows (page 2: {listed['large_page2']['queries']} "
                                       f"queries); target: the same count as with 10 VMs"))

        con = None
        if args.only == "all":
            say("console: RFB framebuffer updates through manage.py consoleproxy vs direct TCP to the VM's VNC port")
            con = json.loads(run_step("console", [sys.executable, "-m", "bench.console"], env, work)
                             .strip().splitlines()[-1])
            figures.extend(console_figures(con))
            for name, label in (("dashboard", "dashboard (/client/)"),
                                ("instances", "instances page 1 (/client/instances)")):
                page = ui[name]
                figures.append(figure(f"UI {label} server time at {ui['vms']:,} VMs, {ui['hosts']:,} hosts",
                                      page["ours"]["median_ms"], "ms", page["bare"]["median_ms"], page["ratio"],
                                      note=f"in-process, root admin, median of {page['ours']['runs']}; baseline = a "
                                           f"bare Django view rendering the same rows from plain queries "
                                           f"({page['bare_queries']} queries, no shell); SQL {page['sql_ms_large']} ms "
                                           f"of ours; ratio = ours / bare"))
                figures.append(figure(f"SQL queries per UI {label}: {ui['first']} vs {ui['vms']:,} VMs",
                                      page["queries_large"], "queries", page["queries_small"],
                                      page["queries_large"] / page["queries_small"] if page["queries_small"] else None,
                                      1.0, note=f"{ui['first']} VMs and {ui['first']} hosts, then {ui['vms']:,} VMs "
                                                f"and {ui['hosts']:,} hosts; target: the same count"))

        print()
        print_table(figures)
        if seeded["repeats"]:
            print("\nqueries that grow with the number of rows (N+1):")
            for rep in seeded["repeats"]:
                print(f"  {rep}")
        if hosts and hosts["repeats"]:
            print("\nlistHosts queries that grow with the number of rows (N+1):")
            for rep in hosts["repeats"]:
                print(f"  {rep}")
        if vms and vms["list"]["repeats"]:
            print("\nlistVirtualMachines queries that grow with the number of rows (N+1):")
            for rep in vms["list"]["repeats"]:
                print(f"  {rep}")
        if con is not None and (con["proxy_children_left"]
                                or con["console_sessions"]["ended"] != con["console_sessions"]["connected"]):
            con_sessions = con["console_sessions"]
            print(f"\nconsole proxy: {con['proxy_children_left']} child process(es) still alive a second after the "
                  f"last connection closed; {con_sessions['connected']} sessions connected, {con_sessions['ended']} "
                  "marked ended")
        for name in ("dashboard", "instances"):
            if ui is not None and ui[name]["repeats"]:
                print(f"\nUI {name} queries that grow with the number of rows (N+1):")
                for rep in ui[name]["repeats"]:
                    print(f"  {rep}")
        if vms and vms["parallel"]["errors"]:
            print(f"\n{vms['parallel']['failed']} of the {vms['parallel']['deploys']} parallel deploys failed:")
            for error in vms["parallel"]["errors"]:
                print(f"  {error}")
        RESULTS.write_text(json.dumps({
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "setup": {"gunicorn": GUNICORN_ARGS, "concurrency": args.concurrency, "seconds_per_variant": args.seconds,
                      "rounds": args.rounds, "warmup_seconds_per_round": args.warmup, "accounts": args.accounts,
                      "hosts": args.hosts, "only": args.only,
                      "client": "pure-Python closed loop, one keep-alive connection per process, cs signature per request"},
            "figures": figures,
            "details": details,
            "listaccounts_sql": {"small": seeded["small"], "large": seeded["large"],
                                 "queries_with_10_accounts": seeded["small_sql"]},
            "listaccounts_queries_growing_with_rows": seeded["repeats"],
            "download": download,
            "register_to_ready": registered,
            "vms": vms,
            "console": con,
            "ui": ui,
            **({"listhosts": {k: v for k, v in hosts.items() if k != "small_sql"},
                "listhosts_sql_with_10_hosts": hosts["small_sql"]} if hosts else {}),
        }, indent=2) + "\n")
        say(f"wrote {RESULTS.relative_to(REPO)} ({time.monotonic() - started:.0f}s in all)")
        ok = True
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        for proc in reversed(procs):
            proc.stop()
        if redis is not None:
            redis.stop()
        if args.keep or not ok:
            say(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            try:
                recreate_database(db_url, drop_only=True)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real error
                say(f"could not drop the benchmark database: {exc}")


if __name__ == "__main__":
    sys.exit(main())
