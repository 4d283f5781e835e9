"""Templates on primary storage ("template on primary"): a template reaches a primary storage pool
once, as a base volume copied through the hypervisor driver from the zone's image store; root
volumes in that pool are then qcow2 copy-on-write clones of the base, so a deploy from a cached
template copies nothing. A base stays while anything uses its template (TEMPLATE_USERS_HOOKS)."""
from __future__ import annotations

import logging
import time

from django.db import IntegrityError, transaction

from compute.choices import HostState
from compute.drivers import DriverError
from compute.models import Zone
from portal import events
from portal.errors import InvalidParameterValue, PermissionDenied, ResourceUnavailable
from portal.jobs import enqueue_task

from ..models import DownloadState, PoolCopyState, StoragePool, Template, TemplatePoolCopy, TemplateZone
from . import services as images

log = logging.getLogger(__name__)

WAIT_FOR_OTHER_COPY_S = 3600  # another worker copying the same template to the same pool


def base_volume_name(template: Template) -> str:
    return f"template-{template.uuid}"


def _volume_format(template: Template) -> str:
    return "qcow2" if template.format == "QCOW2" else "raw"


def _uris(pool: StoragePool) -> list[str]:
    """The libvirtds to copy through: one for shared (NFS) storage, every host's for a directory
    pool (each host has its own directory)."""
    from storage import services as storage_services

    hosts = [h for h in storage_services.pool_hosts(pool) if h.state == HostState.UP]
    uris = list(dict.fromkeys(storage_services._host_uri(h) for h in hosts))
    if not uris:
        raise ResourceUnavailable(f"Primary storage {pool.name} has no host that is Up to copy the template through")
    return uris[:1] if pool.type == "NetworkFilesystem" else uris


