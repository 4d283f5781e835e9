"""Templates and ISOs UI (every logged-in user, each seeing what it may use): lists per
CloudStack filter (tabs) with live download progress, the register form, the detail page with
the image's zones and their states, and its actions (retry, delete, copy, extract, edit,
permissions).

Lists come from storage.images.services.list_rows (the same filters as listTemplates), a detail
page from Template.objects.visible_to (the one visibility rule: anything else is 404). Each action
is a CSRF-protected POST calling one service function; copying, which can take a while, runs as
the copyTemplate / copyIso async job, whose progress and result the detail page follows. A
refused action shows the service's sentence in place, in the section of the action."""
from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from compute.views import format_bytes
from portal import jobs
from portal.errors import ApiError
from portal.models import AsyncJob, JobStatus
from portal.ui import Column, choose, columns_for, search_query, sort, sort_param
from portal.views import is_admin, paginate

from .forms import CopyForm, EditForm, RegisterForm, ShareForm, VisibilityForm, registrable_zones
from .images import primary
from .images import services as images
from .models import DownloadState, Template, TemplateZone

LIVE_STATES = (DownloadState.NOT_DOWNLOADED, DownloadState.DOWNLOAD_IN_PROGRESS)
POLL_SECONDS = 2


class Kind:
    """What differs between the template pages and the ISO pages."""

    def __init__(self, key: str, is_iso: bool, title: str, singular: str) -> None:
        self.key, self.is_iso, self.title, self.singular = key, is_iso, title, singular

    def url(self, suffix: str, *args: Any) -> str:
        return reverse(f"{self.key}{suffix}", args=args)

    def queryset(self, caller):
        """What the caller may see of this kind: the one visibility rule."""
        qs = Template.objects.visible_to(caller)
        return qs.isos() if self.is_iso else qs.templates()

    def copy_command(self):
        from .commands_images import CopyIso, CopyTemplate

        return CopyIso if self.is_iso else CopyTemplate


KINDS = {
    "templates": Kind("templates", False, "Templates", "template"),
    "isos": Kind("isos", True, "ISOs", "ISO"),
}

# (filter, tab label, admins only), in tab order; the first one a caller may use is its default
TABS = (
    ("featured", "Featured", False),
    ("community", "Community", False),
    ("self", "Mine", False),
    ("sharedexecutable", "Shared with me", False),
    ("all", "All", True),
)


def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise Http404("No such page") from None


def _signature(*parts: Any) -> str:
    return hashlib.blake2s("|".join(str(p) for p in parts).encode(), digest_size=6).hexdigest()


def _row_signature(rows) -> str:
    return _signature(*[(r.pk, r.state, r.percent, r.status_text, r.bytes_done, r.size) for r in rows])


def decorate(row: TemplateZone) -> TemplateZone:
    """Display values of a template-in-a-zone row."""
    row.live = row.state in LIVE_STATES
    row.failed = row.state == DownloadState.DOWNLOAD_ERROR
    row.ready = row.state == DownloadState.DOWNLOADED
    row.state_label = {DownloadState.NOT_DOWNLOADED: "Waiting", DownloadState.DOWNLOAD_IN_PROGRESS: "Downloading",
                       DownloadState.DOWNLOADED: "Ready", DownloadState.DOWNLOAD_ERROR: "Failed"}.get(row.state, row.state)
    size = row.size if row.size is not None else row.template.size
    row.size_text = format_bytes(size) if size else "—"
    row.physical_text = format_bytes(row.physical_size) if row.physical_size else "—"
    if row.state == DownloadState.DOWNLOAD_IN_PROGRESS and row.bytes_total:
        row.progress_detail = f"{format_bytes(row.bytes_done)} of {format_bytes(row.bytes_total)}"
    elif row.state == DownloadState.DOWNLOAD_IN_PROGRESS and row.bytes_done:
        row.progress_detail = f"{format_bytes(row.bytes_done)}"
    else:
        row.progress_detail = ""
    if row.live and row.rate_bps:
        row.progress_detail += f" at {format_bytes(row.rate_bps)}/s"
    return row


# -- lists ------------------------------------------------------------------------------------------
def _tabs(caller) -> list[tuple[str, str]]:
    admin = is_admin(caller)
    return [(key, label) for key, label, admin_only in TABS if admin or not admin_only]


