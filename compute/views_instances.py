"""Instances UI (every logged-in user, each seeing the VMs it may see): the list with search, state
and zone filters and live states, the deploy form (zone → template → offering → disk → network →
key pair and user data → name → review), and the detail page with live state, addresses,
volumes, the ISO in its drive, events, the latest job and the actions: the power actions, edit,
change offering, reset password (the new one shown once) and SSH key, reinstall, attach and
detach an ISO.

Lists and pages read the database only (states are written by jobs, never fetched from a host
while a page renders). A VM comes from VirtualMachine.objects.visible_to (anything else is 404).
Deploying and every action go the API's way: the command's parameters validated by the
dispatcher, the command's `check`, then (async commands) the job submitted in one transaction —
deploy's synchronous allocation included — whose progress and result the detail page follows.
A refused action shows the service's sentence in place."""
from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import role_allows
from accounts.models import SSHKeyPair
from portal import jobs
from portal.api import dispatch
from portal.errors import ApiError, Unauthorized
from portal.models import AsyncJob, Event, JobStatus
from portal.ui import Column, chips, columns_for, search_query, sort, sort_param
from portal.views import is_admin, paginate

from . import commands_instances as commands
from . import instances
from .choices import VmState
from .forms_instances import DeployForm, offering_label
from .models import Nic, ServiceOffering, VirtualMachine, Zone
from .views import format_bytes

POLL_SECONDS = 2
LIVE_STATES = (VmState.STARTING, VmState.STOPPING, VmState.EXPUNGING, VmState.MIGRATING)
INSTANCE_TYPE = commands.DeployVirtualMachine.instance_type  # "VirtualMachine"


def _signature(*parts: Any) -> str:
    return hashlib.blake2s("|".join(str(p) for p in parts).encode(), digest_size=6).hexdigest()


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def visible_vms(caller):
    """The VMs the caller may see and that are not expunged: the one visibility rule."""
    return VirtualMachine.objects.visible_to(caller).filter(removed__isnull=True)


def decorate(vm: VirtualMachine) -> VirtualMachine:
    """Display values of a VM (its NICs prefetched)."""
    vm.live = vm.state in LIVE_STATES
    nics = list(vm.nics.all())
    default = next((nic for nic in nics if nic.is_default), nics[0] if nics else None)
    vm.ip_address = default.address.address if default is not None and default.address_id else ""
    return vm


# -- list -------------------------------------------------------------------------------------------
COLUMNS = (Column("name", "Name", ("name",)), Column("state", "State", ("state",)),
           Column("zone", "Zone", ("zone__name",)), Column("ip", "IP address"),
           Column("template", "Template", ("template__name",)),
           Column("offering", "Offering", ("service_offering__name",)),
           Column("host", "Host", ("host__name",), root_only=True),
           Column("owner", "Owner", ("account__name",), admins_only=True),
           Column("created", "Created (UTC)", ("created",)))
DEFAULT_SORT = "-created"


def _list_context(request) -> dict[str, Any]:
    caller = request.user
    show_host = caller.account.is_root_admin
    show_owner = is_admin(caller)
    columns = columns_for(COLUMNS, admin=show_owner, root=show_host)
    query = search_query(request)
    vms = visible_vms(caller)
    zones = Zone.objects.filter(Q(pk__in=vms.values("zone_id")) | Q(pk__in=Zone.objects.visible_to(caller)
                                                                      .values("pk"))).order_by("name", "id")
    state = request.GET.get("state", "")
    if state:
        if state not in VmState.values:
            raise Http404("No such state")
        vms = vms.filter(state=state)
    zone_value = request.GET.get("zone", "")
    zone = None
    if zone_value:
        zone = next((z for z in zones if str(z.uuid) == zone_value), None) if _is_uuid(zone_value) else None
        if zone is None:
            raise Http404("No such zone")
        vms = vms.filter(zone=zone)
    if query:
        matches = Q(name__icontains=query) | Q(display_name__icontains=query) | Q(
            pk__in=Nic.objects.filter(address__address__startswith=query).values("virtual_machine_id"))
        if _is_uuid(query):
            matches |= Q(uuid=query)
        vms = vms.filter(matches)
    vms = vms.select_related("zone", "host", "template", "service_offering", "account__domain").prefetch_related(
        Prefetch("nics", queryset=Nic.objects.select_related("address")))
    vms, headers = sort(request, vms, columns, DEFAULT_SORT)
    page = paginate(request, vms)
    for vm in page.object_list:
        decorate(vm)
    # the live body polls the rows shown: the same filters, search, order and page
    state_params = {key: value for key, value in (("state", state), ("zone", zone_value), ("q", query),
                                                  ("sort", sort_param(request, columns, DEFAULT_SORT)),
                                                  ("page", request.GET.get("page", ""))) if value}
    return {
        "page": page, "query": query, "state": state, "zone": zone, "zones": zones, "headers": headers,
        "chips": chips(request, "state", [(value, value) for value in VmState.values if value != VmState.EXPUNGING],
                       "Filter instances by state", current=state),
        "show_host": show_host, "show_owner": show_owner,
        "live": any(vm.live for vm in page.object_list),
        "rows_url": reverse("instance-rows") + ("?" + urlencode(state_params) if state_params else ""),
        "signature": _signature(*[(vm.pk, vm.state, vm.ip_address, vm.host_id) for vm in page.object_list]),
        "poll_seconds": POLL_SECONDS,
    }


