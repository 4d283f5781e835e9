"""Fixtures for tests that run the real server processes against the test database.

The processes share the test database (data the test commits with `transactional_db` is
visible to them), a private Redis, and SECRET_KEY (API secrets are encrypted with a key
derived from it). Every process is stopped at the end, whatever happened."""
from __future__ import annotations

import sys

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from .procs import (BIN, Backing, PrivateRedis, Proc, Stack, database_url, free_port, subprocess_env, wait_http,
                    wait_tcp)


@pytest.fixture(scope="module")
def backing(django_db_setup, tmp_path_factory):
    url = database_url(connection.settings_dict)
    if url is None:
        pytest.skip("end-to-end tests need a database other processes can open (PostgreSQL or a SQLite file); "
                    "the test database is in-memory SQLite")
    work_dir = tmp_path_factory.mktemp("e2e")
    redis = PrivateRedis(work_dir)
    try:
        env = subprocess_env(database_url=url, redis_url=redis.url, var_dir=work_dir / "var",
                             secret_key=settings.SECRET_KEY, NUBO_LOG_LEVEL="INFO")
        # Access changes this process makes (accounts, keys, role rules) are announced where the
        # servers read the generation, so they hold on the servers' next request too.
        with override_settings(REDIS_URL=redis.url):
            yield Backing(env=env, work_dir=work_dir, redis_url=redis.url)
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def server(backing):
    """gunicorn serving portal.wsgi and a long-running RQ worker, like `make run` without honcho."""
    port = free_port()
    stack = Stack(base_url=f"http://127.0.0.1:{port}")
    try:
        stack.procs.append(Proc("web", [str(BIN / "gunicorn"), "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                        "--workers", "1", "--threads", "4", "--timeout", "60"],
                                env=backing.env, log_dir=backing.work_dir))
        stack.procs.append(Proc("worker", [sys.executable, "manage.py", "rqworker", "default"],
                                env=backing.env, log_dir=backing.work_dir))
        wait_http(f"{stack.base_url}/client/login", stack.procs)
        yield stack
    finally:
        for proc in reversed(stack.procs):
            proc.stop()


@pytest.fixture(scope="module")
def console_proxy(backing):
    """`manage.py consoleproxy` (as `make run` starts it) on a free port."""
    port = free_port()
    stack = Stack(base_url=f"ws://127.0.0.1:{port}")
    try:
        stack.procs.append(Proc("consoleproxy", [sys.executable, "manage.py", "consoleproxy", "--bind",
                                                 f"127.0.0.1:{port}"], env=backing.env, log_dir=backing.work_dir))
        wait_tcp(port, stack.procs)
        stack.port = port
        yield stack
    finally:
        for proc in stack.procs:
            proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing end-to-end test shows the server processes' logs."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name in ("server", "stack", "console_proxy"):
            stack = getattr(item, "funcargs", {}).get(name)
            if isinstance(stack, Stack):
                report.sections.append((f"{name} process logs", stack.logs()))
