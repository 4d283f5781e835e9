"""The one async job runner. The AsyncJob row is the source of truth: `submit` creates it inside
the caller's transaction and enqueues it on commit; an RQ worker calls `run`, which executes the
command and finishes the row (status, result code, result); `reap_lost_jobs` finishes jobs whose
worker died and lets the command release what it held."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import config
from .api import dispatch
from .api.registry import Command, get_command
from .errors import ApiError
from .models import AsyncJob, EventLevel, JobStatus

log = logging.getLogger(__name__)

INTERNAL_ERROR_TEXT = "Internal error executing command, please contact your system administrator"


def submit(command_cls: type[Command], data: dict[str, Any], caller, *, instance: Any = None) -> AsyncJob:
    job = AsyncJob.objects.create(
        command=command_cls.name,
        params=data,
        user=caller if caller.pk else None,
        account=caller.account,
        instance_type=command_cls.instance_type if instance is not None else "",
        instance_uuid=str(getattr(instance, "uuid", "")) if instance is not None else "",
    )
    transaction.on_commit(lambda: enqueue(job.uuid))
    return job


def enqueue(job_uuid) -> None:
    if settings.NUBO_JOBS_EAGER:
        run(str(job_uuid))
        return
    import django_rq

    queue = django_rq.get_queue(settings.NUBO_JOB_QUEUE)
    queue.enqueue("portal.jobs.run", str(job_uuid), job_id=f"asyncjob-{job_uuid}", job_timeout=6 * 3600,
                  result_ttl=3600, failure_ttl=7 * 86400)


def enqueue_task(func_path: str, *args: Any, task_id: str, timeout: int = 6 * 3600) -> None:
    """Background work that is not an API job (a template download, a copy to primary storage):
    the caller's rows hold its state; RQ only runs it. Call inside transaction.on_commit, so the
    worker sees the rows. Eager (tests, NUBO_JOBS_EAGER) runs it here and now. An RQ job id that is
    already queued or running is not queued twice."""
    if settings.NUBO_JOBS_EAGER:
        from django.utils.module_loading import import_string

        import_string(func_path)(*args)
        return
    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus as RQStatus

    queue = django_rq.get_queue(settings.NUBO_JOB_QUEUE)
    try:
        if Job.fetch(task_id, connection=queue.connection).get_status() in (RQStatus.QUEUED, RQStatus.STARTED,
                                                                           RQStatus.DEFERRED, RQStatus.SCHEDULED):
            return
    except NoSuchJobError:
        pass
    queue.enqueue(func_path, *args, job_id=task_id, job_timeout=timeout, result_ttl=3600, failure_ttl=7 * 86400)


def set_progress(job: AsyncJob, percent: int, text: str = "") -> None:
    AsyncJob.objects.filter(pk=job.pk).update(progress=int(percent), progress_text=text[:255])


def _finish(job: AsyncJob, status: int, code: int, result: dict[str, Any] | None) -> bool:
    """Finish a pending job exactly once (a conditional update, so a reaper and a worker can't
    both finish it)."""
    changes = dict(status=status, result_code=code, result_type="object" if result is not None else "",
                   result=result, completed=timezone.now())
    if status == JobStatus.SUCCEEDED:
        changes["progress"] = 100  # a failed job keeps the progress it had reached
    return bool(AsyncJob.objects.filter(pk=job.pk, status=JobStatus.PENDING).update(**changes))


def _record_failure(command_cls: type[Command] | None, job: AsyncJob, caller, text: str) -> None:
    if command_cls is None or not command_cls.event or caller is None:
        return
    from .events import record

    record(caller, command_cls.event, f"Error while running {command_cls.name}: {text}",
           level=EventLevel.ERROR, resource_type=job.instance_type)


def run(job_uuid: str) -> None:
    """RQ entry point: execute one job."""
    job = AsyncJob.objects.select_related("user__account__domain", "user__account__role").filter(uuid=job_uuid).first()
    if job is None or job.status != JobStatus.PENDING:
        return
    AsyncJob.objects.filter(pk=job.pk).update(started=timezone.now())
    command_cls = get_command(job.command)
    caller = job.user
    try:
        if command_cls is None or caller is None:
            raise ApiError("The job's command or user no longer exists")
        params = dispatch.validate(command_cls, job.params, caller)
        command = command_cls(caller, job=job)
        if command_cls.is_async_create() and job.instance_uuid:
            params["_instance_uuid"] = job.instance_uuid
        result = command.execute(params)
        body = dispatch.job_result(command_cls, result, caller, params)
    except ApiError as exc:
        log.info("job %s (%s) failed: %s", job.uuid, job.command, exc.message)
        _finish(job, JobStatus.FAILED, exc.errorcode, {"errorcode": exc.errorcode, "errortext": exc.message})
        _record_failure(command_cls, job, caller, exc.message)
        return
    except Exception:  # noqa: BLE001 - a job must always finish
        log.exception("job %s (%s) crashed", job.uuid, job.command)
        admin = caller is not None and caller.account.is_root_admin
        text = "Internal error: see the management server log for details" if admin else INTERNAL_ERROR_TEXT
        _finish(job, JobStatus.FAILED, 530, {"errorcode": 530, "errortext": text})
        _record_failure(command_cls, job, caller, text)
        return
    _finish(job, JobStatus.SUCCEEDED, 0, body)


LOST_TEXT = "The job was lost because the worker running it stopped; what it had allocated was released"


def reap_lost_jobs() -> int:
    """Fail pending jobs whose RQ job is gone or dead (worker killed), and let their command
    release what the job held (Command.on_lost). Returns how many were reaped."""
    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus as RQStatus

    connection = django_rq.get_connection(settings.NUBO_JOB_QUEUE)
    threshold = timezone.now() - timezone.timedelta(minutes=1)
    stale = timezone.now() - timezone.timedelta(minutes=config.get_value("job.cancel.threshold.minutes"))
    reaped = 0
    for job in AsyncJob.objects.filter(status=JobStatus.PENDING, created__lt=threshold).select_related("user__account"):
        try:
            state = Job.fetch(f"asyncjob-{job.uuid}", connection=connection).get_status()
        except NoSuchJobError:
            state = None
        dead = state in (None, RQStatus.FAILED, RQStatus.STOPPED, RQStatus.CANCELED, RQStatus.FINISHED)
        if not dead and not (job.started and job.started < stale and state != RQStatus.STARTED):
            continue
        if _finish(job, JobStatus.FAILED, 530, {"errorcode": 530, "errortext": LOST_TEXT}):
            reaped += 1
            command_cls = get_command(job.command)
            if command_cls is not None:
                try:
                    command_cls.on_lost(job)
                except Exception:  # noqa: BLE001
                    log.exception("cleanup after lost job %s failed", job.uuid)
            _record_failure(command_cls, job, job.user, LOST_TEXT)
    return reaped
