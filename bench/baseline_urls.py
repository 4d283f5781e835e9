"""portal.urls plus /bench/baseline/<name>: a bare Django view answering the exact bytes (and
Content-Type) our API answered for the same request, captured once by bench/run.py into
$BENCH_CAPTURE_DIR/<name>.body and <name>.ctype. The file is read on first use, then served
from memory, so the baseline costs Django's request handling and nothing else."""
from __future__ import annotations

import os
import re
from pathlib import Path

from django.http import Http404, HttpResponse
from django.urls import path

from portal.urls import urlpatterns as app_urlpatterns

_CACHE: dict[str, tuple[bytes, str]] = {}
_NAME = re.compile(r"^[a-z0-9_]+$")


def _captured(name: str) -> tuple[bytes, str]:
    hit = _CACHE.get(name)
    if hit is None:
        folder = Path(os.environ.get("BENCH_CAPTURE_DIR", ""))
        try:
            hit = ((folder / f"{name}.body").read_bytes(), (folder / f"{name}.ctype").read_text().strip())
        except OSError:
            raise Http404(f"nothing captured for {name}") from None
        _CACHE[name] = hit
    return hit


def baseline(request, name: str) -> HttpResponse:
    if not _NAME.match(name):
        raise Http404(name)
    body, content_type = _captured(name)
    return HttpResponse(body, content_type=content_type)


def _date(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S%z")


def orm_listaccounts(request) -> HttpResponse:
    """The same 500-row listAccounts page built the plain way: two ORM queries with .values()
    and hand-written dicts, no API framework, no authentication. What our endpoint costs beyond
    this is the framework's overhead (signature check, registry, serializers, envelope)."""
    import json

    from accounts.models import Account, User

    qs = Account.objects.exclude(name="system", domain__parent=None).order_by("id")
    count = qs.count()
    fields = ("id", "uuid", "name", "type", "role__uuid", "role__name", "role__type", "domain__uuid", "domain__name",
              "domain__path", "state", "is_default", "network_domain", "created")
    accounts = list(qs.values(*fields)[:500])
    users: dict[int, list] = {}
    for u in User.objects.filter(account_id__in=[a["id"] for a in accounts]).order_by("id").values(
            "account_id", "uuid", "username", "firstname", "lastname", "email", "state", "account__name",
            "account__uuid", "account__type", "account__role__uuid", "account__role__name", "account__role__type",
            "domain__uuid", "domain__name", "domain__path", "created", "timezone", "api_key", "is_default"):
        path = u["domain__path"]
        row = {"id": str(u["uuid"]), "username": u["username"], "firstname": u["firstname"],
               "lastname": u["lastname"], "email": u["email"], "state": u["state"], "account": u["account__name"],
               "accountid": str(u["account__uuid"]), "accounttype": u["account__type"],
               "roleid": str(u["account__role__uuid"]), "rolename": u["account__role__name"],
               "roletype": u["account__role__type"], "domainid": str(u["domain__uuid"]), "domain": u["domain__name"],
               "domainpath": "ROOT" + path.rstrip("/") if path != "/" else "ROOT", "created": _date(u["created"]),
               "timezone": u["timezone"]}
        if u["api_key"] is not None:
            row["apikey"] = u["api_key"]
        row.update({"isdefault": u["is_default"], "usersource": "native", "is2faenabled": False})
        users.setdefault(u["account_id"], []).append(row)
    items = []
    for a in accounts:
        path = a["domain__path"]
        row = {"id": str(a["uuid"]), "name": a["name"], "accounttype": a["type"], "roleid": str(a["role__uuid"]),
               "rolename": a["role__name"], "roletype": a["role__type"], "domainid": str(a["domain__uuid"]),
               "domain": a["domain__name"], "domainpath": "ROOT" + path.rstrip("/") if path != "/" else "ROOT",
               "state": a["state"], "isdefault": a["is_default"]}
        if a["network_domain"]:
            row["networkdomain"] = a["network_domain"]
        row.update({"created": _date(a["created"]), "user": users.get(a["id"], [])})
        items.append(row)
    body = json.dumps({"listaccountsresponse": {"count": count, "account": items}}, ensure_ascii=False,
                      separators=(",", ":"))
    return HttpResponse(body, content_type="application/json; charset=UTF-8")


# -- bare UI pages (bench/ui.py): the same rows as the dashboard and the instances page, rendered
# from plain queries by a minimal template, without the UI's shell, scoping or helpers.
_BARE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head><body>
<h1>{{ title }}</h1>{% for name, rows in tables %}<h2>{{ name }}</h2><table>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}
</body></html>"""


def _bare(title: str, tables: list) -> HttpResponse:
    from django.template import Context, Engine

    template = Engine.get_default().from_string(_BARE_PAGE)
    return HttpResponse(template.render(Context({"title": title, "tables": tables})))


def bare_dashboard(request) -> HttpResponse:
    """Per zone its hosts' CPU and memory totals, VMs and hosts by state, 5 alerts, 10 events."""
    from django.db.models import Count, Sum

    from compute.models import Alert, Host, VirtualMachine
    from portal.models import AsyncJob, Event

    zones = list(Host.objects.values_list("zone__name").annotate(Sum("cpu_number"), Sum("memory_total"),
                                                                 Sum("memory_used")).order_by("zone__name")[:6])
    vms = list(VirtualMachine.objects.values_list("state").annotate(Count("id")).order_by("state"))
    hosts = list(Host.objects.values_list("state").annotate(Count("id")).order_by("state"))
    alerts = list(Alert.objects.filter(archived=False).values_list("sent", "subject")[:5])
    jobs = list(AsyncJob.objects.filter(status=0).values_list("command", "progress")[:10])
    events = list(Event.objects.order_by("-created", "-id").values_list("created", "type", "description")[:10])
    return _bare("Dashboard", [("Zones", zones), ("VMs", vms), ("Hosts", hosts), ("Alerts", alerts),
                               ("Jobs", jobs), ("Events", events)])


def bare_instances(request) -> HttpResponse:
    """The newest 20 VMs with zone, address, template, offering, host and owner, and the count."""
    from django.db.models import Prefetch

    from compute.models import Nic, VirtualMachine

    qs = VirtualMachine.objects.filter(removed__isnull=True)
    count = qs.count()
    page = list(qs.select_related("zone", "host", "template", "service_offering", "account").prefetch_related(
        Prefetch("nics", queryset=Nic.objects.select_related("address"))).order_by("-created", "-id")[:20])
    rows = [(vm.name, vm.state, vm.zone.name, ", ".join(n.address.address for n in vm.nics.all() if n.address_id),
             vm.template.name, vm.service_offering.name, vm.host.name if vm.host_id else "", vm.account.name,
             vm.created) for vm in page]
    return _bare(f"Instances ({count})", [("VMs", rows)])


urlpatterns = [*app_urlpatterns, path("bench/baseline/<str:name>", baseline),
               path("bench/orm/listaccounts_500", orm_listaccounts),
               path("bench/ui/dashboard", bare_dashboard), path("bench/ui/instances", bare_instances)]
