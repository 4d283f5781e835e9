"""storage.images.transfer against a real local HTTP server and real images made by qemu-img.

The server listens on 127.0.0.2 (loopback, so most tests allow 127.0.0.0/8 as an administrator
would with secstorage.allowed.internal.sites); its handlers misbehave on purpose: 404, truncated
bodies, stalls, slow drips, redirects, a first attempt that breaks halfway, a server that ignores
Range. No database."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from storage.images import transfer
from storage.images.transfer import Progress, TransferError, check_url, download, inspect_image, parse_checksum

LOOPBACK = ["127.0.0.0/8"]
PAYLOAD = os.urandom((3 << 20) + 12345)  # 3 MiB and a bit: several 1 MiB chunks, not chunk-aligned
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
HTML = b"<!DOCTYPE html>\n<html><head><title>Download</title></head><body>Click here</body></html>\n"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers)))
            srv.counts[self.path] = count = srv.counts.get(self.path, 0) + 1
        route = self.path.strip("/").split("/")[0]
        if route == "file":
            return self.serve(PAYLOAD)
        if route == "page.qcow2":
            return self.serve(HTML, ranges=False)
        if route == "missing":
            return self.send_error(404)
        if route == "busy" and count == 1:
            return self.send_error(503)
        if route == "busy":
            return self.serve(PAYLOAD)
        if route == "truncated":
            return self.headers_then(len(PAYLOAD), PAYLOAD[: len(PAYLOAD) // 2])
        if route == "flaky" and count == 1:
            return self.headers_then(len(PAYLOAD), PAYLOAD[: len(PAYLOAD) // 2], ranges=True)
        if route == "flaky":
            return self.serve(PAYLOAD)
        if route == "ignore-range" and count == 1:
            return self.headers_then(len(PAYLOAD), PAYLOAD[: len(PAYLOAD) // 2], ranges=True)
        if route == "ignore-range":
            return self.serve(PAYLOAD, ranges=False)
        if route == "stall":
            self.headers_then(len(PAYLOAD), b"")
            srv.release.wait(10)
            return None
        if route == "silent":
            srv.release.wait(10)
            return None
        if route == "slow":
            self.headers_then(len(PAYLOAD), b"")
            for start in range(0, len(PAYLOAD), 256 << 10):
                time.sleep(0.05)
                self.wfile.write(PAYLOAD[start:start + (256 << 10)])
            return None
        if route == "nolength":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(PAYLOAD)
            return None
        if route == "redirect":
            return self.redirect("/file/disk.qcow2")
        if route == "redirect-loopback":
            return self.redirect(f"http://127.0.0.1:{srv.server_port}/file/disk.qcow2")
        if route == "loop":
            return self.redirect("/loop")
        return self.send_error(404)

    def serve(self, body: bytes, *, ranges: bool = True) -> None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", "")) if ranges else None
        start = int(match.group(1)) if match else 0
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def headers_then(self, length: int, body: bytes, *, ranges: bool = False) -> None:
        """Announce `length` bytes, send `body` (possibly fewer), and let the connection close."""
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.2", 0), Handler)
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.counts: dict[str, int] = {}

    def url(self, path: str) -> str:
        return f"http://127.0.0.2:{self.server_port}{path}"

    def seen(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]


@pytest.fixture(scope="module")
def server():
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def http(server):
    """The server with fresh request counters (each test's first attempt is a first attempt)."""
    with server.lock:
        server.requests.clear()
        server.counts.clear()
    return server


def fetch(url: str, dest: Path, **kwargs) -> tuple[tuple[int, str], list[Progress]]:
    seen: list[Progress] = []
    options = {"allow_file": False, "allowed_internal": LOOPBACK, "backoff": 0.01, "on_progress": seen.append,
               "progress_bytes": 256 << 10, **kwargs}
    return download(url, dest, **options), seen


def fails(url: str, dest: Path, **kwargs) -> str:
    with pytest.raises(TransferError) as caught:
        fetch(url, dest, **kwargs)
    assert not dest.exists(), "the partial file must be removed"
    return caught.value.message


def assert_progress(seen: list[Progress], size: int) -> None:
    done = [p.bytes_done for p in seen]
    assert done == sorted(done), f"bytes_done went backwards: {done}"
    assert len(seen) >= 2
    assert seen[-1].bytes_done == seen[-1].bytes_total == size and seen[-1].percent == 100


# -- parsing and small helpers --------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("{MD5}" + "A" * 32, ("md5", "a" * 32)),
    ("{md5}" + "a" * 32, ("md5", "a" * 32)),
    ("{SHA-1}" + "b" * 40, ("sha1", "b" * 40)),
    ("{SHA1}" + "b" * 40, ("sha1", "b" * 40)),
    ("{SHA-256}" + "c" * 64, ("sha256", "c" * 64)),
    ("{sha256}" + "C" * 64, ("sha256", "c" * 64)),
    ("{SHA-384}" + "d" * 96, ("sha384", "d" * 96)),
    ("{SHA-512}" + "e" * 128, ("sha512", "e" * 128)),
    ("f" * 32, ("md5", "f" * 32)),
    ("f" * 40, ("sha1", "f" * 40)),
    (" " + "F" * 64 + "\n", ("sha256", "f" * 64)),
    ("f" * 96, ("sha384", "f" * 96)),
    ("f" * 128, ("sha512", "f" * 128)),
    ("", None),
    (None, None),
    ("   ", None),
])
def test_checksum_forms(text, expected):
    assert parse_checksum(text) == expected


