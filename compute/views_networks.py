"""Guest networks and alerts UI.

Networks (everyone, scoped): the shared guest network of each zone the caller may deploy into
(the listNetworks query: GuestNetwork.objects.visible_to), with its addressing; root admins also
see the address usage (compute.capacity's guest IP rows: allocated of total) and each zone's
guest IP ranges with their usage and pods (capacity is listCapacity's, an admin matter). Everyone sees the NICs of its own VMs on the network.

Alerts (root admin only, as listAlerts): the open alerts, filtered by type, searchable, sortable,
with the zone, pod and cluster they are about; open or archived ones; archived or deleted — the
ticked ones, those of a type, those sent on or before a day — through compute.alerts, as
archiveAlerts / deleteAlerts."""
from __future__ import annotations

import ipaddress

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.api.listing import keyword_filter
from portal.errors import ApiError
from portal.ui import Column, Filter, filter_rows, root_admin_required, search_query, sort
from portal.views import paginate

from .alerts import alert_type_label, archive_alerts, delete_alerts
from .capacity import capacities_by
from .choices import AlertType, CapacityType
from .commands_network import ensure_guest_networks
from .forms import AlertSelectionForm
from .models import Alert, GuestNetwork, Host, Nic, VlanIpRange
from .responses_network import first_ranges

NETWORK_COLUMNS = (Column("name", "Name", ("name",)), Column("zone", "Zone", ("zone__name",)),
                   Column("cidr", "CIDR"), Column("gateway", "Gateway"), Column("created", "Created (UTC)", ("created",)))
USAGE = Column("addresses", "Guest addresses in use")


def _cidr(ip_range) -> str:
    return str(ipaddress.IPv4Network(f"{ip_range.gateway}/{ip_range.netmask}", strict=False)) if ip_range else "—"


def _networks(caller):
    ensure_guest_networks(caller)  # as listNetworks: a zone with a guest range has its network row
    return GuestNetwork.objects.visible_to(caller).select_related("zone")


def _decorate(networks: list, ip_usage: dict[int, object] | None) -> None:
    """Addressing (the zone's first range, as listNetworks answers) and address usage per zone."""
    ranges = first_ranges(n.zone_id for n in networks)
    for network in networks:
        first = ranges.get(network.zone_id)
        network.cidr, network.gateway = _cidr(first), first.gateway if first else "—"
        if ip_usage is not None:
            usage = ip_usage.get(network.zone_id)
            network.usage = (usage.allocated, usage.total) if usage is not None else (0, 0)


def _ip_usage(caller) -> dict[int, object] | None:
    """Per zone, the guest addresses allocated and in all (compute.capacity's guest IP rows);
    None for anyone but a root admin."""
    if not caller.account.is_root_admin:
        return None
    return {zone_id: row for zone_id, rows in capacities_by("zone").items() for row in rows
            if row.type == CapacityType.DIRECT_ATTACHED_PUBLIC_IP}


@login_required
def network_list(request):
    caller = request.user
    query = search_query(request)
    networks = keyword_filter(_networks(caller), query, "name", "zone__name")
    root = caller.account.is_root_admin
    columns = NETWORK_COLUMNS[:4] + (USAGE,) + NETWORK_COLUMNS[4:] if root else NETWORK_COLUMNS
    networks, headers = sort(request, networks, columns, "zone")
    page = paginate(request, networks)
    _decorate(page.object_list, _ip_usage(caller))
    return render(request, "compute/network_list.html", {"page": page, "headers": headers, "query": query,
                                                         "is_root": root})


