"""The events and async jobs pages (issue 7): searched, filtered by chips, sorted by their column
headers, paginated on the server, scoped with visible_to — another tenant's rows never listed,
whatever the query string says — and a constant number of SQL queries however many rows there
are. A filter value or sort key the page does not know is ignored (and named), never an error
page. A job links to the page of the object it acts on, when the caller may open it."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal import events
from portal.models import AsyncJob, Event, EventLevel, JobStatus

from .conftest import logged_in
from .test_instances_ui import build_sim, deploy, text, words


def queries(client, url: str) -> int:
    """The SQL queries of a GET of `url` (after one GET filling the per-process caches)."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def ignored_note(response) -> str:
    match = re.search(r'<p class="nubo-filter-note" role="status">([^<]*)</p>', text(response))
    return match.group(1).strip() if match else ""


# -- events ---------------------------------------------------------------------------------------
def event_types(response) -> list[str]:
    return re.findall(r"<td><code>([A-Z][A-Z0-9_.]*)</code></td>", text(response))


@pytest.fixture
def some_events(tenant_a, tenant_b):
    """tenant-a: a VM.CREATE (now), a TEMPLATE.DELETE warning (two hours ago), an ISO.ATTACH error
    (three days ago); tenant-b: a VM.CREATE of its own."""
    Event.objects.all().delete()
    events.record(tenant_a.user, "VM.CREATE", "VM alpha created")
    old = events.record(tenant_a.user, "TEMPLATE.DELETE", "Template beta deleted", level=EventLevel.WARN)
    older = events.record(tenant_a.user, "ISO.ATTACH", "ISO gamma attached to alpha", level=EventLevel.ERROR)
    events.record(tenant_b.user, "VM.CREATE", "VM secret-b created")
    now = timezone.now()
    Event.objects.filter(pk=old.pk).update(created=now - dt.timedelta(hours=2))
    Event.objects.filter(pk=older.pk).update(created=now - dt.timedelta(days=3))


def test_events_are_searched_filtered_and_sorted(some_events, user_ui):
    assert event_types(user_ui.get("/client/events")) == ["VM.CREATE", "TEMPLATE.DELETE", "ISO.ATTACH"]
    # search: description, type, user and account
    assert event_types(user_ui.get("/client/events?q=gamma")) == ["ISO.ATTACH"]
    assert event_types(user_ui.get("/client/events?q=template.del")) == ["TEMPLATE.DELETE"]
    assert len(event_types(user_ui.get("/client/events?q=tenant-a"))) == 3
    assert "No event matches." in words(user_ui.get("/client/events?q=nothing-like-this"))
    # level, type prefix, age
    assert event_types(user_ui.get("/client/events?level=ERROR")) == ["ISO.ATTACH"]
    assert event_types(user_ui.get("/client/events?level=warn")) == ["TEMPLATE.DELETE"]
    assert event_types(user_ui.get("/client/events?type=VM.")) == ["VM.CREATE"]
    assert event_types(user_ui.get("/client/events?type=iso")) == ["ISO.ATTACH"]  # any prefix, any case
    assert event_types(user_ui.get("/client/events?since=hour")) == ["VM.CREATE"]
    assert event_types(user_ui.get("/client/events?since=day")) == ["VM.CREATE", "TEMPLATE.DELETE"]
    assert len(event_types(user_ui.get("/client/events?since=week"))) == 3
    assert event_types(user_ui.get("/client/events?since=week&type=TEMPLATE.&q=beta")) == ["TEMPLATE.DELETE"]
    # sortable headers
    assert event_types(user_ui.get("/client/events?sort=type")) == ["ISO.ATTACH", "TEMPLATE.DELETE", "VM.CREATE"]
    assert event_types(user_ui.get("/client/events?sort=-level")) == ["TEMPLATE.DELETE", "VM.CREATE", "ISO.ATTACH"]
    assert event_types(user_ui.get("/client/events?sort=created")) == ["ISO.ATTACH", "TEMPLATE.DELETE", "VM.CREATE"]
    body = text(user_ui.get("/client/events?level=ERROR&sort=type"))
    assert 'aria-sort="ascending"' in body and 'href="?level=ERROR&amp;sort=-type"' in body
    assert 'href="?sort=type&amp;level=WARN" aria-current="true"' not in body
    assert '<a href="?sort=type&amp;level=ERROR" aria-current="true">Error</a>' in body


