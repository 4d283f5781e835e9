"""Service and disk offerings: what a VM's size (vCPUs, speed, memory) and a data disk's size
are chosen from. Use cases for createServiceOffering … deleteDiskOffering and the defaults the
bootstrap seeds; each checks the caller, owns its transaction and writes its event.

Who may do what (CloudStack 4.18's rules):
- a root admin creates, changes and deletes any offering, public or domain-specific;
- a domain admin only domain-specific offerings whose domains all lie in its own subtree (it may
  not create public ones, nor touch the public ones or those of other subtrees);
- users only list (public offerings and those of their domain or of one of its ancestors).

An offering is public when it names no domain; a domain-specific one is usable in its domains and
their sub-domains. Deleting marks the row removed (VMs that use it keep pointing at it), as
CloudStack does.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.access import can_manage_domain
from accounts.choices import AccountType
from portal import events
from portal.errors import InvalidParameterValue, ParamError, PermissionDenied, ResourceInUse

from .models import DiskOffering, ProvisioningType, ServiceOffering, StorageType, _ancestor_paths

INT_MAX = 2147483647  # CloudStack's bound (Integer.MAX_VALUE) and the database column's
MIN_MEMORY_MIB = 32  # CloudStack refuses less
MAX_DISK_GIB = 1024 * 1024  # 1 PiB: a fixed disk size beyond this is a typo
CUSTOM_DISK_MIN_GIB = 1  # the range of a customized disk size, as listCapabilities announces it
CUSTOM_DISK_MAX_GIB = 1024  # (customdiskofferingminsize / customdiskofferingmaxsize)

# Later apps (instances, volumes) register here: f(offering) -> names of what uses it (VMs for a
# ServiceOffering, volumes for a DiskOffering; a hook is called with both kinds and answers [] for
# the kind it does not track). A delete is refused (536, ResourceInUse) while any hook names a
# user. CloudStack itself lets an offering in use be deleted (its VMs keep it); register a hook
# only where a deleted offering would leave something broken.
OFFERING_USERS_HOOKS: list[Callable[[ServiceOffering | DiskOffering], list[str]]] = []


# -- who may do what -------------------------------------------------------------------------------
def _kind(offering_or_model) -> str:
    model = offering_or_model if isinstance(offering_or_model, type) else type(offering_or_model)
    return "service offering" if model is ServiceOffering else "disk offering"


def check_domains_for_create(caller, domains: list, kind: str) -> None:
    """A root admin creates any offering; a domain admin only for domains inside its subtree."""
    account_type = caller.account.type
    if account_type == AccountType.ADMIN:
        return
    if account_type != AccountType.DOMAIN_ADMIN:
        raise PermissionDenied(f"Only administrators may create {kind}s")
    if not domains:
        raise PermissionDenied(f"A domain admin may not create a public {kind}: give domainid, the domain(s) of "
                               f"your subtree it is for")
    for domain in domains:
        if not can_manage_domain(caller, domain):
            raise PermissionDenied(f"A domain admin may only create {kind}s for domains of its own subtree, not "
                                   f"for {domain.display_path}")


def require_manage(caller, offering, action: str) -> None:
    """May the caller change or delete this offering? Root admin: yes. Domain admin: when the
    offering is domain-specific and every one of its domains lies in the admin's subtree."""
    account_type = caller.account.type
    if account_type == AccountType.ADMIN:
        return
    kind = _kind(offering)
    if account_type != AccountType.DOMAIN_ADMIN:
        raise PermissionDenied(f"Only administrators may {action} {kind}s")
    domains = list(offering.domains.all())
    if not domains:
        raise PermissionDenied(f"Only a root admin may {action} the public {kind} {offering.name}")
    outside = [d.display_path for d in domains if not can_manage_domain(caller, d)]
    if outside:
        raise PermissionDenied(f"The {kind} {offering.name} is also for {', '.join(outside)}, outside your "
                               f"subtree; only a root admin may {action} it")


def domain_known_to(caller, domain) -> bool:
    """Domains a caller may name when listing offerings: its own, its ancestors (whose offerings
    it may use), and (domain admin) its subtree; a root admin any."""
    account = caller.account
    if account.type == AccountType.ADMIN:
        return True
    if domain.path in _ancestor_paths(account.domain.path):
        return True
    return account.type == AccountType.DOMAIN_ADMIN and domain.path.startswith(account.domain.path)


# -- values ----------------------------------------------------------------------------------------
def _name(value: str | None, kind: str) -> str:
    name = (value or "").strip()
    if not name:
        raise ParamError(f"The {kind} name must not be empty")
    return name


