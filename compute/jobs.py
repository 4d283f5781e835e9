"""RQ entry points of the compute app."""
from __future__ import annotations

import logging

from . import services

log = logging.getLogger(__name__)


def monitor_hosts() -> dict[str, int]:
    counts = services.monitor_hosts()
    log.info("host monitoring: %(up)d up, %(down)d not answering", counts)
    return counts
