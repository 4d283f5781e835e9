"""Template and ISO use cases: register (by URL, downloaded into each zone's secondary storage
by a background job), list by CloudStack's filters, update, permissions, copy between zones,
extract (a time-limited download URL), delete, and the copy on primary storage that root volumes
are copy-on-write clones of.

A template is one Template row (format ISO for an ISO) and one TemplateZone row per zone: which
image store holds it there, its download state, progress and error. The download job
(`run_download`) owns a TemplateZone from NOT_DOWNLOADED to DOWNLOADED or DOWNLOAD_ERROR; it writes
to a private `.part` file and only a verified image gets its final name, so a failure leaves
nothing on the store. Every use case checks the caller, owns its transaction and writes its event.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

from django.core import signing
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import limits
from accounts.access import can_manage_domain
from accounts.choices import AccountType
from accounts.models import Account
from compute.choices import Hypervisor
from compute.models import Zone
from portal import config, events
from portal.errors import (
    InvalidParameterValue,
    ParamError,
    PermissionDenied,
    ResourceInUse,
    ResourceUnavailable,
)
from portal.jobs import enqueue_task

from ..models import (
    DownloadState,
    ImageFormat,
    ImageStore,
    OsType,
    Template,
    TemplatePermission,
    TemplateType,
    TemplateZone,
)
from . import transfer

log = logging.getLogger(__name__)

TEMPLATE_FORMATS = (ImageFormat.QCOW2, ImageFormat.RAW)
FILTERS = ("featured", "self", "selfexecutable", "sharedexecutable", "executable", "community", "all")
DEFAULT_OS_TYPE = "Other Linux (64-bit)"
STATUS_QUEUED = "Waiting to download"
STATUS_INSTALLING = "Installing Template"
STATUS_COMPLETE = "Download Complete"
EXTRACT_SALT = "nubo.storage.extract"
LOST_AFTER = timedelta(minutes=10)  # an in-progress download silent this long lost its worker
MAX_AUTOMATIC_RESTARTS = 3

# Later apps (instances, volumes) register here: f(template) -> names of what uses it, so that a
# template in use is not deleted from under its volumes.
TEMPLATE_USERS_HOOKS: list = []


def _events_type(template: Template, action: str) -> str:
    return f"{'ISO' if template.is_iso else 'TEMPLATE'}.{action}"


def _is_admin(caller) -> bool:
    return caller.account.type in (AccountType.ADMIN, AccountType.DOMAIN_ADMIN)


def _is_root(caller) -> bool:
    return caller.account.type == AccountType.ADMIN


def can_manage(caller, template: Template) -> bool:
    """May the caller change or delete this template? Its owner, an admin above the owner's domain."""
    if template.account_id == caller.account_id:
        return True
    return _is_admin(caller) and can_manage_domain(caller, template.account.domain)


def require_manage(caller, template: Template, what: str) -> None:
    if not can_manage(caller, template):
        raise PermissionDenied(f"Only the owner of {template.kind} {template.name} or an administrator of its "
                               f"domain may {what} it")


# -- values ---------------------------------------------------------------------------------------
def hypervisor_value(value: str | None) -> str:
    text = (value or "").strip()
    for choice in Hypervisor.values:
        if text.lower() == choice.lower():
            return choice
    raise InvalidParameterValue(f"Hypervisor {value or '(none)'} is not supported; use KVM or Simulator")


def format_value(value: str | None) -> str:
    text = (value or "").strip().upper()
    if text in TEMPLATE_FORMATS:
        return text
    if text == "ISO":
        raise InvalidParameterValue("An ISO is registered with registerIso, not registerTemplate")
    raise InvalidParameterValue(f"Format {value or '(none)'} is not supported for KVM templates; use QCOW2 or RAW")


def zones_value(caller, zoneid: str | None, zoneids: Iterable[Any] | None) -> tuple[list[Zone], bool]:
    """(zones, cross_zones) from zoneid (a uuid, or -1 for every zone) and/or zoneids."""
    wanted: list[str] = [str(z) for z in (zoneids or [])]
    if zoneid is not None and str(zoneid).strip():
        wanted.insert(0, str(zoneid).strip())
    if not wanted:
        raise ParamError("Give zoneid (a zone's id, or -1 for every zone) or zoneids")
    visible = Zone.objects.visible_to(caller)
    if "-1" in wanted:
        zones = list(visible.filter(image_stores__isnull=False).distinct().order_by("id"))
        if not zones and caller.account.type != AccountType.ADMIN:
            raise InvalidParameterValue("No zone has secondary storage yet; an administrator adds it with addImageStore")
        return zones, True
    zones = []
    for value in dict.fromkeys(wanted):
        zone = visible.filter(uuid=value).first() if _looks_like_uuid(value) else None
        if zone is None:
            raise ParamError(f"Unable to execute API command due to invalid value. Invalid parameter zoneid "
                             f"value={value} due to incorrect long value format, or entity does not exist")
        zones.append(zone)
    return zones, False


