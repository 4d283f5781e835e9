"""Image transfer: download a template or ISO into secondary storage, and check what arrived.

No Django here (the services layer calls it from an RQ job with plain values). A download streams
in 1 MiB chunks, hashing as it goes; it refuses addresses inside the cloud (loopback, private,
link-local, …) unless the administrator allowed their network, at registration, on every redirect
and again on the socket actually connected (so a name that re-resolves to 127.0.0.1 between the
check and the connection is refused too); it survives stalls, resets and truncated bodies with
retries that resume by Range where the server allows it; and every failure is one sentence the user
can act on. inspect_image asks qemu-img (under prlimit) what the file really is.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, Callable
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_REDIRECTS = 5
MAX_VIRTUAL_SIZE = 16 << 40
QEMU_IMG_TIMEOUT = 60
ALLOWED_SETTING = "secstorage.allowed.internal.sites"
ALGORITHMS = {"md5": ("md5", 32, "MD5"), "sha1": ("sha1", 40, "SHA-1"), "sha256": ("sha256", 64, "SHA-256"),
              "sha384": ("sha384", 96, "SHA-384"), "sha512": ("sha512", 128, "SHA-512")}
ALGORITHM_BY_LENGTH = {length: name for name, length, _ in ALGORITHMS.values()}
LABELS = {name: label for name, _, label in ALGORITHMS.values()}


class TransferError(Exception):
    """A download or inspection failure; `message` is one sentence for the user."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class Progress:
    bytes_done: int
    bytes_total: int | None
    rate_bps: float

    @property
    def percent(self) -> int | None:
        if self.bytes_total is None:
            return None
        if self.bytes_total <= 0:
            return 100
        return min(100, self.bytes_done * 100 // self.bytes_total)


def human_bytes(n: int) -> str:
    value, unit = float(n), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if round(value, 1) < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n} B" if unit == "B" else f"{value:.1f}".removesuffix(".0") + f" {unit}"


def redact_url(url: str) -> str:
    """The URL without user:password@ (never raises, even on a malformed URL)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1", url or "")


# -- checksums ------------------------------------------------------------------------------------
def parse_checksum(text: str | None) -> tuple[str, str] | None:
    """CloudStack's checksum forms → (hashlib name, lowercase hex); None when empty."""
    value = (text or "").strip()
    if not value:
        return None
    match = re.fullmatch(r"\{([A-Za-z0-9-]+)\}\s*([0-9A-Fa-f]+)", value)
    if match:
        name = match.group(1).lower().replace("-", "")
        if name not in ALGORITHMS:
            raise ValueError(f"The checksum algorithm {match.group(1)} is not supported; "
                             "use MD5, SHA-1, SHA-256, SHA-384 or SHA-512")
        digest = match.group(2).lower()
        if len(digest) != ALGORITHMS[name][1]:
            raise ValueError(f"A {LABELS[name]} checksum has {ALGORITHMS[name][1]} hexadecimal digits, "
                             f"not {len(digest)}")
        return name, digest
    if re.fullmatch(r"[0-9A-Fa-f]+", value) and len(value) in ALGORITHM_BY_LENGTH:
        return ALGORITHM_BY_LENGTH[len(value)], value.lower()
    raise ValueError("The checksum must be hexadecimal digits, optionally prefixed by the algorithm as in "
                     "{SHA-256}9f86d0…; a bare value of 32, 40, 64, 96 or 128 digits is taken as MD5, SHA-1, "
                     "SHA-256, SHA-384 or SHA-512")


