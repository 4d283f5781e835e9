"""Infrastructure UI (root admin only; 404 for everyone else): the overview with counts and
states, list and detail pages of zones, pods, clusters, hosts, primary and secondary storage,
their actions, and the basic-installation wizard with its live progress page.

Pages read the database only (host states are synced by the monitoring job, never fetched from
a hypervisor while a page renders). Each action is a CSRF-protected POST calling one service
function (or submitting one async job); a refused action shows the service's sentence in place,
next to the actions of the object."""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Any, Callable

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from portal import jobs
from portal.errors import ApiError
from portal.models import AsyncJob, JobStatus
from portal.api.listing import keyword_filter
from portal.ui import Column, chips, search_query, sort
from portal.ui import root_admin_required as portal_root_admin_required
from portal.views import paginate

from . import services, wizard
from .capacity import CapacityRow, capacities
from .choices import AllocationState, CapacityType, Emulation, HostState, Hypervisor, ResourceState
from .forms import (
    ClusterStepForm,
    DeleteHostForm,
    EmulationForm,
    GuestRangeStepForm,
    HostStepForm,
    PodStepForm,
    PrimaryStorageStepForm,
    SecondaryStorageStepForm,
    ZoneStepForm,
)
from .models import Alert, Cluster, Host, Pod, VlanIpRange, Zone

# The main navigation marks "Infrastructure" itself (templates/portal/base.html); this section
# name matches no other entry, so "Dashboard" (/client/) is not marked current on these pages.
NAV_SECTION = "infrastructure"
MAINTENANCE_STATES = (ResourceState.MAINTENANCE, ResourceState.PREPARE_FOR_MAINTENANCE,
                      ResourceState.ERROR_IN_MAINTENANCE)


def root_admin_required(view: Callable) -> Callable:
    """Logged in, and a root admin (anyone else gets 404); the page is in the Infrastructure section."""

    @portal_root_admin_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        request.nubo_section = NAV_SECTION
        return view(request, *args, **kwargs)

    return wrapped


# -- formatting -------------------------------------------------------------------------------------
def format_bytes(value: int | float | None) -> str:
    value = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover


def format_mhz(value: int | float | None) -> str:
    value = float(value or 0)
    return f"{value / 1000:.2f} GHz" if value >= 1000 else f"{value:.0f} MHz"


def _percent(part: int | float, total: int | float) -> float:
    return round(float(part) * 100.0 / float(total), 1) if total else 0.0


@dataclass
class Bar:
    label: str
    value: int
    total: int
    text: str

    @property
    def percent(self) -> float:
        return _percent(self.value, self.total)

    @property
    def level(self) -> str:
        return "high" if self.percent >= 90 else "medium" if self.percent >= 75 else "low"


@dataclass
class Capacity:
    name: str
    bars: list[Bar]
    empty: str  # shown when there is no capacity of this kind yet

    @property
    def has_total(self) -> bool:
        return any(bar.total for bar in self.bars)


def capacity_panel(rows: list[CapacityRow], *, secondary: bool = True, guest_ips: bool = True) -> list[Capacity]:
    """The capacity bars of a zone or cluster, from compute.capacity's rows (one per type)."""
    by_type = {row.type: row for row in rows}

    def row(kind: int) -> CapacityRow:
        return by_type.get(kind) or CapacityRow(kind)

    def bars(kind: int, of: Callable[[int, int], str], *, allocated: bool = True, used: bool = True) -> list[Bar]:
        r = row(kind)
        out = []
        if allocated:
            out.append(Bar("Allocated", r.allocated, r.total, f"{of(r.allocated, r.total)} allocated"))
        if used:
            out.append(Bar("Used", r.used, r.total, f"{of(r.used, r.total)} used"))
        return out

    def mhz(value: int, total: int) -> str:
        return f"{format_mhz(value)} of {format_mhz(total)}"

    def size(value: int, total: int) -> str:
        return f"{format_bytes(value)} of {format_bytes(total)}"

    def addresses(value: int, total: int) -> str:
        return f"{value} of {total} addresses"

    panel = [
        Capacity("CPU", bars(CapacityType.CPU, mhz), "No CPU yet: add a host"),
        Capacity("Memory", bars(CapacityType.MEMORY, size), "No memory yet: add a host"),
        # allocated counts against the overprovisioned total, used against the real size
        Capacity("Primary storage", bars(CapacityType.STORAGE_ALLOCATED, size, used=False)
                 + bars(CapacityType.STORAGE, size, allocated=False), "No primary storage yet"),
    ]
    if secondary:
        panel.append(Capacity("Secondary storage", bars(CapacityType.SECONDARY_STORAGE, size, allocated=False),
                              "No secondary storage yet"))
    if guest_ips:
        panel.append(Capacity("Guest IPs", bars(CapacityType.DIRECT_ATTACHED_PUBLIC_IP, addresses, used=False),
                              "No guest IP range yet"))
    return panel


# -- shared helpers -------------------------------------------------------------------------------
def _storage_models():
    from storage.models import ImageStore, StoragePool

    return StoragePool, ImageStore


