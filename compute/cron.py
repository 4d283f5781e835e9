"""Periodic jobs of the compute app (loaded by portal.cron)."""
from rq import cron

from compute.jobs import monitor_hosts
from portal import config

cron.register(monitor_hosts, queue_name="default", interval=int(config.get_value("ping.interval")),
              name="monitor_hosts")