def _number(value: int | None, param: str, *, minimum: int = 1, maximum: int = INT_MAX, unit: str = "") -> int | None:
    if value is None:
        return None
    if value < minimum or value > maximum:
        suffix = f" {unit}" if unit else ""
        raise InvalidParameterValue(f"{param} must be between {minimum} and {maximum}{suffix}, not {value}")
    return value


def _choice(value: str | None, param: str, choices: Iterable[str], default: str) -> str:
    if value is None or value.strip() == "":
        return default
    text = value.strip().lower()
    allowed = list(choices)
    if text not in allowed:
        raise InvalidParameterValue(f"{param} must be {' or '.join(allowed)}, not {value}")
    return text


def storage_type_value(value: str | None) -> str:
    return _choice(value, "storagetype", StorageType.values, StorageType.SHARED)


def provisioning_type_value(value: str | None) -> str:
    return _choice(value, "provisioningtype", ProvisioningType.values, ProvisioningType.THIN)


def tags_value(value: str | None) -> str:
    """A comma-separated tag list, trimmed, without blanks and duplicates."""
    tags: list[str] = []
    for tag in (value or "").split(","):
        tag = tag.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return ",".join(tags)


def _sort_key(value: int | None) -> int | None:
    return _number(value, "sortkey", minimum=-INT_MAX, maximum=INT_MAX)


def _refuse_zones(zones: list | None, kind: str) -> None:
    if zones:
        raise InvalidParameterValue(f"Every {kind} is available in every zone; zone-specific offerings are not "
                                    f"supported: leave zoneid out")


def _users_of(offering) -> list[str]:
    names: list[str] = []
    for hook in OFFERING_USERS_HOOKS:
        names.extend(hook(offering))
    return names


def _in_use(offering, kind: str) -> None:
    users = _users_of(offering)
    if users:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise ResourceInUse(f"The {kind} {offering.name} is in use by {shown}")


def _domains_text(domains: list) -> str:
    return " for " + ", ".join(d.display_path for d in domains) if domains else " (public)"