def _emulated_hosts_q() -> Q:
    """KVM hosts whose guests run under software emulation (Host.effective_emulation == qemu)."""
    auto = Emulation.AUTO
    return Q(hypervisor=Hypervisor.KVM) & (
        Q(emulation=Emulation.QEMU)
        | Q(emulation=auto) & (Q(cluster__emulation=Emulation.QEMU)
                               | Q(cluster__emulation=auto) & ~Q(kvm_usable=True)))


HOST_FILTERS: dict[str, tuple[str, Callable[[], Q]]] = {
    "up": ("Up", lambda: Q(state=HostState.UP) & ~Q(resource_state__in=MAINTENANCE_STATES)),
    "disconnected": ("Disconnected", lambda: Q(state=HostState.DISCONNECTED)),
    "alert": ("Alert", lambda: Q(state=HostState.ALERT)),
    "maintenance": ("Maintenance", lambda: Q(resource_state__in=MAINTENANCE_STATES)),
    "disabled": ("Disabled", lambda: Q(resource_state=ResourceState.DISABLED)),
    "emulated": ("Software emulation", _emulated_hosts_q),
}


def host_state_counts() -> dict[str, int]:
    """The number of hosts in all ("total") and per HOST_FILTERS key, in one query."""
    return Host.objects.aggregate(total=Count("id"),
                                  **{key: Count("id", filter=q()) for key, (_, q) in HOST_FILTERS.items()})


def _parent_filter(request, qs, *, zone: bool = True, pod: bool = False, cluster: bool = False):
    """Narrow a list by ?zone= / ?pod= / ?cluster= (uuids); returns (queryset, the parent object)."""
    for name, model, allowed in (("cluster", Cluster, cluster), ("pod", Pod, pod), ("zone", Zone, zone)):
        value = request.GET.get(name)
        if allowed and value:
            parent = model.objects.filter(uuid=value).first() if _is_uuid(value) else None
            if parent is None:
                raise Http404(f"No such {name}")
            return qs.filter(**{name: parent}), parent
    return qs, None


def _parent_context(parent) -> dict[str, Any]:
    return {"parent": parent, "parent_kind": parent._meta.verbose_name if parent is not None else ""}


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _act(request, call: Callable[[], Any], success: str, *, redirect_to: str) -> HttpResponse | str:
    """Run one service call: on success, a message and a redirect; on an ApiError, its sentence
    (returned, for the view to show in place)."""
    try:
        call()
    except ApiError as exc:
        return exc.message
    messages.success(request, success)
    return redirect(redirect_to)


def _latest_job(instance_type: str, obj) -> AsyncJob | None:
    return (AsyncJob.objects.filter(instance_type=instance_type, instance_uuid=str(obj.uuid))
            .order_by("-created", "-id").first())


# -- overview -------------------------------------------------------------------------------------
@root_admin_required
def overview(request):
    StoragePool, ImageStore = _storage_models()
    enabled = Q(allocation_state=AllocationState.ENABLED)
    zones = Zone.objects.aggregate(total=Count("id"), enabled=Count("id", filter=enabled))
    pods = Pod.objects.aggregate(total=Count("id"), enabled=Count("id", filter=enabled))
    clusters = Cluster.objects.aggregate(total=Count("id"), enabled=Count("id", filter=enabled))
    hosts = host_state_counts()
    pools = StoragePool.objects.aggregate(total=Count("id"), up=Count("id", filter=Q(state="Up")))
    stores = ImageStore.objects.aggregate(total=Count("id"))
    zone_rows = (Zone.objects.annotate(num_hosts=Count("hosts", distinct=True),
                                       num_up=Count("hosts", filter=Q(hosts__state=HostState.UP), distinct=True))
                 .order_by("name")[:10])
    def allocation(counts: dict[str, int]) -> list[tuple[str, int, str]]:
        return [("Enabled", counts["enabled"], "enabled"),
                ("Disabled", counts["total"] - counts["enabled"], "disabled")]

    sections = [
        {"key": "zones", "label": "Zones", "url": reverse("infra-zones"), "total": zones["total"],
         "states": allocation(zones)},
        {"key": "pods", "label": "Pods", "url": reverse("infra-pods"), "total": pods["total"],
         "states": allocation(pods)},
        {"key": "clusters", "label": "Clusters", "url": reverse("infra-clusters"), "total": clusters["total"],
         "states": allocation(clusters)},
        {"key": "hosts", "label": "Hosts", "url": reverse("infra-hosts"), "total": hosts["total"],
         "states": [(label, hosts[key], key) for key, (label, _) in HOST_FILTERS.items()
                    if key in ("up", "disconnected", "alert", "maintenance")],
         "filter_url": reverse("infra-hosts")},
        {"key": "primary", "label": "Primary storage", "url": reverse("infra-primary"), "total": pools["total"],
         "states": [("Up", pools["up"], "up"), ("Not up", pools["total"] - pools["up"], "alert")]},
        {"key": "secondary", "label": "Secondary storage", "url": reverse("infra-secondary"), "total": stores["total"],
         "states": []},
    ]
    setups = AsyncJob.objects.filter(command=wizard.SetupBasicZone.name).order_by("-created", "-id")[:5]
    return render(request, "compute/overview.html", {
        "sections": sections, "zones": zone_rows, "more_zones": zones["total"] > len(zone_rows),
        "emulated": hosts["emulated"], "alerts": Alert.objects.filter(archived=False)[:5],
        "num_alerts": Alert.objects.filter(archived=False).count(), "setups": setups,
        "subnav": "overview",
    })


