"""Periodic jobs of the compute app (loaded by portal.cron)."""
from rq import cron

from compute.jobs import expunge_destroyed_vms, monitor_hosts, purge_console_tokens
from portal import config

cron.register(monitor_hosts, queue_name="default", interval=int(config.get_value("ping.interval")),
              name="monitor_hosts")
# every minute; each run expunges what has been Destroyed for longer than expunge.delay
cron.register(expunge_destroyed_vms, queue_name="default", interval=60, name="expunge_destroyed_vms")
cron.register(purge_console_tokens, queue_name="default", interval=3600, name="purge_console_tokens")
