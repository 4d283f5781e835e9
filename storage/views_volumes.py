"""The volumes page (every logged-in user): the disks of the VMs, scoped as listVolumes is (a
user its own account's, an admin its subtree's; Volume.objects.visible_to), searchable by name,
VM or account, filtered by type (ROOT, DATADISK), zone and state, sortable; each row links to its
VM. A page costs a constant number of queries: the zone chips are one aggregate, the rows one
select with their VM, zone and account."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import render

from compute.views import format_bytes
from portal.api.listing import keyword_filter
from portal.ui import Column, Filter, columns_for, filter_rows, search_query, sort
from portal.views import is_admin, paginate

from .models import Volume, VolumeState

COLUMNS = (Column("name", "Name", ("name",)), Column("type", "Type", ("type", "device_id")),
           Column("vm", "VM", ("virtual_machine__name", "device_id")), Column("size", "Size", ("size",)),
           Column("zone", "Zone", ("zone__name",)), Column("state", "State", ("state",)),
           Column("owner", "Account", ("account__name",), admins_only=True), Column("created", "Created (UTC)", ("created",)))
TYPE = Filter("type", "Filter volumes by type", (("ROOT", "Root disks", Q(type="ROOT")),
                                                 ("DATADISK", "Data disks", Q(type="DATADISK"))))
STATE = Filter("state", "Filter volumes by state",
               tuple((s, s, Q(state=s)) for s in VolumeState.values if s != VolumeState.EXPUNGED))


def visible_volumes(caller):
    """The volumes the caller may see (not expunged): listVolumes' rule."""
    return Volume.objects.visible_to(caller)


def _zone_filter(volumes) -> Filter:
    """The zones of the caller's volumes as chips (one aggregate query)."""
    zones = volumes.order_by("zone__name").values_list("zone__uuid", "zone__name").distinct()
    return Filter("zone", "Filter volumes by zone", tuple((str(uuid), name, Q(zone__uuid=uuid)) for uuid, name in zones))


@login_required
def volume_list(request):
    caller = request.user
    show_owner = is_admin(caller)
    columns = columns_for(COLUMNS, admin=show_owner)
    query = search_query(request)
    volumes = visible_volumes(caller)
    searched = keyword_filter(volumes, query, "name", "virtual_machine__name", "virtual_machine__display_name",
                              *(("account__name",) if show_owner else ()))
    filtered = filter_rows(request, searched, (TYPE, _zone_filter(volumes), STATE))
    rows, headers = sort(request, filtered.rows.select_related("virtual_machine", "zone", "account__domain"),
                         columns, "vm")
    page = paginate(request, rows)
    for volume in page.object_list:
        volume.size_text = format_bytes(volume.size) if volume.size else "—"
        vm = volume.virtual_machine
        volume.vm = vm if vm is not None and vm.removed is None else None
    return render(request, "storage/volume_list.html", {
        "page": page, "headers": headers, "query": query, "show_owner": show_owner,
        "filter_chips": filtered.chips, "ignored": filtered.ignored, "filtered": bool(query) or filtered.active})