def _looks_like_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def os_type_value(os_type: OsType | None) -> OsType | None:
    return os_type or OsType.objects.filter(description=DEFAULT_OS_TYPE).first()


def allowed_internal() -> list[str]:
    return list(config.get_value("secstorage.allowed.internal.sites"))


def check_source_url(caller, url: str) -> str:
    text = (url or "").strip()
    if not text:
        raise ParamError("Give the url to download the image from (http://, https://, or file:// for root admins)")
    if len(text) > 2048:
        raise InvalidParameterValue("The url is longer than 2048 characters")
    try:
        transfer.check_url(text, allow_file=_is_root(caller), allowed_internal=allowed_internal())
    except transfer.TransferError as exc:
        raise InvalidParameterValue(exc.message) from None
    return text


def checksum_value(text: str | None) -> str:
    try:
        transfer.parse_checksum(text)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from None
    return (text or "").strip()


# -- secondary storage quota (accounts.limits) ---------------------------------------------------
def secondary_storage_limit(account: Account) -> int | None:
    """Bytes the account's templates and ISOs may use, None for no limit (root admins, -1)."""
    return limits.limit_for(account, "secondary_storage")


def _stored(account_ids: list[int], *, exclude_pk: int | None = None):
    rows = TemplateZone.objects.filter(template__account_id__in=account_ids, template__removed__isnull=True).exclude(
        state=DownloadState.DOWNLOAD_ERROR)
    return rows.exclude(pk=exclude_pk) if exclude_pk is not None else rows


def count_secondary_storage(account_ids: list[int]) -> dict[int, int]:
    """accounts.limits counter: bytes of the accounts' templates and ISOs on secondary storage,
    each zone's stored copy, or what a download in progress announced."""
    rows = _stored(account_ids).values("template__account_id").annotate(n=Sum(Coalesce("physical_size", "bytes_total", 0)))
    return {row["template__account_id"]: row["n"] for row in rows}


def count_templates(account_ids: list[int]) -> dict[int, int]:
    """accounts.limits counter: the accounts' templates and ISOs (not the built-in ones)."""
    rows = (Template.objects.filter(account_id__in=account_ids, removed__isnull=True)
            .exclude(template_type=TemplateType.BUILTIN).values("account_id").annotate(n=Count("id")))
    return {row["account_id"]: row["n"] for row in rows}


def secondary_storage_used(account: Account, *, exclude_pk: int | None = None) -> int:
    total = _stored([account.pk], exclude_pk=exclude_pk).aggregate(n=Sum(Coalesce("physical_size", "bytes_total", 0)))
    return int(total["n"] or 0)


def _check_quota(account: Account, *, new_templates: int = 0) -> None:
    """Inside the allocating transaction, before rows are made (locks the account row):
    refused once the account has reached its secondary storage limit."""
    if new_templates:
        limits.check(account, "template", new_templates)
    limits.check(account, "secondary_storage", 1)


# -- register -----------------------------------------------------------------------------------
def _choose_store(zone: Zone) -> ImageStore:
    stores = [s for s in ImageStore.objects.filter(zone=zone, readonly=False)]
    if not stores:
        raise InvalidParameterValue(f"Zone {zone.name} has no secondary storage; an administrator adds it with "
                                    f"addImageStore")
    return max(stores, key=lambda s: s.capacity_bytes - s.used_bytes)