# One row per template and zone: a column's order ends with the other of the two, then the row.
COLUMNS = (Column("name", "Name", ("template__name", "template_id", "zone__name")),
           Column("zone", "Zone", ("zone__name", "template__name", "template_id")),
           Column("format", "Format", ("template__format", "template__hypervisor", "template__name")),
           Column("os", "OS type", ("template__os_type__description", "template__name")),
           Column("owner", "Owner", ("template__account__name", "template__name"), admins_only=True),
           Column("visibility", "Visibility", ("template__is_featured", "template__is_public", "template__name")),
           Column("state", "State", ("state", "template__name")),
           Column("size", "Size", ("shown_size", "template__name")))
DEFAULT_SORT = "name"


def _columns(kind: Kind, admin: bool):
    return tuple(c for c in columns_for(COLUMNS, admin=admin) if not (kind.is_iso and c.key == "format"))


def _list_context(request, kind: Kind) -> dict[str, Any]:
    caller = request.user
    show_owner = is_admin(caller)
    columns = _columns(kind, show_owner)
    tabs = _tabs(caller)
    keys = [key for key, _ in tabs]
    current, ignored = choose(request, "filter", keys, "all" if "all" in keys else keys[0])
    query = search_query(request)
    rows = images.list_rows(caller, is_iso=kind.is_iso, filter=current, params={"keyword": query} if query else {})
    # the size shown: the zone's copy's, else the template's
    rows, headers = sort(request, rows.annotate(shown_size=Coalesce("size", "template__size")), columns, DEFAULT_SORT)
    page = paginate(request, rows)
    for row in page.object_list:
        decorate(row)
    # the live body polls the rows shown: the same tab, search, order and page
    order = sort_param(request, columns, DEFAULT_SORT)
    state = {"filter": current, **({"q": query} if query else {}), **({"sort": order} if order else {}),
             **({"page": request.GET["page"]} if request.GET.get("page") else {})}
    return {
        "kind": kind, "page": page, "query": query, "current": current, "headers": headers,
        # a tab keeps the search and the order (and goes back to page 1)
        "tabs": [{"key": key, "label": label, "url": kind.url("") + "?" + urlencode(
                      {"filter": key, **({"q": query} if query else {}), **({"sort": order} if order else {})}),
                  "current": key == current} for key, label in tabs],
        "ignored": ignored,
        "show_owner": show_owner,
        "live": any(row.live for row in page.object_list),
        "rows_url": kind.url("-rows") + "?" + urlencode(state),
        "signature": _row_signature(page.object_list),
    }


@login_required
def image_list(request, kind: str):
    kind_ = _kind(kind)
    return render(request, "storage/image_list.html", _list_context(request, kind_))


@login_required
@never_cache
@require_GET
def image_rows(request, kind: str):
    """The table body of a list, polled every 2 s while a shown row downloads; 204 (nothing to
    swap) while nothing changed since the version the page shows (?seen=)."""
    context = _list_context(request, _kind(kind))
    if request.GET.get("seen") == context["signature"]:
        return HttpResponse(status=204)
    return render(request, "storage/_image_rows.html", context)


# -- register ---------------------------------------------------------------------------------------
@login_required
@require_http_methods(["GET", "POST"])
def image_register(request, kind: str):
    kind_ = _kind(kind)
    caller = request.user
    form = RegisterForm(request.POST if request.method == "POST" else None, caller=caller, is_iso=kind_.is_iso)
    if request.method == "POST" and form.is_valid():
        try:
            rows = images.register(caller, **form.service_kwargs())
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            template = rows[0].template if rows else _just_registered(caller, form.cleaned_data["name"], kind_)
            messages.success(request, f"{kind_.singular.capitalize()} {template.name} registered"
                                      + (": downloading." if rows else "."))
            return redirect(kind_.url("-detail", template.uuid))
    return render(request, "storage/image_form.html", {"form": form, "kind": kind_,
                                                       "no_zones": len(form.fields["zone"].choices) == 1})


def _just_registered(caller, name: str, kind: Kind) -> Template:
    """register() returns the zone rows; with none (a root admin registering for every zone
    before any zone has secondary storage) the template is the caller's newest of that name."""
    return kind.queryset(caller).filter(account=caller.account, name=name.strip()).order_by("-id").first()


# -- detail -----------------------------------------------------------------------------------------
def _template(request, kind: Kind, uuid) -> Template:
    return get_object_or_404(kind.queryset(request.user).select_related("account__domain", "os_type"), uuid=uuid)


def _latest_job(caller, template: Template) -> AsyncJob | None:
    return (AsyncJob.objects.visible_to(caller).filter(instance_uuid=str(template.uuid), instance_type__in=("Template", "Iso"))
            .order_by("-created", "-id").first())


