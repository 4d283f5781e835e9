"""Global settings UI (root admin only, as updateConfiguration; anyone else gets 404): every
setting with its description, category, type, current and default value — searchable by name or
description, filtered by category, sortable — and a page per setting to change its global value,
validated by portal.services.update_configuration (the type, bounds and choices of the setting's
definition), which writes the event. The error is shown next to the value."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import config, services
from .errors import ApiError
from .ui import Column, chips, choose, root_admin_required, search_query, sort
from .views import paginate

COLUMNS = (Column("name", "Name", ("name",)), Column("category", "Category", ("category",)),
           Column("value", "Value"), Column("defaultvalue", "Default"), Column("description", "Description"))


class SettingForm(forms.Form):
    value = forms.CharField(label="Value", required=False, max_length=4096, strip=False)

    def __init__(self, *args, setting: config.Setting, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["value"]
        choices = ("true", "false") if setting.type == "Boolean" else setting.choices
        if choices:
            self.fields["value"] = forms.ChoiceField(label="Value", choices=[(c, c) for c in choices])
        else:
            hints = {"Integer": "A whole number", "Float": "A number", "CIDRList": "CIDRs separated by commas"}
            bounds = [f"at least {setting.minimum:g}" if setting.minimum is not None else "",
                      f"at most {setting.maximum:g}" if setting.maximum is not None else ""]
            text = ", ".join(b for b in bounds if b)
            field.help_text = hints.get(setting.type, "Text") + (f", {text}" if text else "") + "."


@root_admin_required
def setting_list(request):
    query = search_query(request)
    categories = sorted({s.category for s in config.REGISTRY.values()})
    category, ignored = choose(request, "category", categories)
    rows = services.list_configurations(keyword=query or None, category=category or None)
    for row in rows:
        row["changed"] = row["value"] != row["defaultvalue"]
    rows, headers = sort(request, rows, COLUMNS, "name")
    return render(request, "portal/settings.html", {
        "page": paginate(request, rows), "headers": headers, "query": query,
        "chips": chips(request, "category", [(c, c) for c in categories], "Filter settings by category",
                       current=category),
        "ignored": ignored})


@root_admin_required
@require_http_methods(["GET", "POST"])
def setting_detail(request, name: str):
    setting = config.REGISTRY.get(name)
    if setting is None:
        raise Http404("No such setting")
    row = services.list_configurations(name=name)[0]
    form = SettingForm(request.POST if request.method == "POST" else None, setting=setting,
                       initial={"value": row["value"]})
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.update_configuration(request.user, name, form.cleaned_data["value"])
        except ApiError as exc:
            form.add_error("value", exc.message)
        else:
            messages.success(request, f"{name} is now {changed['value']}.")
            return redirect("setting", name=name)
    return render(request, "portal/setting_detail.html", {"setting": setting, "row": row, "form": form})


# -- settings of one zone, cluster, primary storage pool or account (updateConfiguration with
# zoneid/clusterid/storageid/accountid; resetConfiguration forgets the value) -----------------------
def _scope_objects() -> dict:
    from accounts.models import Account
    from compute.models import Cluster, Zone
    from storage.models import StoragePool

    # scope -> (model, label, the object's page)
    return {"zone": (Zone, "zone", "infra-zone"), "cluster": (Cluster, "cluster", "infra-cluster"),
            "storagepool": (StoragePool, "primary storage", "infra-primary-detail"),
            "account": (Account, "account", "account-detail")}


def _scope_object(scope: str, uuid):
    kinds = _scope_objects()
    if scope not in kinds:
        raise Http404("No such scope")
    model, label, page = kinds[scope]
    obj = model.objects.filter(uuid=uuid).first()
    if obj is None:
        raise Http404(f"No such {label}")
    return obj, label, page


@root_admin_required
def scoped_settings(request, scope: str, uuid):
    """The settings this object may have a value of its own for: its value (own, or inherited from
    the global value) and the global one."""
    obj, label, page = _scope_object(scope, uuid)
    own = config.values_set_at(scope, str(obj.uuid))
    rows = services.list_configurations(scope=scope, scope_uuid=str(obj.uuid))
    globals_ = {row["name"]: row["value"] for row in services.list_configurations()}
    for row in rows:
        row["own"] = row["name"] in own
        row["global"] = globals_[row["name"]]
    return render(request, "portal/scoped_settings.html", {
        "object": obj, "label": label, "page": page, "scope": scope, "rows": rows})


@root_admin_required
@require_http_methods(["GET", "POST"])
def scoped_setting(request, scope: str, uuid, name: str):
    obj, label, page = _scope_object(scope, uuid)
    setting = config.REGISTRY.get(name)
    if setting is None or scope not in setting.scopes:
        raise Http404("No such setting for this scope")
    scope_uuid = str(obj.uuid)
    row = services.list_configurations(name=name, scope=scope, scope_uuid=scope_uuid)[0]
    own = name in config.values_set_at(scope, scope_uuid)
    form = SettingForm(request.POST if request.method == "POST" and "reset" not in request.POST else None,
                       setting=setting, initial={"value": row["value"]})
    back = redirect("scoped-settings", scope=scope, uuid=obj.uuid)
    if request.method == "POST" and "reset" in request.POST:
        changed = services.reset_configuration(request.user, name, scope=scope, scope_uuid=scope_uuid)
        messages.success(request, f"{name} of {label} {obj.name} now follows the global value ({changed['value']}).")
        return back
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.update_configuration(request.user, name, form.cleaned_data["value"], scope=scope,
                                                    scope_uuid=scope_uuid)
        except ApiError as exc:
            form.add_error("value", exc.message)
        else:
            messages.success(request, f"{name} of {label} {obj.name} is now {changed['value']}.")
            return back
    return render(request, "portal/scoped_setting.html", {
        "object": obj, "label": label, "page": page, "scope": scope, "setting": setting, "row": row, "own": own,
        "global": services.list_configurations(name=name)[0]["value"], "form": form})
