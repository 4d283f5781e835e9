"""Real processes for the end-to-end tests: free ports, a private Redis, the environment that
points a subprocess at the test database, and process handles that always clean up after
themselves (the whole process tree, including children started in their own sessions)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ..." - comm may contain spaces and parentheses.
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    tree = _children_map()
    out: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo.extend(tree.get(child, []))
    return out


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after "(comm)": [state, ppid, ...]; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()
    except OSError:
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """True while `pid` exists, is not a zombie and (given `started`, its start time from
    /proc) is still the same process, not a new one that reused the pid."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or fields[19] == started


def _identity(pids: list[int]) -> dict[int, str]:
    out = {}
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            out[pid] = fields[19]  # starttime, field 22 of stat
    return out


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the process that started it dies, so even a
    killed test run (SIGKILL, no fixture teardown) leaves no server behind. Linux only."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Proc:
    """A subprocess in its own session (so its process group is exactly what it starts), its
    output in a log file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path = REPO):
        self.name = name
        self.argv = argv
        self.log_path = Path(log_dir) / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.popen.returncode}"
        return f"--- {self.name} ({state}): {' '.join(self.argv)}\n{self.log_tail()}"

    def tree(self) -> list[int]:
        """This process and its descendants (none once it has exited: orphans are re-parented)."""
        return [self.pid, *descendants(self.pid)] if self.alive() else []

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> list[int]:
        """Stop the process and everything it started: `sig` to its process group, then SIGKILL
        to whatever of its tree is still there after `timeout`. Returns the pids that had to be
        killed (empty when the polite signal was enough)."""
        tree = _identity(self.tree())
        if self.alive():
            try:
                os.killpg(self.pid, sig)  # its own session: the group id is its pid
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.alive() or any(pid_alive(p, st) for p, st in tree.items())):
            time.sleep(0.05)
        survivors = {p: st for p, st in tree.items() if pid_alive(p, st)}
        for pid in list(survivors):
            survivors.update(_identity([p for p in descendants(pid) if p not in survivors]))
        for pid, started in survivors.items():
            if pid_alive(pid, started):
                _signal_pid(pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return sorted(survivors)


def wait_tcp(port: int, procs: list[Proc], timeout: float = 30.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`; fail early when a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited before port {port} opened\n" + "\n".join(p.describe() for p in procs))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s\n" + "\n".join(p.describe() for p in procs))


def wait_http(url: str, procs: list[Proc], timeout: float = 30.0, status: int = 200) -> requests.Response:
    """Poll `url` until it answers `status`; fail early (with the logs) when a process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited before {url} answered\n" + "\n".join(p.describe() for p in procs))
        try:
            response = requests.get(url, timeout=2, allow_redirects=False)
            if response.status_code == status:
                return response
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {status} within {timeout}s ({last})\n" + "\n".join(p.describe() for p in procs))


class PrivateRedis:
    """A throw-away redis-server on a free port (no persistence), so concurrent test runs never
    share a queue. Without a redis-server binary: a dedicated DB of the local Redis, flushed.
    (bench/run.py uses this too.)"""

    def __init__(self, work_dir: Path, *, fallback: str = "redis://127.0.0.1:6379/9",
                 override_env: str = "NUBO_E2E_REDIS_URL"):
        """`override_env`, when set, names a Redis URL to use (and flush) instead."""
        self.proc: Proc | None = None
        binary = shutil.which("redis-server")
        if binary and os.environ.get(override_env) is None:
            port = free_port()
            self.proc = Proc("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(work_dir)],
                             env=dict(os.environ), log_dir=work_dir)
            self.url = f"redis://127.0.0.1:{port}/0"
        else:
            self.url = os.environ.get(override_env, fallback)
        self._wait_and_flush()

    def _wait_and_flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.flushdb()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or (self.proc is not None and not self.proc.alive()):
                    raise RuntimeError(f"Redis at {self.url} did not answer"
                                       + (f"\n{self.proc.describe()}" if self.proc else ""))
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def database_url(settings_dict: dict) -> str | None:
    """A DATABASE_URL (dj-database-url syntax) naming the same database as `settings_dict`, or
    None when another process cannot reach it (in-memory SQLite)."""
    engine = settings_dict["ENGINE"]
    name = str(settings_dict["NAME"])
    if engine.endswith("sqlite3"):
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        return f"sqlite:///{Path(name).resolve()}"
    if engine.endswith("postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        if host.startswith("/"):  # unix socket directory
            return f"postgresql://{auth}/{quote(name, safe='')}?host={quote(host, safe='')}"
        port = settings_dict.get("PORT") or "5432"
        return f"postgresql://{auth}{host}:{port}/{quote(name, safe='')}"
    return None


def subprocess_env(*, database_url: str, redis_url: str, var_dir: Path, secret_key: str, **extra: str) -> dict[str, str]:
    """The environment of a server process sharing this test's database, Redis and secrets."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUBO_JOBS_EAGER", "DJANGO_SETTINGS_MODULE", "NUBO_BIND", "PORT")}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "NUBO_SECRET_KEY": secret_key,
        "NUBO_VAR_DIR": str(var_dir),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


@dataclass
class Backing:
    """What server processes need: the env pointing at the test database and Redis."""

    env: dict[str, str]
    work_dir: Path
    redis_url: str


@dataclass
class Stack:
    """Running server processes and the address of their web front."""

    base_url: str
    procs: list[Proc] = field(default_factory=list)
    port: int = 0

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/client/api"

    def logs(self) -> str:
        return "\n".join(p.describe() for p in self.procs)

    def check_alive(self) -> None:
        if any(not p.alive() for p in self.procs):
            raise AssertionError("a server process died:\n" + self.logs())