def _zones_context(request, kind: Kind, template: Template) -> dict[str, Any]:
    caller = request.user
    rows = list(template.zones.select_related("zone", "store").order_by("zone__name", "zone_id"))
    for row in rows:
        row.template = template  # the one already loaded, not a query per row
        decorate(row)
    job = _latest_job(caller, template)
    job_pending = job is not None and job.status == JobStatus.PENDING
    return {
        "kind": kind, "template": template, "rows": rows, "job": job, "can_manage": images.can_manage(caller, template),
        "is_root": caller.account.is_root_admin,
        "live": job_pending or any(row.live for row in rows),
        "zones_signature": _signature(_row_signature(rows), job and job.pk, job and job.status, job and job.progress),
        "multi_zone": len(rows) > 1,
    }


def _detail_page(request, kind: Kind, template: Template, *, error: str = "", error_for: str = "",
                 extracted: dict | None = None, forms: dict[str, Any] | None = None) -> HttpResponse:
    caller = request.user
    context = _zones_context(request, kind, template)
    can_manage = context["can_manage"]
    held = {row.zone_id for row in context["rows"] if not row.failed}
    copy_zones = [zone for zone in registrable_zones(caller) if zone.pk not in held] if can_manage else []
    forms = forms or {}
    context.update({
        "show_owner": is_admin(caller),
        "url_text": _redacted(template.url) if can_manage else "",
        "size_text": format_bytes(template.size) if template.size else "—",
        "copy_zones": copy_zones,
        "copy_form": forms.get("copy") or CopyForm(zones=copy_zones, auto_id="id_copy_%s"),
        "visibility_form": forms.get("visibility") or VisibilityForm(
            caller=caller, auto_id="id_perm_%s",
            initial={"is_public": template.is_public, "is_featured": template.is_featured,
                     "is_extractable": template.is_extractable}),
        "share_form": forms.get("share") or ShareForm(auto_id="id_share_%s"),
        "edit_form": forms.get("edit") or EditForm(is_iso=kind.is_iso, auto_id="id_edit_%s", initial={
            "name": template.name, "display_text": template.display_text, "os_type": template.os_type,
            "password_enabled": template.password_enabled, "sshkey_enabled": template.sshkey_enabled,
            "bootable": template.bootable}),
        "shared_with": images.permitted_accounts(template) if can_manage else [],
        "may_extract": _allowed(images.check_extract, caller, template),
        "pool_copies": primary.pool_copies(template) if caller.account.is_root_admin else None,
        "action_error": error, "extracted": extracted,
    })
    # An action's sentence shows in the section of the action, or under the heading when the
    # caller does not get that section (someone posting what the page does not offer them).
    shown = {"retry": True, "delete": can_manage, "copy": can_manage, "extract": context["may_extract"],
             "visibility": can_manage, "share": can_manage, "edit": can_manage}
    context["error_for"] = error_for if shown.get(error_for) else "page"
    for copy in context["pool_copies"] or []:
        copy.size_text = format_bytes(copy.size) if copy.size else "—"
        copy.physical_text = format_bytes(copy.physical_size) if copy.physical_size else "—"
    return render(request, "storage/image_detail.html", context)


def _allowed(check, *args) -> bool:
    """Does the service's check (raising its sentence when refused) allow this?"""
    try:
        check(*args)
    except ApiError:
        return False
    return True


def _redacted(url: str) -> str:
    from .images.transfer import redact_url

    return redact_url(url)


@login_required
def image_detail(request, kind: str, uuid):
    kind_ = _kind(kind)
    return _detail_page(request, kind_, _template(request, kind_, uuid))


@login_required
@never_cache
@require_GET
def image_zones(request, kind: str, uuid):
    """The zones table of a detail page, polled every 2 s while a download or a copy job runs;
    204 (nothing to swap) while nothing changed since the version the page shows (?seen=)."""
    kind_ = _kind(kind)
    context = _zones_context(request, kind_, _template(request, kind_, uuid))
    if request.GET.get("seen") == context["zones_signature"]:
        return HttpResponse(status=204)
    return render(request, "storage/_image_zones.html", context)


def _zone_row(template: Template, request) -> TemplateZone | None:
    """The template's row in the zone the form names (?zone= / POST zone), None when none is named."""
    value = request.POST.get("zone", "")
    if not value:
        return None
    row = template.zones.select_related("zone", "template").filter(zone__uuid=value).first() \
        if _is_uuid(value) else None
    if row is None:
        raise Http404("No such zone")
    return row


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@login_required
@require_POST
def image_action(request, kind: str, uuid, action: str):
    kind_ = _kind(kind)
    template = _template(request, kind_, uuid)
    caller = request.user
    what = f"{kind_.singular.capitalize()} {template.name}"
    detail = kind_.url("-detail", template.uuid)
    handlers = {"retry": _retry, "delete": _delete, "copy": _copy, "extract": _extract, "edit": _edit,
                "visibility": _visibility, "share": _share}
    if action not in handlers:
        raise Http404("No such action")
    try:
        return handlers[action](request, kind_, template, caller, what, detail)
    except ApiError as exc:
        return _detail_page(request, kind_, template, error=exc.message, error_for=action)


