"""Real image files and a real local HTTP server for the template and ISO tests."""
from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path


def make_qcow2(path: Path, size: str = "16M") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def make_iso(path: Path, label: str = "NUBOTEST") -> Path:
    tree = path.with_suffix(".tree")
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "README.TXT").write_text("a test ISO\n")
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-o", str(path), str(tree)], check=True,
                   capture_output=True)
    return path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class ImageServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving one directory (whole files, with Content-Length);
    `url(name)` gives a file's URL. 127.0.0.1 is a loopback address: tests allow it with
    secstorage.allowed.internal.sites=127.0.0.0/8."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        handler = functools.partial(_Quiet, directory=str(self.directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
