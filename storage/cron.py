"""Periodic jobs of the storage app (loaded by portal.cron)."""
from rq import cron

from storage.jobs import refresh_pool_stats

cron.register(refresh_pool_stats, queue_name="default", interval=60, name="refresh_pool_stats")
