"""Async jobs (spec §6): queryAsyncJobResult, listAsyncJobs, failures and the reaper."""
from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import Account, Domain
from portal import jobs
from portal.api.registry import REGISTRY
from portal.models import AsyncJob, Event
from tests.api.helpers import as_list, finished_job, send, signed, uid
from tests.factories import make_account, make_domain

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
FINISHED_FIELDS = {"jobid", "accountid", "userid", "cmd", "jobstatus", "jobprocstatus", "jobresultcode",
                   "jobresulttype", "jobresult", "jobinstancetype", "jobinstanceid", "created", "completed"}
NEWER_FIELDS = {"account", "domainid", "domainpath", "managementserverid"}  # spec §6: newer servers


@pytest.fixture
def run(client, django_capture_on_commit_callbacks):
    def go(tenant, command, fmt="json", **params):
        return send(client, signed(tenant, command, fmt=fmt, **params), capture=django_capture_on_commit_callbacks)

    return go


def query(run, tenant, jobid, fmt="json"):
    answer = run(tenant, "queryAsyncJobResult", fmt=fmt, jobid=jobid)
    assert answer.status == 200, answer
    assert answer.name == "queryasyncjobresultresponse"
    return answer.inner


# -- success ---------------------------------------------------------------------------------------
def test_async_command_answers_a_jobid_only(run, admin, tenant_a):
    answer = run(admin, "deleteAccount", id=uid(tenant_a.account))
    assert answer.status == 200
    assert answer.name == "deleteaccountresponse"
    assert list(answer.inner) == ["jobid"]
    assert re.fullmatch(r"[0-9a-f-]{36}", answer.inner["jobid"])


def test_finished_job_fields(run, admin, tenant_a):
    jobid = run(admin, "deleteAccount", id=uid(tenant_a.account)).inner["jobid"]
    job = query(run, admin, jobid)
    assert FINISHED_FIELDS <= set(job), FINISHED_FIELDS - set(job)
    assert set(job) <= FINISHED_FIELDS | NEWER_FIELDS, set(job) - FINISHED_FIELDS - NEWER_FIELDS
    assert job["jobid"] == jobid
    assert job["jobstatus"] == 1 and type(job["jobstatus"]) is int
    assert job["jobresultcode"] == 0 and type(job["jobresultcode"]) is int
    assert type(job["jobprocstatus"]) is int
    assert job["jobresulttype"] == "object"
    assert job["jobresult"] == {"success": True}
    assert job["jobinstancetype"] == "Account"
    assert job["jobinstanceid"] == uid(tenant_a.account)
    assert job["accountid"] == uid(admin.account)
    assert job["userid"] == uid(admin.user)
    assert isinstance(job["cmd"], str) and job["cmd"]
    assert DATE_RE.match(job["created"]) and DATE_RE.match(job["completed"])
    assert not Account.objects.filter(pk=tenant_a.account.pk).exists()


def test_finished_job_with_an_object_result(run, admin, tenant_a):
    jobid = run(admin, "disableAccount", id=uid(tenant_a.account), lock="true").inner["jobid"]
    job = query(run, admin, jobid)
    assert job["jobstatus"] == 1
    assert list(job["jobresult"]) == ["account"]
    assert job["jobresult"]["account"]["id"] == uid(tenant_a.account)
    assert job["jobresult"]["account"]["state"] == "locked"


def test_finished_job_in_xml(run, admin, tenant_a):
    jobid = run(admin, "deleteAccount", fmt="xml", id=uid(tenant_a.account)).inner["jobid"]
    answer = run(admin, "queryAsyncJobResult", fmt="xml", jobid=jobid)
    assert "<jobresult><success>true</success></jobresult>" in answer.text
    assert answer.inner["jobstatus"] == "1"
    assert answer.inner["jobresultcode"] == "0"


def test_pending_job_fields(run, tenant_a):
    job = AsyncJob.objects.create(command="deleteAccount", params={"id": uid(tenant_a.account)}, user=tenant_a.user,
                                  account=tenant_a.account, instance_type="Account",
                                  instance_uuid=uid(tenant_a.account))
    body = query(run, tenant_a, uid(job))
    assert body["jobstatus"] == 0
    assert body["jobresultcode"] == 0
    assert "jobresult" not in body
    assert "jobresulttype" not in body
    assert "completed" not in body
    assert body["jobinstancetype"] == "Account"
    assert FINISHED_FIELDS - {"jobresult", "jobresulttype", "completed"} <= set(body)


