"""RQ entry points of the storage app."""
from __future__ import annotations

import logging

from . import services

log = logging.getLogger(__name__)


def refresh_pool_stats() -> dict[str, int]:
    """Periodic: capacity of every primary storage pool (from a host) and image store (statvfs)."""
    counts = services.refresh_pool_stats()
    log.info("storage capacity: %(pools)d pools read (%(pools_unreadable)d not), %(stores)d image stores read "
             "(%(stores_unreadable)d not)", counts)
    return counts
