"""From a raw parameter map to a command's validated parameters and its rendered result.
Used by the HTTP endpoint (portal.api.views) and by the async job runner (portal.jobs)."""
from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet

from portal import config
from portal.errors import MalformedParameter, ParamError

from . import params as P
from .registry import Command, ListParams
from .render import list_body
from .responses import use_values

MAP_KEY_RE = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]\.(.+)$")
CONTROL_CHARS_RE = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
# Parameters the dispatcher consumes itself; they are never passed to a command.
ENVELOPE_PARAMS = frozenset({"command", "response", "apikey", "signature", "signatureversion", "expires",
                             "sessionkey", "_", "ctxaccountid", "ctxuserid", "ctxstarteventid", "ctxdetails"})


def normalise(raw: dict[str, str], command: str) -> dict[str, Any]:
    """Lower-case names, group map parameters (name[i].field=value) and refuse control chars."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if CONTROL_CHARS_RE.search(value):
            raise ParamError(f"Received value containing illegal ASCII non-printable characters for parameter {key}")
        if "[" in key or "]" in key:
            match = MAP_KEY_RE.match(key)
            if not match or "." in match.group(2):
                raise MalformedParameter(
                    f"Unable to execute API command {command.lower()} due to malformed parameter {key}; "
                    "map parameters look like name[0].key=value"
                )
            base, index, field = match.group(1).lower(), match.group(2), match.group(3)
            out.setdefault(base, {})
            if not isinstance(out[base], dict):
                raise MalformedParameter(f"Parameter {base} is given both as a value and as a map")
            out[base].setdefault(index, {})[field] = value
            continue
        name = key.lower()
        if name in ENVELOPE_PARAMS:
            continue
        out[name] = value
    return out


def _error_sentence(command: str, name: str, value: Any, detail: str, field) -> str:
    if isinstance(field, P.Password):
        value = "******"
    if isinstance(value, dict):
        value = "(map)"
    return (f"Unable to execute API command {command.lower()} due to invalid value. "
            f"Invalid parameter {name} value={value} {detail}")


def validate(command_cls: type[Command], data: dict[str, Any], caller) -> dict[str, Any]:
    """Run the command's parameter serializer; every problem becomes one 431 sentence."""
    if command_cls.takes_no_parameters():
        return {}  # CloudStack ignores unknown parameters
    fields = command_cls.param_fields()
    cleaned_input: dict[str, Any] = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None:
            continue  # CloudStack ignores unknown parameters
        if value == "" and not isinstance(field, P.String):
            continue  # blank non-string values are ignored
        cleaned_input[name] = value
    for name, field in fields.items():
        if field.required and name not in cleaned_input:
            raise ParamError(f"Unable to execute API command {command_cls.name.lower()} due to missing parameter {name}")
    serializer = command_cls.params_serializer(cleaned_input, caller)
    if not serializer.is_valid():
        name, errors = next(iter(serializer.errors.items()))
        detail = errors[0] if isinstance(errors, list) else errors
        if name == "non_field_errors":
            raise ParamError(str(detail))
        raise ParamError(_error_sentence(command_cls.name, name, cleaned_input.get(name), str(detail), fields.get(name)))
    return dict(serializer.validated_data)


def page_window(params: dict[str, Any], command: str) -> tuple[int, int | None]:
    """(offset, limit) from page/pagesize with CloudStack's rules; limit None = unlimited."""
    page, pagesize = params.get("page"), params.get("pagesize")
    maximum = config.get_value("default.page.size")
    if pagesize is not None and page is None and pagesize != -1:
        raise ParamError('"page" parameter is required when "pagesize" is specified')
    if page is not None and pagesize is None:
        raise ParamError('"pagesize" parameter is required when "page" is specified')
    if pagesize == -1:
        if page is not None and page > 1:
            raise ParamError('"page" parameter is not allowed when "pagesize" is -1 (all rows)')
        return 0, None
    if pagesize is None:
        return 0, maximum
    if pagesize < 1:
        raise ParamError(f"Page size must be between 1 and {maximum}, or -1 for all rows")
    if pagesize > maximum:
        raise ParamError(f"Page size can't exceed max allowed page size value: {maximum}")
    page = max(page or 1, 1)
    return (page - 1) * pagesize, pagesize


def serialize(command_cls: type[Command], result: Any, caller, params: dict[str, Any]) -> dict[str, Any]:
    """The body under `<name>response` for a command's result."""
    context = {"caller": caller, "params": params}
    if command_cls.kind == "success":
        if isinstance(result, dict):
            return result
        return {"success": True} if result in (None, True) else {"success": bool(result)}
    if command_cls.kind == "flat":
        return result
    response = command_cls.response
    assert response is not None
    if command_cls.kind == "list":
        if isinstance(result, QuerySet):
            offset, limit = page_window(params, command_cls.name)
            count = result.count()
            if response.values_rows:
                return list_body(response.object_name, _values_page(response, result, offset, limit, context), count)
            rows = list(result[offset: offset + limit] if limit is not None else result[offset:])
        else:
            rows = list(result)
            count = len(rows)
            if issubclass(command_cls.Params, ListParams):
                offset, limit = page_window(params, command_cls.name)
                rows = rows[offset: offset + limit] if limit is not None else rows[offset:]
        response.prepare(rows)
        items = response(rows, many=True, context=context).data
        return list_body(response.object_name, list(items), count)
    if result is not None and not isinstance(result, dict):
        response.prepare([result])
    return {response.object_name: response(result, context=context).data}


def _values_page(response, qs: QuerySet, offset: int, limit: int | None, context: dict) -> list[dict[str, Any]]:
    """A list page rendered from `.values()` rows (ResponseSerializer.values_rows)."""
    serializer = response(context=context)
    rows = qs.prefetch_related(None).values("pk", *use_values(serializer, qs.model))
    rows = list(rows[offset: offset + limit] if limit is not None else rows[offset:])
    serializer.prepare_values(rows)
    return [serializer.to_representation(row) for row in rows]


def job_result(command_cls: type[Command], result: Any, caller, params: dict[str, Any]) -> dict[str, Any]:
    """jobresult for a finished job: the object wrapped in its name, or {"success": true}."""
    body = serialize(command_cls, result, caller, params)
    if command_cls.kind == "list":
        key = command_cls.response.object_name if command_cls.response else "object"
        return {key: body.get(key, [])}
    return body