def register(caller, *, is_iso: bool, name: str, url: str, zoneid: str | None = None, zoneids=None,
             display_text: str | None = None, format: str | None = None, hypervisor: str | None = None,
             os_type: OsType | None = None, checksum: str | None = None, is_public: bool = False,
             is_featured: bool = False, is_extractable: bool = False, password_enabled: bool = False,
             sshkey_enabled: bool = False, requires_hvm: bool = True, bootable: bool = True,
             dynamically_scalable: bool = False, bits: int | None = None, details: dict | None = None,
             owner: Account | None = None, template_type: str = TemplateType.USER, builtin_key: str = "",
             check_url: bool = True) -> list[TemplateZone]:
    """Register a template (or ISO) by URL in the given zones; a download job per zone starts
    when the transaction commits. Returns the new TemplateZone rows."""
    name = (name or "").strip()
    if not name:
        raise ParamError("Give the name of the " + ("ISO" if is_iso else "template"))
    if len(name) > 255:
        raise InvalidParameterValue("The name is longer than 255 characters")
    owner = owner or caller.account
    if owner.pk != caller.account_id and not (_is_admin(caller) and can_manage_domain(caller, owner.domain)):
        raise PermissionDenied(f"You may not register images for account {owner.name}")
    fmt = ImageFormat.ISO if is_iso else format_value(format)
    hyp = "" if is_iso else hypervisor_value(hypervisor)
    url = check_source_url(caller, url) if check_url else url
    checksum = checksum_value(checksum)
    if is_featured and not _is_root(caller):
        raise PermissionDenied("Only a root admin may make a template or ISO featured")
    if is_public and not _is_admin(caller) and not config.get_value(
            "allow.public.user.templates", scope="account", scope_uuid=str(owner.uuid)):
        raise InvalidParameterValue("Only private templates/ISO can be created: allow.public.user.templates is false")
    zones, cross = zones_value(caller, zoneid, zoneids)
    stores = {zone.pk: _choose_store(zone) for zone in zones}
    if bits not in (None, 32, 64):
        raise InvalidParameterValue(f"bits must be 32 or 64, not {bits}")
    with transaction.atomic():
        _check_quota(owner, new_templates=1)
        template = Template.objects.create(
            name=name, display_text=(display_text or "").strip() or name, format=fmt, hypervisor=hyp,
            os_type=os_type_value(os_type), account=owner, url=url, checksum=checksum, is_public=is_public,
            is_featured=is_featured, is_extractable=is_extractable, password_enabled=password_enabled,
            sshkey_enabled=sshkey_enabled, requires_hvm=requires_hvm, bootable=bootable if is_iso else True,
            dynamically_scalable=dynamically_scalable, bits=bits or 64, cross_zones=cross, details=details or {},
            template_type=template_type, builtin_key=builtin_key)
        rows = [TemplateZone.objects.create(template=template, zone=zone, store=stores[zone.pk],
                                            status_text=STATUS_QUEUED) for zone in zones]
        where = "every zone" if cross else ", ".join(z.name for z in zones)
        events.record(caller, _events_type(template, "CREATE"),
                      f"{template.kind_title} {name} registered in {where} from {transfer.redact_url(url)}",
                      resource=template, account=owner)
        for row in rows:
            _start_download_on_commit(row)
    return rows


def _start_download_on_commit(row: TemplateZone) -> None:
    pk = row.pk
    transaction.on_commit(lambda: enqueue_task("storage.jobs.download_template", pk, task_id=f"template-download-{pk}"))


def retry_download(caller, row: TemplateZone) -> TemplateZone:
    """Start a failed download again (the UI's Retry)."""
    require_manage(caller, row.template, "retry the download of")
    with transaction.atomic():
        claimed = TemplateZone.objects.filter(pk=row.pk, state=DownloadState.DOWNLOAD_ERROR).update(
            state=DownloadState.NOT_DOWNLOADED, status_text=STATUS_QUEUED, percent=0, bytes_done=0, bytes_total=None,
            rate_bps=0, attempts=0)
        if not claimed:
            raise InvalidParameterValue(f"The download of {row.template.name} in zone {row.zone.name} has not failed; "
                                        f"only a failed download can be retried")
        events.record(caller, _events_type(row.template, "DOWNLOAD.RETRY"),
                      f"Download of {row.template.kind} {row.template.name} in zone {row.zone.name} started again",
                      resource=row.template, account=row.template.account)
        _start_download_on_commit(row)
    row.refresh_from_db()
    return row


# -- the download job ---------------------------------------------------------------------------
class _Cancelled(Exception):
    """The row went away (template deleted) while its download ran."""


def install_dir(row: TemplateZone) -> str:
    """Where the file lives, relative to the store (storage.services.IMAGE_STORE_LAYOUT)."""
    template = row.template
    top = "iso" if template.is_iso else "template/tmpl"
    return f"{top}/{template.account.uuid}/{template.uuid}"


def file_name(template: Template) -> str:
    return f"{template.uuid}.{'iso' if template.is_iso else template.format.lower()}"


def stored_path(row: TemplateZone) -> Path:
    return Path(row.store.mount_path) / row.install_path


def _status(done: int, total: int | None, percent: int | None) -> str:
    if percent is not None:
        return f"{percent}% Downloaded"
    return f"{transfer.human_bytes(done)} Downloaded"