# -- zones ----------------------------------------------------------------------------------------
ZONE_COLUMNS = (Column("name", "Name", ("name",)), Column("network_type", "Network type", ("network_type", "name")),
                Column("state", "State", ("allocation_state", "name")), Column("pods", "Pods", ("num_pods", "name")),
                Column("hosts", "Hosts", ("num_hosts", "name")), Column("dns1", "DNS 1", ("dns1", "name")))


@root_admin_required
def zone_list(request):
    query = search_query(request)
    zones = keyword_filter(Zone.objects.all(), query, "name").annotate(
        num_pods=Count("pods", distinct=True), num_hosts=Count("hosts", distinct=True))
    zones, headers = sort(request, zones, ZONE_COLUMNS, "name")
    return render(request, "compute/zone_list.html", {
        "page": paginate(request, zones), "headers": headers, "query": query, "subnav": "zones"})


def _zone_page(request, zone: Zone, *, error: str = "", status: int = 200) -> HttpResponse:
    StoragePool, ImageStore = _storage_models()
    counts = {
        "pods": zone.pods.count(), "clusters": zone.clusters.count(), "hosts": zone.hosts.count(),
        "primary": StoragePool.objects.filter(zone=zone).count(),
        "secondary": ImageStore.objects.filter(zone=zone).count(),
    }
    ranges = VlanIpRange.objects.filter(zone=zone).select_related("pod").annotate(
        num_addresses=Count("addresses"), num_allocated=Count("addresses__allocated")).order_by("id")
    return render(request, "compute/zone_detail.html", {
        "zone": zone, "counts": counts, "ranges": ranges, "capacity": capacity_panel(capacities(zone=zone)),
        "action_error": error, "subnav": "zones",
    }, status=status)


@root_admin_required
def zone_detail(request, uuid):
    return _zone_page(request, get_object_or_404(Zone, uuid=uuid))


def _state_actions(update: Callable, delete: Callable) -> dict[str, tuple[Callable, str]]:
    """enable / disable (one update service call each) and delete, with the past tense for the message."""
    return {
        "enable": (lambda caller, obj: update(caller, obj, allocation_state=AllocationState.ENABLED), "enabled"),
        "disable": (lambda caller, obj: update(caller, obj, allocation_state=AllocationState.DISABLED), "disabled"),
        "delete": (delete, "deleted"),
    }


ZONE_ACTIONS = _state_actions(services.update_zone, services.delete_zone)


@root_admin_required
@require_POST
def zone_action(request, uuid, action: str):
    zone = get_object_or_404(Zone, uuid=uuid)
    if action not in ZONE_ACTIONS:
        raise Http404("No such action")
    call, done = ZONE_ACTIONS[action]
    target = reverse("infra-zones") if action == "delete" else reverse("infra-zone", args=[zone.uuid])
    result = _act(request, lambda: call(request.user, zone), f"Zone {zone.name} {done}.", redirect_to=target)
    return result if isinstance(result, HttpResponse) else _zone_page(request, zone, error=result)


# -- pods -----------------------------------------------------------------------------------------
POD_COLUMNS = (Column("name", "Name", ("name", "zone__name")), Column("zone", "Zone", ("zone__name", "name")),
               Column("state", "State", ("allocation_state", "name")), Column("gateway", "Gateway", ("gateway", "name")),
               Column("netmask", "Netmask", ("netmask", "name")),
               Column("reserved", "Reserved range", ("start_ip", "end_ip", "name")),
               Column("clusters", "Clusters", ("num_clusters", "name")), Column("hosts", "Hosts", ("num_hosts", "name")))


@root_admin_required
def pod_list(request):
    query = search_query(request)
    pods = keyword_filter(Pod.objects.select_related("zone"), query, "name").annotate(
        num_clusters=Count("clusters", distinct=True), num_hosts=Count("hosts", distinct=True))
    pods, parent = _parent_filter(request, pods)
    pods, headers = sort(request, pods, POD_COLUMNS, "zone")
    return render(request, "compute/pod_list.html", {
        "page": paginate(request, pods), "headers": headers, "query": query, **_parent_context(parent),
        "subnav": "pods"})


def _pod_page(request, pod: Pod, *, error: str = "", status: int = 200) -> HttpResponse:
    clusters = pod.clusters.annotate(num_hosts=Count("hosts")).order_by("name", "id")
    ranges = pod.ip_ranges.annotate(num_addresses=Count("addresses"), num_allocated=Count("addresses__allocated"))
    return render(request, "compute/pod_detail.html", {
        "pod": pod, "clusters": clusters, "ranges": ranges.order_by("id"), "action_error": error, "subnav": "pods",
    }, status=status)


@root_admin_required
def pod_detail(request, uuid):
    return _pod_page(request, get_object_or_404(Pod.objects.select_related("zone"), uuid=uuid))


POD_ACTIONS = _state_actions(services.update_pod, services.delete_pod)