# -- failures --------------------------------------------------------------------------------------
def test_failed_job(run, admin):
    errors_before = Event.objects.filter(level="ERROR", type="ACCOUNT.DELETE").count()
    jobid = run(admin, "deleteAccount", id=uid(admin.account)).inner["jobid"]  # the default admin account
    job = query(run, admin, jobid)
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 431
    assert job["jobresulttype"] == "object"
    assert set(job["jobresult"]) == {"errorcode", "errortext"}
    assert job["jobresult"]["errorcode"] == 431
    assert "cannot be deleted" in job["jobresult"]["errortext"]
    assert "completed" in job
    event = Event.objects.filter(level="ERROR", type="ACCOUNT.DELETE").order_by("-id")
    assert event.count() == errors_before + 1
    assert "cannot be deleted" in event.first().description
    assert Account.objects.filter(pk=admin.account.pk).exists()


def test_failed_job_with_the_resource_in_use_code(run, admin):
    corp = make_domain("corp")
    make_account("worker", domain=corp)
    job = query(run, admin, run(admin, "deleteDomain", id=uid(corp)).inner["jobid"])
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 536
    assert job["jobresult"]["errorcode"] == 536


def test_a_failing_job_leaves_nothing_half_done(run, admin, monkeypatch):
    corp = make_domain("corp")
    make_domain("dev", parent=corp)
    first = make_account("first", domain=corp)
    second = make_account("second", domain=corp)

    def explode(caller, account):
        if account.name == "second":
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "ACCOUNT_CLEANUP_HOOKS", [explode])
    job = query(run, admin, run(admin, "deleteDomain", id=uid(corp), cleanup="true").inner["jobid"])
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 530
    assert "disk on fire" not in job["jobresult"]["errortext"]
    assert Account.objects.filter(pk__in=[first.account.pk, second.account.pk]).count() == 2
    assert Domain.objects.filter(path__startswith="/corp/").count() == 2
    assert not Event.objects.filter(type="ACCOUNT.DELETE", level="INFO").exists()


def test_a_crash_is_reported_without_internals_to_a_user(run, tenant_a, monkeypatch):
    cls = REGISTRY["deleteAccount"]

    def crash(self, params):
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(cls, "execute", crash)
    job = AsyncJob.objects.create(command="deleteAccount", params={"id": uid(tenant_a.account)}, user=tenant_a.user,
                                  account=tenant_a.account)
    jobs.run(str(job.uuid))
    body = query(run, tenant_a, uid(job))
    assert body["jobstatus"] == 2
    assert body["jobresultcode"] == 530
    assert body["jobresult"] == {"errorcode": 530, "errortext": jobs.INTERNAL_ERROR_TEXT}


def test_a_job_runs_once(run, admin, tenant_a):
    jobid = run(admin, "deleteAccount", id=uid(tenant_a.account)).inner["jobid"]
    completed = AsyncJob.objects.get(uuid=jobid).completed
    jobs.run(jobid)  # a duplicate delivery
    assert AsyncJob.objects.get(uuid=jobid).completed == completed


# -- visibility --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_another_tenants_job_does_not_exist(run, tenant_a, tenant_b, fmt):
    job = finished_job(tenant_b)
    answer = run(tenant_a, "queryAsyncJobResult", fmt=fmt, jobid=uid(job))
    assert answer.status == 431
    assert "does not exist" in answer.errortext


def test_a_domain_admin_sees_jobs_of_its_subtree_only(run, domain_admin, tenant_a):
    inside = finished_job(make_account("dev-user", domain=domain_admin.domain))
    outside = finished_job(tenant_a)
    assert query(run, domain_admin, uid(inside))["jobstatus"] == 1
    assert run(domain_admin, "queryAsyncJobResult", jobid=uid(outside)).status == 431