@login_required
def network_detail(request, uuid):
    from .views_instances import visible_vms

    caller = request.user
    network = get_object_or_404(_networks(caller), uuid=uuid)
    _decorate([network], _ip_usage(caller))
    root = caller.account.is_root_admin
    ranges = []
    if root:
        ranges = list(VlanIpRange.objects.visible_to(caller).filter(zone=network.zone).select_related("pod")
                      .annotate(num_addresses=Count("addresses"), num_allocated=Count("addresses__allocated"))
                      .order_by("pod__name", "start_ip", "id"))
    uplink, dhcp_servers = "", []
    if root:
        from . import networks

        uplink = networks.uplink(network.zone)
        dhcp_servers = list(Host.objects.filter(zone=network.zone, guest_address__isnull=False)
                            .select_related("guest_address", "pod").order_by("name", "id"))
    nics = list(Nic.objects.filter(network=network, virtual_machine__in=visible_vms(caller))
                .select_related("virtual_machine", "address").order_by("address__address", "id")[:50])
    return render(request, "compute/network_detail.html", {
        "network": network, "ranges": ranges, "nics": nics, "is_root": root, "uplink": uplink,
        "dhcp_servers": dhcp_servers})


# -- alerts ---------------------------------------------------------------------------------------
ALERT_COLUMNS = (Column("select", "Select", hidden_label=True), Column("sent", "Sent (UTC)", ("sent",)),
                 Column("type", "Type", ("type",)), Column("name", "Name", ("name",)), Column("subject", "Subject"),
                 Column("where", "Where"))
ALERT_STATE = Filter("state", "Show open or archived alerts",
                     (("archived", "Archived", Q(archived=True)), ("all", "Open and archived", Q())),
                     everything="Open", default=Q(archived=False))
ALERT_TYPES = tuple((t.value, alert_type_label(t.value)) for t in AlertType)


def _alert_type(value: str) -> Q | None:
    return Q(type=int(value)) if value.isdigit() and int(value) in dict(ALERT_TYPES) else None


@root_admin_required
def alert_list(request):
    caller = request.user
    query = search_query(request)
    alerts = keyword_filter(Alert.objects.visible_to(caller), query, "subject", "name")
    by_state = filter_rows(request, alerts, (ALERT_STATE,))
    # the type chips: the types of the alerts shown (open, archived or both), with their numbers
    counts = dict(by_state.rows.order_by().values_list("type").annotate(n=Count("id")).values_list("type", "n"))
    wanted = request.GET.get("type", "")
    shown = tuple((str(key), f"{label} ({counts.get(key, 0)})", Q(type=key)) for key, label in ALERT_TYPES
                  if counts.get(key) or str(key) == wanted)
    by_type = filter_rows(request, by_state.rows, (Filter("type", "Filter alerts by type", shown, other=_alert_type),))
    alerts, headers = sort(request, by_type.rows.select_related("zone", "pod", "cluster"), ALERT_COLUMNS, "-sent")
    page = paginate(request, alerts)
    for alert in page.object_list:
        alert.type_label = alert_type_label(alert.type)
    state = request.GET.get("state", "")
    return render(request, "compute/alert_list.html", {
        "page": page, "headers": headers, "query": query, "filtered": bool(query) or by_type.active,
        "archived_only": state == "archived",
        "filter_chips": by_state.chips + by_type.chips, "ignored": by_state.ignored + by_type.ignored,
        "form": AlertSelectionForm(initial={"type": wanted if _alert_type(wanted) else ""}, alerts=None,
                                   types=ALERT_TYPES)})


ALERT_ACTIONS = {"archive": (archive_alerts, "archived"), "delete": (delete_alerts, "deleted")}


@root_admin_required
@require_POST
def alert_action(request, action: str):
    """Archive or delete the alerts the form chooses (compute.alerts, as archiveAlerts /
    deleteAlerts), then back to the list as it was filtered."""
    if action not in ALERT_ACTIONS:
        raise Http404("No such action")
    service, done = ALERT_ACTIONS[action]
    caller = request.user
    form = AlertSelectionForm(request.POST, alerts=Alert.objects.visible_to(caller), types=ALERT_TYPES)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
    elif (selection := form.selection()) is None:
        messages.info(request, "The ticked alerts are gone already.")
    else:
        try:
            count = service(caller, **selection)
        except ApiError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{count} alert{'' if count == 1 else 's'} {done}." if count
                             else f"No alert matched: nothing {done}.")
    query = request.GET.copy()
    query.pop("page", None)
    return redirect(reverse("alerts") + (f"?{query.urlencode()}" if query else ""))
