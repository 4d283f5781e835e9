"""The UI shell: navigation, the helpers every UI view uses, the dashboard, events and jobs.

Every queryset here goes through `visible_to(caller)`; admin pages answer 404 to plain users,
exactly as they answer an object the caller may not see."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest
from django.shortcuts import render
from django.urls import reverse

from .models import AsyncJob, Event

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


@login_required
def event_list(request):
    events = Event.objects.visible_to(request.user).order_by("-created", "-id")
    return render(request, "portal/events.html", {"page": paginate(request, events)})


@login_required
def job_list(request):
    jobs = AsyncJob.objects.visible_to(request.user).select_related("user", "account").order_by("-created", "-id")
    return render(request, "portal/jobs.html", {"page": paginate(request, jobs)})
