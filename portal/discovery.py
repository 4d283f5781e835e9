"""listApis data, generated from the command registry (CloudStack's API discovery plugin)."""
from __future__ import annotations

import functools
from typing import Any

from .api.params import CSFieldMixin
from .api.registry import REGISTRY, Command
from .api.responses import SuccessResponse, describe_fields


def _param(name: str, field) -> dict[str, Any]:
    cs = isinstance(field, CSFieldMixin)
    return {
        "name": name,
        "description": str(field.help_text or name),
        "type": field.cs_type if cs else "string",
        "length": field.cs_length if cs else 255,
        "required": bool(field.required),
        "since": getattr(field, "since", "") or "",
        "related": getattr(field, "related", "") or "",
    }


@functools.lru_cache(maxsize=None)
def describe(command_cls: type[Command]) -> dict[str, Any]:
    params = [_param(name, field) for name, field in command_cls.param_fields().items()]
    response_cls = command_cls.response or SuccessResponse
    if command_cls.kind == "flat" and command_cls.response is None:
        response: list[dict[str, Any]] = [
            {"name": name, "description": name, "type": "string", "response": []}
            for name in getattr(command_cls, "flat_fields", ())
        ]
    else:
        response = describe_fields(response_cls)
    for entry in response:
        entry.setdefault("response", [])
    if command_cls.is_async:
        response = [{"name": "jobid", "description": "the ID of the latest async job acting on this object",
                     "type": "string", "response": []},
                    {"name": "jobstatus", "description": "the current status of the latest async job acting on "
                                                         "this object", "type": "integer", "response": []}] + response
    return {
        "name": command_cls.name,
        "description": command_cls.description or command_cls.name,
        "isasync": bool(command_cls.is_async),
        "since": command_cls.since or "",
        "related": command_cls.related or "",
        "type": "list" if command_cls.kind == "list" else "object",
        "params": sorted(params, key=lambda p: p["name"]),
        "response": response,
    }


def available_commands(caller) -> list[type[Command]]:
    from accounts.access import ROLE_RULES, role_allows

    role = caller.account.role
    rules = ROLE_RULES.get().get(role.pk, ())  # read once for all the commands
    return [cls for name, cls in sorted(REGISTRY.items()) if role_allows(role, name, cls.roles, rules)]