def run_download(row_pk: int) -> None:
    """RQ entry point (storage.jobs.download_template): download one template into one zone."""
    from storage.services import ensure_image_store_mounted

    claimed = TemplateZone.objects.filter(pk=row_pk, state=DownloadState.NOT_DOWNLOADED).update(
        state=DownloadState.DOWNLOAD_IN_PROGRESS, attempts=F("attempts") + 1, heartbeat=timezone.now(),
        status_text="0% Downloaded", percent=0, bytes_done=0)
    if not claimed:
        return
    row = TemplateZone.objects.select_related("template__account__domain", "store", "zone", "source__store").get(pk=row_pk)
    template = row.template
    part: Path | None = None
    final: Path | None = None
    try:
        root = ensure_image_store_mounted(row.store)
        relative = f"{install_dir(row)}/{file_name(template)}"
        final = root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        if row.source is not None and row.source.is_ready:
            url, allow_file = stored_path(row.source).as_uri(), True
        else:
            url, allow_file = template.url, urlsplit(template.url).scheme.lower() == "file"
        free = shutil.disk_usage(root).free
        limit = secondary_storage_limit(template.account)
        max_bytes = free
        if limit is not None:
            max_bytes = min(max_bytes, max(0, limit - secondary_storage_used(template.account, exclude_pk=row.pk)))

        def progress(p: transfer.Progress) -> None:
            updated = TemplateZone.objects.filter(pk=row.pk, state=DownloadState.DOWNLOAD_IN_PROGRESS).update(
                bytes_done=p.bytes_done, bytes_total=p.bytes_total, percent=min(p.percent or 0, 99),
                rate_bps=int(p.rate_bps), heartbeat=timezone.now(),
                status_text=_status(p.bytes_done, p.bytes_total, p.percent))
            if not updated:
                raise _Cancelled()

        _, sha256 = transfer.download(
            url, part, allow_file=allow_file, allowed_internal=allowed_internal(), checksum=template.checksum or None,
            max_bytes=max_bytes, on_progress=progress,
            connect_timeout=float(config.get_value("template.download.connect.timeout")),
            stall_timeout=float(config.get_value("template.download.stall.timeout")),
            retries=int(config.get_value("template.download.retries")))
        progress_done = TemplateZone.objects.filter(pk=row.pk, state=DownloadState.DOWNLOAD_IN_PROGRESS).update(
            status_text=STATUS_INSTALLING, heartbeat=timezone.now())
        if not progress_done:
            raise _Cancelled()
        fmt, virtual_size, physical_size = transfer.inspect_image(part, template.format)
        os.replace(part, final)
        part = None
        with transaction.atomic():
            locked = TemplateZone.objects.select_for_update().filter(
                pk=row.pk, state=DownloadState.DOWNLOAD_IN_PROGRESS).first()
            if locked is None:
                raise _Cancelled()
            TemplateZone.objects.filter(pk=row.pk).update(
                state=DownloadState.DOWNLOADED, status_text=STATUS_COMPLETE, percent=100, install_path=relative,
                size=virtual_size, physical_size=physical_size, bytes_done=physical_size, rate_bps=0,
                sha256=sha256, heartbeat=timezone.now())
            Template.objects.filter(pk=template.pk, size__isnull=True).update(size=virtual_size)
            events.record(None, _events_type(template, "DOWNLOAD.SUCCESS"),
                          f"{template.kind_title} {template.name} is ready in zone {row.zone.name} "
                          f"({transfer.human_bytes(virtual_size)})", resource=template, account=template.account)
    except _Cancelled:
        log.info("download of %s into zone %s stopped: the template was deleted", template.uuid, row.zone_id)
        _remove_file(part if part is not None else final)
    except (transfer.TransferError, ResourceUnavailable) as exc:
        _remove_file(part)
        _fail(row, exc.message)
    except Exception:  # noqa: BLE001 - a download must always end in a state
        log.exception("download of template %s into zone %s crashed", template.uuid, row.zone_id)
        _remove_file(part)
        _fail(row, "Internal error while downloading; see the management server log")
    finally:
        _refresh_store(row.store)


def _remove_file(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)


def _fail(row: TemplateZone, reason: str) -> None:
    with transaction.atomic():
        updated = TemplateZone.objects.filter(pk=row.pk, state=DownloadState.DOWNLOAD_IN_PROGRESS).update(
            state=DownloadState.DOWNLOAD_ERROR, status_text=reason[:1024], rate_bps=0, heartbeat=timezone.now())
        if updated:
            template = row.template
            events.record(None, _events_type(template, "DOWNLOAD.FAILED"),
                          f"Download of {template.kind} {template.name} into zone {row.zone.name} failed: {reason}",
                          resource=template, account=template.account, level="ERROR")


def _refresh_store(store: ImageStore) -> None:
    from storage.services import _fs_usage

    try:
        total, used = _fs_usage(store.mount_path)
    except OSError:
        return
    ImageStore.objects.filter(pk=store.pk).update(capacity_bytes=total, used_bytes=used, stats_updated=timezone.now())