# -- service offerings -----------------------------------------------------------------------------
def _service_sizes(*, customized: bool | None, cpu_number: int | None, memory: int | None,
                   min_cpu_number: int | None, max_cpu_number: int | None, min_memory: int | None,
                   max_memory: int | None) -> dict[str, Any]:
    """CloudStack's rules: a fixed offering gives cpunumber and memory; a customized one leaves
    them to the deployment, optionally bounded by all four of min/max cpu and memory."""
    fixed_given = [p for p, v in (("cpunumber", cpu_number), ("memory", memory)) if v is not None]
    ranges = {"mincpunumber": min_cpu_number, "maxcpunumber": max_cpu_number, "minmemory": min_memory,
              "maxmemory": max_memory}
    ranges_given = [p for p, v in ranges.items() if v is not None]
    if customized is None:
        customized = not fixed_given
    if customized:
        if fixed_given:
            raise InvalidParameterValue(
                f"A customized offering takes the number of CPUs and the memory at deployment: leave "
                f"{' and '.join(fixed_given)} out (bound them with mincpunumber/maxcpunumber and minmemory/maxmemory), "
                f"or pass customized=false for a fixed offering")
        if ranges_given and len(ranges_given) != len(ranges):
            missing = [p for p in ranges if p not in ranges_given]
            raise InvalidParameterValue(
                f"A constrained customized offering needs all of mincpunumber, maxcpunumber, minmemory and maxmemory; "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
        if ranges_given:
            _number(min_cpu_number, "mincpunumber")
            _number(max_cpu_number, "maxcpunumber")
            _number(min_memory, "minmemory", minimum=MIN_MEMORY_MIB, unit="MiB")
            _number(max_memory, "maxmemory", minimum=MIN_MEMORY_MIB, unit="MiB")
            if min_cpu_number > max_cpu_number:
                raise InvalidParameterValue(f"mincpunumber ({min_cpu_number}) must not be greater than maxcpunumber "
                                            f"({max_cpu_number})")
            if min_memory > max_memory:
                raise InvalidParameterValue(f"minmemory ({min_memory} MiB) must not be greater than maxmemory "
                                            f"({max_memory} MiB)")
        return {"customized": True, "cpu_number": None, "memory": None, "min_cpu_number": min_cpu_number,
                "max_cpu_number": max_cpu_number, "min_memory": min_memory, "max_memory": max_memory}
    if ranges_given:
        raise InvalidParameterValue(f"{', '.join(ranges_given)} bound a customized offering: pass customized=true and "
                                    f"leave cpunumber and memory out, or drop the ranges")
    if cpu_number is None or memory is None:
        missing = "cpunumber" if cpu_number is None else "memory"
        raise InvalidParameterValue(f"A fixed offering needs both cpunumber and memory: give {missing} too, or "
                                    f"pass customized=true to take them at deployment")
    _number(cpu_number, "cpunumber")
    _number(memory, "memory", minimum=MIN_MEMORY_MIB, unit="MiB")
    return {"customized": False, "cpu_number": cpu_number, "memory": memory, "min_cpu_number": None,
            "max_cpu_number": None, "min_memory": None, "max_memory": None}


def create_service_offering(caller, *, name: str, display_text: str | None = None, cpu_number: int | None = None,
                            cpu_speed: int | None = None, memory: int | None = None, customized: bool | None = None,
                            min_cpu_number: int | None = None, max_cpu_number: int | None = None,
                            min_memory: int | None = None, max_memory: int | None = None,
                            root_disk_size: int | None = None, storage_type: str | None = None,
                            provisioning_type: str | None = None, offer_ha: bool = False,
                            limit_cpu_use: bool = False, host_tags: str | None = None, tags: str | None = None,
                            domains: list | None = None, zones: list | None = None, is_system: bool = False,
                            sort_key: int | None = None) -> ServiceOffering:
    domains = list(domains or [])
    check_domains_for_create(caller, domains, "service offering")
    name = _name(name, "service offering")
    if is_system:
        raise InvalidParameterValue("System offerings are not supported: Nubo runs no system VMs; leave issystem out")
    _refuse_zones(zones, "service offering")
    sizes = _service_sizes(customized=customized, cpu_number=cpu_number, memory=memory,
                           min_cpu_number=min_cpu_number, max_cpu_number=max_cpu_number, min_memory=min_memory,
                           max_memory=max_memory)
    _number(cpu_speed, "cpuspeed", unit="MHz")
    if limit_cpu_use and cpu_speed is None:
        raise InvalidParameterValue("limitcpuuse=true caps each vCPU at cpuspeed MHz: give cpuspeed too")
    _number(root_disk_size, "rootdisksize", unit="GiB")
    with transaction.atomic():
        offering = ServiceOffering.objects.create(
            name=name, display_text=(display_text or "").strip() or name, cpu_speed=cpu_speed,
            root_disk_size=root_disk_size, storage_type=storage_type_value(storage_type),
            provisioning_type=provisioning_type_value(provisioning_type), offer_ha=bool(offer_ha),
            limit_cpu_use=bool(limit_cpu_use), host_tags=tags_value(host_tags), tags=tags_value(tags),
            sort_key=_sort_key(sort_key) or 0, **sizes)
        offering.domains.set(domains)
        events.record(caller, "SERVICE.OFFERING.CREATE",
                      f"Service offering {name} created{_domains_text(domains)}", resource=offering)
    return offering


def update_service_offering(caller, offering: ServiceOffering, *, name: str | None = None,
                            display_text: str | None = None, sort_key: int | None = None,
                            domains: list | None = None, zones: list | None = None, host_tags: str | None = None,
                            tags: str | None = None) -> ServiceOffering:
    """updateServiceOffering: what an offering is called, its order, its domains (None: unchanged,
    []: public) and its host and storage tags. The sizes of an offering never change."""
    return _update(caller, ServiceOffering, offering, "SERVICE.OFFERING.EDIT", name=name, display_text=display_text,
                   sort_key=sort_key, domains=domains, zones=zones, host_tags=host_tags, tags=tags)


def delete_service_offering(caller, offering: ServiceOffering) -> None:
    _delete(caller, ServiceOffering, offering, "SERVICE.OFFERING.DELETE")


# -- disk offerings --------------------------------------------------------------------------------
def disk_size_bytes(offering: DiskOffering, size: int | None) -> int:
    """The size in bytes of a disk made from `offering`: its fixed size, or `size` GiB for a
    customized one, within the offering's range (createVolume's and deployVirtualMachine's `size`)."""
    if offering.customized:
        low, high = offering.min_size or CUSTOM_DISK_MIN_GIB, offering.max_size or CUSTOM_DISK_MAX_GIB
        if size is None:
            raise InvalidParameterValue(f"Disk offering {offering.name} is customized: give size, the disk's size in "
                                        f"GiB ({low} to {high})")
        if not low <= size <= high:
            raise InvalidParameterValue(f"size {size} GiB is outside the range {low}-{high} GiB of disk offering "
                                        f"{offering.name}")
        return size << 30
    if size is not None and size != offering.disk_size:
        raise InvalidParameterValue(f"Disk offering {offering.name} has a fixed size of {offering.disk_size} GiB: "
                                    f"leave out size, or choose a customized disk offering")
    return offering.disk_size << 30


def create_disk_offering(caller, *, name: str, display_text: str | None = None, disk_size: int | None = None,
                         customized: bool | None = None, storage_type: str | None = None,
                         provisioning_type: str | None = None, tags: str | None = None,
                         display_offering: bool | None = None, domains: list | None = None,
                         zones: list | None = None, sort_key: int | None = None) -> DiskOffering:
    """A fixed size (disksize GiB), or customized: the size is given when the volume is created,
    between CUSTOM_DISK_MIN_GIB and CUSTOM_DISK_MAX_GIB."""
    domains = list(domains or [])
    check_domains_for_create(caller, domains, "disk offering")
    name = _name(name, "disk offering")
    _refuse_zones(zones, "disk offering")
    if customized is None:
        customized = disk_size is None
    if customized:
        if disk_size is not None:
            raise InvalidParameterValue("A customized disk offering takes its size when the volume is created: leave "
                                        "disksize out, or pass customized=false for a fixed size")
    elif disk_size is None:
        raise InvalidParameterValue("A disk offering that is not customized needs disksize (GiB)")
    else:
        _number(disk_size, "disksize", maximum=MAX_DISK_GIB, unit="GiB")
    with transaction.atomic():
        offering = DiskOffering.objects.create(
            name=name, display_text=(display_text or "").strip() or name, disk_size=0 if customized else disk_size,
            customized=customized, min_size=CUSTOM_DISK_MIN_GIB if customized else None,
            max_size=CUSTOM_DISK_MAX_GIB if customized else None, storage_type=storage_type_value(storage_type),
            provisioning_type=provisioning_type_value(provisioning_type), tags=tags_value(tags),
            display_offering=True if display_offering is None else bool(display_offering),
            sort_key=_sort_key(sort_key) or 0)
        offering.domains.set(domains)
        events.record(caller, "DISK.OFFERING.CREATE", f"Disk offering {name} created{_domains_text(domains)}",
                      resource=offering)
    return offering


def update_disk_offering(caller, offering: DiskOffering, *, name: str | None = None, display_text: str | None = None,
                         sort_key: int | None = None, display_offering: bool | None = None,
                         domains: list | None = None, zones: list | None = None,
                         tags: str | None = None) -> DiskOffering:
    """updateDiskOffering: name, text, order, whether users see it, its domains (None: unchanged,
    []: public) and its storage tags. The size never changes."""
    return _update(caller, DiskOffering, offering, "DISK.OFFERING.EDIT", name=name, display_text=display_text,
                   sort_key=sort_key, display_offering=display_offering, domains=domains, zones=zones, tags=tags)


def delete_disk_offering(caller, offering: DiskOffering) -> None:
    _delete(caller, DiskOffering, offering, "DISK.OFFERING.DELETE")


# -- shared by both kinds --------------------------------------------------------------------------
def _update(caller, model, offering, event_type: str, *, domains: list | None, zones: list | None,
            **changes: Any):
    kind = _kind(model)
    require_manage(caller, offering, "change")
    _refuse_zones(zones, kind)
    if domains is not None:
        if caller.account.type != AccountType.ADMIN:
            if not domains:
                raise PermissionDenied(f"Only a root admin may make a {kind} public")
            check_domains_for_create(caller, domains, kind)
    values: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None:
            continue
        if field == "name":
            value = _name(value, kind)
        elif field == "display_text":
            value = value.strip()
            if not value:
                raise ParamError(f"The display text of the {kind} must not be empty")
        elif field == "sort_key":
            value = _sort_key(value)
        elif field in ("tags", "host_tags"):
            value = tags_value(value)
        values[field] = value
    with transaction.atomic():
        offering = model.objects.select_for_update().get(pk=offering.pk)
        if offering.removed is not None:
            raise InvalidParameterValue(f"The {kind} {offering.name} was deleted")
        for field, value in values.items():
            setattr(offering, field, value)
        if values:
            offering.save(update_fields=sorted(values))
        if domains is not None:
            offering.domains.set(domains)
        changed = sorted(values) + (["domains"] if domains is not None else [])
        events.record(caller, event_type, f"{kind.capitalize()} {offering.name} updated"
                      + (f" ({', '.join(changed)})" if changed else ""), resource=offering)
    return offering


def _delete(caller, model, offering, event_type: str) -> None:
    kind = _kind(model)
    require_manage(caller, offering, "delete")
    _in_use(offering, kind)
    with transaction.atomic():
        offering = model.objects.select_for_update().get(pk=offering.pk)
        if offering.removed is not None:
            raise InvalidParameterValue(f"The {kind} {offering.name} was already deleted")
        offering.removed = timezone.now()
        offering.save(update_fields=["removed"])
        events.record(caller, event_type, f"{kind.capitalize()} {offering.name} deleted", resource=offering)


# -- listing ---------------------------------------------------------------------------------------
def offerings_for(caller, model, *, domain=None, recursive: bool = False) -> QuerySet:
    """The offerings a list command starts from (CloudStack's listServiceOfferings /
    listDiskOfferings scoping):

    - root admin: every offering;
    - others: the public offerings and those of their domain and its ancestors, i.e. what they
      may use; a domain admin with isrecursive (or listall) also those of its subtree;
    - domainid: only the offerings dedicated to that domain (with isrecursive: to a domain of its
      subtree), among those the caller may see. The caller must know the domain (`domain_known_to`).
    """
    root = caller.account.type == AccountType.ADMIN
    if root:
        qs = model.objects.visible_to(caller)
    elif recursive or domain is not None:
        qs = model.objects.visible_to(caller)
    else:
        qs = model.objects.usable_by(caller)
    if domain is not None:
        q = Q(domains__path__startswith=domain.path) if recursive else Q(domains=domain)
        qs = qs.filter(pk__in=model.objects.filter(q).values("pk"))
    return qs


def fits(qs: QuerySet, *, cpu_number: int | None = None, memory: int | None = None,
         cpu_speed: int | None = None) -> QuerySet:
    """listServiceOfferings cpunumber/memory/cpuspeed: the offerings that can give a VM that many
    CPUs / MiB (a fixed offering of exactly that size, a customized one whose range holds it, or
    an unconstrained customized one) and at least that speed (or no set speed)."""
    if cpu_number is not None:
        qs = qs.filter(Q(cpu_number=cpu_number)
                       | Q(customized=True, min_cpu_number__isnull=True)
                       | Q(customized=True, min_cpu_number__lte=cpu_number, max_cpu_number__gte=cpu_number))
    if memory is not None:
        qs = qs.filter(Q(memory=memory)
                       | Q(customized=True, min_memory__isnull=True)
                       | Q(customized=True, min_memory__lte=memory, max_memory__gte=memory))
    if cpu_speed is not None:
        qs = qs.filter(Q(cpu_speed__isnull=True) | Q(cpu_speed__gte=cpu_speed))
    return qs


# -- defaults --------------------------------------------------------------------------------------
DEFAULT_SERVICE_OFFERINGS = (
    # seed key, name, display text, vCPUs, MHz, MiB
    ("tiny", "Tiny", "Tiny: 1 vCPU, 500 MHz, 128 MiB (fits the built-in Tiny Linux)", 1, 500, 128),
    ("small", "Small", "Small: 1 vCPU, 1000 MHz, 512 MiB", 1, 1000, 512),
    ("medium", "Medium", "Medium: 2 vCPUs, 1000 MHz, 1024 MiB", 2, 1000, 1024),
)
DEFAULT_DISK_OFFERINGS = (
    # seed key, name, display text, GiB (None: customized)
    ("small", "Small", "Small: 5 GiB", 5),
    ("medium", "Medium", "Medium: 20 GiB", 20),
    ("custom", "Custom", "Custom: the size is chosen when the volume is created", None),
)


@transaction.atomic
def seed_default_offerings() -> list[str]:
    """Idempotent (bootstrap): create the default public offerings that were never seeded. One
    an admin renamed or deleted is not brought back. Returns what it created."""
    done: list[str] = []
    for order, (key, name, text, cpus, speed, memory) in enumerate(DEFAULT_SERVICE_OFFERINGS, start=1):
        if not ServiceOffering.objects.filter(seed_key=key).exists():
            ServiceOffering.objects.create(name=name, display_text=text, cpu_number=cpus, cpu_speed=speed,
                                           memory=memory, sort_key=order, seed_key=key)
            done.append(f"service offering {name}")
    for order, (key, name, text, size) in enumerate(DEFAULT_DISK_OFFERINGS, start=1):
        if not DiskOffering.objects.filter(seed_key=key).exists():
            DiskOffering.objects.create(
                name=name, display_text=text, disk_size=size or 0, customized=size is None,
                min_size=CUSTOM_DISK_MIN_GIB if size is None else None,
                max_size=CUSTOM_DISK_MAX_GIB if size is None else None, sort_key=order, seed_key=key)
            done.append(f"disk offering {name}")
    return done
