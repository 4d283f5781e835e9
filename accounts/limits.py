"""Resource limits per account and domain (CloudStack's listResourceLimits, updateResourceLimit,
updateResourceCount), and the check every allocation makes.

Usage is never stored: each app registers a *counter* for the resource types it owns
(`register_counter`), which counts the app's own rows, so a count always equals a recount.

Enforcement (`check`) runs inside the allocating transaction:

    with transaction.atomic():
        limits.check(owner, "user_vm")            # locks the account row (and limited domains)
        limits.check(owner, "cpu", offering.cpus)
        VirtualMachine.objects.create(...)        # the rows the next check will count

`check` locks the owner's Account row with SELECT … FOR UPDATE (then each non-ROOT domain above
it that has a finite limit, top-down), so concurrent allocations for one account (or one limited
domain) run one after another, and the second one counts the rows the first one committed.
Callers must therefore call it inside `transaction.atomic()`, before writing the new rows, and
must not lock a Domain row before the Account row in the same transaction (lock order: account,
then domains from the top).

Units: limits are set and listed in the API's units (a number; MiB for memory; GiB for primary
and secondary storage); counts and `check` amounts are a number, MiB for memory and *bytes* for
storage. Root admin accounts are never limited, nor is the ROOT domain (as in CloudStack).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from django.db import IntegrityError, connection, transaction

from portal import config, events
from portal.errors import InvalidParameterValue, PermissionDenied, ResourceLimitExceeded

from .access import can_manage_domain
from .choices import AccountType
from .models import Account, Domain, ResourceLimit

GIB = 1 << 30
UNLIMITED = -1
MAX_LIMIT = (1 << 63) - 1
SYSTEM_ACCOUNT = "system"


@dataclass(frozen=True)
class ResourceType:
    number: int
    name: str  # CloudStack's ResourceType name (resourcetypename)
    account_setting: str  # the default for accounts without their own limit
    domain_setting: str  # the default for domains without their own (or a parent's) limit
    unit: str  # "" (a number), "MiB" or "GiB": the unit of limits; storage counts are bytes

    @property
    def code(self) -> str:
        """The API's `resourcetype`: the number, as a string."""
        return str(self.number)

    @property
    def is_storage(self) -> bool:
        return self.unit == "GiB"

    def to_count_units(self, limit: int) -> int:
        """A limit in API units → the units counts and check amounts use (GiB → bytes)."""
        return limit * GIB if self.is_storage else limit


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(0, "user_vm", "max.account.user.vms", "max.domain.user.vms", ""),
    ResourceType(1, "public_ip", "max.account.public.ips", "max.domain.public.ips", ""),
    ResourceType(2, "volume", "max.account.volumes", "max.domain.volumes", ""),
    ResourceType(3, "snapshot", "max.account.snapshots", "max.domain.snapshots", ""),
    ResourceType(4, "template", "max.account.templates", "max.domain.templates", ""),
    ResourceType(5, "project", "max.account.projects", "max.domain.projects", ""),
    ResourceType(6, "network", "max.account.networks", "max.domain.networks", ""),
    ResourceType(7, "vpc", "max.account.vpcs", "max.domain.vpcs", ""),
    ResourceType(8, "cpu", "max.account.cpus", "max.domain.cpus", ""),
    ResourceType(9, "memory", "max.account.memory", "max.domain.memory", "MiB"),
    ResourceType(10, "primary_storage", "max.account.primary.storage", "max.domain.primary.storage", "GiB"),
    ResourceType(11, "secondary_storage", "max.account.secondary.storage", "max.domain.secondary.storage", "GiB"),
)
BY_NUMBER = {t.number: t for t in RESOURCE_TYPES}
BY_NAME = {t.name: t for t in RESOURCE_TYPES}
TYPE_CHOICES = ", ".join(f"{t.number} ({t.name})" for t in RESOURCE_TYPES)