def recover_lost_downloads() -> dict[str, int]:
    """Periodic: a download whose worker died (no progress for LOST_AFTER) is started again, up to
    MAX_AUTOMATIC_RESTARTS times; after that it fails with the reason."""
    counts = {"restarted": 0, "failed": 0}
    stale = timezone.now() - LOST_AFTER
    for row in TemplateZone.objects.filter(state=DownloadState.DOWNLOAD_IN_PROGRESS, heartbeat__lt=stale).select_related(
            "template__account__domain", "zone", "store"):
        if row.attempts < MAX_AUTOMATIC_RESTARTS:
            if TemplateZone.objects.filter(pk=row.pk, state=DownloadState.DOWNLOAD_IN_PROGRESS,
                                           heartbeat__lt=stale).update(state=DownloadState.NOT_DOWNLOADED,
                                                                       status_text=STATUS_QUEUED):
                enqueue_task("storage.jobs.download_template", row.pk, task_id=f"template-download-{row.pk}")
                counts["restarted"] += 1
        else:
            _fail(row, "The download stopped because the worker running it stopped, and it was restarted "
                       f"{MAX_AUTOMATIC_RESTARTS} times; use Retry")
            counts["failed"] += 1
    return counts


# -- cross-zone and built-in templates in new zones ------------------------------------------------
def spread_cross_zone_templates(store: ImageStore) -> int:
    """A zone got its (first) image store: every cross-zone template (zoneid=-1, and the built-in
    ones) is downloaded there too. Called by storage.services.add_image_store inside its
    transaction. Returns how many downloads were started."""
    started = 0
    have = set(TemplateZone.objects.filter(zone=store.zone).values_list("template_id", flat=True))
    for template in Template.objects.filter(cross_zones=True, removed__isnull=True).exclude(pk__in=have):
        source = TemplateZone.objects.filter(template=template, state=DownloadState.DOWNLOADED).first()
        row = TemplateZone.objects.create(template=template, zone=store.zone, store=store, source=source,
                                          status_text=STATUS_QUEUED)
        _start_download_on_commit(row)
        started += 1
    return started


# -- listing ------------------------------------------------------------------------------------
def list_rows(caller, *, is_iso: bool, filter: str, params: dict) -> Any:
    """TemplateZone rows (one per template and zone, as CloudStack lists them) for a
    templatefilter / isofilter, narrowed by the usual parameters."""
    from accounts.access import apply_list_scope

    account = caller.account
    if filter not in FILTERS:
        what = "isofilter" if is_iso else "templatefilter"
        raise InvalidParameterValue(f"{what} must be one of {', '.join(FILTERS)}, not {filter}")
    if filter == "all" and not _is_admin(caller):
        raise InvalidParameterValue("Filter all can be specified by admin only")
    rows = TemplateZone.objects.select_related("template__os_type", "template__account__domain", "zone")
    rows = rows.filter(template__format=ImageFormat.ISO) if is_iso else rows.exclude(template__format=ImageFormat.ISO)
    if not (params.get("showremoved") and _is_root(caller)):
        rows = rows.filter(template__removed__isnull=True)
    if not _is_root(caller):
        rows = rows.filter(zone__in=Zone.objects.visible_to(caller))
    mine = Q(template__account=account.pk)
    public = Q(template__is_public=True)
    shared = Q(template__permissions__account=account.pk)
    ready = Q(state=DownloadState.DOWNLOADED)
    if filter == "featured":
        rows = rows.filter(public, template__is_featured=True, *([ready] if not _is_admin(caller) else []))
    elif filter == "community":
        rows = rows.filter(public, template__is_featured=False, *([ready] if not _is_admin(caller) else []))
    elif filter == "self":
        rows = rows.filter(mine)
    elif filter == "selfexecutable":
        rows = rows.filter(mine, ready)
    elif filter == "sharedexecutable":
        rows = rows.filter(shared, ready).exclude(mine)
    elif filter == "executable":
        rows = rows.filter(mine | public | shared, ready)
    else:  # all: an admin's view of what they administer, plus the public ones
        if account.type == AccountType.DOMAIN_ADMIN:
            rows = rows.filter(Q(template__account__domain__path__startswith=account.domain.path) | public)
    if params.get("account") or params.get("domainid"):
        owned = TemplateZone.objects.all()
        owned = apply_list_scope(owned, caller, params, command="listTemplates", account_field="template__account",
                                 owned=False)
        rows = rows.filter(pk__in=owned.values("pk"))
    if params.get("id"):
        rows = rows.filter(template__uuid=params["id"])
    if params.get("ids"):
        rows = rows.filter(template__uuid__in=params["ids"])
    if params.get("name"):
        rows = rows.filter(template__name=params["name"])
    if params.get("zoneid") is not None:
        rows = rows.filter(zone=params["zoneid"])
    if params.get("hypervisor") and not is_iso:
        rows = rows.filter(template__hypervisor__iexact=params["hypervisor"])
    if params.get("bootable") is not None and is_iso:
        rows = rows.filter(template__bootable=params["bootable"])
    if params.get("ispublic") is not None:
        rows = rows.filter(template__is_public=params["ispublic"])
    if params.get("isready") is not None:
        rows = rows.filter(ready) if params["isready"] else rows.exclude(ready)
    if params.get("keyword"):
        kw = params["keyword"]
        rows = rows.filter(Q(template__name__icontains=kw) | Q(template__display_text__icontains=kw))
    return rows.distinct().order_by("template_id", "zone_id")


