"""Filters shared by list commands."""
from __future__ import annotations

from django.db.models import Q, QuerySet


def keyword_filter(qs: QuerySet, keyword: str | None, *fields: str) -> QuerySet:
    """CloudStack's `keyword`: a case-insensitive substring of any of `fields`."""
    if not keyword:
        return qs
    q = Q()
    for field in fields:
        q |= Q(**{f"{field}__icontains": keyword})
    return qs.filter(q)
