"""Time from registerTemplate to Ready (run by bench/run.py as `python -m bench.register`, against
the scratch database after bootstrap; prints one JSON object on stdout).

In-process with NUBO_JOBS_EAGER=1, so the download job runs right after the registration commits,
exactly as a worker would run it: register (validation, URL checks, rows, event) → download (stream,
progress rows every second, SHA-256) → qemu-img validation → rename → Ready. The baseline is the
raw work the same result needs by hand: `curl -o` of the same file to the same disk, then
`qemu-img info`. A 256 MiB qcow2 of random data, served by bench/download.py's sendfile server;
3 alternating rounds after a warm-up, medians."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import download

SIZE = 256 << 20
ROUNDS = 3


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["NUBO_JOBS_EAGER"] = "1"
    import django

    django.setup()
    from compute import services as compute
    from portal import config
    from storage import services as storage
    from storage.images import services as images
    from storage.models import TemplateZone
    from tests.factories import admin_user

    root = Path(tempfile.mkdtemp(prefix="nubo-bench-register-"))
    server = None
    try:
        raw = root / "random.raw"
        with open(raw, "wb") as out:
            subprocess.run(["head", "-c", str(SIZE), "/dev/urandom"], stdout=out, check=True)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(root / download.NAME)], check=True)
        raw.unlink()
        server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("download.py")), "--serve", str(root)],
                                  stdout=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/{download.NAME}"
        admin = admin_user()
        config.set_value("secstorage.allowed.internal.sites", "127.0.0.0/8")
        zone = compute.create_zone(admin, name="bench-images", dns1="8.8.8.8", internal_dns1="10.0.0.2")
        store = storage.add_image_store(admin, zone=zone, name="bench-secondary", url=f"file://{root}/secondary")

        def baseline() -> None:
            out = root / "curl.qcow2"
            subprocess.run(["curl", "-sSf", "-o", str(out), url], check=True)
            subprocess.run(["qemu-img", "info", "--output=json", str(out)], check=True, capture_output=True)
            out.unlink()

        def ours() -> None:
            row, = images.register(admin, is_iso=False, name="bench", url=url, zoneid=str(zone.uuid),
                                   format="QCOW2", hypervisor="KVM")
            state = TemplateZone.objects.get(pk=row.pk)
            if not state.is_ready:
                raise RuntimeError(f"the template did not become Ready: {state.status_text}")
            images.delete(admin, row.template)

        times: dict[str, list[float]] = {"baseline": [], "ours": []}
        for round_no in range(ROUNDS + 1):
            for name, call in (("baseline", baseline), ("ours", ours)):
                os.sync()
                started = time.perf_counter()
                call()
                if round_no:
                    times[name].append(time.perf_counter() - started)
        base, mine = statistics.median(times["baseline"]), statistics.median(times["ours"])
        print(json.dumps({"size_bytes": SIZE, "rounds": ROUNDS, "baseline_seconds": [round(t, 3) for t in times["baseline"]],
                          "ours_seconds": [round(t, 3) for t in times["ours"]], "baseline_median": round(base, 3),
                          "ours_median": round(mine, 3), "ratio": round(mine / base, 3), "store": store.name}))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
