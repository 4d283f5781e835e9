"""A small closed-loop HTTP load generator in pure Python: `concurrency` processes (not threads,
so the client is not one GIL), each with one keep-alive connection, each sending its next
request as soon as the previous answer is read. Every request to the API is signed afresh
exactly as the `cs` client signs (signatureVersion=3, expires = now + 600 s)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import multiprocessing
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlencode


def cs_signature(params: dict[str, str], secret: str) -> str:
    """cs 5.2.0's CloudStack._sign: sorted raw names, values quote(v, safe="*"), lower-cased,
    HMAC-SHA1, base64 (spec §2.2)."""
    text = "&".join(f"{k}={quote(v, safe='*')}" for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(secret.encode(), text.lower().encode(), hashlib.sha1).digest()).decode()


def signed_query(command: str, params: dict[str, str], api_key: str, secret: str) -> str:
    data = {**params, "command": command, "apiKey": api_key, "response": "json", "signatureVersion": "3",
            "expires": (datetime.now(timezone.utc) + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%S%z")}
    data["signature"] = cs_signature(data, secret)
    return urlencode(data)


@dataclass(frozen=True)
class Spec:
    """What one load run sends: GET `path`?<freshly signed `command` + `params`>."""

    host: str
    port: int
    path: str
    command: str
    params: tuple[tuple[str, str], ...]
    api_key: str
    secret: str
    expected_body: bytes  # answers that differ count as errors


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    latencies: list[float]  # seconds, sorted

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, max(0, round(q * (len(self.latencies) - 1))))
        return self.latencies[index]

    @staticmethod
    def merge(results: list["Result"]) -> "Result":
        return Result(requests=sum(r.requests for r in results), seconds=sum(r.seconds for r in results),
                      errors=sum(r.errors for r in results),
                      latencies=sorted(x for r in results for x in r.latencies))


def _client(job: tuple[Spec, float, float, float]) -> tuple[int, int, list[float], str]:
    spec, start_at, measure_from, stop_at = job
    params = dict(spec.params)
    expected_len = len(spec.expected_body)
    latencies: list[float] = []
    errors = 0
    first_error = ""
    conn = http.client.HTTPConnection(spec.host, spec.port, timeout=60)
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        now = time.time()
        if now >= stop_at:
            break
        target = f"{spec.path}?{signed_query(spec.command, params, spec.api_key, spec.secret)}"
        began = time.perf_counter()
        try:
            conn.request("GET", target)
            response = conn.getresponse()
            body = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection(spec.host, spec.port, timeout=60)
            status, body = 0, repr(exc).encode()
        elapsed = time.perf_counter() - began
        ok = status == 200 and len(body) == expected_len and body == spec.expected_body
        if now >= measure_from:
            latencies.append(elapsed)
            if not ok:
                errors += 1
                first_error = first_error or f"HTTP {status}: {body[:300]!r}"
    conn.close()
    return len(latencies), errors, latencies, first_error


def _child_signals() -> None:
    # The parent handles Ctrl-C and stops the pool (SIGTERM); the clients just end quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run(spec: Spec, *, concurrency: int, seconds: float, warmup: float) -> tuple[Result, str]:
    """Closed loop for `warmup` + `seconds`; only requests started after the warm-up count."""
    context = multiprocessing.get_context("fork")
    with context.Pool(concurrency, initializer=_child_signals) as pool:
        start_at = time.time() + 0.3  # every client process is up before the clock starts
        measure_from = start_at + warmup
        stop_at = measure_from + seconds
        answers = pool.map(_client, [(spec, start_at, measure_from, stop_at)] * concurrency)
    count = sum(a[0] for a in answers)
    errors = sum(a[1] for a in answers)
    latencies = sorted(x for a in answers for x in a[2])
    first_error = next((a[3] for a in answers if a[3]), "")
    return Result(requests=count, seconds=seconds, errors=errors, latencies=latencies), first_error
