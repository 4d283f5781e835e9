"""Helpers of the UI's list pages beyond portal.views' paginate: sortable columns, the search
term, filter chips, links from a job to the page of its object, and the root-admin gate of pages
only a root admin sees (anyone else gets 404).

A list view declares its columns once; `sort` reads ?sort=<key> or ?sort=-<key> (anything else
falls back to the default order, never an error) and answers the ordered queryset with the
header cells the template `portal/_sort_head.html` renders (links that keep the other filters
and go back to page 1, `aria-sort` on the current column). Every list page sorts this way: the
columns are its one allow-list of sort keys, each mapped to ORM orderings, with the row id as
the last tiebreak so that pages never overlap. It declares its filters once too
(`Filter`); `filter_rows` applies the ones the query string names and answers the chip groups
`portal/list_page.html` renders; a value no filter knows is ignored and named on the page."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps
import re
import uuid as uuidlib
from typing import Any, Callable, Iterable, Sequence, Union

from django.contrib.auth.decorators import login_required
from django.db.models import Q, QuerySet
from django.db.models.expressions import BaseExpression
from django.http import Http404, HttpRequest
from django.urls import reverse

MAX_QUERY = 255
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


Ordering = Union[str, BaseExpression]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # ORM fields or expressions (e.g. accounts.models.tree_order); for lists of dicts/objects, one
    # attribute. () = not sortable.
    order: tuple[Ordering, ...] = ()
    hidden_label: bool = False  # an actions column: the label is for screen readers only
    admins_only: bool = False  # e.g. the owner's account: shown to root and domain admins only
    root_only: bool = False  # e.g. the host of a VM: shown to root admins only


def columns_for(columns: Sequence[Column], *, admin: bool, root: bool = False) -> tuple[Column, ...]:
    """The columns a caller sees: without the admins-only ones unless it is an admin, without the
    root-only ones unless it is the root admin. A column not shown is no sort key either."""
    return tuple(c for c in columns if (admin or not c.admins_only) and (root or not c.root_only))


def query_value(request: HttpRequest, param: str) -> str:
    """A query-string value as a list page may use it: without control characters (PostgreSQL
    refuses a NUL in any text), trimmed and bounded — never an error."""
    return CONTROL_CHARACTERS.sub("", request.GET.get(param) or "").strip()[:MAX_QUERY]


def search_query(request: HttpRequest) -> str:
    """The ?q= search term."""
    return query_value(request, "q")


def _current(request: HttpRequest, columns: Sequence[Column], default: str) -> tuple[Column, bool]:
    by_key = {c.key: c for c in columns if c.order}
    wanted = request.GET.get("sort") or default
    key, descending = wanted.lstrip("-"), wanted.startswith("-")
    if key not in by_key:
        key, descending = default.lstrip("-"), default.startswith("-")
    return by_key[key], descending


def _headers(columns: Sequence[Column], current: Column, descending: bool) -> list[dict[str, Any]]:
    headers = []
    for column in columns:
        is_current = column is current
        headers.append({
            "key": column.key, "label": column.label, "sortable": bool(column.order),
            "hidden_label": column.hidden_label,
            "aria": ("descending" if descending else "ascending") if is_current else "",
            # a click on the current column turns its direction; on another, sorts by it ascending
            "next": ("" if descending else "-") + column.key if is_current else column.key,
        })
    return headers


def _ordering(order: Ordering, descending: bool):
    if isinstance(order, str):
        return ("-" if descending else "") + order
    return order.desc() if descending else order.asc()


def sort(request: HttpRequest, rows, columns: Sequence[Column], default: str) -> tuple[Any, list[dict[str, Any]]]:
    """(rows ordered as ?sort= asks, header cells). `rows` is a queryset (ordered by the
    column's fields, then id) or a list (of dicts or objects, sorted by the column's one field)."""
    current, descending = _current(request, columns, default)
    if isinstance(rows, list):
        field = current.order[0]

        def value(row):
            found = row.get(field) if isinstance(row, dict) else getattr(row, field, None)
            return (found is None, str(found).lower() if isinstance(found, str) else found)

        ordered = sorted(rows, key=value, reverse=descending)
    else:
        ordered = rows.order_by(*(_ordering(order, descending) for order in (*current.order, "id")))
    return ordered, _headers(columns, current, descending)


def sort_param(request: HttpRequest, columns: Sequence[Column], default: str) -> str:
    """The ?sort= value of the order shown ("" for the default one): what a URL polling the
    same rows (a live table body) carries."""
    current, descending = _current(request, columns, default)
    wanted = ("-" if descending else "") + current.key
    return "" if wanted == default else wanted


def root_admin_required(view: Callable) -> Callable:
    """Logged in, and a root admin; anyone else gets 404, as for a page they may not see."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.account.is_root_admin:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapped


