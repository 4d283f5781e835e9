"""API rate limiting per account (CloudStack's api.throttling.* settings), counted in Redis."""
from __future__ import annotations

import logging
import time

from django.conf import settings

from portal import config
from portal.errors import RateLimited

log = logging.getLogger(__name__)


def check(caller) -> None:
    if caller.account.is_root_admin or not config.get_value("api.throttling.enabled"):
        return
    import django_rq

    interval = config.get_value("api.throttling.interval")
    maximum = config.get_value("api.throttling.max")
    window = int(time.time() // interval)
    key = f"nubo:throttle:{caller.account_id}:{window}"
    try:
        connection = django_rq.get_connection(settings.NUBO_JOB_QUEUE)
        pipe = connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, interval + 1)
        count = pipe.execute()[0]
    except Exception:  # noqa: BLE001 - throttling must not take the API down with Redis
        log.warning("API throttling skipped: Redis did not answer")
        return
    if count > maximum:
        retry_ms = int(((window + 1) * interval - time.time()) * 1000) + 1
        raise RateLimited(f"The given user has reached his/her account api limit, please retry after {retry_ms} ms.")
