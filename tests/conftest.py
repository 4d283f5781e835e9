"""Shared fixtures: a bootstrapped cloud, tenants, and a CloudStack API client that signs
requests with real API keys and talks to the real URL routing and middleware."""
from __future__ import annotations

import os
import secrets

import pytest

from tests.factories import ApiClient, Tenant, bootstrap_cloud, make_account, make_domain


def pytest_configure(config):
    """libvirtd is shared with every other test run and benchmark on this machine, and a fresh
    database numbers its VMs from 1: each run names its domains i-<account>-<VM>-T<random> (the
    servers and workers the tests start inherit it), so no run touches another's."""
    from django.conf import settings

    os.environ.setdefault("NUBO_INSTANCE_NAME", "T" + secrets.token_hex(3))
    settings.NUBO_INSTANCE_NAME = os.environ["NUBO_INSTANCE_NAME"]


@pytest.fixture(autouse=True)
def _eager_jobs(settings):
    """Async jobs run in-process right after the request's transaction commits."""
    settings.NUBO_JOBS_EAGER = True


@pytest.fixture
def threaded_jobs(monkeypatch):
    """Jobs run in threads, as an RQ worker runs them beside a live server (browser tests, with
    transactional_db); each closes its database connection; all are awaited at the end."""
    import threading

    from django.db import connection

    from portal import jobs

    workers: list[threading.Thread] = []

    def worker(job_uuid) -> None:
        def run():
            try:
                jobs.run(str(job_uuid))
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        workers.append(thread)
        thread.start()

    monkeypatch.setattr(jobs, "enqueue", worker)
    yield workers
    for thread in workers:
        thread.join(60)


@pytest.fixture(autouse=True)
def _fresh_settings_cache():
    """Each test rolls its database back; the process-local settings cache must forget too."""
    from portal.cache import invalidate_all

    invalidate_all()
    yield
    invalidate_all()


@pytest.fixture
def cloud(db):
    return bootstrap_cloud()


@pytest.fixture
def admin(cloud) -> Tenant:
    return cloud.admin


@pytest.fixture
def api(client, cloud, django_capture_on_commit_callbacks):
    """API client acting as the root admin (JSON). `api.as_(tenant)` switches caller."""
    return ApiClient(client, cloud.admin, django_capture_on_commit_callbacks)


@pytest.fixture
def tenant_a(cloud) -> Tenant:
    return make_account("tenant-a")


@pytest.fixture
def tenant_b(cloud) -> Tenant:
    return make_account("tenant-b")


@pytest.fixture
def domain_admin(cloud) -> Tenant:
    """A domain admin of ROOT/corp."""
    corp = make_domain("corp")
    return make_account("corp-admin", domain=corp, accounttype=2)