def resource_type(value: ResourceType | int | str) -> ResourceType:
    """A ResourceType from itself, its number or its name; InvalidParameterValue otherwise."""
    if isinstance(value, ResourceType):
        return value
    if isinstance(value, int) and value in BY_NUMBER:
        return BY_NUMBER[value]
    if isinstance(value, str):
        text = value.strip().lower()
        if text in BY_NAME:
            return BY_NAME[text]
        if text.isdigit() and int(text) in BY_NUMBER:
            return BY_NUMBER[int(text)]
    raise InvalidParameterValue(f"Invalid resource type {value}; give one of {TYPE_CHOICES}")


# -- counters ---------------------------------------------------------------------------------------
Counter = Callable[[list[int]], dict[int, int]]
_COUNTERS: dict[int, dict[str, Counter]] = {t.number: {} for t in RESOURCE_TYPES}


def register_counter(rtype: ResourceType | int | str, fn: Counter, *, key: str | None = None) -> None:
    """Count `rtype` for accounts: fn(account_ids) → {account_id: used} (absent ids use 0), in
    the type's count units. Several counters of one type are added up (e.g. volumes of VMs and
    of data disks). Registering again under the same key (default: the function's dotted name)
    replaces the earlier counter."""
    rt = resource_type(rtype)
    _COUNTERS[rt.number][key or f"{fn.__module__}.{fn.__qualname__}"] = fn


def unregister_counter(rtype: ResourceType | int | str, key: str) -> None:
    _COUNTERS[resource_type(rtype).number].pop(key, None)


def counted_types() -> list[ResourceType]:
    """The resource types some app counts (a type nobody counts always shows 0 used)."""
    return [t for t in RESOURCE_TYPES if _COUNTERS[t.number]]


def counts(account_ids: Iterable[int], rtype: ResourceType | int | str) -> dict[int, int]:
    """Usage of `rtype` per account, recounted from the rows (one query per registered counter)."""
    rt = resource_type(rtype)
    ids = list(account_ids)
    out = {pk: 0 for pk in ids}
    if not ids:
        return out
    for counter in list(_COUNTERS[rt.number].values()):
        for pk, used in counter(ids).items():
            if pk in out:
                out[pk] += int(used or 0)
    return out


def count(account: Account, rtype: ResourceType | int | str) -> int:
    """What `account` uses of `rtype` (count units: bytes for storage)."""
    return counts([account.pk], rtype)[account.pk]


def domain_count(domain: Domain, rtype: ResourceType | int | str) -> int:
    """What all accounts of `domain` and its sub-domains use of `rtype` together."""
    ids = list(Account.objects.filter(domain__path__startswith=domain.path).values_list("pk", flat=True))
    return sum(counts(ids, rtype).values())


# The template counters live here until the storage app registers its own (same keys: it then
# replaces these). CloudStack counts templates and ISOs as one type, "template".
# Counters are registered by the app that owns the rows (storage: template, secondary_storage;
# compute: user_vm, cpu, memory), in its AppConfig.ready().


# -- effective limits --------------------------------------------------------------------------------
def account_max(account: Account, rtype: ResourceType | int | str) -> int:
    """The account's effective limit in API units, -1 for unlimited: its own row, else the
    max.account.* default (which may be set per account). Root admin accounts: -1."""
    rt = resource_type(rtype)
    if account.type == AccountType.ADMIN:
        return UNLIMITED
    row = ResourceLimit.objects.filter(account=account, resource_type=rt.number).values_list("max", flat=True).first()
    return int(row) if row is not None else _account_default(account, rt)


def _account_default(account: Account, rt: ResourceType) -> int:
    value = int(config.get_value(rt.account_setting, scope="account", scope_uuid=str(account.uuid)))
    return UNLIMITED if value < 0 else value


def limit_for(account: Account, rtype: ResourceType | int | str) -> int | None:
    """The account's limit in count units (bytes for storage), None for unlimited."""
    rt = resource_type(rtype)
    value = account_max(account, rt)
    return None if value < 0 else rt.to_count_units(value)


