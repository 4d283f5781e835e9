"""Periodic jobs, run by `manage.py rqcron portal.cron` (the scheduler process of `make run`).
Each app lists its own in `<app>/cron.py` (found like admin.py modules)."""
from django.utils.module_loading import autodiscover_modules
from rq import cron

from portal.jobs import reap_lost_jobs

cron.register(reap_lost_jobs, queue_name="default", interval=60, name="reap_lost_jobs")
autodiscover_modules("cron")