@pytest.mark.parametrize("query, note", [
    ("level=LOUD", "“LOUD” is not a value of level: ignored."),
    ("type=%3Cscript%3E", "is not a value of type: ignored."),
    ("since=century", "“century” is not a value of since: ignored."),
])
def test_unknown_event_filters_are_ignored_and_named(some_events, user_ui, query, note):
    response = user_ui.get(f"/client/events?{query}&sort=nonsense&page=abc")
    assert response.status_code == 200
    assert note in ignored_note(response)
    assert event_types(response) == ["VM.CREATE", "TEMPLATE.DELETE", "ISO.ATTACH"]
    assert "<script>" not in text(response)


def test_another_tenants_events_are_never_listed(some_events, user_ui, admin_ui, domain_admin_ui):
    for url in ("/client/events?q=secret-b", "/client/events?q=tenant-b", "/client/events?type=VM.&sort=account",
                "/client/events?level=INFO&since=hour"):
        assert "VM secret-b created" not in words(user_ui.get(url)), url
        assert "VM secret-b created" not in words(domain_admin_ui.get(url)), url  # ROOT/corp: neither tenant's
    assert "VM secret-b created" in words(admin_ui.get("/client/events?q=secret-b"))


@pytest.mark.parametrize("who", ["admin_ui", "user_ui"])
def test_the_events_page_costs_the_same_queries_for_any_number_of_rows(request, tenant_a, who):
    client = request.getfixturevalue(who)
    url = "/client/events?type=USER.&since=day&q=tenant&sort=-type"
    events.record(tenant_a.user, "USER.UPDATE", "User tenant-a updated")
    few = queries(client, url)
    for i in range(60):
        events.record(tenant_a.user, "USER.UPDATE", f"User tenant-a updated ({i})")
    assert queries(client, url) == few
    assert "Page 1 of" in text(client.get(url))


# -- async jobs -----------------------------------------------------------------------------------
def job_commands(response) -> list[str]:
    return re.findall(r"<td><code>[0-9a-f-]{36}</code></td>\s*<td>(\w+)</td>", text(response))


def make_job(tenant, command: str, status: int = JobStatus.PENDING, **fields) -> AsyncJob:
    if status == JobStatus.FAILED:
        fields.setdefault("result", {"errorcode": 530, "errortext": f"{command} could not finish: disk full"})
    return AsyncJob.objects.create(command=command, user=tenant.user, account=tenant.account, status=status,
                                   completed=timezone.now() if status != JobStatus.PENDING else None, **fields)


@pytest.fixture
def some_jobs(tenant_a, tenant_b):
    make_job(tenant_a, "deployVirtualMachine")
    make_job(tenant_a, "copyTemplate", JobStatus.SUCCEEDED)
    make_job(tenant_a, "stopVirtualMachine", JobStatus.FAILED)
    make_job(tenant_b, "destroyVirtualMachine", JobStatus.FAILED)


def test_jobs_are_filtered_by_status_and_command_searched_and_sorted(some_jobs, user_ui):
    assert job_commands(user_ui.get("/client/jobs")) == ["stopVirtualMachine", "copyTemplate", "deployVirtualMachine"]
    assert job_commands(user_ui.get("/client/jobs?status=pending")) == ["deployVirtualMachine"]
    assert job_commands(user_ui.get("/client/jobs?status=succeeded")) == ["copyTemplate"]
    failed = user_ui.get("/client/jobs?status=failed")
    assert job_commands(failed) == ["stopVirtualMachine"]
    assert "stopVirtualMachine could not finish: disk full" in words(failed)  # the failed job's error text
    body = text(user_ui.get("/client/jobs"))
    # the command chips are the caller's own jobs' commands
    assert ">copyTemplate</a>" in body and ">destroyVirtualMachine</a>" not in body
    assert job_commands(user_ui.get("/client/jobs?command=copyTemplate")) == ["copyTemplate"]
    assert job_commands(user_ui.get("/client/jobs?command=attachIso")) == []  # a command name, no job of it
    assert job_commands(user_ui.get("/client/jobs?q=virtualmachine&sort=command")) == [
        "deployVirtualMachine", "stopVirtualMachine"]
    assert job_commands(user_ui.get("/client/jobs?sort=-status")) == [
        "stopVirtualMachine", "copyTemplate", "deployVirtualMachine"]
    job = AsyncJob.objects.get(command="copyTemplate")
    assert job_commands(user_ui.get(f"/client/jobs?q={job.uuid}")) == ["copyTemplate"]
    for query in ("status=lost", "command=drop%20table", "sort=-nothing&page=-3"):
        response = user_ui.get(f"/client/jobs?{query}")
        assert response.status_code == 200, query
        assert len(job_commands(response)) == 3, query
    assert "“lost” is not a value of status: ignored." in ignored_note(user_ui.get("/client/jobs?status=lost"))