def _ancestor_paths(domain: Domain) -> list[str]:
    """The domain's own path and its parents' up to (not including) ROOT, deepest first."""
    parts = [p for p in domain.path.split("/") if p]
    return ["/" + "/".join(parts[:n]) + "/" for n in range(len(parts), 0, -1)]


def domain_max(domain: Domain, rtype: ResourceType | int | str) -> int:
    """The domain's effective limit in API units, -1 for unlimited: its own row, else the
    nearest parent's row (below ROOT), else the max.domain.* default. ROOT: -1."""
    rt = resource_type(rtype)
    if domain.is_root:
        return UNLIMITED
    paths = _ancestor_paths(domain)
    rows = dict(ResourceLimit.objects.filter(domain__path__in=paths, resource_type=rt.number)
                .values_list("domain__path", "max"))
    for path in paths:
        if path in rows:
            return int(rows[path])
    value = int(config.get_value(rt.domain_setting))
    return UNLIMITED if value < 0 else value


def domain_limit_for(domain: Domain, rtype: ResourceType | int | str) -> int | None:
    rt = resource_type(rtype)
    value = domain_max(domain, rt)
    return None if value < 0 else rt.to_count_units(value)


# -- enforcement ---------------------------------------------------------------------------------------
def check(account: Account, rtype: ResourceType | int | str, amount: int = 1) -> None:
    """Refuse allocating `amount` more of `rtype` (count units) for `account` beyond its limit or
    the limit of a domain above it. Call inside the allocating transaction, before writing the
    new rows (see the module docstring): it locks the account row, then each limited domain."""
    rt = resource_type(rtype)
    if not connection.in_atomic_block:
        raise RuntimeError("accounts.limits.check must run inside the allocating transaction.atomic()")
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.type == AccountType.ADMIN:
        return
    domain = Domain.objects.get(pk=locked.domain_id)
    limit = limit_for(locked, rt)
    if limit is not None and count(locked, rt) + amount > limit:
        _refuse(f"Maximum number of resources of type '{rt.name}' for account name={locked.name} in domain "
                f"id={domain.uuid} has been exceeded.")
    chain = list(Domain.objects.filter(path__in=_ancestor_paths(domain)).order_by("path"))
    limited = [(d, domain_limit_for(d, rt)) for d in chain]
    limited = [(d, lim) for d, lim in limited if lim is not None]
    if not limited:
        return
    list(Domain.objects.select_for_update().filter(pk__in=[d.pk for d, _ in limited]).order_by("path"))
    for dom, lim in limited:
        if domain_count(dom, rt) + amount > lim:
            _refuse(f"Maximum number of resources of type '{rt.name}' for domain id={dom.uuid} has been exceeded.")


def _refuse(message: str) -> None:
    # CloudStack throws ResourceAllocationException here, which its API answers with 535 and
    # cserrorcode 4370 (spec §3.1); the exception type stays ResourceLimitExceeded for callers.
    raise ResourceLimitExceeded(message, errorcode=535, cserrorcode=4370)


# -- listing, updating, recounting (the API's use cases) ---------------------------------------------
@dataclass
class LimitRow:
    """One line of listResourceLimits / updateResourceLimit: an account's or a domain's limit."""

    resource_type: ResourceType
    max: int
    domain: Domain
    account: Account | None = None
    row_id: int | None = None  # the ResourceLimit row, when the limit is set explicitly


@dataclass
class CountRow:
    """One line of updateResourceCount."""

    resource_type: ResourceType
    resourcecount: int
    domain: Domain
    account: Account | None = None


def _types(rtype) -> list[ResourceType]:
    return list(RESOURCE_TYPES) if rtype is None else [resource_type(rtype)]


