"""Global settings (CloudStack's "configuration"): typed definitions in code, values in the
database (portal.models.ConfigurationValue), optionally overridden per scope object.

Apps define their own settings at import time of their `settings_defs` module, which their
AppConfig.ready() imports; everything reads values through `get_value`.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable

from .cache import Snapshot, invalidate_on_commit

SCOPES = ("global", "zone", "cluster", "storagepool", "account", "domain")


@dataclass(frozen=True)
class Setting:
    name: str
    category: str
    type: str  # Boolean | Integer | Float | String | CIDRList
    default: Any
    description: str
    scopes: tuple[str, ...] = ("global",)
    minimum: float | None = None
    maximum: float | None = None
    component: str = "ManagementServer"
    is_dynamic: bool = True
    choices: tuple[str, ...] | None = None
    validator: Callable[[Any], None] | None = field(default=None, compare=False)

    def parse(self, raw: str) -> Any:
        """Turn a stored or submitted string into a typed value; ValueError with a user sentence."""
        text = raw.strip()
        if self.type == "Boolean":
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{self.name} takes true or false, not {raw!r}")
            return text.lower() == "true"
        if self.type in ("Integer", "Float"):
            try:
                value: Any = int(text) if self.type == "Integer" else float(text)
            except ValueError:
                kind = "a whole number" if self.type == "Integer" else "a number"
                raise ValueError(f"{self.name} takes {kind}, not {raw!r}") from None
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"{self.name} must be at least {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"{self.name} must be at most {self.maximum:g}")
            return value
        if self.type == "CIDRList":
            items = [c.strip() for c in text.split(",") if c.strip()]
            for item in items:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"{self.name}: {item!r} is not a CIDR such as 10.0.0.0/8") from None
            return items
        if self.choices is not None and text not in self.choices:
            raise ValueError(f"{self.name} takes one of {', '.join(self.choices)}, not {raw!r}")
        return text

    def render(self, value: Any) -> str:
        if self.type == "Boolean":
            return "true" if value else "false"
        if self.type == "CIDRList":
            return ",".join(value)
        return str(value)


REGISTRY: dict[str, Setting] = {}


def define(setting: Setting) -> Setting:
    REGISTRY[setting.name] = setting
    return setting


def get_setting(name: str) -> Setting:
    return REGISTRY[name]


def _load_rows() -> dict[tuple[str, str, str], str]:
    from .models import ConfigurationValue

    return {(r.name, r.scope, r.scope_uuid): r.value
            for r in ConfigurationValue.objects.only("name", "scope", "scope_uuid", "value")}


_ROWS = Snapshot(_load_rows)


def invalidate_cache() -> None:
    _ROWS.invalidate()


def get_value(name: str, *, scope: str = "global", scope_uuid: str = "") -> Any:
    """The effective value: the scope object's own value, else the global value, else the default."""
    setting = REGISTRY[name]
    rows = _ROWS.get()
    keys = [(name, "global", "")]
    if scope != "global" and scope_uuid:
        keys.insert(0, (name, scope, str(scope_uuid)))
    for key in keys:
        if key in rows:
            try:
                return setting.parse(rows[key])
            except ValueError:
                break
    return setting.default


def set_value(name: str, raw: str, *, scope: str = "global", scope_uuid: str = "") -> Any:
    from .models import ConfigurationValue

    setting = REGISTRY[name]
    value = setting.parse(raw)
    if setting.validator is not None:
        setting.validator(value)
    ConfigurationValue.objects.update_or_create(
        name=name, scope=scope, scope_uuid=str(scope_uuid or ""), defaults={"value": setting.render(value)}
    )
    invalidate_on_commit(_ROWS)
    return value


def unset_value(name: str, *, scope: str = "global", scope_uuid: str = "") -> bool:
    """Forget the value set for `scope` (the scope then inherits the global value, the global the
    default); False when none was set."""
    from .models import ConfigurationValue

    deleted, _ = ConfigurationValue.objects.filter(name=name, scope=scope, scope_uuid=str(scope_uuid or "")).delete()
    invalidate_on_commit(_ROWS)
    return bool(deleted)


def values_set_at(scope: str, scope_uuid: str) -> dict[str, str]:
    """The settings given a value of their own at this scope object: name -> value as stored."""
    return {name: value for (name, row_scope, row_uuid), value in _ROWS.get().items()
            if (row_scope, row_uuid) == (scope, str(scope_uuid))}


# The framework's own settings (CloudStack's names where CloudStack has the setting).
define(Setting("default.page.size", "Advanced", "Integer", 500,
               "Default and largest page size of API list calls.", minimum=1, maximum=5000))
define(Setting("default.ui.page.size", "Advanced", "Integer", 20,
               "Rows per page in the web UI (listCapabilities defaultuipagesize).", minimum=1, maximum=500))
define(Setting("enforce.post.requests.and.timestamps", "Advanced", "Boolean", False,
               "Require signatureVersion=3 with an expires at most 15 minutes ahead on signed requests."))
define(Setting("incorrect.login.attempts.allowed", "Advanced", "Integer", 5,
               "Failed logins in a row after which a user's logins are refused for login.lockout.seconds.",
               minimum=1, maximum=100))
define(Setting("login.lockout.seconds", "Advanced", "Integer", 300,
               "How long logins are refused after too many failures in a row.", minimum=1, maximum=86400))
define(Setting("expunge.delay", "Advanced", "Integer", 86400,
               "Seconds a destroyed VM stays recoverable before it is expunged.", minimum=0))
define(Setting("expunge.interval", "Advanced", "Integer", 86400,
               "Seconds between runs of the expunge job.", minimum=10))
define(Setting("cpu.overprovisioning.factor", "Advanced", "Float", 1.0,
               "CPU capacity is multiplied by this factor for allocation.", scopes=("global", "cluster"),
               minimum=1.0, maximum=100.0))
define(Setting("mem.overprovisioning.factor", "Advanced", "Float", 1.0,
               "Memory capacity is multiplied by this factor for allocation.", scopes=("global", "cluster"),
               minimum=1.0, maximum=100.0))
define(Setting("storage.overprovisioning.factor", "Storage", "Float", 2.0,
               "Primary storage capacity is multiplied by this factor for thin-provisioned pools.",
               scopes=("global", "zone", "storagepool"), minimum=1.0, maximum=100.0))
define(Setting("job.cancel.threshold.minutes", "Advanced", "Integer", 60,
               "A pending async job whose worker has been gone this long is failed by the reaper.",
               minimum=1))
define(Setting("event.purge.delay", "Advanced", "Integer", 0,
               "Days after which events are purged (0 keeps them forever).", minimum=0))
define(Setting("api.throttling.enabled", "Advanced", "Boolean", False,
               "Limit API calls per account (see api.throttling.max and api.throttling.interval)."))
define(Setting("api.throttling.interval", "Advanced", "Integer", 1,
               "Window in seconds for api.throttling.max.", minimum=1))
define(Setting("api.throttling.max", "Advanced", "Integer", 25,
               "API calls allowed per account within api.throttling.interval.", minimum=1))
