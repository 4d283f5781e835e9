"""Parameter fields for API commands: DRF serializer fields with CloudStack's coercion rules and
the metadata listApis publishes (type, length, description, since, related).

Every field reports errors as a sentence; the dispatcher adds "Unable to execute API command …".
"""
from __future__ import annotations

import datetime as dt
import re
import uuid as uuidlib
from typing import Any

from rest_framework import serializers

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CSFieldMixin:
    cs_type = "string"

    def __init__(self, *args, since: str = "", related: str = "", **kwargs):
        kwargs.setdefault("required", False)
        self.since = since
        self.related = related
        super().__init__(*args, **kwargs)

    @property
    def cs_length(self) -> int:
        return int(getattr(self, "max_length", None) or 255)


class String(CSFieldMixin, serializers.CharField):
    def __init__(self, *args, max_length: int = 255, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(*args, max_length=max_length, **kwargs)
        self.error_messages["max_length"] = "the value is longer than {max_length} characters"


class Password(String):
    """A string that is never echoed back in errors or logs."""


class Boolean(CSFieldMixin, serializers.Field):
    cs_type = "boolean"

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        text = str(data).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        raise serializers.ValidationError("expected true or false")

    def to_representation(self, value: Any) -> bool:
        return bool(value)


class Integer(CSFieldMixin, serializers.IntegerField):
    cs_type = "integer"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_messages["invalid"] = "expected a whole number"
        self.error_messages["min_value"] = "the value must be at least {min_value}"
        self.error_messages["max_value"] = "the value must be at most {max_value}"


class Long(Integer):
    cs_type = "long"


class Short(Integer):
    cs_type = "short"


class Date(CSFieldMixin, serializers.Field):
    """yyyy-MM-dd, or yyyy-MM-dd HH:mm:ss where `allow_time`."""

    cs_type = "date"

    def __init__(self, *args, allow_time: bool = True, **kwargs):
        self.allow_time = allow_time
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> dt.datetime:
        text = str(data).strip()
        formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d"] if self.allow_time else ["%Y-%m-%d"]
        for fmt in formats:
            try:
                return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)
            except ValueError:
                continue
        raise serializers.ValidationError("expected a date as yyyy-MM-dd" + (" or yyyy-MM-dd HH:mm:ss" if self.allow_time else ""))


class Uuid(CSFieldMixin, serializers.Field):
    """A plain UUID value (no lookup)."""

    cs_type = "uuid"

    def to_internal_value(self, data: Any) -> str:
        text = str(data).strip()
        if not UUID_RE.match(text):
            raise serializers.ValidationError("expected a lowercase UUID")
        return text


class Entity(Uuid):
    """A UUID resolved to a row the caller may see (through the model's `visible_to`); a row the
    caller may not see is answered exactly like one that does not exist."""

    def __init__(self, model, *args, queryset_hook=None, **kwargs):
        self.model = model
        self.queryset_hook = queryset_hook
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any):
        text = str(data).strip()
        if UUID_RE.match(text):
            caller = self.context.get("caller")
            qs = self.model._default_manager.all()
            if caller is not None and hasattr(qs, "visible_to"):
                qs = qs.visible_to(caller)
            if self.queryset_hook is not None:
                qs = self.queryset_hook(qs)
            obj = qs.filter(uuid=text).first()
            if obj is not None:
                return obj
        raise serializers.ValidationError(
            "due to incorrect long value format, or entity does not exist or due to incorrect "
            "parameter annotation for the field in api cmd class"
        )


class List(CSFieldMixin, serializers.Field):
    """A comma-separated list; each item converted by `child` (a field instance)."""

    cs_type = "list"

    def __init__(self, child: serializers.Field | None = None, *args, **kwargs):
        self.child = child or String()
        super().__init__(*args, **kwargs)

    def bind(self, field_name, parent):
        super().bind(field_name, parent)
        self.child.bind(field_name, parent)

    def to_internal_value(self, data: Any) -> list:
        items = data if isinstance(data, list) else [p for p in str(data).split(",") if p.strip() != ""]
        return [self.child.run_validation(item.strip() if isinstance(item, str) else item) for item in items]


class Map(CSFieldMixin, serializers.Field):
    """CloudStack map parameters (`details[0].key=value`): a list of dicts in index order."""

    cs_type = "map"

    def to_internal_value(self, data: Any) -> list[dict[str, str]]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("expected map entries such as name[0].key=value")
        return [data[k] for k in sorted(data, key=lambda k: (len(k), k))]


def new_uuid() -> str:
    return str(uuidlib.uuid4())