def test_another_tenants_jobs_are_never_listed(some_jobs, user_ui, admin_ui):
    for url in ("/client/jobs", "/client/jobs?command=destroyVirtualMachine", "/client/jobs?q=tenant-b",
                "/client/jobs?status=failed&sort=user"):
        assert "destroyVirtualMachine" not in job_commands(user_ui.get(url)), url
    assert "destroyVirtualMachine" in job_commands(admin_ui.get("/client/jobs?q=tenant-b"))


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


def test_a_job_links_to_the_page_of_its_object(sim, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    theirs = deploy(tenant_b.user, sim, django_capture_on_commit_callbacks, "theirs-1")
    make_job(tenant_a, "copyTemplate", JobStatus.SUCCEEDED, instance_type="Template",
             instance_uuid=str(sim.template.uuid))
    make_job(tenant_a, "deleteAccount", JobStatus.SUCCEEDED, instance_type="Account",
             instance_uuid=str(tenant_a.account.uuid))
    make_job(tenant_a, "stopVirtualMachine", JobStatus.FAILED, instance_type="VirtualMachine",
             instance_uuid="00000000-0000-4000-8000-000000000000")  # gone
    client = logged_in(tenant_a.user)
    body = text(client.get("/client/jobs"))
    assert f'<a href="/client/instances/{vm.uuid}">web-1</a>' in body  # the deploy job's VM
    assert f'<a href="/client/templates/{sim.template.uuid}">tiny</a>' in body
    # a user has no account pages; an object that is gone is named, not linked
    assert f'/client/accounts/{tenant_a.account.uuid}' not in body and "Account <small" in body
    assert "00000000-0000-4000-8000-000000000000" in body and 'href="/client/instances/00000000' not in body
    assert str(theirs.uuid) not in body and "theirs-1" not in body
    admin_body = text(logged_in(sim.admin).get("/client/jobs"))
    assert f'<a href="/client/accounts/{tenant_a.account.uuid}">tenant-a</a>' in admin_body
    assert f'<a href="/client/instances/{theirs.uuid}">theirs-1</a>' in admin_body
    # sorted by object: grouped by type
    assert job_commands(client.get("/client/jobs?sort=object&status=succeeded")) == [
        "deleteAccount", "copyTemplate", "deployVirtualMachine"]


def test_the_jobs_page_costs_the_same_queries_for_any_number_of_rows(sim, tenant_a, admin,
                                                                     django_capture_on_commit_callbacks):
    vm = deploy(tenant_a.user, sim, django_capture_on_commit_callbacks, "web-1")
    kinds = [("VirtualMachine", vm.uuid), ("Template", sim.template.uuid), ("Account", tenant_a.account.uuid),
             ("Zone", sim.zone.uuid), ("Host", sim.host.uuid), ("Iso", sim.template.uuid), ("Domain", "x")]
    for who in (logged_in(tenant_a.user), logged_in(admin.user)):
        few = queries(who, "/client/jobs?sort=object")
        for i in range(40):
            instance_type, uuid = kinds[i % len(kinds)]
            make_job(tenant_a, f"command{i % 5}", i % 3, instance_type=instance_type, instance_uuid=str(uuid))
        # at most one more query per object type named on the page, never one per row
        assert queries(who, "/client/jobs?sort=object") <= few + len(kinds)
        make_job(tenant_a, "more", JobStatus.SUCCEEDED, instance_type="VirtualMachine", instance_uuid=str(vm.uuid))
        one = queries(who, "/client/jobs?command=more")
        for i in range(40):
            make_job(tenant_a, "more", JobStatus.SUCCEEDED, instance_type="VirtualMachine", instance_uuid=str(vm.uuid))
        assert queries(who, "/client/jobs?command=more") == one
        AsyncJob.objects.filter(command__startswith="command").delete()
        AsyncJob.objects.filter(command="more").delete()


@pytest.mark.parametrize("url", ["/client/events", "/client/jobs", "/client/volumes", "/client/alerts",
                                 "/client/offerings/service", "/client/ssh-keypairs", "/client/roles",
                                 "/client/settings", "/client/networks"])
def test_a_nul_or_control_character_in_the_query_string_is_no_error(admin_ui, url):
    """PostgreSQL refuses a NUL in any text: search terms (every page searching with
    portal.ui.search_query) and filter values lose their control characters."""
    filters = ("type=VM.%00", "command=x%00", "level=%00INFO", "state=%00", "zone=%00")
    for query in ("q=a%00b", "q=%01%7f") + (filters if url in FILTERED else ()):
        assert admin_ui.get(f"{url}?{query}").status_code == 200, query


FILTERED = {"/client/events", "/client/jobs", "/client/volumes", "/client/alerts"}  # portal.ui.filter_rows