# -- update and permissions -------------------------------------------------------------------------
UPDATABLE = ("name", "display_text", "os_type", "password_enabled", "sshkey_enabled", "requires_hvm", "bootable",
             "dynamically_scalable", "details", "format", "is_extractable")


def update(caller, template: Template, *, cleanup_details: bool = False, **changes: Any) -> Template:
    """updateTemplate / updateIso: the owner (or an admin of its domain) changes what it says;
    cleanup_details empties its details first."""
    require_manage(caller, template, "update")
    with transaction.atomic():
        template = Template.objects.select_for_update().select_related("account__domain").get(pk=template.pk)
        changed = []
        if cleanup_details:
            template.details = {}
            changed.append("details")
        for field, value in changes.items():
            if value is None or field not in UPDATABLE:
                continue
            if field == "name":
                value = value.strip()
                if not value:
                    raise InvalidParameterValue("The name cannot be empty")
            if field == "format":
                if template.is_iso:
                    raise InvalidParameterValue("An ISO's format cannot be changed")
                value = format_value(value)
            if field == "details":
                value = {**template.details, **value}
            setattr(template, field, value)
            changed.append(field)
        if changed:
            template.save(update_fields=sorted(set(changed)))
        events.record(caller, _events_type(template, "UPDATE"), f"{template.kind_title} {template.name} updated",
                      resource=template, account=template.account)
    return template


def update_permissions(caller, template: Template, *, op: str | None = None, accounts: list[str] | None = None,
                       is_public: bool | None = None, is_featured: bool | None = None,
                       is_extractable: bool | None = None) -> None:
    """updateTemplatePermissions / updateIsoPermissions: make it public/private/featured, or
    add/remove/reset the accounts (of the owner's domain) it is shared with."""
    require_manage(caller, template, "change the permissions of")
    if template.template_type == TemplateType.BUILTIN and not _is_root(caller):
        raise PermissionDenied(f"Only a root admin may change the built-in {template.kind} {template.name}")
    op = (op or "").strip().lower()
    if accounts and not op:
        raise ParamError("Give op (add, remove or reset) with accounts")
    if op and op not in ("add", "remove", "reset"):
        raise InvalidParameterValue(f"op must be add, remove or reset, not {op}")
    if op in ("add", "remove") and not accounts:
        raise ParamError(f"Give the accounts to {op}")
    if is_featured and not _is_root(caller):
        raise PermissionDenied("Only a root admin may make a template or ISO featured")
    if is_public and not _is_admin(caller) and not config.get_value(
            "allow.public.user.templates", scope="account", scope_uuid=str(template.account.uuid)):
        raise InvalidParameterValue("Only private templates/ISO can be created: allow.public.user.templates is false")
    with transaction.atomic():
        template = Template.objects.select_for_update().select_related("account__domain").get(pk=template.pk)
        named: list[Account] = []
        for name in accounts or []:
            account = Account.objects.filter(domain=template.account.domain, name=name.strip()).first()
            if account is None:
                raise InvalidParameterValue(f"Unable to find account {name.strip()} in domain "
                                            f"{template.account.domain.display_path}; templates are shared with "
                                            f"accounts of the owner's domain")
            named.append(account)
        if op == "add":
            for account in named:
                if account.pk != template.account_id:
                    TemplatePermission.objects.get_or_create(template=template, account=account)
        elif op == "remove":
            TemplatePermission.objects.filter(template=template, account__in=named).delete()
        elif op == "reset":
            TemplatePermission.objects.filter(template=template).delete()
        fields = []
        for field, value in (("is_public", is_public), ("is_featured", is_featured), ("is_extractable", is_extractable)):
            if value is not None:
                setattr(template, field, value)
                fields.append(field)
        if fields:
            template.save(update_fields=fields)
        events.record(caller, _events_type(template, "UPDATE"),
                      f"Permissions of {template.kind} {template.name} updated", resource=template,
                      account=template.account)


def permitted_accounts(template: Template) -> list[Account]:
    return list(Account.objects.filter(template_permissions__template=template).order_by("name"))


# -- delete -------------------------------------------------------------------------------------
def users_of(template: Template) -> list[str]:
    names: list[str] = []
    for hook in TEMPLATE_USERS_HOOKS:
        names.extend(hook(template))
    return names


def check_delete(caller, template: Template, *, forced: bool = False) -> None:
    require_manage(caller, template, "delete")
    if template.template_type == TemplateType.BUILTIN and not _is_root(caller):
        raise PermissionDenied(f"Only a root admin may delete the built-in {template.kind} {template.name}")
    if forced and not _is_root(caller):
        raise PermissionDenied("Only a root admin may force the deletion of a template in use")