@root_admin_required
@require_POST
def pod_action(request, uuid, action: str):
    pod = get_object_or_404(Pod.objects.select_related("zone"), uuid=uuid)
    if action not in POD_ACTIONS:
        raise Http404("No such action")
    call, done = POD_ACTIONS[action]
    target = (reverse("infra-zone", args=[pod.zone.uuid]) if action == "delete"
              else reverse("infra-pod", args=[pod.uuid]))
    result = _act(request, lambda: call(request.user, pod), f"Pod {pod.name} {done}.", redirect_to=target)
    return result if isinstance(result, HttpResponse) else _pod_page(request, pod, error=result)


@root_admin_required
@require_POST
def ip_range_delete(request, uuid):
    ip_range = get_object_or_404(VlanIpRange.objects.select_related("pod__zone"), uuid=uuid)
    pod = ip_range.pod
    result = _act(request, lambda: services.delete_vlan_ip_range(request.user, ip_range),
                  f"Guest IP range {ip_range.start_ip}–{ip_range.end_ip} deleted.",
                  redirect_to=reverse("infra-pod", args=[pod.uuid]))
    return result if isinstance(result, HttpResponse) else _pod_page(request, pod, error=result)


# -- clusters -------------------------------------------------------------------------------------
CLUSTER_COLUMNS = (Column("name", "Name", ("name", "zone__name")),
                   Column("zone", "Zone", ("zone__name", "pod__name", "name")),
                   Column("pod", "Pod", ("pod__name", "name")), Column("hypervisor", "Hypervisor", ("hypervisor", "name")),
                   Column("state", "State", ("allocation_state", "name")),
                   Column("emulation", "Emulation", ("emulation", "name")), Column("hosts", "Hosts", ("num_hosts", "name")))


@root_admin_required
def cluster_list(request):
    query = search_query(request)
    clusters = keyword_filter(Cluster.objects.select_related("zone", "pod"), query, "name").annotate(
        num_hosts=Count("hosts"))
    clusters, parent = _parent_filter(request, clusters, pod=True)
    clusters, headers = sort(request, clusters, CLUSTER_COLUMNS, "zone")
    return render(request, "compute/cluster_list.html", {
        "page": paginate(request, clusters), "headers": headers, "query": query,
        **_parent_context(parent), "subnav": "clusters"})


def _cluster_page(request, cluster: Cluster, *, error: str = "", emulation_form: EmulationForm | None = None,
                  status: int = 200) -> HttpResponse:
    StoragePool, _ = _storage_models()
    hosts = cluster.hosts.order_by("name", "id")
    return render(request, "compute/cluster_detail.html", {
        "cluster": cluster, "hosts": hosts[:50], "num_hosts": hosts.count(),
        "pools": StoragePool.objects.filter(cluster=cluster).order_by("name", "id"),
        "capacity": capacity_panel(capacities(cluster=cluster), secondary=False, guest_ips=False),
        "emulation_form": emulation_form or EmulationForm(initial={"emulation": cluster.emulation},
                                                          auto_id="id_cluster_%s"),
        "action_error": error, "subnav": "clusters",
    }, status=status)


@root_admin_required
def cluster_detail(request, uuid):
    return _cluster_page(request, get_object_or_404(Cluster.objects.select_related("zone", "pod"), uuid=uuid))


CLUSTER_ACTIONS = _state_actions(services.update_cluster, services.delete_cluster)


@root_admin_required
@require_POST
def cluster_action(request, uuid, action: str):
    cluster = get_object_or_404(Cluster.objects.select_related("zone", "pod"), uuid=uuid)
    if action == "emulation":
        form = EmulationForm(request.POST, auto_id="id_cluster_%s")
        if form.is_valid():
            try:
                services.update_cluster(request.user, cluster, emulation=form.cleaned_data["emulation"])
            except ApiError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, f"Cluster {cluster.name}: guest emulation set to "
                                          f"{Emulation(form.cleaned_data['emulation']).label}.")
                return redirect("infra-cluster", uuid=cluster.uuid)
        return _cluster_page(request, cluster, emulation_form=form)
    if action not in CLUSTER_ACTIONS:
        raise Http404("No such action")
    call, done = CLUSTER_ACTIONS[action]
    target = (reverse("infra-pod", args=[cluster.pod.uuid]) if action == "delete"
              else reverse("infra-cluster", args=[cluster.uuid]))
    result = _act(request, lambda: call(request.user, cluster), f"Cluster {cluster.name} {done}.", redirect_to=target)
    return result if isinstance(result, HttpResponse) else _cluster_page(request, cluster, error=result)


# -- hosts ----------------------------------------------------------------------------------------
HOST_COLUMNS = (Column("name", "Name", ("name", "zone__name")),
                Column("state", "State", ("state", "resource_state", "name")),
                Column("hypervisor", "Hypervisor", ("hypervisor", "name")), Column("guests", "Guests run with"),
                Column("zone", "Zone", ("zone__name", "cluster__name", "name")),
                Column("cluster", "Cluster", ("cluster__name", "name")), Column("address", "Address", ("ip_address",)),
                Column("pinged", "Last ping", ("last_pinged", "name")))


