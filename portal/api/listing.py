"""Filters shared by list commands."""
from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet


def keyword_filter(qs: QuerySet, keyword: str | None, *fields: str) -> QuerySet:
    """CloudStack's `keyword`: a case-insensitive substring of any of `fields`."""
    if not keyword:
        return qs
    q = Q()
    for field in fields:
        q |= Q(**{f"{field}__icontains": keyword})
    return qs.filter(q)


def filter_by(qs: QuerySet, params: dict, **lookups: str) -> QuerySet:
    """Narrow `qs` by each given parameter: filter_by(qs, params, id="uuid", zoneid="zone",
    state="state__iexact"). Parameters that are absent, None or empty are skipped."""
    for param, lookup in lookups.items():
        value = params.get(param)
        if value is not None and value != "":
            qs = qs.filter(**{lookup: value})
    return qs


def inclusive_end(end: dt.datetime | None) -> dt.datetime | None:
    """An end date given as a day (yyyy-MM-dd, so midnight) includes that whole day, as in
    CloudStack's listEvents and archive/delete of events and alerts."""
    if end is not None and end.hour == end.minute == end.second == 0:
        return end.replace(hour=23, minute=59, second=59)
    return end
