"""Periodic jobs, run by `manage.py rqcron portal.cron` (the scheduler process of `make run`)."""
from rq import cron

cron.register("portal.jobs.reap_lost_jobs", queue_name="default", interval=60)
