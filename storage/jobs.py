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


def download_template(row_pk: int) -> None:
    """Download one template or ISO into one zone's secondary storage (storage.images.services)."""
    from .images.services import run_download

    run_download(row_pk)


def prepare_template(template_pk: int, pool_pk: int) -> None:
    """Copy a template to a primary storage pool (storage.images.primary)."""
    from .images.primary import run_prepare

    run_prepare(template_pk, pool_pk)


def recover_lost_downloads() -> dict[str, int]:
    """Periodic: restart (or fail) downloads whose worker died."""
    from .images.services import recover_lost_downloads as recover

    counts = recover()
    if any(counts.values()):
        log.info("template downloads: %(restarted)d restarted, %(failed)d failed after their worker stopped", counts)
    return counts
