"""Response serializers: DRF serializers that name their CloudStack object (`object_name`) and
render dates and nulls the way CloudStack's Gson serializer does."""
from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from django.core.exceptions import ObjectDoesNotExist

from rest_framework import serializers


def cs_date(value: dt.datetime | None) -> str | None:
    """CloudStack's date form: 2012-07-19T16:41:55+0000 (no colon, no fraction)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    text = value.isoformat(timespec="seconds")  # 2012-07-19T16:41:55+00:00, a fifth of strftime's cost
    if len(text) == 25 and value.year >= 1000:
        return text[:22] + text[23:]
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")  # years before 1000, offsets with seconds


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


_METHODS = (types.MethodType, types.FunctionType)  # what inspect.ismethod/isfunction accept (final types)


def _lookup(instance: Any, attrs: list[str]) -> Any:
    """DRF's attribute walk, but None-propagating: a missing link gives None."""
    for attr in attrs:
        if instance is None:
            return None
        try:
            instance = instance[attr] if isinstance(instance, dict) else getattr(instance, attr)
        except (AttributeError, KeyError, ObjectDoesNotExist):
            return None
        if type(instance) in _METHODS:
            instance = instance()
    return instance


def _accessor(attrs: tuple[str, ...]) -> Callable[[Any], Any]:
    """instance -> the value `_lookup` finds at `attrs`. The usual case, one attribute of a model,
    without the walk."""
    if len(attrs) != 1:
        return lambda instance: _lookup(instance, attrs)
    (attr,) = attrs

    def one(instance):
        if isinstance(instance, dict):
            return _lookup(instance, attrs)
        try:
            value = getattr(instance, attr)
        except (AttributeError, ObjectDoesNotExist):
            return None
        return value() if type(value) in _METHODS else value

    return one


class ResponseSerializer(serializers.Serializer):
    """Base of every response object. Subclasses set `object_name` (e.g. "domain").

    Rendering walks a per-class plan of (name, accessor, converter) instead of DRF's generic
    machinery, which costs about ten times more per row on 500-row pages; the declared fields stay
    the one definition (listApis reads them too). Null fields are omitted, as CloudStack's
    serializer does.

    `values_rows = True` lets list pages be rendered from `.values()` rows instead of model
    instances (`use_values`): the same plan, each field read from the column its source names,
    with the same converters, so the answer is byte for byte the same at a fraction of the cost
    (no model instances, related objects or prefetch caches per row). Every field must then be
    readable as a column: a concrete field through forward relations (`role.uuid`), a property a
    model declares in VALUES_DERIVED (`domain.display_path`), a method field named in
    `values_methods` (its method takes the row too), or a nested list that `prepare_values` fills."""

    object_name = "object"
    values_rows = False
    values_methods: frozenset[str] = frozenset()

    @classmethod
    def prepare(cls, rows: list) -> None:
        """Load what the rows of one page need beyond their own query, in a constant number of
        queries (e.g. an account's users). The dispatcher calls it for every page and object."""

    def prepare_values(self, rows: list[dict[str, Any]]) -> None:
        """`prepare` for `.values()` rows (each has its "pk"): add what nested lists need."""

    def for_root_admin(self) -> bool:
        """Is the answer for a root admin (who alone is shown hosts, pools and paths)?"""
        caller = self.context.get("caller")
        return caller is not None and caller.account.type == 1

    def _plan(self) -> list[tuple[str, Callable[[Any], Any], Callable[[Any], Any] | None]]:
        """(name, instance -> value or None, value -> rendered value or None; None: as it is)."""
        plan = []
        for name, field in self.fields.items():
            if isinstance(field, serializers.SerializerMethodField):
                plan.append((name, getattr(self, field.method_name), None))
                continue
            get = _accessor(tuple(field.source_attrs)) if field.source != "*" else _itself
            if isinstance(field, serializers.ListSerializer):
                child = field.child
                convert: Any = lambda value, child=child: [child.to_representation(item) for item in value]
            else:
                convert = _CONVERTERS.get(type(field), field.to_representation)
            plan.append((name, get, convert))
        return plan

    def to_representation(self, instance) -> dict[str, Any]:
        plan = getattr(self, "_nubo_plan", None)
        if plan is None:
            plan = self._nubo_plan = self._plan()
        out: dict[str, Any] = {}
        for name, get, convert in plan:
            value = get(instance)
            if value is not None and convert is not None:
                value = convert(value)
            if value is not None:
                out[name] = value
        return out


def _itself(instance: Any) -> Any:
    return instance


class NotValuesRenderable(TypeError):
    """A field of a `values_rows` serializer that no column can answer."""


def _column(model, attrs: list[str]) -> tuple[str, Callable[[Any], Any] | None]:
    """The `.values()` lookup for a field source (["role", "uuid"] -> "role__uuid") and, for a
    property the model derives from one of its columns (VALUES_DERIVED), the function that turns
    that column into it."""
    path = []
    for attr in attrs[:-1]:
        field = model._meta.get_field(attr)
        if not (field.many_to_one or field.one_to_one) or not field.concrete:
            raise NotValuesRenderable(f"{model.__name__}.{attr} is not a forward relation")
        path.append(attr)
        model = field.related_model
    last = attrs[-1]
    derived = getattr(model, "VALUES_DERIVED", {}).get(last)
    if derived is not None:
        column, function = derived
        return "__".join([*path, column]), function
    try:
        field = model._meta.get_field(last)
    except Exception as exc:  # noqa: BLE001 - FieldDoesNotExist: a property or method
        raise NotValuesRenderable(f"{model.__name__}.{last} is not a column (declare it in VALUES_DERIVED)") from exc
    if field.is_relation and last != field.attname:
        raise NotValuesRenderable(f"{model.__name__}.{last} is a related object, not a value")
    return "__".join([*path, last]), None


def use_values(serializer: ResponseSerializer, model) -> list[str]:
    """Switch `serializer` (an instance) to rendering `.values()` rows of `model`; returns the
    lookups the rows must carry. Raises NotValuesRenderable for a field no column answers."""
    from rest_framework import serializers as drf

    lookups: list[str] = []
    plan: list = []
    for name, field in serializer.fields.items():
        if isinstance(field, drf.SerializerMethodField):
            if name not in serializer.values_methods:
                raise NotValuesRenderable(f"{type(serializer).__name__}.{name} is a method field not in values_methods")
            plan.append((name, getattr(serializer, field.method_name), None))
        elif isinstance(field, drf.ListSerializer):
            child = field.child  # its rows come from prepare_values, under the field's source
            plan.append((name, itemgetter(field.source),
                         lambda value, child=child: [child.to_representation(item) for item in value]))
        elif field.source == "*":
            raise NotValuesRenderable(f"{type(serializer).__name__}.{name} renders the whole object")
        else:
            lookup, derive = _column(model, field.source_attrs)
            if lookup not in lookups:
                lookups.append(lookup)
            if derive is None:
                get = itemgetter(lookup)
            else:
                def get(row, lookup=lookup, derive=derive):
                    value = row[lookup]
                    return None if value is None else derive(value)
            plan.append((name, get, _CONVERTERS.get(type(field), field.to_representation)))
    serializer._nubo_plan = plan
    return lookups


# Fields whose to_representation of a value that is not None is a plain function of it.
_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    serializers.BooleanField: bool,
    serializers.IntegerField: int,
    serializers.FloatField: float,
    serializers.CharField: str,
    Uuid: str,
    DateTime: cs_date,
}


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
