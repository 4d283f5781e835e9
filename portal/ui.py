"""Helpers of the UI's list pages beyond portal.views' paginate: sortable columns, the search
term, and the root-admin gate of pages only a root admin sees (anyone else gets 404).

A list view declares its columns once; `sort` reads ?sort=<key> or ?sort=-<key> (anything else
falls back to the default order, never an error) and answers the ordered queryset with the
header cells the template `portal/_sort_head.html` renders (links that keep the other filters
and go back to page 1, `aria-sort` on the current column)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable, Sequence

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest

MAX_QUERY = 255


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    order: tuple[str, ...] = ()  # ORM fields (or, for lists of dicts/objects, one attribute); () = not sortable
    hidden_label: bool = False  # an actions column: the label is for screen readers only


def search_query(request: HttpRequest) -> str:
    """The ?q= search term, trimmed and bounded (never an error)."""
    return (request.GET.get("q") or "").strip()[:MAX_QUERY]


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
        sign = "-" if descending else ""
        ordered = rows.order_by(*(sign + f for f in current.order), sign + "id")
    return ordered, _headers(columns, current, descending)


def root_admin_required(view: Callable) -> Callable:
    """Logged in, and a root admin; anyone else gets 404, as for a page they may not see."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.account.is_root_admin:
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapped


def chips(request: HttpRequest, param: str, choices: Sequence[tuple[str, str]], label: str) -> dict[str, Any]:
    """Filter links for ?<param>= (rendered by portal/_chips.html): "All" then each choice, each
    keeping the other parameters and going back to page 1; the current one marked."""
    current = request.GET.get(param, "")

    def url(value: str) -> str:
        query = request.GET.copy()
        query.pop("page", None)
        query.pop(param, None)
        if value:
            query[param] = value
        return "?" + query.urlencode()

    items = [{"label": "All", "url": url(""), "current": not current}]
    items += [{"label": text, "url": url(value), "current": value == current} for value, text in choices]
    return {"label": label, "items": items}