@root_admin_required
def host_list(request):
    query = search_query(request)
    hosts = keyword_filter(Host.objects.select_related("zone", "pod", "cluster"), query, "name", "url", "ip_address")
    hosts, parent = _parent_filter(request, hosts, pod=True, cluster=True)
    state = request.GET.get("state", "")
    if state:
        if state not in HOST_FILTERS:
            raise Http404("No such host state")
        hosts = hosts.filter(HOST_FILTERS[state][1]())
    hosts, headers = sort(request, hosts, HOST_COLUMNS, "zone")
    return render(request, "compute/host_list.html", {
        "page": paginate(request, hosts), "headers": headers, "query": query,
        **_parent_context(parent), "state": state, "state_label": HOST_FILTERS[state][0] if state else "",
        "chips": chips(request, "state", [(key, label) for key, (label, _) in HOST_FILTERS.items()],
                       "Filter hosts by state", current=state),
        "subnav": "hosts"})


def _host_context(host: Host) -> dict[str, Any]:
    job = _latest_job("Host", host)
    return {"host": host, "job": job, "in_maintenance": host.resource_state in MAINTENANCE_STATES,
            "memory_total": format_bytes(host.memory_total), "memory_used": format_bytes(host.memory_used),
            "cpu_total": format_mhz(host.cpu_number * host.cpu_speed),
            "signature": _signature(host.state, host.resource_state, host.state_reason, host.last_pinged,
                                    host.disconnected, job and job.pk, job and job.status, job and job.progress_text)}


def _host_page(request, host: Host, *, error: str = "", emulation_form: EmulationForm | None = None,
               status: int = 200) -> HttpResponse:
    context = _host_context(host)
    context.update({
        "emulation_form": emulation_form or EmulationForm(initial={"emulation": host.emulation}, auto_id="id_host_%s"),
        "delete_form": DeleteHostForm(), "action_error": error, "subnav": "hosts",
    })
    return render(request, "compute/host_detail.html", context, status=status)


def _host(uuid) -> Host:
    return get_object_or_404(Host.objects.select_related("zone", "pod", "cluster"), uuid=uuid)


@root_admin_required
def host_detail(request, uuid):
    return _host_page(request, _host(uuid))


@root_admin_required
@require_GET
def host_status(request, uuid):
    """The live part of the host page (state, reason, last ping, running job), polled by htmx;
    204 (nothing to swap) while nothing changed since the version the page shows (?seen=)."""
    context = _host_context(_host(uuid))
    if request.GET.get("seen") == context["signature"]:
        return HttpResponse(status=204)
    return render(request, "compute/_host_status.html", context)


HOST_ACTIONS: dict[str, tuple[Callable, str]] = {
    "enable": (lambda caller, host: services.update_host(caller, host, allocation_state="Enable"), "enabled"),
    "disable": (lambda caller, host: services.update_host(caller, host, allocation_state="Disable"), "disabled"),
    "maintenance": (services.prepare_host_for_maintenance, "is in maintenance"),
    "cancel-maintenance": (services.cancel_host_maintenance, "left maintenance"),
}


@root_admin_required
@require_POST
def host_action(request, uuid, action: str):
    host = _host(uuid)
    caller = request.user
    if action == "emulation":
        form = EmulationForm(request.POST, auto_id="id_host_%s")
        if form.is_valid():
            try:
                services.update_host(caller, host, emulation=form.cleaned_data["emulation"])
            except ApiError as exc:
                form.add_service_error(exc)
            else:
                messages.success(request, f"Host {host.name}: guest emulation set to "
                                          f"{Emulation(form.cleaned_data['emulation']).label}.")
                return redirect("infra-host", uuid=host.uuid)
        return _host_page(request, host, emulation_form=form)
    if action == "reconnect":
        # Reconnecting talks to the host and re-probes KVM (seconds): an async job, like the API's.
        from .commands import ReconnectHost

        with transaction.atomic():
            jobs.submit(ReconnectHost, {"id": str(host.uuid)}, caller, instance=host)
        messages.info(request, f"Reconnecting host {host.name}…")
        return redirect("infra-host", uuid=host.uuid)
    if action == "delete":
        form = DeleteHostForm(request.POST)
        forced = form.is_valid() and form.cleaned_data["forced"]
        result = _act(request, lambda: services.delete_host(caller, host, forced=forced), f"Host {host.name} deleted.",
                      redirect_to=reverse("infra-cluster", args=[host.cluster.uuid]))
        return result if isinstance(result, HttpResponse) else _host_page(request, host, error=result)
    if action not in HOST_ACTIONS:
        raise Http404("No such action")
    call, done = HOST_ACTIONS[action]
    result = _act(request, lambda: call(caller, host), f"Host {host.name} {done}.",
                  redirect_to=reverse("infra-host", args=[host.uuid]))
    return result if isinstance(result, HttpResponse) else _host_page(request, host, error=result)


# -- primary and secondary storage -----------------------------------------------------------------
PRIMARY_COLUMNS = (Column("name", "Name", ("name", "zone__name")), Column("state", "State", ("state", "name")),
                   Column("zone", "Zone", ("zone__name", "name")), Column("cluster", "Cluster", ("cluster__name", "name")),
                   Column("scope", "Scope", ("scope", "name")), Column("type", "Type", ("type", "name")),
                   Column("url", "URL", ("url",)), Column("capacity", "Capacity", ("used_bytes", "capacity_bytes")))
