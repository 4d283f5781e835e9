"""End to end: the process set `make run` starts (`honcho -f Procfile start`: web, worker,
scheduler) serves the UI login page, runs an async job through its worker, and stops every
process on Ctrl-C."""
from __future__ import annotations

import signal
import sys
import time

import pytest
import requests
from cs import CloudStack

from tests.factories import bootstrap_cloud, make_account

from .procs import BIN, REPO, Proc, Stack, free_port, pid_alive, port_is_free, wait_http

pytestmark = [pytest.mark.e2e]

PROCFILE = REPO / "Procfile"


def _bind() -> str:
    text = PROCFILE.read_text()
    if "NUBO_BIND" in text:
        return f"127.0.0.1:{free_port()}"
    if not port_is_free(8080):
        pytest.skip("the Procfile's web address is fixed (no NUBO_BIND) and 127.0.0.1:8080 is taken")
    return "127.0.0.1:8080"


@pytest.fixture
def stack(backing, transactional_db):
    if not PROCFILE.exists():
        pytest.skip("no Procfile yet (make run's process list)")
    bind = _bind()
    env_file = backing.work_dir / "empty.env"
    env_file.write_text("")  # a developer's .env must not point the stack elsewhere
    env = {**backing.env, "NUBO_BIND": bind}
    honcho = [str(BIN / "honcho")] if (BIN / "honcho").exists() else [sys.executable, "-m", "honcho"]
    proc = Proc("honcho", [*honcho, "-f", str(PROCFILE), "-e", str(env_file), "--no-colour", "start"],
                env=env, log_dir=backing.work_dir, cwd=REPO)
    running = Stack(base_url=f"http://{bind}", procs=[proc])
    try:
        yield running
    finally:
        proc.stop()


def test_procfile_stack_serves_runs_jobs_and_stops(stack):
    cloud = bootstrap_cloud()
    victim = make_account("stack-victim")
    honcho = stack.procs[0]

    page = wait_http(f"{stack.base_url}/client/login", stack.procs, timeout=40)
    assert page.status_code == 200 and "<form" in page.text.lower()

    admin = CloudStack(endpoint=stack.api_url, key=cloud.admin.api_key, secret=cloud.admin.secret, timeout=15,
                       poll_interval=0.1, job_timeout=30, fetch_result=True)
    assert admin.listCapabilities()["capability"]["cloudstackversion"]
    assert admin.deleteAccount(id=str(victim.account.uuid)) == {"success": True}
    assert admin.listAccounts(name="stack-victim", listall=True) == {}

    # All three processes are still up (honcho stops everything when one of them exits).
    children = honcho.tree()[1:]
    stack.check_alive()
    log = honcho.log_path.read_text(errors="replace")
    for name in ("web", "worker", "scheduler"):
        assert f"{name}.1 started (pid=" in log, log

    # Ctrl-C: honcho gets SIGINT and stops every process it started.
    started = time.monotonic()
    killed = honcho.stop(signal.SIGINT, timeout=20)
    assert not killed, f"processes still running {time.monotonic() - started:.1f}s after Ctrl-C: {killed}\n{stack.logs()}"
    assert not any(pid_alive(pid) for pid in children)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{stack.base_url}/client/login", timeout=2)
