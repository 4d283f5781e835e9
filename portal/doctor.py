"""Installation checks run by `manage.py doctor` (and `make doctor`).

A check is a function without arguments returning a CheckResult; `@check("name")` registers it.
Checks run in registration order. An app adds its own (libvirt, KVM, storage paths, …) in an
`<app>/doctor.py` module, which the command imports, as Django admin does with `admin.py`:

    from portal.doctor import CheckResult, check

    @check("libvirt", requires=("database",))
    def libvirt_reachable() -> CheckResult:
        ...
        return CheckResult.fail("cannot connect to qemu:///system", fix="start libvirtd: libvirtd -d")

`requires` names checks that must not have failed for this one to mean anything; when one did,
this check is skipped.
"""
from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass(frozen=True)
class CheckResult:
    status: str  # OK | WARN | FAIL | SKIP
    detail: str
    fix: str = ""  # one actionable sentence or command, for WARN and FAIL

    @classmethod
    def ok(cls, detail: str) -> "CheckResult":
        return cls(OK, detail)

    @classmethod
    def warn(cls, detail: str, fix: str) -> "CheckResult":
        return cls(WARN, detail, fix)

    @classmethod
    def fail(cls, detail: str, fix: str) -> "CheckResult":
        return cls(FAIL, detail, fix)


@dataclass(frozen=True)
class Check:
    name: str
    func: Callable[[], CheckResult]
    requires: tuple[str, ...] = ()


REGISTRY: list[Check] = []