SECONDARY_COLUMNS = (Column("name", "Name", ("name", "zone__name")), Column("zone", "Zone", ("zone__name", "name")),
                     Column("protocol", "Protocol", ("protocol", "name")), Column("url", "URL", ("url",)),
                     Column("capacity", "Capacity", ("used_bytes", "capacity_bytes")))


def _storage_list(request, rows, columns, template: str, subnav: str, **parents: bool) -> HttpResponse:
    """A list of primary or secondary storage: searched by name or URL, narrowed by its parent,
    sorted, each row with its capacity in words."""
    query = search_query(request)
    rows, parent = _parent_filter(request, keyword_filter(rows, query, "name", "url"), **parents)
    rows, headers = sort(request, rows, columns, "zone")
    page = paginate(request, rows)
    for row in page.object_list:
        row.capacity_text = f"{format_bytes(row.used_bytes)} of {format_bytes(row.capacity_bytes)} used"
    return render(request, template, {"page": page, "headers": headers, "query": query, **_parent_context(parent),
                                      "subnav": subnav})


@root_admin_required
def primary_list(request):
    StoragePool, _ = _storage_models()
    return _storage_list(request, StoragePool.objects.select_related("zone", "pod", "cluster"), PRIMARY_COLUMNS,
                         "compute/primary_list.html", "primary", pod=True, cluster=True)


def _storage_delete(kind: str):
    """storage.services' delete function for primary (delete_storage_pool) or secondary
    (delete_image_store) storage, or None while that service does not exist."""
    from storage import services as storage_services

    return getattr(storage_services, "delete_storage_pool" if kind == "primary" else "delete_image_store", None)


def _primary_page(request, pool, *, error: str = "", status: int = 200) -> HttpResponse:
    bars = [Bar("Used", pool.used_bytes, pool.capacity_bytes,
                f"{format_bytes(pool.used_bytes)} of {format_bytes(pool.capacity_bytes)} used"),
            Bar("Allocated", pool.allocated_bytes, pool.capacity_bytes,
                f"{format_bytes(pool.allocated_bytes)} of {format_bytes(pool.capacity_bytes)} allocated")]
    return render(request, "compute/primary_detail.html", {
        "pool": pool, "capacity": [Capacity("Capacity", bars, "Capacity not read yet")],
        "can_delete": _storage_delete("primary") is not None, "action_error": error, "subnav": "primary",
    }, status=status)


@root_admin_required
def primary_detail(request, uuid):
    StoragePool, _ = _storage_models()
    return _primary_page(request, get_object_or_404(StoragePool.objects.select_related("zone", "pod", "cluster"),
                                                    uuid=uuid))


@root_admin_required
@require_POST
def primary_delete(request, uuid):
    StoragePool, _ = _storage_models()
    pool = get_object_or_404(StoragePool.objects.select_related("zone", "pod", "cluster"), uuid=uuid)
    delete = _storage_delete("primary")
    if delete is None:
        raise Http404("Deleting primary storage is not available yet")
    result = _act(request, lambda: delete(request.user, pool), f"Primary storage {pool.name} deleted.",
                  redirect_to=reverse("infra-primary"))
    return result if isinstance(result, HttpResponse) else _primary_page(request, pool, error=result)


@root_admin_required
def secondary_list(request):
    _, ImageStore = _storage_models()
    return _storage_list(request, ImageStore.objects.select_related("zone"), SECONDARY_COLUMNS,
                         "compute/secondary_list.html", "secondary")


def _secondary_page(request, store, *, error: str = "", status: int = 200) -> HttpResponse:
    bars = [Bar("Used", store.used_bytes, store.capacity_bytes,
                f"{format_bytes(store.used_bytes)} of {format_bytes(store.capacity_bytes)} used")]
    return render(request, "compute/secondary_detail.html", {
        "store": store, "capacity": [Capacity("Capacity", bars, "Capacity not read yet")],
        "can_delete": _storage_delete("secondary") is not None, "action_error": error, "subnav": "secondary",
    }, status=status)


@root_admin_required
def secondary_detail(request, uuid):
    _, ImageStore = _storage_models()
    return _secondary_page(request, get_object_or_404(ImageStore.objects.select_related("zone"), uuid=uuid))


@root_admin_required
@require_POST
def secondary_delete(request, uuid):
    _, ImageStore = _storage_models()
    store = get_object_or_404(ImageStore.objects.select_related("zone"), uuid=uuid)
    delete = _storage_delete("secondary")
    if delete is None:
        raise Http404("Deleting secondary storage is not available yet")
    result = _act(request, lambda: delete(request.user, store), f"Secondary storage {store.name} deleted.",
                  redirect_to=reverse("infra-secondary"))
    return result if isinstance(result, HttpResponse) else _secondary_page(request, store, error=result)


# -- the basic-installation wizard ------------------------------------------------------------------
@dataclass(frozen=True)
class WizardStep:
    key: str
    title: str
    form: type
    intro: str


