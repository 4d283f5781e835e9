"""RQ entry points of the compute app."""
from __future__ import annotations

import logging

from . import services

log = logging.getLogger(__name__)


def monitor_hosts() -> dict[str, int]:
    counts = services.monitor_hosts()
    log.info("host monitoring: %(up)d up, %(down)d not answering", counts)
    return counts


def expunge_destroyed_vms() -> int:
    """Periodic: expunge the VMs destroyed more than expunge.delay seconds ago."""
    from accounts.models import User

    from .instances import expunge_due

    def root_admin():
        return User.objects.filter(account__type=1, account__domain__parent__isnull=True).order_by("id").first()

    done = expunge_due(root_admin)
    if done:
        log.info("expunged %d destroyed VMs", done)
    return done


def purge_console_tokens() -> int:
    """Periodic: delete console tokens that expired unused a day ago (used ones stay on record)."""
    from .console import purge_unused

    return purge_unused()