def check(name: str, *, requires: tuple[str, ...] = ()) -> Callable[[Callable[[], CheckResult]], Callable[[], CheckResult]]:
    """Register a check under `name` (re-registering a name replaces it, keeping its place)."""

    def decorator(func: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
        entry = Check(name, func, requires)
        for i, existing in enumerate(REGISTRY):
            if existing.name == name:
                REGISTRY[i] = entry
                break
        else:
            REGISTRY.append(entry)
        return func

    return decorator


def run_checks() -> list[tuple[str, CheckResult]]:
    """Run every registered check; an exception inside a check is reported as its failure."""
    results: list[tuple[str, CheckResult]] = []
    status_of: dict[str, str] = {}
    for entry in list(REGISTRY):
        blocked = [r for r in entry.requires if status_of.get(r) in (FAIL, SKIP)]
        if blocked:
            result = CheckResult(SKIP, f"needs {', '.join(blocked)}")
        else:
            try:
                result = entry.func()
            except Exception as exc:  # a check must never crash the report
                result = CheckResult.fail(
                    f"the check itself failed: {type(exc).__name__}: {exc}",
                    "fix what the error names; if it is unclear, report it with this output",
                )
        status_of[entry.name] = result.status
        results.append((entry.name, result))
    return results


# --- the framework's checks -------------------------------------------------------------------


def _describe_database() -> tuple[str, str]:
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return "SQLite", str(settings_dict.get("NAME"))
    host = settings_dict.get("HOST") or "local socket"
    port = settings_dict.get("PORT") or ""
    where = f"{host}:{port}" if port else host
    return connection.display_name, f"{where}/{settings_dict.get('NAME')} as {settings_dict.get('USER') or '(default user)'}"


@check("database")
def database_reachable() -> CheckResult:
    from django.db import connection

    engine, where = _describe_database()
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if connection.vendor == "postgresql":
            fix = ("start PostgreSQL (scripts/services.sh start-postgres for a local server), or correct "
                   "DATABASE_URL; unset DATABASE_URL to use SQLite under var/")
        else:
            fix = f"make sure {where} can be created and written (see the var check), or set DATABASE_URL"
        return CheckResult.fail(f"{engine} at {where}: {first_line}", fix)
    if connection.vendor == "postgresql":
        major, minor = divmod(connection.pg_version, 10000)
        engine = f"PostgreSQL {major}.{minor}"
    elif connection.vendor == "sqlite":
        import sqlite3

        engine = f"SQLite {sqlite3.sqlite_version}"
    return CheckResult.ok(f"{engine} at {where}")


@check("migrations", requires=("database",))
def migrations_applied() -> CheckResult:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = [f"{m.app_label}.{m.name}" for m, _backwards in plan]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return CheckResult.fail(f"{len(names)} not applied: {shown}", "make migrate")
    applied = len(executor.loader.applied_migrations)
    return CheckResult.ok(f"all {applied} applied")


def _redis_connection():
    import django_rq

    conn = django_rq.get_connection("default")
    # Answer within seconds even when REDIS_URL points at a host that drops packets.
    conn.connection_pool.connection_kwargs.update(socket_connect_timeout=3, socket_timeout=3)
    return conn


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


@check("redis")
def redis_reachable() -> CheckResult:
    from django.conf import settings

    url = _redacted(settings.REDIS_URL)
    try:
        _redis_connection().ping()
    except Exception as exc:
        return CheckResult.fail(
            f"no answer at {url}: {exc}",
            "start Redis (scripts/services.sh start-redis for a local server), or correct REDIS_URL",
        )
    return CheckResult.ok(f"answers at {url}")


@check("rq-worker", requires=("redis",))
def rq_worker_alive() -> CheckResult:
    from django.conf import settings
    from rq import Worker

    queue = getattr(settings, "NUBO_JOB_QUEUE", "default")
    workers = Worker.all(connection=_redis_connection())
    serving = [w for w in workers if queue in w.queue_names()]
    if not serving:
        return CheckResult.warn(
            f"no RQ worker listens on queue '{queue}': async jobs stay pending",
            f"make run starts one; or run: .venv/bin/python manage.py rqworker {queue} --with-scheduler",
        )
    return CheckResult.ok(f"{len(serving)} worker(s) on queue '{queue}': {', '.join(sorted(w.name for w in serving))}")


@check("secret-key")
def secret_key_safe() -> CheckResult:
    from django.conf import settings

    key = settings.SECRET_KEY or ""
    source = "NUBO_SECRET_KEY" if os.environ.get("NUBO_SECRET_KEY") else "var/secret_key"
    fix = ("unset NUBO_SECRET_KEY to use the random key kept in var/secret_key, or set it to a long "
           "random value: python3 -c 'import secrets; print(secrets.token_urlsafe(50))' (stored API secret "
           "keys are encrypted with it: after a change, users must generate new keys)")
    if not key or key.startswith("django-insecure-"):
        return CheckResult.fail(f"SECRET_KEY from {source} is empty or Django's insecure placeholder", fix)
    if len(key) < 50 or len(set(key)) < 5:
        return CheckResult.warn(f"SECRET_KEY from {source} is weak ({len(key)} characters)", fix)
    return CheckResult.ok(f"from {source}")


@check("admin-password", requires=("migrations",))
def admin_password_changed() -> CheckResult:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    try:
        default = User.objects.filter(username="admin", domain__path="/", password_is_default=True).exists()
        admin_exists = User.objects.filter(username="admin", domain__path="/").exists()
    except Exception as exc:  # table or field missing: not bootstrapped yet
        return CheckResult.warn(f"cannot read the admin user: {exc}", "make migrate bootstrap")
    if not admin_exists:
        return CheckResult.warn("no user 'admin' in domain ROOT", "make bootstrap")
    if default:
        return CheckResult.warn(
            "user 'admin' in ROOT still has the default password",
            "log in at /client/ as admin and change the password",
        )
    return CheckResult.ok("user 'admin' has its own password")


@check("var")
def var_writable() -> CheckResult:
    from django.conf import settings

    var_dir = Path(getattr(settings, "VAR_DIR", Path(settings.BASE_DIR) / "var"))
    fix = f"mkdir -p {var_dir} && chown {os.getuid()} {var_dir} (it holds the SQLite database, key and logs)"
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=var_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult.fail(f"{var_dir} is not writable: {exc.strerror or exc}", fix)
    return CheckResult.ok(f"{var_dir} is writable")


def _bind_address() -> tuple[str, int] | None:
    bind = os.environ.get("NUBO_BIND", "127.0.0.1:8080")
    if bind.startswith(("unix:", "fd://")):
        return None
    host, _, port = bind.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _listening_process(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on TCP `port`, read from /proc (Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return int(proc.name), cmdline
        except OSError:
            continue
    return None


def port_free_or_ours(host: str, port: int, *, ours: tuple[str, ...], setting: str) -> CheckResult:
    """A TCP address Nubo will listen on: free, or already served by the process of Nubo whose
    command line contains one of `ours`; otherwise a warning naming who holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return CheckResult.ok(f"{host}:{port} is free")
        except OSError:
            pass
    owner = _listening_process(port)
    if owner and any(mark in owner[1] for mark in ours):
        return CheckResult.ok(f"{host}:{port} is served by Nubo (pid {owner[0]})")
    who = f"pid {owner[0]}: {owner[1][:80]}" if owner else "another process"
    return CheckResult.warn(
        f"{host}:{port} is in use by {who}",
        f"stop that process, or run Nubo elsewhere: {setting}=127.0.0.1:{port + 1} make run",
    )


@check("web-port")
def web_port_free() -> CheckResult:
    address = _bind_address()
    if address is None:
        return CheckResult.ok(f"NUBO_BIND={os.environ['NUBO_BIND']} (not a TCP port)")
    host, port = address
    return port_free_or_ours(host, port, ours=("portal.wsgi", "manage.py runserver"), setting="NUBO_BIND")