# -- where a URL may point ------------------------------------------------------------------------
def _networks(cidrs: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            log.warning("ignoring %r in %s: it is not a network in CIDR notation", cidr, ALLOWED_SETTING)
    return networks


def _internal_kind(address: str, allowed: list) -> str | None:
    """Why this address is inside the cloud ("a loopback address"), None when it may be fetched."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in allowed):
        return None
    kinds = ((ip.is_loopback, "a loopback address"), (ip.is_link_local, "a link-local address"),
             (ip.is_unspecified, "an unspecified address"), (ip.is_multicast, "a multicast address"),
             (ip.is_private, "a private address"), (ip.is_reserved or not ip.is_global, "a reserved address"))
    return next((kind for test, kind in kinds if test), None)


def _refusal(url: str, address: str, kind: str) -> TransferError:
    return TransferError(f"The URL {redact_url(url)} points at {address}, {kind}; an administrator can allow it by "
                         f"adding its network to {ALLOWED_SETTING}")


def _resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_url(url: str, *, allow_file: bool, allowed_internal: list[str]) -> None:
    """Refuse, before any download, what must not be downloaded (TransferError, not retryable)."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TransferError(f"The URL {shown} is not a valid address") from None
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file:
            raise TransferError(f"The URL {shown} is a file:// address, which only root administrators may use; "
                                "give an http:// or https:// address")
        path = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not path.is_absolute():
            raise TransferError(f"The URL {shown} must name an absolute path on the management server, "
                                "as in file:///srv/images/disk.qcow2")
        if not path.is_file():
            raise TransferError(f"The URL {shown} does not name an existing regular file on the management server")
        return
    if scheme not in ("http", "https"):
        raise TransferError(f"The URL {shown} must start with http:// or https://")
    if not parts.hostname:
        raise TransferError(f"The URL {shown} has no host name")
    try:
        addresses = _resolve(parts.hostname, port or (443 if scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise TransferError(f"The host {parts.hostname} of the URL {shown} does not resolve; "
                            "check the address") from None
    allowed = _networks(allowed_internal)
    for address in addresses:
        kind = _internal_kind(address, allowed)
        if kind:
            raise _refusal(url, address, kind)


class _PeerRefused(Exception):
    def __init__(self, address: str, kind: str):
        super().__init__(address, kind)
        self.address, self.kind = address, kind


def _session(allowed_internal: list[str]) -> requests.Session:
    """A session that re-checks the address of every socket it connects (DNS rebinding) and ignores
    the environment (no proxies, no .netrc) except REQUESTS_CA_BUNDLE."""
    allowed = _networks(allowed_internal)

    def checked(base: type[HTTPConnection]) -> type[HTTPConnection]:
        class Checked(base):  # type: ignore[misc,valid-type]
            def _new_conn(self) -> socket.socket:
                sock = super()._new_conn()
                address = sock.getpeername()[0]
                kind = _internal_kind(address, allowed)
                if kind:
                    sock.close()
                    raise _PeerRefused(address, kind)
                return sock

        return Checked

    adapter = HTTPAdapter(max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": type("CheckedPool", (HTTPConnectionPool,), {"ConnectionCls": checked(HTTPConnection)}),
        "https": type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": checked(HTTPSConnection)}),
    }
    session = requests.Session()
    session.trust_env = False
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or True  # an internal CA, as requests would read it
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- download -------------------------------------------------------------------------------------
class _Retry(Exception):
    """A failed attempt worth another (its text completes "the download failed after …: ");
    resume=False when the next attempt must not ask for a byte range."""

    def __init__(self, reason: str, *, resume: bool = True):
        super().__init__(reason)
        self.resume = resume


class _Sink:
    """The destination file, its running digests, the size limit and progress reporting.

    Each chunk is hashed on `hasher` (one thread; hashlib releases the GIL) while the next one is
    written and received: hashing inline made downloads twice as slow as curl's."""

    def __init__(self, out: BinaryIO, hasher: ThreadPoolExecutor, url: str, algorithm: str | None,
                 max_bytes: int | None, on_progress: Callable[[Progress], None] | None, interval: float, every: int):
        self.out, self.hasher, self.url, self.algorithm, self.max_bytes = out, hasher, url, algorithm, max_bytes
        self.on_progress, self.interval, self.every = on_progress, interval, every
        self.done, self.total, self.received, self.shown = 0, None, 0, 0
        self.digests: dict[str, hashlib._Hash] = {}
        self.hashing: Future | None = None
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self.last_time, self.last_done = time.monotonic(), 0

    def start(self, total: int | None, offset: int) -> None:
        """Begin an attempt: continue at `offset` (== done) or, with 0, start the file over."""
        if self.max_bytes is not None and total is not None and total > self.max_bytes:
            raise TransferError(f"The image at {redact_url(self.url)} is {human_bytes(total)}, larger than the "
                                f"{human_bytes(self.max_bytes)} that the secondary storage and quota allow")
        self.total = total
        if offset == 0:
            self.out.seek(0)
            self.out.truncate()
            self.done = 0
            self._wait_hashing()
            self.digests = {name: hashlib.new(name) for name in {"sha256", self.algorithm} if name}

    def hexdigest(self, name: str) -> str:
        self._wait_hashing()
        return self.digests[name].hexdigest()

    def _wait_hashing(self) -> None:
        if self.hashing is not None:
            self.hashing.result()
            self.hashing = None

    def _hash(self, chunk: bytes) -> None:
        for digest in self.digests.values():
            digest.update(chunk)

    def write(self, chunk: bytes) -> None:
        if self.max_bytes is not None and self.done + len(chunk) > self.max_bytes:
            raise TransferError(f"The image at {redact_url(self.url)} is larger than the "
                                f"{human_bytes(self.max_bytes)} that the secondary storage and quota allow")
        self.out.write(chunk)
        self._wait_hashing()
        self.hashing = self.hasher.submit(self._hash, chunk)
        self.done += len(chunk)
        self.received += len(chunk)
        now = time.monotonic()
        if now - self.last_time >= self.interval or self.done - self.last_done >= self.every:
            self.report(now)

    def report(self, now: float, *, final: bool = False) -> None:
        self.last_time, self.last_done = now, self.done
        self.samples.append((now, self.received))
        while len(self.samples) > 2 and now - self.samples[1][0] >= 5.0:
            self.samples.popleft()
        then, received = self.samples[0]
        rate = (self.received - received) / (now - then) if now > then else 0.0
        self.shown = max(self.shown, self.done)
        if self.on_progress is not None:
            self.on_progress(Progress(self.shown, self.done if final else self.total, rate))


def _phrase(response: requests.Response) -> str:
    try:
        phrase = response.reason or HTTPStatus(response.status_code).phrase
    except ValueError:
        phrase = ""
    return f"{response.status_code} {phrase}".strip()


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"


def _cause(exc: BaseException) -> str:
    """The operating system's words for a network failure ("Connection refused"), if any."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return current.strerror
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None),
                 *(arg for arg in current.args if isinstance(arg, BaseException))]
    return type(exc).__name__


def _open(session: requests.Session, url: str, headers: dict[str, str], allowed_internal: list[str],
          timeout: tuple[float, float]) -> requests.Response:
    """GET with redirects followed by hand, each target checked; 200 or 206, else an error."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = session.get(current, headers=headers, stream=True, timeout=timeout, allow_redirects=False)
        except _PeerRefused as exc:
            raise _refusal(current, exc.address, exc.kind) from None
        if response.is_redirect:
            target = urljoin(current, response.headers["Location"])
            response.close()
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                raise TransferError(f"The URL {redact_url(current)} redirects to {redact_url(target)}, "
                                    "which is not an http:// or https:// address")
            check_url(target, allow_file=False, allowed_internal=allowed_internal)
            current = target
            continue
        if response.status_code in (200, 206):
            return response
        response.close()
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retry(f"the server answered {_phrase(response)}")
        raise TransferError(f"The URL {redact_url(current)} answered {_phrase(response)}; check the address")
    raise TransferError(f"The URL {redact_url(url)} redirects more than {MAX_REDIRECTS} times; "
                        "give the final address of the file")


def _body_start(response: requests.Response, offset: int, known_total: int | None) -> tuple[int, int | None]:
    """(where this answer's body starts, the full size) for a 200 or 206 answer."""
    length = response.headers.get("Content-Length", "")
    if response.status_code != 206:
        return 0, int(length) if length.isdigit() else None
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", response.headers.get("Content-Range", ""))
    total = None if match is None or match.group(2) == "*" else int(match.group(2))
    if match is None or int(match.group(1)) != offset or (known_total and total not in (None, known_total)):
        raise _Retry("the server answered a different byte range than asked", resume=False)
    return offset, total or known_total


def _fetch(url: str, sink: _Sink, *, allowed_internal: list[str], connect_timeout: float, stall_timeout: float,
           retries: int, backoff: float) -> None:
    session = _session(allowed_internal)
    timeout = (connect_timeout, stall_timeout)
    validator: str | None = None  # ETag or Last-Modified of the first answer: resume only the same file
    resumable = False
    reason = ""
    with session:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
                log.info("retrying the download of %s (%s)", redact_url(url), reason)
            offset = sink.done if resumable else 0
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
                if validator:
                    headers["If-Range"] = validator
            receiving = False
            try:
                with _open(session, url, headers, allowed_internal, timeout) as response:
                    offset, total = _body_start(response, offset, sink.total)
                    if response.status_code == 200:
                        etag = response.headers.get("ETag", "")
                        validator = etag if etag and not etag.startswith("W/") else None
                        validator = validator or response.headers.get("Last-Modified")
                    accepts = response.headers.get("Accept-Ranges", "").lower() == "bytes"
                    resumable = response.status_code == 206 or accepts
                    sink.start(total, offset)
                    receiving = True
                    for chunk in response.raw.stream(CHUNK, decode_content=False):
                        sink.write(chunk)
                if sink.total is not None and sink.done < sink.total:
                    raise _Retry(f"the connection closed after {human_bytes(sink.done)} of {human_bytes(sink.total)}")
                return
            except _Retry as exc:
                reason, resumable = str(exc), resumable and exc.resume
            except requests.exceptions.SSLError as exc:
                raise TransferError(f"The secure connection to {urlsplit(url).hostname} failed ({_cause(exc)}); "
                                    "check that the server has a valid certificate") from None
            except (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
                reason = f"the server did not accept a connection within {_seconds(connect_timeout)}"
            except (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError):
                reason = f"the server sent nothing for {_seconds(stall_timeout)}"
            except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                if receiving and sink.total is not None and sink.done < sink.total:
                    reason = f"the connection closed after {human_bytes(sink.done)} of {human_bytes(sink.total)}"
                else:
                    reason = f"the connection failed ({_cause(exc)})"
    attempts = f"{retries + 1} attempts" if retries else "1 attempt"
    raise TransferError(f"The download from {redact_url(url)} failed after {attempts}: {reason}", retryable=True)


def _copy(path: Path, sink: _Sink) -> None:
    """A local file through the same loop; only errors reading the source are reported as such."""
    def failed(exc: OSError) -> TransferError:
        return TransferError(f"Reading {path} failed: {exc.strerror or exc}")

    try:
        source = open(path, "rb")
    except OSError as exc:
        raise failed(exc) from None
    with source:
        sink.start(os.fstat(source.fileno()).st_size, 0)
        while True:
            try:
                chunk = source.read(CHUNK)
            except OSError as exc:
                raise failed(exc) from None
            if not chunk:
                return
            sink.write(chunk)


def download(url: str, dest: Path, *, allow_file: bool, allowed_internal: list[str], checksum: str | None = None,
             max_bytes: int | None = None, on_progress: Callable[[Progress], None] | None = None,
             connect_timeout: float = 10.0, stall_timeout: float = 30.0, retries: int = 3, backoff: float = 1.0,
             progress_interval: float = 1.0, progress_bytes: int = 8 << 20) -> tuple[int, str]:
    """Stream `url` into `dest` (the caller's private temporary name): (bytes written, sha256 hex).

    On failure `dest` is removed and TransferError raised; an exception raised by `on_progress`
    (the caller cancelling) also removes `dest` and propagates unchanged."""
    try:
        expected = parse_checksum(checksum)
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    check_url(url, allow_file=allow_file, allowed_internal=allowed_internal)
    try:
        with open(dest, "wb") as out, ThreadPoolExecutor(1, thread_name_prefix="transfer-hash") as hasher:
            sink = _Sink(out, hasher, url, expected[0] if expected else None, max_bytes, on_progress,
                         progress_interval, progress_bytes)
            if urlsplit(url).scheme.lower() == "file":
                _copy(Path(unquote(urlsplit(url).path)), sink)
            else:
                _fetch(url, sink, allowed_internal=allowed_internal, connect_timeout=connect_timeout,
                       stall_timeout=stall_timeout, retries=retries, backoff=backoff)
            sha256 = sink.hexdigest("sha256")
        if expected:
            got = sink.hexdigest(expected[0])
            if got != expected[1]:
                label = LABELS[expected[0]]
                raise TransferError(f"The downloaded file does not match its checksum: expected {{{label}}}"
                                    f"{expected[1]}, got {{{label}}}{got}; check the checksum and the URL")
        sink.report(time.monotonic(), final=True)
        return sink.done, sha256
    except BaseException as exc:
        dest.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise TransferError(f"Writing the image to secondary storage failed: {exc.strerror or exc}") from None
        raise


# -- inspection -----------------------------------------------------------------------------------
def inspect_image(path: Path, declared_format: str) -> tuple[str, int, int]:
    """(format, virtual size, physical size) of a downloaded image, or TransferError when it is not
    the declared format, depends on another file, or is implausible."""
    declared = declared_format.upper()
    if declared not in ("QCOW2", "RAW", "ISO"):
        raise TransferError(f"The format {declared_format} is not supported; use QCOW2, RAW or ISO")
    target = str(path.absolute())  # absolute: never read as a protocol prefix such as json: or nbd:
    argv = ["qemu-img", "info", "--output=json", target]
    if shutil.which("prlimit"):
        argv = ["prlimit", "--as=1073741824", "--cpu=30", *argv]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise TransferError(f"qemu-img needed more than {QEMU_IMG_TIMEOUT} seconds to read the image; "
                            "it is probably damaged") from None
    except FileNotFoundError:
        raise TransferError("qemu-img is not installed on the management server; install qemu-utils") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit status {done.returncode}"]
        line = lines[0].removeprefix("qemu-img: ").replace(target, path.name)
        raise TransferError(f"qemu-img cannot read the image: {line}")
    info = json.loads(done.stdout)
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if backing:
        raise TransferError(f"The image has a backing file ({backing}); images must be self-contained, "
                            "so convert it with qemu-img convert first")
    data_file = info.get("format-specific", {}).get("data", {}).get("data-file")
    if data_file:
        raise TransferError(f"The image keeps its data in an external file ({data_file}); images must be "
                            "self-contained, so convert it with qemu-img convert first")
    probed = str(info.get("format", ""))
    stat = path.stat()
    physical = int(info.get("actual-size") or stat.st_blocks * 512)
    if declared == "QCOW2":
        if probed != "qcow2":
            with open(path, "rb") as fh:
                head = fh.read(512).lstrip().lower()
            hint = " (it looks like a web page: is the URL a download page rather than the file?)" \
                if head.startswith((b"<!doctype html", b"<html")) else ""
            raise TransferError(f"The file is not a QCOW2 image: qemu-img sees {probed}{hint}")
        virtual = int(info["virtual-size"])
        if virtual > MAX_VIRTUAL_SIZE:
            raise TransferError(f"The image declares an implausible virtual size of {human_bytes(virtual)} "
                                f"(at most {human_bytes(MAX_VIRTUAL_SIZE)})")
        return "QCOW2", virtual, physical
    if probed != "raw":
        raise TransferError(f"The image is declared {declared} but is a {probed} image; "
                            f"register it with format={probed.upper()}")
    if declared == "ISO":
        with open(path, "rb") as fh:
            fh.seek(0x8001)
            if fh.read(5) != b"CD001":
                raise TransferError("The file is not an ISO 9660 image: it has no primary volume descriptor")
    return declared, stat.st_size, physical
