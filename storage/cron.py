"""Periodic jobs of the storage app (loaded by portal.cron)."""
from rq import cron

from storage.jobs import recover_lost_downloads, refresh_pool_stats

cron.register(refresh_pool_stats, queue_name="default", interval=60, name="refresh_pool_stats")
cron.register(recover_lost_downloads, queue_name="default", interval=120, name="recover_lost_downloads")