def chips(request: HttpRequest, param: str, choices: Sequence[tuple[str, str]], label: str, *,
          current: str | None = None, everything: str = "All") -> dict[str, Any]:
    """Filter links for ?<param>= (rendered by portal/_chips.html): `everything` (no value) then
    each choice, each keeping the other parameters and going back to page 1; the current one
    (default: the query string's) marked."""
    current = request.GET.get(param, "") if current is None else current

    def url(value: str) -> str:
        query = request.GET.copy()
        query.pop("page", None)
        query.pop(param, None)
        if value:
            query[param] = value
        return "?" + query.urlencode()

    items = [{"label": everything, "url": url(""), "current": not current}]
    items += [{"label": text, "url": url(value), "current": value == current} for value, text in choices]
    return {"label": label, "items": items}


# -- filters ----------------------------------------------------------------------------------------
Condition = Union[Q, Callable[[], Q]]  # a callable is asked at request time (e.g. "in the last hour")


@dataclass(frozen=True)
class Filter:
    """A ?<param>= filter of a list, shown as a group of chips.

    `choices` are (value, chip label, condition); `everything` labels the chip without a value,
    whose condition is `default`; `other` may accept values beyond the chips (answering their
    condition, or None to ignore the value). A value nothing accepts is ignored, never an error."""

    param: str
    label: str  # the chip group's accessible name
    choices: tuple[tuple[str, str, Condition], ...]
    everything: str = "All"
    default: Q = field(default_factory=Q)
    other: Callable[[str], Q | None] | None = None

    def condition(self, value: str) -> Q | None:
        if not value:
            return self.default
        for key, _, condition in self.choices:
            if key == value:
                return condition() if callable(condition) else condition
        return self.other(value) if self.other is not None else None


@dataclass
class Filtered:
    rows: Any
    chips: list[dict[str, Any]]
    ignored: list[str]  # sentences naming the values that were ignored
    active: bool  # a filter other than the defaults narrows the rows


def ignored_sentence(param: str, value: str) -> str:
    """What a list page says above its table about a ?<param>= value it ignored."""
    return f"“{value}” is not a value of {param}: ignored."


def choose(request: HttpRequest, param: str, allowed: Iterable[str], default: str = "") -> tuple[str, list[str]]:
    """(value, sentences of ignored values) of ?<param>= for a list filtered by other means than
    a queryset condition (e.g. a list of dicts, or tabs a service function interprets): an unknown
    value is ignored (the default is used) and named, never an error."""
    value = query_value(request, param)
    if not value:
        return default, []
    if value in allowed:
        return value, []
    return default, [ignored_sentence(param, value)]


def filter_rows(request: HttpRequest, rows: QuerySet, filters: Iterable[Filter]) -> Filtered:
    """`rows` narrowed by each filter's value in the query string, with the chip groups to show."""
    groups, ignored, active = [], [], False
    for flt in filters:
        value = query_value(request, flt.param)
        condition = flt.condition(value)
        if condition is None:
            ignored.append(ignored_sentence(flt.param, value))
            value, condition = "", flt.default
        active = active or bool(value)
        rows = rows.filter(condition)
        if flt.choices or value:
            groups.append(chips(request, flt.param, [(key, text) for key, text, _ in flt.choices], flt.label,
                                current=value, everything=flt.everything))
    return Filtered(rows, groups, ignored, active)


# -- links from a job (or anything naming an object by type and uuid) to the object's page ----------
@dataclass(frozen=True)
class ObjectPage:
    url_name: str  # takes the object's uuid
    openable: Callable[[Any], QuerySet]  # the objects of this type the caller may open the page of


OBJECT_PAGES: dict[str, ObjectPage] = {}


def register_object_page(instance_type: str, url_name: str, openable: Callable[[Any], QuerySet]) -> None:
    """Apps declare (from AppConfig.ready) the page of each object type a job may name
    (AsyncJob.instance_type, e.g. "VirtualMachine")."""
    OBJECT_PAGES[instance_type] = ObjectPage(url_name, openable)


def is_uuid(text: str) -> bool:
    try:
        uuidlib.UUID(text)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def object_links(caller, named: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """{(type, uuid): {"name", "url"}} for the named objects that still exist and whose page the
    caller may open: one query per object type, whatever the number of rows."""
    wanted: dict[str, set[str]] = {}
    for instance_type, uuid in named:
        if instance_type in OBJECT_PAGES and is_uuid(uuid):
            wanted.setdefault(instance_type, set()).add(uuid)
    links = {}
    for instance_type, uuids in wanted.items():
        page = OBJECT_PAGES[instance_type]
        for uuid, name in page.openable(caller).filter(uuid__in=uuids).values_list("uuid", "name"):
            links[(instance_type, str(uuid))] = {"name": name, "url": reverse(page.url_name, args=[uuid])}
    return links
