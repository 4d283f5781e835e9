"""Audit events. Service functions call `record` inside their transaction, so an event exists
exactly when the change it describes was committed."""
from __future__ import annotations

from typing import Any

from .models import Event, EventLevel, EventState


def record(caller, event_type: str, description: str, *, resource: Any = None, resource_type: str = "",
           account=None, level: str = EventLevel.INFO, state: str = EventState.COMPLETED) -> Event:
    """Write one event. `account` is the owner of what changed (default: the caller's account)."""
    owner = account if account is not None else (caller.account if caller is not None else None)
    return Event.objects.create(
        type=event_type,
        level=level,
        state=state,
        description=description,
        user=caller if caller is not None and caller.pk else None,
        account=owner,
        domain=owner.domain if owner is not None else None,
        username=getattr(caller, "username", "") or "",
        account_name=owner.name if owner is not None else "",
        domain_path=owner.domain.display_path if owner is not None else "",
        resource_type=resource_type or (type(resource).__name__ if resource is not None else ""),
        resource_uuid=str(getattr(resource, "uuid", "") or ""),
        resource_name=str(getattr(resource, "name", "") or getattr(resource, "username", "") or ""),
    )