WIZARD_STEPS: tuple[WizardStep, ...] = (
    WizardStep("zone", "Zone", ZoneStepForm,
               "A zone is one data centre: the largest unit of the cloud. It stays disabled until the setup is done."),
    WizardStep("pod", "Pod", PodStepForm,
               "A pod is a rack: its hosts share one management network. Reserve the addresses the pod's "
               "management may use."),
    WizardStep("range", "Guest IP range", GuestRangeStepForm,
               "Guests of a basic zone get their addresses from this range, on the pod's network."),
    WizardStep("cluster", "Cluster", ClusterStepForm,
               "A cluster groups hosts of one hypervisor that share primary storage."),
    WizardStep("host", "Host", HostStepForm,
               "The first host of the cluster, reached by libvirt. Nubo connects to it, reads its hardware and "
               "checks whether KVM acceleration works there."),
    WizardStep("primary", "Primary storage", PrimaryStorageStepForm,
               "Primary storage holds the disks of the guests of the cluster."),
    WizardStep("secondary", "Secondary storage", SecondaryStorageStepForm,
               "Secondary storage holds the zone's templates, ISOs and snapshots."),
)
STEP_INDEX = {step.key: index for index, step in enumerate(WIZARD_STEPS)}
SESSION_KEY = "nubo_zone_wizard"


def _answers(request) -> dict[str, dict[str, str]]:
    return dict(request.session.get(SESSION_KEY) or {})


def _first_missing(answers: dict, before: int | None = None) -> WizardStep | None:
    for step in WIZARD_STEPS[:before]:
        if step.key not in answers:
            return step
    return None


def _steps_nav(answers: dict, current: str) -> list[dict[str, Any]]:
    reachable = True
    out = []
    for index, step in enumerate(WIZARD_STEPS):
        out.append({"number": index + 1, "title": step.title, "key": step.key, "current": step.key == current,
                    "done": step.key in answers,
                    "url": reverse("infra-wizard-step", args=[step.key]) if reachable else ""})
        reachable = reachable and step.key in answers
    out.append({"number": len(WIZARD_STEPS) + 1, "title": "Review and launch", "key": "review",
                "current": current == "review", "done": False,
                "url": reverse("infra-wizard-review") if reachable else ""})
    return out


def _step_form(step: WizardStep, answers: dict, data=None) -> Any:
    before = {key: value for key, value in answers.items() if STEP_INDEX.get(key, 99) < STEP_INDEX[step.key]}
    stored = {k: v for k, v in (answers.get(step.key) or {}).items() if k != "password"}
    return step.form(data, answers=before, initial=stored or None)


@root_admin_required
@never_cache
def wizard_start(request):
    answers = _answers(request)
    missing = _first_missing(answers)
    if missing is None:
        return redirect("infra-wizard-review")
    return redirect("infra-wizard-step", step=missing.key)


@root_admin_required
@require_POST
def wizard_reset(request):
    request.session.pop(SESSION_KEY, None)
    messages.info(request, "The wizard's answers were cleared.")
    return redirect("infra-wizard-step", step=WIZARD_STEPS[0].key)


@sensitive_post_parameters("password")
@root_admin_required
@never_cache
def wizard_step(request, step: str):
    if step not in STEP_INDEX:
        raise Http404("No such step")
    current = WIZARD_STEPS[STEP_INDEX[step]]
    answers = _answers(request)
    missing = _first_missing(answers, STEP_INDEX[step])
    if missing is not None:
        return redirect("infra-wizard-step", step=missing.key)
    if request.method == "POST":
        form = _step_form(current, answers, request.POST)
        if form.is_valid():
            stored = form.stored()
            if "password" in stored and not stored["password"]:
                stored["password"] = (answers.get(step) or {}).get("password", "")  # kept when left empty
            answers[step] = stored
            request.session[SESSION_KEY] = answers
            # Steps are answered in order: the next unanswered one, or the review when all are.
            following = _first_missing(answers)
            if following is None:
                return redirect("infra-wizard-review")
            return redirect("infra-wizard-step", step=following.key)
    elif request.GET.get("check") and step in answers:
        form = _step_form(current, answers, answers[step])  # show why a stored answer no longer holds
        form.is_valid()
    else:
        form = _step_form(current, answers)
    index = STEP_INDEX[step]
    return render(request, "compute/wizard_step.html", {
        "form": form, "step": current, "number": index + 1, "total": len(WIZARD_STEPS),
        "steps": _steps_nav(answers, step), "is_last": index == len(WIZARD_STEPS) - 1,
        "previous": WIZARD_STEPS[index - 1] if index else None, "subnav": "wizard",
    })


def _spec(answers: dict[str, dict[str, str]]) -> wizard.BasicZoneSpec:
    zone, pod, guest = answers["zone"], answers["pod"], answers["range"]
    cluster, host, primary, secondary = answers["cluster"], answers["host"], answers["primary"], answers["secondary"]
    return wizard.BasicZoneSpec(
        zone_name=zone["name"], dns1=zone["dns1"], internal_dns1=zone["internal_dns1"],
        pod_name=pod["name"], pod_gateway=pod["gateway"], pod_netmask=pod["netmask"],
        pod_start_ip=pod["start_ip"], pod_end_ip=pod.get("end_ip", ""),
        guest_gateway=guest["gateway"], guest_netmask=guest["netmask"], guest_start_ip=guest["start_ip"],
        guest_end_ip=guest["end_ip"], cluster_name=cluster["name"], hypervisor=cluster["hypervisor"],
        host_url=host["url"], host_username=host.get("username", ""), host_password=host.get("password", ""),
        primary_name=primary["name"], primary_url=primary["url"], secondary_url=secondary["url"])


