"""Service and disk offerings UI: everyone lists what it may use (admins also what they manage),
admins create, change and delete them, each through one function of compute.offerings (which
checks who may do what for which domain and writes the event). A service sentence is shown next
to the field it names, or at the top of the form.

The list is sortable, searchable and filtered by size kind and scope; a detail page shows the
offering's domains, the VMs that use it (those the caller may see) and its events."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Domain
from portal.api.listing import keyword_filter
from portal.errors import ApiError
from portal.models import Event
from portal.ui import Column, Filter, filter_rows, search_query, sort
from portal.views import admin_required, is_admin, paginate

from . import offerings
from .forms_offerings import DiskOfferingEditForm, DiskOfferingForm, ServiceOfferingEditForm, ServiceOfferingForm
from .models import DiskOffering, ServiceOffering
from .views import format_bytes


@dataclass(frozen=True)
class OfferingKind:
    """What differs between the service offering pages and the disk offering pages."""

    key: str  # "service" | "disk": the URL names' prefix
    model: type
    title: str
    singular: str
    create_form: type
    edit_form: type
    create: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    columns: tuple[Column, ...]
    edit_fields: tuple[str, ...]

    def url(self, suffix: str = "", *args: Any) -> str:
        return reverse(f"{self.key}-offering{suffix}", args=args)


ORDER = Column("order", "Order", ("sort_key", "name"))
NAME = Column("name", "Name", ("name",))
KINDS = {
    "service": OfferingKind(
        "service", ServiceOffering, "Service offerings", "service offering", ServiceOfferingForm,
        ServiceOfferingEditForm, offerings.create_service_offering, offerings.update_service_offering,
        offerings.delete_service_offering,
        (NAME, Column("description", "Description"), Column("cpus", "vCPUs", ("cpu_number", "min_cpu_number")),
         Column("speed", "CPU speed", ("cpu_speed",)), Column("memory", "Memory", ("memory", "min_memory")),
         Column("disk", "Root disk", ("root_disk_size",)), Column("scope", "For"), ORDER,
         Column("created", "Created (UTC)", ("created",))),
        ("name", "display_text", "sort_key", "domains", "tags", "host_tags")),
    "disk": OfferingKind(
        "disk", DiskOffering, "Disk offerings", "disk offering", DiskOfferingForm, DiskOfferingEditForm,
        offerings.create_disk_offering, offerings.update_disk_offering, offerings.delete_disk_offering,
        (NAME, Column("description", "Description"), Column("size", "Size", ("disk_size",)),
         Column("storage", "Storage", ("storage_type",)), Column("scope", "For"), ORDER,
         Column("created", "Created (UTC)", ("created",))),
        ("name", "display_text", "sort_key", "domains", "tags", "display_offering")),
}

# ?show= filters: (label, condition, admins only)
FILTERS: dict[str, tuple[str, Q, bool]] = {
    "fixed": ("Fixed size", Q(customized=False), False),
    "custom": ("Customized", Q(customized=True), False),
    "public": ("Public", Q(domains__isnull=True), True),
    "domain": ("For domains", Q(domains__isnull=False), True),
}


def _kind(kind: str) -> OfferingKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise Http404("No such page") from None


def may_manage(caller, offering) -> bool:
    try:
        offerings.require_manage(caller, offering, "change")
    except ApiError:
        return False
    return True


def describe(offering) -> Any:
    """Display values of an offering (its domains prefetched)."""
    if isinstance(offering, ServiceOffering):
        if offering.customized:
            cpus = (f"{offering.min_cpu_number}–{offering.max_cpu_number}" if offering.is_constrained else "any")
            memory = (f"{format_bytes(offering.min_memory << 20)}–{format_bytes(offering.max_memory << 20)}"
                      if offering.is_constrained else "any")
        else:
            cpus, memory = str(offering.cpu_number), format_bytes((offering.memory or 0) << 20)
        offering.cpus_text, offering.memory_text = cpus, memory
        offering.speed_text = f"{offering.cpu_speed} MHz" if offering.cpu_speed else "—"
        offering.disk_text = f"{offering.root_disk_size} GiB" if offering.root_disk_size else "template's size"
    else:
        offering.size_text = (f"chosen at creation ({offering.min_size}–{offering.max_size} GiB)"
                              if offering.customized else f"{offering.disk_size} GiB")
    offering.domain_list = list(offering.domains.all())
    return offering


def _visible(caller, kind: OfferingKind):
    """What the caller may see: what it may use, and (admins) what they manage in their subtree."""
    return offerings.offerings_for(caller, kind.model, recursive=is_admin(caller))


def _domains(caller):
    return Domain.objects.visible_to(caller).order_by("path")


@login_required
def offering_list(request, kind: str):
    kind = _kind(kind)
    caller = request.user
    admin = is_admin(caller)
    query = search_query(request)
    rows = keyword_filter(_visible(caller, kind), query, "name", "display_text")
    show = Filter("show", f"Filter {kind.title.lower()}", tuple(
        (key, label, Q(pk__in=kind.model.objects.filter(condition).values("pk")))
        for key, (label, condition, admin_only) in FILTERS.items() if admin or not admin_only))
    filtered = filter_rows(request, rows, (show,))
    rows = filtered.rows
    rows, headers = sort(request, rows.prefetch_related("domains"), kind.columns, "order")
    page = paginate(request, rows)
    for offering in page.object_list:
        describe(offering)
    return render(request, "compute/offering_list.html", {
        "kind": kind, "page": page, "headers": headers, "query": query, "show": filtered.active,
        "filter_chips": filtered.chips, "ignored": filtered.ignored,
        "may_create": admin, "other": KINDS["disk" if kind.key == "service" else "service"],
    })


@admin_required
@require_http_methods(["GET", "POST"])
def offering_create(request, kind: str):
    kind = _kind(kind)
    caller = request.user
    initial = {} if caller.account.is_root_admin else {"domains": [caller.account.domain.uuid]}
    form = kind.create_form(request.POST if request.method == "POST" else None, domains=_domains(caller),
                            initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            offering = kind.create(caller, **form.service_kwargs())
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"{kind.singular.capitalize()} {offering.name} created.")
            return redirect(kind.url("", offering.uuid))
    return render(request, "compute/offering_form.html", {"kind": kind, "form": form})


def _offering(request, kind: OfferingKind):
    def get(uuid):
        return get_object_or_404(kind.model.objects.visible_to(request.user).prefetch_related("domains"), uuid=uuid)

    return get


def _edit_form(kind: OfferingKind, caller, offering, data=None):
    initial = {name: getattr(offering, name) for name in kind.edit_fields if name != "domains"}
    initial["domains"] = [d.uuid for d in offering.domains.all()]
    return kind.edit_form(data, domains=_domains(caller), initial=initial)


def _detail_page(request, kind: OfferingKind, offering, *, form=None, error: str = "", status: int = 200):
    from .views_instances import visible_vms

    caller = request.user
    manage = may_manage(caller, offering)
    vms = None
    if kind.model is ServiceOffering:
        used = visible_vms(caller).filter(service_offering=offering).select_related("zone", "account")
        vms = {"count": used.count(), "rows": list(used.order_by("name", "id")[:10])}
    events = Event.objects.visible_to(caller).filter(resource_uuid=str(offering.uuid)).order_by("-created", "-id")[:10]
    return render(request, "compute/offering_detail.html", {
        "kind": kind, "offering": describe(offering), "manage": manage, "vms": vms, "events": events,
        "form": form if form is not None else (_edit_form(kind, caller, offering) if manage else None),
        "action_error": error,
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def offering_detail(request, kind: str, uuid):
    """The offering; for those who manage it, the edit form, which POSTs here."""
    kind = _kind(kind)
    offering = _offering(request, kind)(uuid)
    if request.method == "GET":
        return _detail_page(request, kind, offering)
    caller = request.user
    if not is_admin(caller):
        raise Http404("No such page")
    form = _edit_form(kind, caller, offering, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        changes = {name: data[name] for name in kind.edit_fields if name != "domains"}
        wanted = list(data["domains"])
        # domains: None leaves them as they are (a domain admin may keep a public offering's)
        changes["domains"] = None if {d.pk for d in wanted} == {d.pk for d in offering.domains.all()} else wanted
        try:
            kind.update(caller, offering, **changes)
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"{kind.singular.capitalize()} {data['name']} updated.")
            return redirect(kind.url("", offering.uuid))
    return _detail_page(request, kind, offering, form=form)


@admin_required
@require_POST
def offering_delete(request, kind: str, uuid) -> HttpResponse:
    kind = _kind(kind)
    offering = _offering(request, kind)(uuid)
    try:
        kind.delete(request.user, offering)
    except ApiError as exc:
        return _detail_page(request, kind, offering, error=exc.message)
    messages.success(request, f"{kind.singular.capitalize()} {offering.name} deleted.")
    return redirect(kind.url("s"))


@login_required
def offerings_home(request):
    return redirect("service-offerings")