def ensure_on_pool(template: Template, pool: StoragePool) -> TemplatePoolCopy:
    """The template's Ready base volume in `pool`, copying it there first when it is not. Safe to
    call from concurrent jobs: one copies, the others wait for it."""
    from storage import services as storage_services

    source = (TemplateZone.objects.filter(template=template, zone_id=pool.zone_id, state=DownloadState.DOWNLOADED)
              .select_related("store").first())
    if source is None:
        raise InvalidParameterValue(f"{template.kind_title} {template.name} is not ready in the zone of "
                                    f"primary storage {pool.name}")
    try:
        with transaction.atomic():
            copy = TemplatePoolCopy.objects.create(template=template, pool=pool, volume_name=base_volume_name(template))
    except IntegrityError:
        copy = TemplatePoolCopy.objects.get(template=template, pool=pool)
        if copy.state == PoolCopyState.ERROR and TemplatePoolCopy.objects.filter(
                pk=copy.pk, state=PoolCopyState.ERROR).update(state=PoolCopyState.CREATING, error=""):
            pass  # a failed copy: this call tries again
        else:
            return _wait_ready(copy)
    started = time.monotonic()
    done: list[str] = []
    try:
        path = images.stored_path(source)
        info = None
        spec = storage_services.pool_spec(pool)
        for uri in _uris(pool):
            with storage_services._open_driver(uri) as driver:
                driver.ensure_pool(spec)  # a host that lost the pool (rebooted, or the Simulator) gets it back
                driver.delete_volume(pool.libvirt_name, copy.volume_name)  # a leftover of a crashed copy
                info = driver.upload_volume(pool.libvirt_name, copy.volume_name, str(path), _volume_format(template))
            done.append(uri)
        assert info is not None
        TemplatePoolCopy.objects.filter(pk=copy.pk).update(state=PoolCopyState.READY, path=info.path,
                                                           size=info.capacity_bytes, physical_size=info.allocation_bytes)
        events.record(None, "TEMPLATE.PRIMARY.COPY",
                      f"{template.kind_title} {template.name} copied to primary storage {pool.name} in "
                      f"{time.monotonic() - started:.1f} s", resource=template, account=template.account)
    except (DriverError, ResourceUnavailable, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        for uri in done:
            _delete_quietly(uri, pool, copy.volume_name)
        TemplatePoolCopy.objects.filter(pk=copy.pk).update(state=PoolCopyState.ERROR, error=message[:1024])
        raise ResourceUnavailable(f"Cannot copy {template.kind} {template.name} to primary storage {pool.name}: "
                                  f"{message}") from None
    copy.refresh_from_db()
    return copy


def _wait_ready(copy: TemplatePoolCopy) -> TemplatePoolCopy:
    deadline = time.monotonic() + WAIT_FOR_OTHER_COPY_S
    while copy.state == PoolCopyState.CREATING and time.monotonic() < deadline:
        time.sleep(0.5)
        copy.refresh_from_db()
    if copy.state != PoolCopyState.READY:
        raise ResourceUnavailable(f"The copy of the template to primary storage {copy.pool.name} failed: "
                                  f"{copy.error or 'it did not finish'}")
    return copy


def _delete_quietly(uri: str, pool: StoragePool, volume: str) -> None:
    from storage import services as storage_services

    try:
        with storage_services._open_driver(uri) as driver:
            driver.delete_volume(pool.libvirt_name, volume)
    except DriverError as exc:
        log.warning("could not remove volume %s from pool %s through %s: %s", volume, pool.name, uri, exc.message)


def release_unused_copies(template_pk: int) -> int:
    """After a template is deleted: remove its base volumes from primary storage unless something
    still uses the template (then they stay until it does not). Returns how many were removed."""
    template = Template.objects.filter(pk=template_pk).first()
    if template is None or images.users_of(template):
        return 0
    removed = 0
    for copy in TemplatePoolCopy.objects.filter(template=template).select_related("pool"):
        try:
            uris = _uris(copy.pool)
        except ResourceUnavailable:
            uris = []
        for uri in uris:
            _delete_quietly(uri, copy.pool, copy.volume_name)
        copy.delete()
        removed += 1
    return removed


def prepare(caller, template: Template, *, zone: Zone, pool: StoragePool | None = None) -> TemplateZone:
    """prepareTemplate: copy a ready template to primary storage ahead of deploys, to one pool or
    to every pool of the zone that is Up (background jobs). Returns the zone's template row."""
    if caller.account.type != 1:
        raise PermissionDenied("Only a root admin may prepare templates on primary storage")
    if template.is_iso:
        raise InvalidParameterValue(f"{template.name} is an ISO; only templates are prepared on primary storage")
    row = TemplateZone.objects.filter(template=template, zone=zone).select_related("zone").first()
    if row is None or not row.is_ready:
        raise InvalidParameterValue(f"Template {template.name} is not ready in zone {zone.name}; prepare it once its "
                                    f"download is complete")
    if pool is not None and pool.zone_id != zone.pk:
        raise InvalidParameterValue(f"Primary storage {pool.name} is not in zone {zone.name}")
    pools = [pool] if pool is not None else list(StoragePool.objects.filter(zone=zone, state="Up"))
    if not pools:
        raise InvalidParameterValue(f"Zone {zone.name} has no primary storage that is Up")
    with transaction.atomic():
        events.record(caller, "TEMPLATE.PREPARE", f"Template {template.name} being copied to primary storage "
                      + ", ".join(p.name for p in pools), resource=template, account=template.account)
        for target in pools:
            transaction.on_commit(lambda t=template.pk, p=target.pk: enqueue_task(
                "storage.jobs.prepare_template", t, p, task_id=f"template-prepare-{t}-{p}"))
    return row


def run_prepare(template_pk: int, pool_pk: int) -> None:
    """RQ entry point (storage.jobs.prepare_template)."""
    template = Template.objects.filter(pk=template_pk, removed__isnull=True).select_related("account").first()
    pool = StoragePool.objects.filter(pk=pool_pk).first()
    if template is None or pool is None:
        return
    try:
        ensure_on_pool(template, pool)
    except (ResourceUnavailable, InvalidParameterValue) as exc:
        log.warning("prepareTemplate %s on %s: %s", template.name, pool.name, exc.message)
        events.record(None, "TEMPLATE.PREPARE", f"Template {template.name} could not be copied to primary storage "
                      f"{pool.name}: {exc.message}", resource=template, account=template.account, level="ERROR")


def pool_copies(template: Template) -> list[TemplatePoolCopy]:
    return list(TemplatePoolCopy.objects.filter(template=template).select_related("pool").order_by("pool__name"))

