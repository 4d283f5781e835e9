"""Volumes as accounts are charged for them: the `volume` and `primary_storage` resource counters
(accounts.limits), counted from the Volume rows that are not expunged — a VM's root disk and its
data disks alike, as CloudStack counts them. compute.instances checks both limits in the
transaction that writes the rows."""
from __future__ import annotations

from django.db.models import Count, Sum

from .models import Volume


def _held(account_ids: list[int]):
    return Volume.objects.filter(account_id__in=account_ids, removed__isnull=True).values("account_id")


def count_volumes(account_ids: list[int]) -> dict[int, int]:
    return {r["account_id"]: r["n"] for r in _held(account_ids).annotate(n=Count("id"))}


def count_primary_storage(account_ids: list[int]) -> dict[int, int]:
    """Bytes: the volumes' virtual sizes."""
    return {r["account_id"]: int(r["n"] or 0) for r in _held(account_ids).annotate(n=Sum("size"))}