@login_required
def instance_list(request):
    return render(request, "compute/instance_list.html", _list_context(request))


@login_required
@never_cache
@require_GET
def instance_rows(request):
    """The table body of the list, polled every 2 s while a shown VM is in a transitional state;
    204 (nothing to swap) while nothing changed since the version the page shows (?seen=). Once
    nothing shown is transitional, the body it answers polls no more."""
    context = _list_context(request)
    if request.GET.get("seen") == context["signature"]:
        return HttpResponse(status=204)
    return render(request, "compute/_instance_rows.html", context)


# -- deploy -----------------------------------------------------------------------------------------
def _allowed_command(caller, command_cls) -> None:
    """The API's role check (roles and their permission rules), with the API's sentence."""
    if not role_allows(caller.account.role, command_cls.name, command_cls.roles):
        raise Unauthorized(f"The given command '{command_cls.name}' either does not exist, is not available for user.")


def _validated(command_cls, raw: dict[str, str], caller) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, params) of a command, exactly as the API endpoint makes them from a request."""
    _allowed_command(caller, command_cls)
    data = dispatch.normalise(raw, command_cls.name)
    return data, dispatch.validate(command_cls, data, caller)


def _deploy(request, form: DeployForm) -> VirtualMachine:
    """deployVirtualMachine as the API runs it (portal.api.views.execute): check, then the
    synchronous allocation and the job in one transaction; the job starts the VM after commit."""
    caller = request.user
    data, params = _validated(commands.DeployVirtualMachine, form.api_data(), caller)
    command = commands.DeployVirtualMachine(caller, request=request)
    command.check(params)
    with transaction.atomic():
        vm = command.create(params)
        jobs.submit(commands.DeployVirtualMachine, data, caller, instance=vm)
    return vm


def _form_page(request, form: DeployForm, *, review: bool = False) -> HttpResponse:
    return render(request, "compute/instance_form.html", {
        "form": form, "review": review, "rows": form.review_rows() if review else [],
        "network": form.network, "no_zones": not form.zones,
        "no_templates": form.current_zone is not None and not form.templates,
        "is_root": request.user.account.is_root_admin,
    })


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def instance_create(request):
    """One page in sections. "Review" checks the answers as the API would and shows them; "Deploy"
    deploys and goes to the VM's page; "Change" (or choosing another zone without scripts) shows
    the answers again for editing. With scripts, choosing a zone refreshes the template choices
    and the network section in place (htmx, from this same page)."""
    caller = request.user
    step = request.POST.get("step", "")
    if request.method == "GET" or step in ("edit", "zone"):
        initial = request.POST.dict() if request.method == "POST" else {"zone": request.GET.get("zone", "")}
        initial.pop("csrfmiddlewaretoken", None)
        return _form_page(request, DeployForm(caller=caller, initial=initial))
    form = DeployForm(request.POST, caller=caller)
    if not form.is_valid():
        return _form_page(request, form)
    try:
        if step == "deploy":
            vm = _deploy(request, form)
            messages.info(request, f"Deploying VM {vm.name}…")
            return redirect("instance-detail", uuid=vm.uuid)
        _validated(commands.DeployVirtualMachine, form.api_data(), caller)
        instances.hostname_value(form.api_data().get("name"), "")  # the name's syntax, before the review
    except ApiError as exc:
        form.add_service_error(exc)
        return _form_page(request, form)
    return _form_page(request, form, review=True)


# -- detail -----------------------------------------------------------------------------------------
def _vm(request, uuid) -> VirtualMachine:
    return get_object_or_404(visible_vms(request.user).select_related(
        "zone", "pod", "host", "last_host", "template__os_type", "iso", "service_offering", "account__domain"),
        uuid=uuid)


def _latest_job(caller, vm: VirtualMachine) -> AsyncJob | None:
    return (AsyncJob.objects.visible_to(caller).filter(instance_type=INSTANCE_TYPE, instance_uuid=str(vm.uuid))
            .order_by("-created", "-id").first())


def _may_expunge(caller) -> bool:
    try:
        instances.check_expunge(caller)
    except ApiError:
        return False
    return True


# (action, button label, the states it is offered in, button class, confirmation)
ACTIONS: tuple[tuple[str, str, tuple[str, ...], str, str], ...] = (
    ("start", "Start", (VmState.STOPPED,), "", ""),
    ("stop", "Stop", (VmState.RUNNING,), "secondary", "Stop VM {name}? The guest is asked to shut down."),
    ("force-stop", "Force stop", (VmState.RUNNING,), "secondary outline",
     "Force stop VM {name}? It is powered off at once, like pulling the plug."),
    ("reboot", "Reboot", (VmState.RUNNING,), "secondary", "Reboot VM {name}?"),
    ("destroy", "Destroy", (VmState.RUNNING, VmState.STOPPED, VmState.ERROR), "nubo-danger",
     "Destroy VM {name}? It is stopped and removed{later}."),
    ("recover", "Recover", (VmState.DESTROYED,), "", ""),
    ("expunge", "Expunge", (VmState.DESTROYED,), "nubo-danger",
     "Expunge VM {name}? Its disks are deleted; this cannot be undone."),
)


def _actions(caller, vm: VirtualMachine) -> list[dict[str, str]]:
    may_expunge = _may_expunge(caller)
    later = " after the expunge delay; an administrator may recover it until then" if not may_expunge else \
        " after the expunge delay; it can be recovered until then"
    out = []
    for key, label, states, css, confirm in ACTIONS:
        if vm.state not in states or (key in ("recover", "expunge") and not may_expunge):
            continue
        out.append({"key": key, "label": label, "class": css, "confirm": confirm.format(name=vm.name, later=later),
                    "url": reverse("instance-action", args=[vm.uuid, key])})
    return out


def _offerings_for(vm: VirtualMachine) -> list[ServiceOffering]:
    """Service offerings the VM's owner may use: the fixed ones other than the VM's own, and the
    customized ones (the VM's own too: new sizes are a change)."""
    return list(ServiceOffering.objects.usable_by(vm.account).filter(is_system=False)
                .exclude(pk=vm.service_offering_id, customized=False).order_by("sort_key", "name", "id"))


def _ready_in_zone(vm: VirtualMachine):
    """Templates and ISOs the VM's owner may use that are Ready in the VM's zone."""
    from storage.models import DownloadState, Template, TemplateZone

    ready = TemplateZone.objects.filter(zone=vm.zone, state=DownloadState.DOWNLOADED).values("template_id")
    return Template.objects.usable_by(vm.account).filter(pk__in=ready).order_by("name", "id")


def _grows_to(offering: ServiceOffering, vm: VirtualMachine) -> bool:
    """Whether a running VM may scale up to `offering` (larger, within its room, as the job checks it)."""
    try:
        instances.check_live_scaling(vm, offering.cpu_number, offering.cpu_speed, offering.memory)
    except ApiError:
        return False
    return True


def _forms(vm: VirtualMachine, posted: dict[str, str] | None = None) -> dict[str, Any]:
    """The choices of the forms the VM's state offers (read only when offered); `posted`: the
    answers of a refused form, shown again."""
    from storage.models import ImageFormat

    posted = posted or {}
    stopped = vm.state == VmState.STOPPED
    manageable = stopped or vm.state == VmState.RUNNING
    scalable = instances.live_scalable(vm)  # running with room to grow: its offering changes live
    out: dict[str, Any] = {"stopped": stopped, "manageable": manageable, "scalable": scalable,
                           "reinstall": manageable and not vm.template.is_iso}
    if manageable:  # with an ISO in the drive, attaching another replaces it (attachIso's forced)
        out["isos"] = [(iso.uuid, iso.name) for iso in _ready_in_zone(vm).filter(format=ImageFormat.ISO)
                       .exclude(pk=vm.iso_id or 0)]
        if vm.iso_id:
            out["replace_confirm"] = f"Replace ISO {vm.iso.name} in the CD-ROM drive of VM {vm.name}?"
    if out["reinstall"]:
        chosen = posted.get("templateid") or str(vm.template.uuid)
        out["templates"] = [(str(t.uuid), t.name, str(t.uuid) == chosen)
                            for t in _ready_in_zone(vm).exclude(format=ImageFormat.ISO)]
        restart = ", and it is started again" if vm.state == VmState.RUNNING else ""
        out["reinstall_confirm"] = (f"Reinstall VM {vm.name}? Its root disk is replaced by a fresh copy of the "
                                    f"chosen template (now {vm.template.name}): everything on it is lost{restart}.")
    if stopped or scalable:  # running: only what the scaling job would accept (a customized one: sizes asked)
        chosen = posted.get("serviceofferingid") or str(vm.service_offering.uuid)  # its own, when customized
        offerings = [o for o in _offerings_for(vm) if stopped or o.customized or _grows_to(o, vm)]
        out["offerings"] = [(o.uuid, offering_label(o), o.customized, str(o.uuid) == chosen) for o in offerings]
        # a customized offering's sizes (changeServiceForVirtualMachine's details), the VM's by default
        out["custom"] = any(o.customized for o in offerings)
        out["sizes"] = {key: posted.get(f"details[0].{key}", value) for key, value in
                        (("cpuNumber", vm.cpu_number), ("cpuSpeed", vm.cpu_speed), ("memory", vm.memory))}
    if stopped:
        out["keypairs"] = list(SSHKeyPair.objects.filter(account=vm.account).order_by("name", "id")
                               .values_list("name", flat=True))
    return out


def _new_password(request, job: AsyncJob | None) -> str:
    """The password set by the reset this session asked for, once its job succeeded: shown once
    (the job's result carries it, as queryAsyncJobResult answers it)."""
    if job is None or job.status != JobStatus.SUCCEEDED or request.session.get(REVEAL_KEY) != str(job.uuid):
        return ""
    del request.session[REVEAL_KEY]
    return ((job.result or {}).get("virtualmachine") or {}).get("password") or ""


def _live_context(request, vm: VirtualMachine) -> dict[str, Any]:
    from storage.models import Volume

    caller = request.user
    nics = list(vm.nics.select_related("address__ip_range", "network").order_by("device_id", "id"))
    volumes = list(Volume.objects.filter(virtual_machine=vm, removed__isnull=True).select_related("pool")
                   .order_by("device_id", "id"))
    for volume in volumes:
        volume.size_text = format_bytes(volume.size) if volume.size else "—"
    events = list(Event.objects.visible_to(caller).filter(resource_uuid=str(vm.uuid)).order_by("-created", "-id")[:10])
    job = _latest_job(caller, vm)
    job_pending = job is not None and job.status == JobStatus.PENDING
    vm.live = vm.state in LIVE_STATES
    return {
        "vm": vm, "nics": nics, "volumes": volumes, "events": events, "job": job,
        "is_root": caller.account.is_root_admin, "show_owner": is_admin(caller),
        "live": vm.live or job_pending, "actions": _actions(caller, vm), "poll_seconds": POLL_SECONDS,
        "forms": _forms(vm), "new_password": _new_password(request, job),
        "signature": _signature(vm.state, vm.state_reason, vm.host_id, vm.pod_id,
                                [(n.pk, n.address_id) for n in nics], [(v.pk, v.state, v.size) for v in volumes],
                                events[0].pk if events else None, job and job.pk, job and job.status,
                                job and job.progress, job and job.progress_text),
    }


def _detail_page(request, vm: VirtualMachine, *, error: str = "", action: str = "") -> HttpResponse:
    """The VM's page; a refused action's sentence is shown in its form (one of FORM_ACTIONS), else
    at the top, and the form shows the answers it was given."""
    context = _live_context(request, vm)
    context["action_error"] = error
    if error and action in FORM_ACTIONS:
        context["forms"] = forms = _forms(vm, request.POST.dict())
        shown = {"update": True, "change-offering": bool(forms.get("offerings")), "attach-iso": bool(forms.get("isos")),
                 "reinstall": forms["reinstall"]}
        context["error_action"] = action if shown.get(action) else ""
    return render(request, "compute/instance_detail.html", context)


@login_required
@never_cache  # a reset password is shown on it once: never kept by a cache
def instance_detail(request, uuid):
    return _detail_page(request, _vm(request, uuid))


@login_required
@never_cache
@require_GET
def instance_status(request, uuid):
    """The live part of the VM page (state, addresses, volumes, job, actions, events), polled every
    2 s while the VM is transitional or a job on it runs; 204 (nothing to swap) while nothing
    changed since the version the page shows (?seen=)."""
    context = _live_context(request, _vm(request, uuid))
    if request.GET.get("seen") == context["signature"]:
        return HttpResponse(status=204)
    return render(request, "compute/_instance_live.html", context)


# action -> (API command, extra parameters, what the message says while it runs)
ASYNC_ACTIONS: dict[str, tuple[type, dict[str, str], str]] = {
    "start": (commands.StartVirtualMachine, {}, "Starting"),
    "stop": (commands.StopVirtualMachine, {}, "Stopping"),
    "force-stop": (commands.StopVirtualMachine, {"forced": "true"}, "Stopping (forced)"),
    "reboot": (commands.RebootVirtualMachine, {}, "Rebooting"),
    "destroy": (commands.DestroyVirtualMachine, {}, "Destroying"),
    "expunge": (commands.ExpungeVirtualMachine, {}, "Expunging"),
}


# action -> (API command, the parameter naming the VM, the parameters the form answers, the message:
# while its job runs for an async command, once done for a synchronous one)
FORM_ACTIONS: dict[str, tuple[type, str, tuple[str, ...], str]] = {
    "update": (commands.UpdateVirtualMachine, "id", ("displayname", "group"), "VM {name} updated."),
    "change-offering": (commands.ChangeServiceForVirtualMachine, "id",
                        ("serviceofferingid", "details[0].cpuNumber", "details[0].cpuSpeed", "details[0].memory"),
                        "VM {name} now has offering {offering}."),
    "reset-password": (commands.ResetPasswordForVirtualMachine, "id", (), "Resetting the password of VM {name}…"),
    "reset-ssh-key": (commands.ResetSSHKeyForVirtualMachine, "id", ("keypair",),
                      "Resetting the SSH key of VM {name}…"),
    "reinstall": (commands.RestoreVirtualMachine, "virtualmachineid", ("templateid",), "Reinstalling VM {name}…"),
    "attach-iso": (commands.AttachIso, "virtualmachineid", ("id", "forced"), "Attaching the ISO to VM {name}…"),
    "detach-iso": (commands.DetachIso, "virtualmachineid", (), "Detaching the ISO of VM {name}…"),
}
REVEAL_KEY = "nubo.vm.reveal_password"  # the session's resetPasswordForVirtualMachine job whose password is due


def _submit(request, command_cls, raw: dict[str, str]) -> AsyncJob | None:
    """A VM command as the API runs it: validated, checked at once, then the job (async) or the
    command executed in one transaction (synchronous: None)."""
    caller = request.user
    data, params = _validated(command_cls, raw, caller)
    command = command_cls(caller, request=request)
    command.check(params)
    with transaction.atomic():
        if not command_cls.is_async:
            command.execute(params)
            return None
        return jobs.submit(command_cls, data, caller, instance=command.instance_of(params))


def _form_action(request, vm: VirtualMachine, action: str) -> AsyncJob | None:
    """A form's action: its answers become the command's parameters as the API would get them."""
    command_cls, vm_param, fields, message = FORM_ACTIONS[action]
    if action == "change-offering" and instances.live_scalable(vm):  # running: scaled up live, as a job
        command_cls, message = commands.ScaleVirtualMachine, "Scaling VM {name} up…"
    # a size left empty is not given (the offering's, or the API's sentence asking for it)
    raw = {field: request.POST[field] for field in fields
           if field in request.POST and (request.POST[field].strip() or not field.startswith("details["))}
    job = _submit(request, command_cls, {vm_param: str(vm.uuid), **raw})
    if action == "reset-password":
        request.session[REVEAL_KEY] = str(job.uuid)
    vm.refresh_from_db()
    text = message.format(name=vm.name, offering=vm.service_offering.name)
    (messages.info if job is not None else messages.success)(request, text)
    return job


@login_required
@require_POST
def instance_action(request, uuid, action: str):
    vm = _vm(request, uuid)
    caller = request.user
    if action not in ASYNC_ACTIONS and action not in FORM_ACTIONS and action != "recover":
        raise Http404("No such action")
    detail = reverse("instance-detail", args=[vm.uuid])
    try:
        if action in FORM_ACTIONS:
            _form_action(request, vm, action)
            return redirect(detail)
        if action == "recover":  # recoverVirtualMachine is synchronous
            _allowed_command(caller, commands.RecoverVirtualMachine)
            instances.recover(caller, vm)
            messages.success(request, f"VM {vm.name} recovered: it is Stopped.")
            return redirect(detail)
        command_cls, extra, doing = ASYNC_ACTIONS[action]
        _submit(request, command_cls, {"id": str(vm.uuid), **extra})
    except ApiError as exc:
        return _detail_page(request, vm, error=exc.message, action=action)
    messages.info(request, f"{doing} VM {vm.name}…")
    if action == "expunge":  # once expunged, the VM's page is gone
        return redirect("instances")
    return redirect(detail)
