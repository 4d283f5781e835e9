"""Template download throughput: storage.images.transfer.download of a 1 GiB image from a local
HTTP server against `curl -o` of the same file to the same disk, in alternating rounds of one run.

The server is a separate process (sendfile, so neither client waits on it, and it does not share
our interpreter); the image is random bytes (incompressible, nothing sparse). Each output is deleted
and the disk synced before the next round, so every client writes a fresh 1 GiB to the same disk
from the same state.
No Django: `.venv/bin/python bench/download.py` prints a table; bench/run.py adds the figure to
`make bench`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from storage.images import transfer  # noqa: E402

SIZE = 1 << 30
ROUNDS = 3
NAME = "image.raw"


class _SendfileHandler(BaseHTTPRequestHandler):
    """GET /image.raw from the current directory with sendfile; nothing else."""

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802
        if self.path != f"/{NAME}":
            return self.send_error(404)
        with open(NAME, "rb") as image:
            self.send_response(200)
            self.send_header("Content-Length", str(os.fstat(image.fileno()).st_size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.wfile.flush()
            self.connection.sendfile(image)
        return None


def _serve(directory: str) -> None:
    os.chdir(directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SendfileHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


def _write_image(path: Path, size: int) -> str:
    """Random bytes from a child process (this one's heap stays as a job's would be); their sha256."""
    with open(path, "wb") as out:
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=out, check=True)
    with open(path, "rb") as image:
        return hashlib.file_digest(image, "sha256").hexdigest()


def _timed(call: Callable[[], object], out: Path) -> float:
    """Seconds `call` takes to write `out`, starting with no dirty pages left by the previous
    round; `out` is removed afterwards."""
    os.sync()
    started = time.perf_counter()
    call()
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


def run(workdir: Path, *, size: int = SIZE, rounds: int = ROUNDS) -> dict:
    """Median seconds and MiB/s of curl and of transfer.download over `rounds` alternating rounds
    (after one untimed warm-up round: the first transfer of a run is always slower); ratio = our
    time / curl's time (1.0: as fast as curl). Leaves nothing in `workdir`."""
    if shutil.which("curl") is None:
        raise RuntimeError("the download benchmark needs curl (apt-get install curl)")
    root = Path(tempfile.mkdtemp(prefix="download-", dir=workdir))
    server = None
    try:
        expected = _write_image(root / NAME, size)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(root)], stdout=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/{NAME}"
        curl_out, ours_out = root / "curl.out", root / "nubo.out"

        def curl() -> None:
            subprocess.run(["curl", "-sSf", "-o", str(curl_out), url], check=True)
            if curl_out.stat().st_size != size:
                raise RuntimeError(f"curl wrote {curl_out.stat().st_size} bytes, not {size}")

        def nubo() -> None:
            got = transfer.download(url, ours_out, allow_file=False, allowed_internal=["127.0.0.0/8"])
            if got != (size, expected):
                raise RuntimeError(f"transfer.download returned {got}, not ({size}, {expected!r})")

        times: dict[str, list[float]] = {"curl": [], "nubo": []}
        for round_no in range(rounds + 1):
            for name, call, out in (("curl", curl, curl_out), ("nubo", nubo, ours_out)):
                seconds = _timed(call, out)
                if round_no:
                    times[name].append(seconds)
        curl_s, nubo_s = statistics.median(times["curl"]), statistics.median(times["nubo"])
        mib = size / (1 << 20)
        return {"size_bytes": size, "rounds": rounds, "curl_seconds": [round(t, 3) for t in times["curl"]],
                "nubo_seconds": [round(t, 3) for t in times["nubo"]], "curl_mib_s": round(mib / curl_s, 1),
                "nubo_mib_s": round(mib / nubo_s, 1), "ratio": round(nubo_s / curl_s, 3)}
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2])
    else:
        with tempfile.TemporaryDirectory(prefix="nubo-bench-download-") as tmp:
            figures = run(Path(tmp))
        print(f"{'client':8} {'median s':>9} {'MiB/s':>8}  rounds (s)")
        for name in ("curl", "nubo"):
            print(f"{name:8} {statistics.median(figures[f'{name}_seconds']):9.3f} {figures[f'{name}_mib_s']:8.1f}  "
                  f"{', '.join(f'{t:.3f}' for t in figures[f'{name}_seconds'])}")
        print(f"ratio (nubo time / curl time): {figures['ratio']:.3f}")
