"""Response serializers: DRF serializers that name their CloudStack object (`object_name`) and
render dates and nulls the way CloudStack's Gson serializer does."""
from __future__ import annotations

import datetime as dt
from typing import Any

from rest_framework import serializers


def cs_date(value: dt.datetime | None) -> str | None:
    """CloudStack's date form: 2012-07-19T16:41:55+0000 (no colon, no fraction)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


class DateTime(serializers.Field):
    cs_type = "date"

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return cs_date(value)


class Uuid(serializers.Field):
    """Renders a UUID (or a related object's uuid via source='x.uuid') as a string."""

    cs_type = "string"

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return None if value is None else str(value)


class ResponseSerializer(serializers.Serializer):
    """Base of every response object. Subclasses set `object_name` (e.g. "domain")."""

    object_name = "object"

    def to_representation(self, instance) -> dict[str, Any]:
        data = super().to_representation(instance)
        return {k: v for k, v in data.items() if v is not None}


class SuccessResponse(ResponseSerializer):
    object_name = "success"
    success = serializers.BooleanField(default=True, help_text="true if the operation succeeded")
    displaytext = serializers.CharField(required=False, help_text="any text associated with the success")


def field_type(field: serializers.Field) -> str:
    explicit = getattr(field, "cs_type", None)
    if explicit:
        return explicit
    if isinstance(field, serializers.BooleanField):
        return "boolean"
    if isinstance(field, serializers.IntegerField):
        return "integer"
    if isinstance(field, serializers.FloatField):
        return "float"
    if isinstance(field, (serializers.ListSerializer, serializers.ListField)):
        return "list"
    if isinstance(field, serializers.Serializer):
        return "map"
    if isinstance(field, serializers.DictField):
        return "map"
    return "string"


def describe_fields(serializer_class) -> list[dict[str, Any]]:
    """listApis `response` metadata for a response serializer (nested serializers recurse)."""
    out = []
    for name, field in serializer_class().fields.items():
        child = field.child if isinstance(field, serializers.ListSerializer) else field
        entry: dict[str, Any] = {
            "name": name,
            "description": str(field.help_text or name),
            "type": field_type(field),
        }
        if isinstance(child, serializers.Serializer):
            entry["response"] = describe_fields(type(child))
        out.append(entry)
    return out
