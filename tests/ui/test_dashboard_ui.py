"""The dashboard: for the root admin, per-zone capacity bars (allocated and used against the total,
with units), VMs and hosts by state, open alerts, running jobs and recent events; for tenants,
their own VMs and their usage against their resource limits — nothing of other accounts and no
infrastructure. A constant number of SQL queries whatever the number of VMs and hosts."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import limits
from compute import services as compute_services
from compute.choices import AlertType
from compute.models import Host, VirtualMachine
from portal.models import AsyncJob

from .conftest import logged_in
from .test_instances_ui import build_sim, deploy, text, words


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


def state_count(body: str, state: str) -> int:
    match = re.search(rf'nubo-vm-{state.lower()}">{state}</span> <strong>(\d+)</strong>', body)
    return int(match.group(1)) if match else -1


def test_root_admin_sees_capacity_states_alerts_and_jobs(sim, tenant_a, django_capture_on_commit_callbacks):
    deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    compute_services.raise_alert(AlertType.HOST, "ALERT.HOST", "Host h9 is Alert: no answer")
    AsyncJob.objects.create(command="deployVirtualMachine", user=tenant_a.user, account=tenant_a.account, progress=30,
                            progress_text="Copying the template")
    body = text(logged_in(sim.admin).get("/client/"))
    page = words(logged_in(sim.admin).get("/client/"))
    assert "Capacity by zone" in page and "Zone z1" in page
    for name in ("CPU", "Memory", "Primary storage", "Secondary storage", "Guest IPs"):
        assert f"<h3>{name}</h3>" in body, name
    host = Host.objects.get(pk=sim.host.pk)
    mhz = host.cpu_number * host.cpu_speed
    assert re.search(r"500 MHz of [\d.]+ GHz allocated", page) or f"500 MHz of {mhz} MHz allocated" in page
    assert "128.0 MiB of" in page and "allocated" in page  # the VM's memory, allocated against the host's
    assert "1 of 10 addresses allocated" in page  # guest IPs of the range 10.1.0.30-39
    assert state_count(body, "Running") == 1 and state_count(body, "Stopped") == 0
    assert re.search(r'nubo-state-up">Up</span> <strong>1</strong>', body)
    assert "Host h9 is Alert: no answer" in page and "Open alerts (1)" in page
    assert "Copying the template" in page
    assert "VM.CREATE" in page or "VM.START" in page  # recent events


def test_tenant_sees_its_usage_against_its_limits(sim, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "a-1")
    deploy(tenant_b.user, sim, django_capture_on_commit_callbacks, "b-1")
    deploy(tenant_b.user, sim, django_capture_on_commit_callbacks, "b-2")
    limits.update_limit(sim.admin, rtype="user_vm", max=4, account=tenant_a.account)
    body = text(logged_in(tenant_a.user).get("/client/"))
    page = words(logged_in(tenant_a.user).get("/client/"))
    assert "Usage against your limits" in page
    assert "VMs 1 of 4" in page and "vCPUs 1 of 40" in page and "Memory 128.0 MiB of 40.0 GiB" in page
    assert 'aria-label="VMs: 1 of 4"' in body
    assert state_count(body, "Running") == 1  # its own VM only
    assert "Capacity by zone" not in page and "Hosts" not in page and "Open alerts" not in page
    assert "b-1" not in page and "tenant-b" not in page


def test_domain_admin_sees_counts_and_its_own_usage(sim, domain_admin):
    page = words(logged_in(domain_admin.user).get("/client/"))
    assert "Usage against your limits" in page and "Capacity by zone" not in page and "Open alerts" not in page
    assert "VMs 0 of 20" in page


def bulk(sim, owner, hosts: int, vms: int) -> None:
    """Rows as the bench makes them: Simulator hosts and Running VMs on them."""
    made = Host.objects.bulk_create([
        Host(name=f"bulk-{n}", zone=sim.zone, pod=sim.pod, cluster=sim.cluster, url=f"http://sim/bulk/{n}",
             hypervisor="Simulator", state="Up", cpu_number=8, cpu_speed=2000, memory_total=16 << 30)
        for n in range(hosts)])
    VirtualMachine.objects.bulk_create([
        VirtualMachine(name=f"bulk-{n}", account=owner, zone=sim.zone, pod=sim.pod, host=made[n % hosts],
                       template=sim.template, service_offering=sim.offering, state="Running" if n % 3 else "Stopped",
                       cpu_number=1, cpu_speed=500, memory=128)
        for n in range(vms)])


def queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/client/").status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_constant_number_of_queries(sim, tenant_a, django_capture_on_commit_callbacks):
    deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    admin, tenant = logged_in(sim.admin), logged_in(tenant_a.user)
    queries(admin), queries(tenant)  # per-process caches filled
    few_admin, few_tenant = queries(admin), queries(tenant)
    bulk(sim, tenant_a.account, hosts=40, vms=120)
    many_admin, many_tenant = queries(admin), queries(tenant)
    assert len(many_admin) == len(few_admin), "\n".join(many_admin)
    assert len(many_tenant) == len(few_tenant), "\n".join(many_tenant)
    assert len(few_admin) <= 24 and len(few_tenant) <= 17  # the tenant's: one count per counted limit type
    body = text(admin.get("/client/"))
    assert state_count(body, "Running") == 81 and state_count(body, "Stopped") == 40
    assert re.search(r'nubo-state-up">Up</span> <strong>41</strong>', body)
