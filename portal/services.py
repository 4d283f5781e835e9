"""Use cases of the framework itself: capabilities and global settings."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from . import config, events
from .errors import InvalidParameterValue, ParamError, PermissionDenied


def capabilities(caller) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cloudstackversion": settings.CLOUDSTACK_VERSION,
        "securitygroupsenabled": False,
        "userpublictemplateenabled": True,
        "supportELB": "false",
        "projectinviterequired": False,
        "allowusercreateprojects": False,
        "customdiskofferingminsize": 1,
        "customdiskofferingmaxsize": 1024,
        "regionsecondaryenabled": False,
        "kvmsnapshotenabled": True,
        "allowuserviewdestroyedvm": True,
        "allowuserexpungerecovervm": False,
        "allowuserexpungerecovervolume": True,
        "allowuserviewalldomainaccounts": False,
        "dynamicrolesenabled": True,
        "kubernetesserviceenabled": False,
        "kubernetesclusterexperimentalfeaturesenabled": False,
        "defaultuipagesize": config.get_value("default.ui.page.size"),
        "instancesstatsretentiontime": 720,
        "instancesstatsuseronly": False,
        "instancesdisksstatsretentionenabled": False,
        "instancesdisksstatsretentiontime": 720,
    }
    if config.get_value("api.throttling.enabled"):
        data["apilimitinterval"] = config.get_value("api.throttling.interval")
        data["apilimitmax"] = config.get_value("api.throttling.max")
    return data


def _row(setting: config.Setting, value: Any, scope: str, scope_uuid: str) -> dict[str, Any]:
    return {
        "name": setting.name,
        "category": setting.category,
        "value": setting.render(value),
        "defaultvalue": setting.render(setting.default),
        "description": setting.description,
        "scope": scope if scope != "global" else ",".join(setting.scopes) if len(setting.scopes) > 1 else "global",
        "id": scope_uuid or None,
        "isdynamic": setting.is_dynamic,
        "type": setting.type,
        "component": setting.component,
        "options": ",".join(setting.choices) if setting.choices else None,
    }


def list_configurations(*, category: str | None = None, name: str | None = None, keyword: str | None = None,
                        scope: str = "global", scope_uuid: str = "") -> list[dict[str, Any]]:
    rows = []
    for setting in sorted(config.REGISTRY.values(), key=lambda s: s.name):
        if scope != "global" and scope not in setting.scopes:
            continue
        if category and setting.category.lower() != category.lower():
            continue
        if name and setting.name != name:
            continue
        if keyword and keyword.lower() not in setting.name.lower() and keyword.lower() not in setting.description.lower():
            continue
        rows.append(_row(setting, config.get_value(setting.name, scope=scope, scope_uuid=scope_uuid), scope, scope_uuid))
    return rows


def _settable(caller, name: str, scope: str) -> config.Setting:
    if not caller.account.is_root_admin:
        raise PermissionDenied("Only a root admin may change global settings")
    setting = config.REGISTRY.get(name)
    if setting is None:
        raise InvalidParameterValue(f"Configuration {name} does not exist; listConfigurations shows the names")
    if scope not in setting.scopes:
        raise InvalidParameterValue(f"Configuration {name} can be set {' or '.join(setting.scopes)}, not per {scope}")
    return setting


def update_configuration(caller, name: str, value: str | None, *, scope: str = "global", scope_uuid: str = "") -> dict[str, Any]:
    setting = _settable(caller, name, scope)
    if value is None:
        raise ParamError("Unable to execute API command updateconfiguration due to missing parameter value")
    with transaction.atomic():
        try:
            typed = config.set_value(name, value, scope=scope, scope_uuid=scope_uuid)
        except ValueError as exc:
            raise InvalidParameterValue(str(exc)) from None
        where = "globally" if scope == "global" else f"for {scope} {scope_uuid}"
        events.record(caller, "CONFIGURATION.VALUE.EDIT", f"Setting {name} set to {setting.render(typed)} {where}",
                      resource_type="Configuration")
    return _row(setting, typed, scope, scope_uuid)


def reset_configuration(caller, name: str, *, scope: str = "global", scope_uuid: str = "") -> dict[str, Any]:
    """resetConfiguration: the scope's own value is forgotten; it inherits the global value again
    (the global value: the default)."""
    setting = _settable(caller, name, scope)
    with transaction.atomic():
        had = config.unset_value(name, scope=scope, scope_uuid=scope_uuid)
        where = "globally" if scope == "global" else f"for {scope} {scope_uuid}"
        inherits = "its default" if scope == "global" else "the global value"
        events.record(caller, "CONFIGURATION.VALUE.EDIT", f"Setting {name} reset {where} to {inherits}"
                      + ("" if had else " (it had no value of its own)"), resource_type="Configuration")
    return _row(setting, config.get_value(name, scope=scope, scope_uuid=scope_uuid), scope, scope_uuid)