def _review_rows(answers: dict) -> list[dict[str, Any]]:
    rows = []
    for step in WIZARD_STEPS:
        form = step.form(answers=answers)
        stored = answers.get(step.key) or {}
        values = []
        for name, field in form.fields.items():
            value = stored.get(name, "")
            if name == "password":
                value = "(set)" if value else ""
            elif hasattr(field, "choices") and value:
                value = dict(field.choices).get(value, value)
            values.append((field.label, value or "—"))
        rows.append({"step": step, "values": values, "url": reverse("infra-wizard-step", args=[step.key])})
    return rows


@root_admin_required
@never_cache
def wizard_review(request):
    answers = _answers(request)
    missing = _first_missing(answers)
    if missing is not None:
        return redirect("infra-wizard-step", step=missing.key)
    return render(request, "compute/wizard_review.html", {
        "rows": _review_rows(answers), "steps": _steps_nav(answers, "review"), "subnav": "wizard"})


@root_admin_required
@require_POST
def wizard_launch(request):
    """Check every answer again (another admin may have taken a name meanwhile), then run the
    whole setup as one async job and show its progress."""
    answers = _answers(request)
    missing = _first_missing(answers)
    if missing is not None:
        return redirect("infra-wizard-step", step=missing.key)
    for step in WIZARD_STEPS:
        if not _step_form(step, answers, answers[step.key]).is_valid():
            messages.error(request, f"The {step.title.lower()} step needs another look before launching.")
            return redirect(reverse("infra-wizard-step", args=[step.key]) + "?check=1")
    with transaction.atomic():
        job = jobs.submit(wizard.SetupBasicZone, _spec(answers).as_params(), request.user)
    return redirect("infra-setup", uuid=job.uuid)


def _setup_job(request, uuid) -> AsyncJob:
    return get_object_or_404(AsyncJob.objects.visible_to(request.user), uuid=uuid, command=wizard.SetupBasicZone.name)


STEP_STATES = {
    "done": "Done", "running": "Running…", "waiting": "Waiting", "undone": "Removed again",
    "failed": "Failed", "skipped": "Not run",
}


def setup_context(job: AsyncJob) -> dict[str, Any]:
    """Each step's state, from the job row: its status and the step its progress text names."""
    index = wizard.step_index(job.progress_text)
    steps = []
    for i, step in enumerate(wizard.STEPS):
        if job.status == JobStatus.SUCCEEDED:
            state = "done"
        elif job.status == JobStatus.PENDING:
            state = "waiting" if index is None or i > index else "running" if i == index else "done"
        else:
            state = "skipped" if index is None or i > index else "failed" if i == index else "undone"
        steps.append({"number": i + 1, "title": step.title, "state": state, "label": STEP_STATES[state],
                      "detail": job.progress_text.split(": ", 1)[-1] if i == index and state == "running" else "",
                      "change_url": reverse("infra-wizard-step", args=[step.key]) if step.key in STEP_INDEX else ""})
    error = (job.result or {}).get("errortext", "Failed") if job.status == JobStatus.FAILED else ""
    zone = (job.result or {}).get("zone") if job.status == JobStatus.SUCCEEDED else None
    return {
        "job": job, "steps": steps, "error": error, "pending": job.status == JobStatus.PENDING,
        "failed_before_steps": job.status == JobStatus.FAILED and index is None,
        "zone_name": (job.params or {}).get("name", ""),
        "zone_url": reverse("infra-zone", args=[zone["id"]]) if zone and zone.get("id") else "",
        "percent": 100 if job.status == JobStatus.SUCCEEDED else job.progress,
        "signature": _signature(job.status, job.progress, job.progress_text),
    }


def _forget_answers_once_done(request, job: AsyncJob) -> None:
    """The wizard keeps its answers until the set-up succeeds, so a failed set-up can be fixed
    and launched again without typing everything anew."""
    answers = request.session.get(SESSION_KEY) or {}
    if job.status == JobStatus.SUCCEEDED and (answers.get("zone") or {}).get("name") == job.params.get("name"):
        request.session.pop(SESSION_KEY, None)


@root_admin_required
@never_cache
def setup_progress(request, uuid):
    job = _setup_job(request, uuid)
    _forget_answers_once_done(request, job)
    context = setup_context(job)
    context["subnav"] = "wizard"
    return render(request, "compute/setup.html", context)


@root_admin_required
@never_cache
@require_GET
def setup_status(request, uuid):
    """The live part of the progress page, polled every second; 204 (nothing to swap) while
    nothing changed since the version the page shows (?seen=)."""
    job = _setup_job(request, uuid)
    context = setup_context(job)
    if request.GET.get("seen") == context["signature"]:
        return HttpResponse(status=204)
    _forget_answers_once_done(request, job)
    return render(request, "compute/_setup_status.html", context)


def _signature(*parts: Any) -> str:
    import hashlib

    return hashlib.blake2s("|".join(str(p) for p in parts).encode(), digest_size=6).hexdigest()