def delete(caller, template: Template, *, zone: Zone | None = None, forced: bool = False) -> None:
    """Delete a template or ISO from one zone (zoneid) or from every zone. Refused while VMs use
    it (named), unless a root admin forces it: then the stored files go, and the copies on primary
    storage that volumes depend on stay."""
    check_delete(caller, template, forced=forced)
    users = users_of(template)
    if users and not forced:
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise ResourceInUse(f"{template.kind_title} {template.name} is in use by {shown}; delete them first "
                            f"(or a root admin passes forced=true)")
    files: list[Path] = []
    with transaction.atomic():
        template = Template.objects.select_for_update().select_related("account__domain").get(pk=template.pk)
        rows = TemplateZone.objects.filter(template=template).select_related("store", "zone")
        if zone is not None:
            rows = rows.filter(zone=zone)
            if not rows.exists():
                raise InvalidParameterValue(f"{template.kind_title} {template.name} is not in zone {zone.name}")
        for row in rows:
            if row.install_path:
                files.append(stored_path(row))
        stores = {row.store_id: row.store for row in rows}
        rows.delete()
        gone = not TemplateZone.objects.filter(template=template).exists()
        if gone:
            template.removed = timezone.now()
            template.save(update_fields=["removed"])
            TemplatePermission.objects.filter(template=template).delete()
        where = f" from zone {zone.name}" if zone is not None and not gone else ""
        events.record(caller, _events_type(template, "DELETE"),
                      f"{template.kind_title} {template.name} deleted{where}" + (" (forced)" if forced else ""),
                      resource=template, account=template.account)
        transaction.on_commit(lambda: _remove_stored(files, stores.values()))
        if gone:
            from .primary import release_unused_copies

            transaction.on_commit(lambda: release_unused_copies(template.pk))