def list_limits(caller, *, account: Account | None = None, domain: Domain | None = None, rtype=None,
                row_id: int | None = None) -> list[LimitRow]:
    """CloudStack's searchForLimits: the limits of one account (default: the caller's) or of one
    domain, one line per resource type with the effective value. Users only see their own
    account's. `account` and `domain` must already be visible to the caller."""
    if caller.account.type == AccountType.USER:
        account = caller.account
    if account is not None:
        domain = None
    if row_id is not None:
        row = ResourceLimit.objects.select_related("account__domain", "domain").filter(pk=row_id).first()
        if row is None or not _may_see_row(caller, row):
            return []
        rt = BY_NUMBER[row.resource_type]
        if rtype is not None and resource_type(rtype) != rt:
            return []
        if account is not None and row.account_id != account.pk:
            return []
        if domain is not None and row.domain_id != domain.pk:
            return []
        return [LimitRow(rt, row.max, row.account.domain if row.account_id else row.domain, row.account, row.pk)]
    if account is None and domain is None:
        account = caller.account
    types = _types(rtype)
    if account is not None:
        owner_domain = Domain.objects.get(pk=account.domain_id)
        stored = {t: (pk, value) for t, pk, value in
                  ResourceLimit.objects.filter(account=account).values_list("resource_type", "pk", "max")}
        out = []
        for t in types:
            pk, value = stored.get(t.number, (None, None))
            if account.type == AccountType.ADMIN:
                value = UNLIMITED
            elif value is None:
                value = _account_default(account, t)
            out.append(LimitRow(t, int(value), owner_domain, account, pk))
        return out
    stored = dict(ResourceLimit.objects.filter(domain=domain).values_list("resource_type", "pk"))
    return [LimitRow(t, domain_max(domain, t), domain, None, stored.get(t.number)) for t in types]


def _may_see_row(caller, row: ResourceLimit) -> bool:
    from .access import can_see_account, can_see_domain

    if row.account_id:
        return can_see_account(caller, row.account)
    return caller.account.type != AccountType.USER and can_see_domain(caller, row.domain)


def domain_limits_refusal(caller, domain: Domain) -> PermissionDenied | None:
    """Why the caller may not set `domain`'s limits, or None when it may: a root admin any domain
    but ROOT; a domain admin only the domains below its own (those whose parent it manages: a
    domain admin cannot raise its own domain's limits, as in CloudStack); users none."""
    me = caller.account
    if me.type == AccountType.USER:
        return PermissionDenied(f"Account {me.name} does not have permission to update resource limits")
    if domain.is_root:
        return PermissionDenied("Cannot update resource limit for ROOT domain, permission denied")
    if domain.pk == me.domain_id and me.type != AccountType.ADMIN:
        return PermissionDenied(f"Unable to update resource limit for your own domain {domain.display_path}, "
                                f"permission denied")
    if not can_manage_domain(caller, domain):
        return PermissionDenied(f"Account {me.name} does not have permission to update the resource limits "
                                f"of domain {domain.display_path}")
    return None


