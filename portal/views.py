"""The UI shell: navigation, the helpers every UI view uses, the dashboard, events and jobs.

Every queryset here goes through `visible_to(caller)`; admin pages answer 404 to plain users,
exactly as they answer an object the caller may not see."""
from __future__ import annotations

import re
import uuid as uuidlib
from datetime import timedelta
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from .api.listing import keyword_filter
from .models import AsyncJob, Event, EventLevel, JobStatus
from .ui import Column, Filter, filter_rows, object_links, search_query, sort

ROOT_ONLY = "root"  # as "admins only" in NAVIGATION: an entry only root admins see


# -- helpers for UI views ---------------------------------------------------------------------------
def is_admin(user) -> bool:
    """Root admins and domain admins see the admin pages (each scoped to what it may see)."""
    return user.is_authenticated and (user.account.is_root_admin or user.account.is_domain_admin)


def admin_required(view):
    """Logged in, and an admin; a plain user gets 404, as for anything it may not see."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not is_admin(request.user):
            raise Http404("No such page")
        return view(request, *args, **kwargs)

    return wrapped


def paginate(request: HttpRequest, queryset, per_page: int | None = None) -> Page:
    """One page of an ordered queryset, from ?page= (bad or out-of-range values are tolerated);
    default.ui.page.size rows unless told."""
    from . import config

    return Paginator(queryset, per_page or config.get_value("default.ui.page.size")).get_page(request.GET.get("page"))


# Navigation: (label, url name, admins only). The current item is the longest matching prefix.
NAVIGATION = (
    ("Dashboard", "dashboard", False),
    ("Instances", "instances", False),
    ("Volumes", "volumes", False),
    ("Templates", "templates", False),
    ("ISOs", "isos", False),
    ("Offerings", "offerings", False),
    ("Networks", "networks", False),
    ("SSH key pairs", "ssh-keypairs", False),
    ("Domains", "domains", True),
    ("Accounts", "accounts", True),
    ("Users", "users", True),
    ("Roles", "roles", ROOT_ONLY),
    ("Events", "events", False),
    ("Alerts", "alerts", ROOT_ONLY),
    ("Async jobs", "jobs", False),
    ("Console sessions", "console-sessions", True),
    ("Global settings", "settings", ROOT_ONLY),
    ("My account", "my-account", False),
)


def navigation(request: HttpRequest) -> list[dict]:
    admin = is_admin(request.user)
    root = request.user.account.is_root_admin
    items = [{"label": label, "url": reverse(name)} for label, name, admin_only in NAVIGATION
             if (root if admin_only == ROOT_ONLY else admin or not admin_only)]
    # A view answering a POST elsewhere may name the section it belongs to (request.nubo_section).
    path = getattr(request, "nubo_section", None) or request.path
    path = path.rstrip("/") + "/"
    best = max((item for item in items if path.startswith(item["url"].rstrip("/") + "/")),
               key=lambda item: len(item["url"]), default=None)
    for item in items:
        item["current"] = item is best
    return items


def shell_context(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nubo_caller": user,
        "nubo_is_admin": is_admin(user),
        "nubo_nav": navigation(request),
        "nubo_default_password": user.account.is_root_admin and user.password_is_default,
    }


# -- pages ------------------------------------------------------------------------------------------
@login_required
def dashboard(request):
    from . import dashboard as panels  # reads the apps' models: imported when the page is asked for

    return render(request, "portal/dashboard.html", panels.context(request.user))


# Events: searchable (description, type, user, account), filtered by level, type prefix and age,
# sortable. Events copy the names they show, so a page is one count and one select.
EVENT_COLUMNS = (Column("created", "Time (UTC)", ("created",)), Column("type", "Type", ("type",)),
                 Column("level", "Level", ("level",)), Column("description", "Description"),
                 Column("user", "User", ("username",)), Column("account", "Account", ("account_name",)),
                 Column("domain", "Domain", ("domain_path",)))
EVENT_TYPE_PREFIXES = (("VM.", "VMs"), ("TEMPLATE.", "Templates"), ("ISO.", "ISOs"), ("USER.", "Users"),
                       ("ACCOUNT.", "Accounts"), ("DOMAIN.", "Domains"), ("SSH.", "SSH key pairs"),
                       ("ZONE.", "Zones"), ("HOST.", "Hosts"), ("ALERT.", "Alerts"))
EVENT_TYPE_RE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*\.?$")


def _since(delta: timedelta):
    return lambda: Q(created__gte=timezone.now() - delta)


def _event_type_prefix(value: str) -> Q | None:
    """Any event type or prefix of one (VM.CREATE, VM., VM): those beyond the chips too."""
    value = value.upper()
    return Q(type__startswith=value) if EVENT_TYPE_RE.match(value) else None


def _event_level(value: str) -> Q | None:
    return Q(level=value.upper()) if value.upper() in EventLevel.values else None


EVENT_FILTERS = (
    Filter("level", "Filter events by level", tuple((v, v.title(), Q(level=v)) for v in EventLevel.values),
           other=_event_level),
    Filter("type", "Filter events by type", tuple((p, label, Q(type__startswith=p)) for p, label in EVENT_TYPE_PREFIXES),
           other=_event_type_prefix),
    Filter("since", "Filter events by time", (("hour", "Last hour", _since(timedelta(hours=1))),
                                              ("day", "Last day", _since(timedelta(days=1))),
                                              ("week", "Last week", _since(timedelta(weeks=1)))),
           everything="Any time"),
)


@login_required
def event_list(request):
    query = search_query(request)
    events = keyword_filter(Event.objects.visible_to(request.user), query,
                            "description", "type", "username", "account_name")
    filtered = filter_rows(request, events, EVENT_FILTERS)
    events, headers = sort(request, filtered.rows, EVENT_COLUMNS, "-created")
    return render(request, "portal/events.html", {
        "page": paginate(request, events), "headers": headers, "query": query, "filter_chips": filtered.chips,
        "ignored": filtered.ignored, "filtered": bool(query) or filtered.active})


# Async jobs: searchable (command, user, account, the job's or its object's ID), filtered by status
# and command, sortable; a row links to the page of the object the job acts on.
JOB_COLUMNS = (Column("job", "Job"), Column("command", "Command", ("command",)),
               Column("status", "Status", ("status",)), Column("object", "Object", ("instance_type", "instance_uuid")),
               Column("progress", "Progress"), Column("result", "Result"), Column("user", "User", ("user__username",)),
               Column("created", "Created (UTC)", ("created",)), Column("completed", "Completed (UTC)", ("completed",)))
JOB_STATUS = Filter("status", "Filter jobs by status", (
    ("pending", "Pending", Q(status=JobStatus.PENDING)), ("succeeded", "Succeeded", Q(status=JobStatus.SUCCEEDED)),
    ("failed", "Failed", Q(status=JobStatus.FAILED))))
COMMAND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _job_search(jobs, query: str):
    if not query:
        return jobs
    condition = (Q(command__icontains=query) | Q(user__username__icontains=query)
                 | Q(account__name__icontains=query) | Q(progress_text__icontains=query))
    try:
        condition |= Q(uuid=uuidlib.UUID(query)) | Q(instance_uuid=query.lower())
    except ValueError:
        pass
    return jobs.filter(condition)


def _command_filter(caller) -> Filter:
    """The commands of the caller's jobs as chips (one aggregate query); any other command name
    filters too (and finds nothing)."""
    commands = AsyncJob.objects.visible_to(caller).order_by("command").values_list("command", flat=True).distinct()
    return Filter("command", "Filter jobs by command", tuple((c, c, Q(command=c)) for c in commands),
                  other=lambda value: Q(command=value) if COMMAND_RE.match(value) else None)


def link_jobs(caller, jobs) -> None:
    """Each job's `object_link` ({name, url}) when it names an object whose page the caller may open."""
    links = object_links(caller, ((job.instance_type, job.instance_uuid) for job in jobs))
    for job in jobs:
        job.object_link = links.get((job.instance_type, job.instance_uuid))


@login_required
def job_list(request):
    caller = request.user
    query = search_query(request)
    jobs = _job_search(AsyncJob.objects.visible_to(caller).select_related("user", "account"), query)
    filtered = filter_rows(request, jobs, (JOB_STATUS, _command_filter(caller)))
    jobs, headers = sort(request, filtered.rows, JOB_COLUMNS, "-created")
    page = paginate(request, jobs)
    link_jobs(caller, page.object_list)
    return render(request, "portal/jobs.html", {
        "page": page, "headers": headers, "query": query, "filter_chips": filtered.chips,
        "ignored": filtered.ignored, "filtered": bool(query) or filtered.active})
