"""What the dashboard shows, per caller (portal.views.dashboard renders it).

- root admin: per zone, the capacity bars of compute.capacity (CPU, memory, primary and secondary
  storage, guest IPs: allocated and used against the total, with units), hosts by state, open
  alerts;
- admins: counts of domains, accounts and users they manage;
- everyone: its VMs by state, recent events and running jobs (all scoped with visible_to);
- users and domain admins: their account's usage against its resource limits (accounts.limits).

A constant number of SQL queries whatever the number of VMs, hosts or zones: counts are
aggregates, capacity is computed once for every zone (compute.capacity.capacities_by), and the
lists are sliced."""
from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.urls import reverse

from .models import AsyncJob, Event, JobStatus

ZONES_SHOWN = 6
USAGE_LABELS = {
    "user_vm": "VMs", "public_ip": "Public IPs", "volume": "Volumes", "snapshot": "Snapshots",
    "template": "Templates and ISOs", "project": "Projects", "network": "Networks", "vpc": "VPCs", "cpu": "vCPUs",
    "memory": "Memory", "primary_storage": "Primary storage", "secondary_storage": "Secondary storage",
}


def vm_states(caller) -> list[dict[str, Any]]:
    """The caller's VMs per state (every state, in the lifecycle's order), one aggregate query."""
    from compute.choices import VmState
    from compute.views_instances import visible_vms

    counted = dict(visible_vms(caller).order_by().values_list("state").annotate(n=Count("id")))
    url = reverse("instances")
    return [{"state": state, "count": counted.get(state, 0), "url": f"{url}?state={state}"}
            for state in VmState.values if state != VmState.EXPUNGING]


def host_states() -> dict[str, Any]:
    from compute.views import HOST_FILTERS, host_state_counts

    counts = host_state_counts()
    url = reverse("infra-hosts")
    return {"total": counts["total"], "url": url,
            "states": [{"key": key, "label": label, "count": counts[key], "url": f"{url}?state={key}"}
                       for key, (label, _) in HOST_FILTERS.items()]}


def zone_capacity() -> tuple[list[dict[str, Any]], int]:
    """(the first zones by name with their capacity panels, the number of zones)."""
    from compute.capacity import capacities_by
    from compute.models import Zone
    from compute.views import capacity_panel

    zones = list(Zone.objects.order_by("name", "id")[:ZONES_SHOWN])
    total = len(zones) if len(zones) < ZONES_SHOWN else Zone.objects.count()
    grouped = capacities_by("zone")
    return [{"zone": zone, "capacity": capacity_panel(grouped.get(zone.pk, []))} for zone in zones], total


def account_usage(caller) -> list[Any]:
    """The caller's account: what it uses of each counted resource against its limit."""
    from accounts import limits
    from compute.views import Bar, format_bytes

    account = caller.account
    maxima = {row.resource_type.number: row.max for row in limits.list_limits(caller, account=account)}
    bars = []
    for rtype in limits.counted_types():
        used = limits.count(account, rtype)
        limit = maxima[rtype.number]
        total = rtype.to_count_units(limit) if limit >= 0 else 0

        def shown(value: int) -> str:
            if rtype.unit == "MiB":
                return format_bytes(value << 20)
            return format_bytes(value) if rtype.is_storage else str(value)

        text = f"{shown(used)} of {shown(total)}" if limit >= 0 else f"{shown(used)} (no limit)"
        bars.append(Bar(USAGE_LABELS.get(rtype.name, rtype.name), used, total, text))
    return bars


def context(caller) -> dict[str, Any]:
    from accounts.models import Domain
    from accounts.views import visible_accounts, visible_users
    from compute.models import Alert

    from .views import is_admin

    account = caller.account
    data: dict[str, Any] = {
        "events": list(Event.objects.visible_to(caller).order_by("-created", "-id")[:10]),
        "running_jobs": list(AsyncJob.objects.visible_to(caller).filter(status=JobStatus.PENDING)
                             .select_related("user", "account").order_by("-created", "-id")[:10]),
        "vm_states": vm_states(caller),
    }
    data["vm_total"] = sum(row["count"] for row in data["vm_states"])
    if is_admin(caller):
        data["counts"] = [
            ("Domains", Domain.objects.visible_to(caller).count(), reverse("domains")),
            ("Accounts", visible_accounts(caller).count(), reverse("accounts")),
            ("Users", visible_users(caller).count(), reverse("users")),
        ]
    if account.is_root_admin:
        data["zones"], data["num_zones"] = zone_capacity()
        data["hosts"] = host_states()
        alerts = Alert.objects.visible_to(caller).filter(archived=False)
        data["alerts"], data["num_alerts"] = list(alerts.order_by("-sent", "-id")[:5]), alerts.count()
    else:
        data["account"] = account
        data["usage"] = account_usage(caller)
    return data
