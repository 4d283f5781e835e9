"""Archiving and deleting alerts (root admin only), as CloudStack's archiveAlerts and deleteAlerts:
the alerts named by ID, of a type, sent on or before an end date (and on or after a start date),
those criteria combined. compute.services.raise_alert writes alerts; listAlerts and the dashboard
show the open ones (not archived).

As in CloudStack, at least one of the IDs, the type and the end date is needed, and a start date
needs an end date. Archiving concerns open alerts; deleting concerns open and archived ones (so
the alerts page can also clear what was archived). Each call writes one event with how many alerts
it changed, in its transaction."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import QuerySet

from portal import events
from portal.errors import InvalidParameterValue

from .choices import AlertType
from .models import Alert
from .services import require_root_admin


def alert_type_label(value: int) -> str:
    """"Host", "User VM"… (the number itself for a type Nubo does not name)."""
    try:
        return AlertType(value).label
    except ValueError:
        return str(value)


def _selected(alerts: Sequence[Alert] | None, alert_type: int | None, start: dt.datetime | None,
              end: dt.datetime | None) -> tuple[QuerySet, str]:
    """The alerts the criteria name (all of them), and the criteria in words."""
    if not alerts and alert_type is None and end is None:
        raise InvalidParameterValue("either ids, type or enddate must be specified")
    if start is not None and end is None:
        raise InvalidParameterValue("enddate must be specified with startdate parameter")
    if start is not None and start > end:
        raise InvalidParameterValue(f"startdate {start:%Y-%m-%d %H:%M:%S} is after enddate {end:%Y-%m-%d %H:%M:%S}")
    rows, words = Alert.objects.all(), []
    if alerts:
        rows = rows.filter(pk__in=[alert.pk for alert in alerts])
        words.append(f"{len(alerts)} chosen")
    if alert_type is not None:
        rows = rows.filter(type=alert_type)
        words.append(f"of type {alert_type_label(alert_type)}")
    if start is not None:
        rows = rows.filter(sent__gte=start)
        words.append(f"sent from {start:%Y-%m-%d %H:%M:%S}")
    if end is not None:
        rows = rows.filter(sent__lte=end)
        words.append(f"sent on or before {end:%Y-%m-%d %H:%M:%S} UTC")
    return rows, ", ".join(words)


def _plural(n: int) -> str:
    return f"{n} alert" if n == 1 else f"{n} alerts"


def archive_alerts(caller, *, alerts: Sequence[Alert] | None = None, alert_type: int | None = None,
                   start: dt.datetime | None = None, end: dt.datetime | None = None) -> int:
    """Archive the open alerts the criteria name; answers how many were archived."""
    require_root_admin(caller, "archive alerts")
    rows, criteria = _selected(alerts, alert_type, start, end)
    with transaction.atomic():
        count = rows.filter(archived=False).update(archived=True)
        events.record(caller, "ALERT.ARCHIVE", f"{_plural(count)} archived ({criteria})", resource_type="Alert")
    return count


def delete_alerts(caller, *, alerts: Sequence[Alert] | None = None, alert_type: int | None = None,
                  start: dt.datetime | None = None, end: dt.datetime | None = None) -> int:
    """Delete the alerts (open or archived) the criteria name; answers how many were deleted."""
    require_root_admin(caller, "delete alerts")
    rows, criteria = _selected(alerts, alert_type, start, end)
    with transaction.atomic():
        count, _ = rows.delete()
        events.record(caller, "ALERT.DELETE", f"{_plural(count)} deleted ({criteria})", resource_type="Alert")
    return count