def _remove_stored(files: list[Path], stores: Iterable[ImageStore]) -> None:
    for path in files:
        _remove_file(path)
        for parent in (path.parent, path.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break
        _remove_file(path.with_name(path.name + ".part"))
    for store in stores:
        _refresh_store(store)


def delete_account_templates(caller, account: Account) -> None:
    """accounts.services.ACCOUNT_CLEANUP_HOOKS: an account's templates and ISOs go with it."""
    for template in Template.objects.filter(account=account, removed__isnull=True):
        delete(caller, template, forced=_is_root(caller))
    Template.objects.filter(account=account).update(account=_system_account())


def _system_account() -> Account:
    return Account.objects.filter(type=AccountType.ADMIN, domain__parent__isnull=True).order_by("id").first()


# -- copy ---------------------------------------------------------------------------------------
def copy(caller, template: Template, *, source_zone: Zone | None, dest_zones: list[Zone]) -> list[TemplateZone]:
    """copyTemplate / copyIso (inside the async job): copy the stored file from the source zone's
    image store into each destination zone's; returns the destination rows when done."""
    require_manage(caller, template, "copy")
    if not dest_zones:
        raise ParamError("Give destzoneid or destzoneids")
    sources = TemplateZone.objects.filter(template=template, state=DownloadState.DOWNLOADED).select_related("zone")
    if source_zone is not None:
        sources = sources.filter(zone=source_zone)
    source = sources.first()
    if source is None:
        where = f" in zone {source_zone.name}" if source_zone is not None else ""
        raise InvalidParameterValue(f"{template.kind_title} {template.name} is not ready{where}; copy it once "
                                    f"its download is complete")
    rows: list[TemplateZone] = []
    with transaction.atomic():
        for zone in dest_zones:
            if zone.pk == source.zone_id:
                raise InvalidParameterValue(f"{template.kind_title} {template.name} is already in zone {zone.name}; "
                                            f"choose another destination zone")
            existing = TemplateZone.objects.filter(template=template, zone=zone).first()
            if existing is not None and existing.state != DownloadState.DOWNLOAD_ERROR:
                raise InvalidParameterValue(f"{template.kind_title} {template.name} is already in zone {zone.name}")
            store = _choose_store(zone)
            if existing is not None:
                existing.delete()
            rows.append(TemplateZone.objects.create(template=template, zone=zone, store=store, source=source,
                                                    status_text=STATUS_QUEUED))
        _check_quota(template.account)
        events.record(caller, _events_type(template, "COPY"),
                      f"{template.kind_title} {template.name} copied from zone {source.zone.name} to "
                      f"{', '.join(z.name for z in dest_zones)}", resource=template, account=template.account)
    for row in rows:
        run_download(row.pk)
    failed = []
    for row in rows:
        row.refresh_from_db()
        if row.state != DownloadState.DOWNLOADED:
            failed.append(f"zone {row.zone.name}: {row.status_text}")
    if failed:
        raise ResourceUnavailable(f"Copying {template.kind} {template.name} failed in " + "; ".join(failed))
    return rows


# -- extract ------------------------------------------------------------------------------------
def check_extract(caller, template: Template) -> None:
    if not template.is_extractable and not (_is_admin(caller) and can_manage(caller, template)):
        raise PermissionDenied(f"{template.kind_title} {template.name} is not extractable; its owner can make "
                               f"it so with isextractable=true")


def extract(caller, template: Template, *, zone: Zone | None = None, mode: str = "HTTP_DOWNLOAD") -> dict[str, Any]:
    """extractTemplate / extractIso: a time-limited URL the file can be downloaded from."""
    check_extract(caller, template)
    if (mode or "").upper() != "HTTP_DOWNLOAD":
        raise InvalidParameterValue(f"Extract mode {mode} is not supported; use HTTP_DOWNLOAD")
    rows = TemplateZone.objects.filter(template=template, state=DownloadState.DOWNLOADED).select_related("zone", "store")
    if zone is not None:
        rows = rows.filter(zone=zone)
    row = rows.first()
    if row is None:
        where = f" in zone {zone.name}" if zone is not None else ""
        raise InvalidParameterValue(f"{template.kind_title} {template.name} is not ready{where}; it can be "
                                    f"extracted once its download is complete")
    token = signing.dumps({"z": str(row.uuid)}, salt=EXTRACT_SALT, compress=True)
    base = urlsplit(str(config.get_value("endpointe.url")))
    url = f"{base.scheme}://{base.netloc}/client/extract/{file_name(template)}?token={token}"
    events.record(caller, _events_type(template, "EXTRACT"),
                  f"Download URL created for {template.kind} {template.name} in zone {row.zone.name}",
                  resource=template, account=template.account)
    return {"id": template.uuid, "name": template.name, "url": url, "state": "DOWNLOAD_URL_CREATED",
            "status": "DOWNLOAD_URL_CREATED", "uploadpercentage": 100, "extractMode": "HTTP_DOWNLOAD",
            "extractId": uuid.uuid4(), "zoneid": row.zone.uuid, "zonename": row.zone.name,
            "accountid": template.account.uuid, "created": timezone.now()}


def extracted_file(token: str) -> tuple[Path, str] | None:
    """The stored file an extract token names, while it is valid (None otherwise)."""
    try:
        data = signing.loads(token, salt=EXTRACT_SALT, max_age=int(config.get_value("extract.url.expiration.interval")))
    except signing.BadSignature:
        return None
    row = TemplateZone.objects.filter(uuid=data.get("z"), state=DownloadState.DOWNLOADED,
                                      template__removed__isnull=True).select_related("store", "template").first()
    if row is None:
        return None
    path = stored_path(row)
    return (path, file_name(row.template)) if path.is_file() else None


# -- built-in images ----------------------------------------------------------------------------
BUILTIN_TEXT = {
    "template": ("Tiny Linux", "Tiny Linux: Debian kernel + busybox, built on this machine; auto-login shell on "
                               "the console, DHCP, hostname/password/SSH key from a config drive"),
    "iso": ("Tiny Linux ISO", "Tiny Linux live ISO: boots to a shell prompt, for testing ISO boot"),
}


def register_builtin(manifest: dict) -> list[str]:
    """Idempotent (bootstrap): register the images build_builtin_images made as featured, public,
    cross-zone templates of the root admin, downloaded (copied) into every zone with secondary
    storage, present and future. A rebuilt image with other bytes replaces the registration.
    Returns what it did, for the bootstrap's output."""
    done: list[str] = []
    owner = _system_account()
    for kind, image in manifest["images"].items():
        key = f"tiny-linux-{kind}"
        name, text = BUILTIN_TEXT[kind]
        url = Path(image["path"]).resolve().as_uri()
        checksum = "{SHA-256}" + image["sha256"]
        current = Template.objects.filter(builtin_key=key, removed__isnull=True).first()
        if current is not None and current.checksum == checksum and current.url == url:
            continue
        if current is not None:
            delete(_root_user(), current, forced=True)
        register(_root_user(), is_iso=kind == "iso", name=name, display_text=text, url=url, zoneid="-1",
                 format=image["format"] if kind != "iso" else None, hypervisor="KVM" if kind != "iso" else None,
                 checksum=checksum, is_public=True, is_featured=True, is_extractable=True,
                 password_enabled=kind != "iso", sshkey_enabled=kind != "iso", owner=owner,
                 template_type=TemplateType.BUILTIN, builtin_key=key, check_url=False)
        done.append(f"built-in {'ISO' if kind == 'iso' else 'template'} {name}")
    return done


def _root_user():
    from accounts.models import User

    return User.objects.filter(account=_system_account(), username="admin").first() or \
        User.objects.filter(account=_system_account()).order_by("id").first()