@pytest.mark.parametrize("text, words", [
    ("{CRC32}abcd1234", "not supported"),
    ("{SHA-256}" + "c" * 63, "64 hexadecimal digits"),
    ("{MD5}xyz", "hexadecimal"),
    ("abc", "hexadecimal"),
    ("g" * 32, "hexadecimal"),
    ("f" * 33, "32, 40, 64, 96 or 128"),
])
def test_checksum_errors_say_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        parse_checksum(text)


def test_human_bytes_and_redact_url():
    assert [transfer.human_bytes(n) for n in (900, 1536, 512 << 20, 3 << 29, (1 << 20) - 1, 16 << 40)] == \
        ["900 B", "1.5 KiB", "512 MiB", "1.5 GiB", "1 MiB", "16 TiB"]
    assert transfer.redact_url("https://alice:s3cr@t@example.org:8443/a/b.qcow2?x=1") == \
        "https://example.org:8443/a/b.qcow2?x=1"
    assert transfer.redact_url("http://[::1") == "http://[::1"
    assert Progress(5, None, 0).percent is None and Progress(7, 0, 0).percent == 100
    assert Progress(199, 200, 0).percent == 99 and Progress(300, 200, 0).percent == 100


# -- which URLs may be fetched ----------------------------------------------------------------------
@pytest.mark.parametrize("host, address, kind", [
    ("127.0.0.1:8000", "127.0.0.1", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "169.254.169.254", "link-local"),
    ("[fe80::1]", "fe80::1", "link-local"),
    ("10.1.2.3", "10.1.2.3", "private"),
    ("192.168.0.10", "192.168.0.10", "private"),
    ("172.16.5.5", "172.16.5.5", "private"),
    ("[fd00::5]", "fd00::5", "private"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("100.64.0.1", "100.64.0.1", "reserved"),
    ("localhost", None, "loopback"),
])
def test_internal_addresses_are_refused_with_the_setting_to_change(host, address, kind):
    with pytest.raises(TransferError) as caught:
        check_url(f"http://user:pw@{host}/x.qcow2", allow_file=False, allowed_internal=[])
    message = caught.value.message
    assert re.search(rf"points at {re.escape(address) if address else '[0-9a-f:.]+'}, an? {kind} address;", message)
    assert "secstorage.allowed.internal.sites" in message and "pw" not in message
    assert not caught.value.retryable


def test_public_addresses_and_allowed_networks_pass():
    check_url("https://93.184.216.34/x.qcow2", allow_file=False, allowed_internal=[])
    check_url("http://10.1.2.3:8080/x.qcow2", allow_file=False, allowed_internal=["10.0.0.0/8", "bogus"])
    check_url("http://[::ffff:127.0.0.1]/x", allow_file=False, allowed_internal=LOOPBACK)


@pytest.mark.parametrize("url, words", [
    ("ftp://93.184.216.34/x.qcow2", "must start with http:// or https://"),
    ("x.qcow2", "must start with http:// or https://"),
    ("http:///x.qcow2", "no host"),
    ("http://93.184.216.34:99999/x", "not a valid address"),
    ("http://nonexistent.invalid/x.qcow2", "The host nonexistent.invalid of the URL http://nonexistent.invalid/x.qcow2 "
                                           "does not resolve"),
])
def test_bad_urls_are_refused(url, words):
    with pytest.raises(TransferError, match=re.escape(words)):
        check_url(url, allow_file=True, allowed_internal=[])


def test_file_urls_only_for_root_admins(tmp_path):
    source = tmp_path / "disk.raw"
    source.write_bytes(PAYLOAD)
    url = source.as_uri()
    assert "only root administrators" in fails(url, tmp_path / "a.part")
    for bad, words in ((f"file://{tmp_path}/nothing.raw", "existing regular file"),
                       (f"file://{tmp_path}", "existing regular file"),
                       ("file:relative/disk.raw", "absolute path"),
                       (f"file://otherhost{source}", "absolute path")):
        with pytest.raises(TransferError, match=words):
            check_url(bad, allow_file=True, allowed_internal=[])
    (size, sha), seen = fetch(url, tmp_path / "b.part", allow_file=True, checksum="{SHA-256}" + SHA256)
    assert (size, sha) == (len(PAYLOAD), SHA256) and (tmp_path / "b.part").read_bytes() == PAYLOAD
    assert_progress(seen, len(PAYLOAD))


# -- downloads --------------------------------------------------------------------------------------
def test_download_streams_the_file_with_progress(http, tmp_path):
    dest = tmp_path / "disk.part"
    (size, sha), seen = fetch(http.url("/file/disk.qcow2"), dest, checksum=hashlib.md5(PAYLOAD).hexdigest())
    assert (size, sha) == (len(PAYLOAD), SHA256) and dest.read_bytes() == PAYLOAD
    assert_progress(seen, len(PAYLOAD))
    assert all(p.bytes_total == len(PAYLOAD) for p in seen)
    assert len(http.seen("/file/disk.qcow2")) == 1


def test_loopback_is_refused_by_default(http, tmp_path):
    message = fails(http.url("/file/disk.qcow2"), tmp_path / "x.part", allowed_internal=[])
    assert "127.0.0.2, a loopback address" in message and "secstorage.allowed.internal.sites" in message
    assert http.requests == []


def test_404_is_not_retried(http, tmp_path):
    message = fails(http.url("/missing"), tmp_path / "x.part")
    assert message == f"The URL {http.url('/missing')} answered 404 Not Found; check the address"
    assert len(http.seen("/missing")) == 1


def test_5xx_is_retried(http, tmp_path):
    (size, sha), _ = fetch(http.url("/busy"), tmp_path / "x.part")
    assert (size, sha) == (len(PAYLOAD), SHA256) and len(http.seen("/busy")) == 2


def test_truncated_bodies_are_retried_then_reported(http, tmp_path):
    message = fails(http.url("/truncated"), tmp_path / "x.part", retries=1)
    assert "failed after 2 attempts: the connection closed after 1.5 MiB of 3 MiB" in message
    assert len(http.seen("/truncated")) == 2


def test_a_broken_download_resumes_with_range(http, tmp_path):
    dest = tmp_path / "x.part"
    (size, sha), seen = fetch(http.url("/flaky"), dest)
    first, second = http.seen("/flaky")
    assert "Range" not in first and second["Range"] == f"bytes={len(PAYLOAD) // 2}-"
    assert (size, sha) == (len(PAYLOAD), SHA256) and dest.read_bytes() == PAYLOAD
    assert_progress(seen, len(PAYLOAD))


def test_a_server_ignoring_range_restarts_the_file_and_the_digest(http, tmp_path):
    dest = tmp_path / "x.part"
    (size, sha), seen = fetch(http.url("/ignore-range"), dest, checksum=hashlib.sha512(PAYLOAD).hexdigest())
    assert "Range" in http.seen("/ignore-range")[1]
    assert (size, sha) == (len(PAYLOAD), SHA256) and dest.read_bytes() == PAYLOAD
    assert_progress(seen, len(PAYLOAD))


@pytest.mark.parametrize("path", ["/stall", "/silent"])
def test_a_stalled_server_fails_after_the_stall_timeout(http, tmp_path, path):
    """/stall sends its headers then nothing; /silent accepts the request and never answers."""
    started = time.monotonic()
    message = fails(http.url(path), tmp_path / "x.part", stall_timeout=1, retries=0)
    assert "failed after 1 attempt: the server sent nothing for 1 second" in message
    assert time.monotonic() - started < 5


def test_a_slow_but_steady_server_is_not_a_stall(http, tmp_path):
    (size, sha), seen = fetch(http.url("/slow"), tmp_path / "x.part", stall_timeout=1, retries=0,
                              progress_interval=0.1, progress_bytes=1 << 30)
    assert (size, sha) == (len(PAYLOAD), SHA256)
    assert_progress(seen, len(PAYLOAD))
    assert len(seen) >= 3 and all(p.rate_bps > 0 for p in seen[1:])


def test_redirects_are_followed_and_checked(http, tmp_path):
    (size, sha), _ = fetch(http.url("/redirect"), tmp_path / "a.part")
    assert (size, sha) == (len(PAYLOAD), SHA256) and len(http.seen("/file/disk.qcow2")) == 1
    message = fails(http.url("/redirect-loopback"), tmp_path / "b.part", allowed_internal=["127.0.0.2/32"])
    assert f"http://127.0.0.1:{http.server_port}/file/disk.qcow2 points at 127.0.0.1, a loopback address" in message
    assert "redirects more than 5 times" in fails(http.url("/loop"), tmp_path / "c.part")
    assert len(http.seen("/loop")) == 6


def test_a_name_that_rebinds_to_an_internal_address_is_refused_at_connect(http, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "_resolve", lambda host, port: ["93.184.216.34"])
    message = fails(http.url("/file/disk.qcow2"), tmp_path / "x.part", allowed_internal=[])
    assert "points at 127.0.0.2, a loopback address" in message
    assert http.requests == []


def test_max_bytes_refuses_up_front_and_while_streaming(http, tmp_path):
    message = fails(http.url("/file/disk.qcow2"), tmp_path / "a.part", max_bytes=3 << 19)
    assert message == (f"The image at {http.url('/file/disk.qcow2')} is 3 MiB, larger than the 1.5 MiB that the "
                       "secondary storage and quota allow")
    message = fails(http.url("/nolength"), tmp_path / "b.part", max_bytes=3 << 19)
    assert "larger than the 1.5 MiB" in message
    (size, _), seen = fetch(http.url("/nolength"), tmp_path / "c.part", max_bytes=len(PAYLOAD))
    assert size == len(PAYLOAD) and seen[0].bytes_total is None and seen[-1].percent == 100


def test_checksum_mismatch_names_both_digests(http, tmp_path):
    wrong = "0" * 64
    message = fails(http.url("/file/disk.qcow2"), tmp_path / "x.part", checksum=f"{{SHA-256}}{wrong}")
    assert message == (f"The downloaded file does not match its checksum: expected {{SHA-256}}{wrong}, "
                       f"got {{SHA-256}}{SHA256}; check the checksum and the URL")
    assert "not supported" in fails(http.url("/file/disk.qcow2"), tmp_path / "y.part", checksum="{CRC}00")


def test_cancelling_from_the_progress_callback_removes_the_file(http, tmp_path):
    class Cancelled(Exception):
        pass

    def cancel(progress: Progress) -> None:
        raise Cancelled

    dest = tmp_path / "x.part"
    with pytest.raises(Cancelled):
        download(http.url("/file/disk.qcow2"), dest, allow_file=False, allowed_internal=LOOPBACK,
                 on_progress=cancel, progress_bytes=1)
    assert not dest.exists()


def test_a_destination_that_cannot_be_written_is_reported(http, tmp_path):
    message = fails(http.url("/file/disk.qcow2"), tmp_path / "no-such-dir" / "x.part")
    assert message == "Writing the image to secondary storage failed: No such file or directory"


def test_connection_refused_is_reported(tmp_path):
    message = fails("http://127.0.0.2:9/x.qcow2", tmp_path / "x.part", retries=0)
    assert message == "The download from http://127.0.0.2:9/x.qcow2 failed after 1 attempt: the connection " \
                      "failed (Connection refused)"


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    """The same handlers over TLS, with a self-signed certificate for 127.0.0.2 (cert path, server)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    root = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=nubo-test",
                    "-addext", "subjectAltName=IP:127.0.0.2", "-keyout", str(root / "key.pem"),
                    "-out", str(root / "cert.pem")], check=True, capture_output=True)
    srv = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "cert.pem", root / "key.pem")
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield root / "cert.pem", srv
    srv.shutdown()
    srv.server_close()


def test_https_verifies_the_certificate(https, tmp_path, monkeypatch):
    cert, srv = https
    url = srv.url("/file/disk.qcow2").replace("http:", "https:")
    message = fails(url, tmp_path / "a.part")
    assert message.startswith("The secure connection to 127.0.0.2 failed (") and "certificate verify failed" in message
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    (size, sha), _ = fetch(url, tmp_path / "b.part")
    assert (size, sha) == (len(PAYLOAD), SHA256)


# -- inspection -------------------------------------------------------------------------------------
def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", *args], check=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    qemu_img("-f", "qcow2", str(root / "disk.qcow2"), "64M")
    qemu_img("-f", "raw", str(root / "disk.raw"), "1M")
    qemu_img("-f", "qcow2", "-b", str(root / "disk.raw"), "-F", "raw", str(root / "backed.qcow2"))
    qemu_img("-f", "qcow2", "-o", f"data_file={root / 'data.raw'}", str(root / "datafile.qcow2"), "64M")
    qemu_img("-f", "qcow2", str(root / "huge.qcow2"), "17T")
    (root / "damaged.qcow2").write_bytes(b"QFI\xfb\x00\x00\x00\x63" + bytes(1000))
    (root / "page.qcow2").write_bytes(HTML)
    if shutil.which("xorriso"):
        (root / "iso").mkdir()
        (root / "iso" / "hello.txt").write_text("hello\n")
        subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(root / "cd.iso"), str(root / "iso")],
                       check=True, capture_output=True)
    else:
        image = bytearray(64 << 10)
        image[0x8000:0x8006] = b"\x01CD001"
        (root / "cd.iso").write_bytes(bytes(image))
    return root


def test_images_that_are_what_they_claim(images):
    fmt, virtual, physical = inspect_image(images / "disk.qcow2", "QCOW2")
    assert (fmt, virtual) == ("QCOW2", 64 << 20) and 0 < physical < 1 << 20
    assert inspect_image(images / "disk.raw", "RAW")[:2] == ("RAW", 1 << 20)
    iso = images / "cd.iso"
    assert inspect_image(iso, "ISO")[:2] == ("ISO", iso.stat().st_size)


@pytest.mark.parametrize("name, declared, words", [
    ("backed.qcow2", "QCOW2", "has a backing file ("),
    ("datafile.qcow2", "QCOW2", "external file ("),
    ("disk.raw", "QCOW2", "is not a QCOW2 image: qemu-img sees raw"),
    ("page.qcow2", "QCOW2", "it looks like a web page"),
    ("disk.qcow2", "RAW", "declared RAW but is a qcow2 image; register it with format=QCOW2"),
    ("disk.qcow2", "ISO", "declared ISO but is a qcow2 image"),
    ("disk.raw", "ISO", "is not an ISO 9660 image"),
    ("huge.qcow2", "QCOW2", "implausible virtual size of 17 TiB"),
    ("damaged.qcow2", "QCOW2", "qemu-img cannot read the image: Could not open 'damaged.qcow2': Unsupported qcow2"),
    ("disk.qcow2", "VHD", "not supported"),
])
def test_images_that_are_refused(images, name, declared, words):
    with pytest.raises(TransferError) as caught:
        inspect_image(images / name, declared)
    assert words in caught.value.message


def test_a_web_page_downloaded_as_qcow2_is_refused_with_a_hint(http, tmp_path):
    dest = tmp_path / "x.part"
    (size, _), _ = fetch(http.url("/page.qcow2"), dest)
    assert size == len(HTML)
    with pytest.raises(TransferError, match="is not a QCOW2 image: qemu-img sees raw .it looks like a web page"):
        inspect_image(dest, "QCOW2")