def _retry(request, kind, template, caller, what, detail):
    row = _zone_row(template, request)
    if row is None:
        raise Http404("No such zone")
    images.retry_download(caller, row)
    messages.info(request, f"Downloading {kind.singular} {template.name} into zone {row.zone.name} again…")
    return redirect(detail)


def _delete(request, kind, template, caller, what, detail):
    row = _zone_row(template, request)
    images.delete(caller, template, zone=row.zone if row is not None else None)
    if template.zones.exists():
        messages.success(request, f"{what} deleted from zone {row.zone.name}.")
        return redirect(detail)
    messages.success(request, f"{what} deleted.")
    return redirect(kind.url(""))


def _copy(request, kind, template, caller, what, detail):
    held = set(template.zones.exclude(state=DownloadState.DOWNLOAD_ERROR).values_list("zone_id", flat=True))
    zones = [zone for zone in registrable_zones(caller) if zone.pk not in held]
    form = CopyForm(request.POST, zones=zones, auto_id="id_copy_%s")
    if not form.is_valid():
        return _detail_page(request, kind, template, forms={"copy": form}, error_for="copy",
                            error="Choose a zone to copy to.")
    zone = next(z for z in zones if str(z.uuid) == form.cleaned_data["zone"])
    # Copying moves the whole image between stores (minutes for a large one): the API's async job.
    with transaction.atomic():
        jobs.submit(kind.copy_command(), {"id": str(template.uuid), "destzoneid": str(zone.uuid)}, caller,
                    instance=template)
    messages.info(request, f"Copying {kind.singular} {template.name} to zone {zone.name}…")
    return redirect(detail)


def _extract(request, kind, template, caller, what, detail):
    result = images.extract(caller, template)
    from portal import config

    response = _detail_page(request, kind, template, extracted={
        "url": result["url"], "zone": result.get("zonename", ""),
        "minutes": max(1, int(config.get_value("extract.url.expiration.interval")) // 60)})
    response["Cache-Control"] = "no-store"
    return response


def _edit(request, kind, template, caller, what, detail):
    form = EditForm(request.POST, is_iso=kind.is_iso, auto_id="id_edit_%s")
    if not form.is_valid():
        return _detail_page(request, kind, template, forms={"edit": form}, error_for="edit")
    try:
        images.update(caller, template, **form.service_kwargs())
    except ApiError as exc:
        form.add_service_error(exc)
        return _detail_page(request, kind, template, forms={"edit": form}, error_for="edit")
    messages.success(request, f"{what} updated.")
    return redirect(detail)


def _visibility(request, kind, template, caller, what, detail):
    form = VisibilityForm(request.POST, caller=caller, auto_id="id_perm_%s")
    if not form.is_valid():  # pragma: no cover - checkboxes are always valid
        return _detail_page(request, kind, template, forms={"visibility": form}, error_for="visibility")
    data = form.cleaned_data
    changes = {"is_public": data["is_public"], "is_extractable": data["is_extractable"]}
    if "is_featured" in form.fields:
        changes["is_featured"] = data["is_featured"]
    try:
        images.update_permissions(caller, template, **changes)
    except ApiError as exc:
        return _detail_page(request, kind, template, forms={"visibility": form}, error_for="visibility",
                            error=exc.message)
    messages.success(request, f"Permissions of {kind.singular} {template.name} saved.")
    return redirect(detail)


def _share(request, kind, template, caller, what, detail):
    form = ShareForm(request.POST, auto_id="id_share_%s")
    if not form.is_valid():
        return _detail_page(request, kind, template, forms={"share": form}, error_for="share",
                            error="Choose whether to share, stop sharing or reset.")
    op, names = form.cleaned_data["op"], form.account_names()
    try:
        images.update_permissions(caller, template, op=op, accounts=names)
    except ApiError as exc:
        return _detail_page(request, kind, template, forms={"share": form}, error_for="share", error=exc.message)
    if op == "add":
        messages.success(request, f"{what} shared with {', '.join(names)}.")
    elif op == "remove":
        messages.success(request, f"{what} no longer shared with {', '.join(names)}.")
    else:
        messages.success(request, f"{what} is shared with no account now.")
    return redirect(detail)