def test_list_async_jobs(run, admin, tenant_a, tenant_b):
    mine = [finished_job(tenant_a), finished_job(tenant_a, "disableAccount")]
    finished_job(tenant_b)
    answer = run(tenant_a, "listAsyncJobs")
    assert answer.status == 200
    assert list(answer.inner) == ["count", "asyncjobs"]
    assert answer.inner["count"] == 2
    assert {j["jobid"] for j in answer.inner["asyncjobs"]} == {uid(j) for j in mine}
    for item in answer.inner["asyncjobs"]:
        assert FINISHED_FIELDS - {"jobinstancetype", "jobinstanceid"} <= set(item)
    everything = run(admin, "listAsyncJobs", listall="true")
    assert everything.inner["count"] == 3
    as_xml = run(tenant_a, "listAsyncJobs", fmt="xml")
    assert len(as_list(as_xml.inner["asyncjobs"])) == 2


def test_list_async_jobs_filters(run, tenant_a):
    old = finished_job(tenant_a)
    AsyncJob.objects.filter(pk=old.pk).update(created=timezone.now() - dt.timedelta(days=10))
    finished_job(tenant_a, "disableAccount")
    since = (timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    assert run(tenant_a, "listAsyncJobs", startdate=since).inner["count"] == 1
    assert run(tenant_a, "listAsyncJobs", keyword="disable").inner["count"] == 1


# -- the reaper (needs Redis) -----------------------------------------------------------------------
@pytest.fixture
def redis_queue():
    import django_rq
    from django.conf import settings
    from rq import Queue

    connection = django_rq.get_connection(settings.NUBO_JOB_QUEUE)
    connection.ping()  # Redis must run for this test (make test starts it)
    queue = Queue(f"nubo-test-reaper-{os.getpid()}", connection=connection)  # no worker listens here
    yield queue
    for job_id in queue.job_ids:
        job = queue.fetch_job(job_id)
        if job is not None:
            job.delete()
    queue.delete(delete_jobs=True)


def pending_job(tenant, *, minutes_old: float) -> AsyncJob:
    job = AsyncJob.objects.create(command="deleteAccount", params={"id": uid(tenant.account)}, user=tenant.user,
                                  account=tenant.account, instance_type="Account", instance_uuid=uid(tenant.account))
    AsyncJob.objects.filter(pk=job.pk).update(created=timezone.now() - dt.timedelta(minutes=minutes_old))
    return job


def test_reaper_fails_a_job_whose_rq_job_is_gone(run, tenant_a, redis_queue, monkeypatch):
    lost = pending_job(tenant_a, minutes_old=2)
    young = pending_job(tenant_a, minutes_old=0)  # may still be on its way to the queue
    released = []
    monkeypatch.setattr(REGISTRY["deleteAccount"], "on_lost", classmethod(lambda cls, job: released.append(job.pk)),
                        raising=False)
    assert jobs.reap_lost_jobs() == 1
    body = query(run, tenant_a, uid(lost))
    assert body["jobstatus"] == 2
    assert body["jobresultcode"] == 530
    assert body["jobresult"] == {"errorcode": 530, "errortext": jobs.LOST_TEXT}
    assert released == [lost.pk]
    assert Event.objects.filter(type="ACCOUNT.DELETE", level="ERROR").exists()
    assert AsyncJob.objects.get(pk=young.pk).status == 0
    assert jobs.reap_lost_jobs() == 0  # finished exactly once


def test_reaper_leaves_a_queued_job_alone(run, tenant_a, redis_queue):
    job = pending_job(tenant_a, minutes_old=5)
    redis_queue.enqueue("portal.jobs.run", str(job.uuid), job_id=f"asyncjob-{job.uuid}")
    assert jobs.reap_lost_jobs() == 0
    assert query(run, tenant_a, uid(job))["jobstatus"] == 0


def test_reaper_fails_a_job_whose_rq_job_failed(run, tenant_a, redis_queue):
    from rq.job import JobStatus as RQStatus

    job = pending_job(tenant_a, minutes_old=5)
    rq_job = redis_queue.enqueue("portal.jobs.run", str(job.uuid), job_id=f"asyncjob-{job.uuid}")
    rq_job.set_status(RQStatus.FAILED)
    assert jobs.reap_lost_jobs() == 1
    assert query(run, tenant_a, uid(job))["jobstatus"] == 2
