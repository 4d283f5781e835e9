"""Response serializers: DRF serializers that name their CloudStack object (`object_name`) and
render dates and nulls the way CloudStack's Gson serializer does."""
from __future__ import annotations

import datetime as dt
import inspect
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

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


def _lookup(instance: Any, attrs: list[str]) -> Any:
    """DRF's attribute walk, but None-propagating: a missing link gives None."""
    for attr in attrs:
        if instance is None:
            return None
        try:
            instance = instance[attr] if isinstance(instance, dict) else getattr(instance, attr)
        except (AttributeError, KeyError, ObjectDoesNotExist):
            return None
        if inspect.ismethod(instance) or inspect.isfunction(instance):
            instance = instance()
    return instance


_SIMPLE = (
    (serializers.BooleanField, bool),
    (serializers.IntegerField, int),
    (serializers.FloatField, float),
    (serializers.CharField, str),
)


class ResponseSerializer(serializers.Serializer):
    """Base of every response object. Subclasses set `object_name` (e.g. "domain").

    Rendering walks a per-class plan of (name, source attributes, converter) instead of DRF's
    generic machinery, which costs about ten times more per row on 500-row pages; the declared
    fields stay the one definition (listApis reads them too). Null fields are omitted, as
    CloudStack's serializer does."""

    object_name = "object"

    @classmethod
    def prepare(cls, rows: list) -> None:
        """Load what the rows of one page need beyond their own query, in a constant number of
        queries (e.g. an account's users). The dispatcher calls it for every page and object."""

    def for_root_admin(self) -> bool:
        """Is the answer for a root admin (who alone is shown hosts, pools and paths)?"""
        caller = self.context.get("caller")
        return caller is not None and caller.account.type == 1

    def _plan(self) -> list[tuple[str, list[str], Any, str | None]]:
        plan = []
        for name, field in self.fields.items():
            if isinstance(field, serializers.SerializerMethodField):
                plan.append((name, [], None, field.method_name))
                continue
            attrs = list(field.source_attrs) if field.source != "*" else []
            if isinstance(field, serializers.ListSerializer):
                child = field.child
                convert: Any = lambda value, child=child: [child.to_representation(item) for item in value]
            else:
                convert = next((fn for kind, fn in _SIMPLE if type(field) is kind), field.to_representation)
            plan.append((name, attrs, convert, None))
        return plan

    def to_representation(self, instance) -> dict[str, Any]:
        plan = getattr(self, "_nubo_plan", None)
        if plan is None:
            plan = self._nubo_plan = self._plan()
        out: dict[str, Any] = {}
        for name, attrs, convert, method in plan:
            if method is not None:
                value = getattr(self, method)(instance)
            else:
                value = _lookup(instance, attrs) if attrs else instance
                if value is not None:
                    value = convert(value)
            if value is not None:
                out[name] = value
        return out


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
        # every entry carries a `response` list (empty for leaves): discovery clients index it
        entry["response"] = describe_fields(type(child)) if isinstance(child, serializers.Serializer) else []
        out.append(entry)
    return out