def update_limit(caller, *, rtype, max: int | None = None, account: Account | None = None,
                 domain: Domain | None = None) -> LimitRow:
    """Set the limit of one type for an account or a domain (CloudStack's updateResourceLimit).
    Root admins: any account or domain but ROOT; domain admins: accounts and sub-domains below
    their own domain, but neither their own account nor their own domain."""
    rt = resource_type(rtype)
    me = caller.account
    if me.type == AccountType.USER:
        raise PermissionDenied(f"Account {me.name} does not have permission to update resource limits")
    value = UNLIMITED if max is None else int(max)
    if value < UNLIMITED:
        raise InvalidParameterValue("Please specify either '-1' for an infinite limit, or a limit that is at least "
                                    "'0'.")
    if value > MAX_LIMIT:
        raise InvalidParameterValue(f"The limit may be at most {MAX_LIMIT}")
    if account is not None:
        owner_domain = Domain.objects.get(pk=account.domain_id)
        if account.name == SYSTEM_ACCOUNT and owner_domain.is_root:
            raise InvalidParameterValue("Can't update system account")
        if account.type == AccountType.ADMIN and value != UNLIMITED:
            raise InvalidParameterValue("Only -1 limit is supported for Root Admin accounts")
        if account.pk == me.pk and me.type != AccountType.ADMIN:
            raise PermissionDenied(f"Unable to update resource limit for your own account {account.name}, "
                                   f"permission denied")
        if not can_manage_domain(caller, owner_domain) or (account.type == AccountType.ADMIN
                                                           and me.type != AccountType.ADMIN):
            raise PermissionDenied(f"Account {me.name} does not have permission to update the resource limits "
                                   f"of account {account.name}")
        lookup = {"account": account}
        what = f"account {account.name} in {owner_domain.display_path}"
    elif domain is not None:
        owner_domain = domain
        refusal = domain_limits_refusal(caller, domain)
        if refusal is not None:
            raise refusal
        parent = Domain.objects.get(pk=domain.parent_id)
        parent_max = domain_max(parent, rt)
        if parent_max >= 0 and value > parent_max:
            raise InvalidParameterValue(
                f"Domain {parent.display_path} has maximum allowed resource limit {parent_max} for {rt.name}, "
                f"please specify a value less than or equal to {parent_max}")
        lookup = {"domain": domain}
        what = f"domain {domain.display_path}"
    else:
        raise InvalidParameterValue("AccountId or domainId have to be specified in order to update resource limit")
    with transaction.atomic():
        try:
            with transaction.atomic():
                row, _ = ResourceLimit.objects.update_or_create(**lookup, resource_type=rt.number,
                                                                defaults={"max": value})
        except IntegrityError:  # a concurrent first update of the same limit: it exists now
            row = ResourceLimit.objects.get(**lookup, resource_type=rt.number)
            row.max = value
            row.save(update_fields=["max", "updated"])
        unit = f" {rt.unit}" if rt.unit and value >= 0 else ""
        events.record(caller, "RESOURCE.LIMIT.UPDATE",
                      f"Resource limit {rt.name} of {what} set to {'unlimited' if value < 0 else f'{value}{unit}'}",
                      resource_type="ResourceLimit", account=account)
    return LimitRow(rt, value, owner_domain, account, row.pk)


@dataclass
class UsageRow:
    """A line of the UI's limits table: the effective limit and the current use, in API units
    (GiB for storage; None: no app counts this type)."""

    resource_type: ResourceType
    max: int
    used: float | int | None
    explicit: bool  # set on this account or domain itself (else a default, or a parent domain's)


def usage(caller, *, account: Account | None = None, domain: Domain | None = None) -> list[UsageRow]:
    """Each type's limit (as listResourceLimits) and use (recounted from rows, as
    updateResourceCount) of an account, or of a domain with everything below it. `account` or
    `domain` must already be visible to the caller."""
    counted = set(counted_types())
    ids = None
    if account is None:
        ids = list(Account.objects.filter(domain__path__startswith=domain.path).values_list("pk", flat=True))
    rows = []
    for row in list_limits(caller, account=account, domain=domain):
        rt = row.resource_type
        used = None
        if rt in counted:
            used = count(account, rt) if account is not None else sum(counts(ids, rt).values())
            if rt.is_storage:
                used = round(used / GIB, 2)
        rows.append(UsageRow(rt, row.max, used, row.row_id is not None))
    return rows


def recount(caller, *, domain: Domain, account: Account | None = None, rtype=None) -> list[CountRow]:
    """CloudStack's updateResourceCount: the usage of an account, or of a domain with all its
    accounts and sub-domains, recounted from the rows. Nothing is stored, so there is nothing to
    repair: the answer is the recount. Storage counts are bytes."""
    me = caller.account
    if me.type == AccountType.USER or not can_manage_domain(caller, domain):
        raise PermissionDenied(f"Account {me.name} does not have permission to count the resources of "
                               f"domain {domain.display_path}")
    types = _types(rtype)
    if account is not None:
        return [CountRow(t, count(account, t), domain, account) for t in types]
    ids = list(Account.objects.filter(domain__path__startswith=domain.path).values_list("pk", flat=True))
    return [CountRow(t, sum(counts(ids, t).values()), domain) for t in types]
