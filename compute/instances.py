"""User VMs: deploy, start, stop, reboot, destroy, recover, expunge.

The database is the source of truth; hosts are driven through compute.drivers. A VM's state is
claimed with a conditional UPDATE from the states VM_TRANSITIONS allows, so two operations on one
VM cannot both proceed (the second is told the VM is busy). Deploy is an async-create command:
`allocate` runs in the request's transaction — checks, placement (host locked, capacity counted
from VM rows), guest address and MAC, the root volume's row — and `start` runs in the job: the
template's base on the pool, a copy-on-write root disk, the config drive, the pod's network and
DHCP lease on the host, the domain. Whatever fails, what the VM took is released: the domain, the
volumes, the lease, the address, the host's capacity; a VM whose first start failed is left in
Error holding nothing, with the reason.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts import crypto
from accounts.access import can_manage_domain
from compute import networks, placement
from compute import services as compute_services
from compute.choices import VM_TRANSITIONS, AlertType, Hypervisor, VmState
from compute.drivers import DiskSpec, DomainSpec, DriverError, DriverNotFound, NicSpec
from compute.models import DiskOffering, Host, Nic, ServiceOffering, VirtualMachine, Zone
from portal import config, events
from portal.errors import ApiError, InvalidParameterValue, PermissionDenied, ResourceUnavailable

log = logging.getLogger(__name__)

HOSTNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,62}$")
USERDATA_GET_MAX = 4096  # bytes of base64, CloudStack's limit for GET
USERDATA_POST_MAX = 1048576  # bytes of base64 (vm.userdata.max.length default 32768; 1 MiB with POST)
BUSY_STATES = (VmState.STARTING, VmState.STOPPING, VmState.MIGRATING, VmState.EXPUNGING)
PUBLIC_START_FAILURE = "the host could not build or start it (an administrator finds the cause in the alerts)"


# -- state ----------------------------------------------------------------------------------------
def claim(vm: VirtualMachine, target: str, what: str) -> VirtualMachine:
    """Move the VM to `target` if its current state allows it; else a clear refusal."""
    allowed = VM_TRANSITIONS[target]
    if VirtualMachine.objects.filter(pk=vm.pk, state__in=allowed).update(state=target):
        vm.state = target
        return vm
    current = VirtualMachine.objects.filter(pk=vm.pk).values_list("state", flat=True).first()
    if current in BUSY_STATES:
        raise InvalidParameterValue(f"VM {vm.name} is busy: {current}; try again when it is done")
    raise InvalidParameterValue(f"Cannot {what} VM {vm.name}: it is {current}; it must be "
                                f"{' or '.join(allowed)}")


def require_manage(caller, vm: VirtualMachine) -> None:
    if vm.account_id == caller.account_id:
        return
    if caller.account.type in (1, 2) and can_manage_domain(caller, vm.account.domain):
        return
    raise PermissionDenied(f"You may not act on VM {vm.name}")


# -- values ---------------------------------------------------------------------------------------
def hostname_value(name: str | None, vm_uuid: str) -> str:
    if not name:
        return f"VM-{vm_uuid}"[:63]
    if not HOSTNAME_RE.match(name) or name.endswith("-"):
        raise InvalidParameterValue(f"Invalid name {name}: a VM name is a host name, 1 to 63 letters, digits and "
                                    f"hyphens, starting with a letter and not ending with a hyphen")
    return name


def userdata_value(text: str | None, method: str) -> str:
    if not text:
        return ""
    limit = USERDATA_POST_MAX if method == "POST" else USERDATA_GET_MAX
    if len(text) > limit:
        raise InvalidParameterValue(f"User data is too long: {len(text)} bytes of base64, at most {limit} with "
                                    f"{method}" + ("; send it with POST for up to 1 MiB" if method != "POST" else ""))
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterValue("User data must be base64-encoded") from None
    return text


def _sizes(offering: ServiceOffering, details: dict[str, str]) -> tuple[int, int, int]:
    """(cpu_number, cpu_speed, memory) from the offering, or from details for a customized one."""
    def detail(name: str) -> int | None:
        value = details.get(name)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidParameterValue(f"details[0].{name} must be a whole number, not {value}") from None

    cpu = offering.cpu_number or detail("cpuNumber")
    speed = offering.cpu_speed or detail("cpuSpeed") or 1000
    memory = offering.memory or detail("memory")
    if cpu is None or memory is None:
        raise InvalidParameterValue(f"Service offering {offering.name} is customized: give details[0].cpuNumber and "
                                    f"details[0].memory (MiB)")
    for value, low, high, label in ((cpu, offering.min_cpu_number, offering.max_cpu_number, "cpuNumber"),
                                    (memory, offering.min_memory, offering.max_memory, "memory")):
        if value < 1 or (low is not None and value < low) or (high is not None and value > high):
            raise InvalidParameterValue(f"{label} {value} is outside the range {low or 1}-{high or 'any'} of "
                                        f"service offering {offering.name}")
    return cpu, speed, memory


# -- deploy ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskPlan:
    """A volume a deploy makes: the root disk (a clone of `template`'s base, or blank) or a data disk."""

    type: str  # ROOT | DATADISK
    size: int  # bytes
    template: object = None  # storage.models.Template the root disk is cloned from; None: a blank disk
    disk_offering: DiskOffering | None = None


def check_image(owner, image, zone: Zone) -> None:
    """A template or ISO the owner may use (its users see it), Ready in `zone`."""
    from storage.models import DownloadState, Template, TemplateZone

    if not Template.objects.usable_by(owner).filter(pk=image.pk).exists():
        raise InvalidParameterValue(f"{image.kind_title} {image.name} is not available to account {owner.name}")
    if not TemplateZone.objects.filter(template=image, zone=zone, state=DownloadState.DOWNLOADED).exists():
        raise InvalidParameterValue(f"{image.kind_title} {image.name} is not ready in zone {zone.name}; wait until its "
                                    f"download is complete")


def plan_disks(owner, template, *, root_disk_size: int | None = None, disk_offering: DiskOffering | None = None,
               size: int | None = None) -> list[DiskPlan]:
    """The volumes of a new VM. From a template: a clone of it (at least rootdisksize GiB), plus a
    blank data disk when a disk offering is given. From an ISO: a blank root disk of the disk
    offering's size, the ISO in the CD-ROM drive to install from."""
    from compute.offerings import disk_size_bytes

    if disk_offering is not None and not DiskOffering.objects.usable_by(owner).filter(pk=disk_offering.pk).exists():
        raise InvalidParameterValue(f"Disk offering {disk_offering.name} is not available to account {owner.name}")
    if template.is_iso:
        if not template.bootable:
            raise InvalidParameterValue(f"ISO {template.name} is not bootable, so a VM cannot be installed from it; "
                                        f"deploy from a template and attach the ISO (attachIso)")
        if disk_offering is None:
            raise InvalidParameterValue(f"Deploying from ISO {template.name} needs a disk offering for the VM's root "
                                        f"disk: give diskofferingid")
        if root_disk_size is not None:
            raise InvalidParameterValue(f"rootdisksize applies to templates: the root disk of a VM installed from ISO "
                                        f"{template.name} has the disk offering's size (size, for a customized one)")
        return [DiskPlan("ROOT", disk_size_bytes(disk_offering, size), disk_offering=disk_offering)]
    template_bytes = template.size or 0
    if root_disk_size is not None and root_disk_size << 30 < template_bytes:
        raise InvalidParameterValue(f"rootdisksize {root_disk_size} GiB is smaller than template {template.name} "
                                    f"({template_bytes / (1 << 30):.2f} GiB)")
    disks = [DiskPlan("ROOT", max(template_bytes, (root_disk_size or 0) << 30), template=template)]
    if disk_offering is not None:
        disks.append(DiskPlan("DATADISK", disk_size_bytes(disk_offering, size), disk_offering=disk_offering))
    elif size is not None:
        raise InvalidParameterValue("size is the size of a data disk: give diskofferingid too")
    return disks


def allocate(caller, *, owner, zone: Zone, offering: ServiceOffering, template, name: str | None = None,
             display_name: str | None = None, group: str | None = None, keypairs: list[str] | None = None,
             user_data: str | None = None, ip_address: str | None = None, host: Host | None = None,
             root_disk_size: int | None = None, disk_offering: DiskOffering | None = None, size: int | None = None,
             hypervisor: str | None = None, start: bool = True, details: dict | None = None,
             method: str = "GET") -> VirtualMachine:
    """deployVirtualMachine's synchronous part (inside the request's transaction): everything is
    checked and taken here, so the job only has to build it. `template` may be an ISO (then
    `disk_offering` sizes the blank root disk); with a template, `disk_offering` adds a data disk."""
    from storage.models import Volume

    if zone.allocation_state != "Enabled" and caller.account.type != 1:
        raise InvalidParameterValue(f"Zone {zone.name} is disabled")
    check_image(owner, template, zone)
    disks = plan_disks(owner, template, root_disk_size=root_disk_size, disk_offering=disk_offering, size=size)
    if host is not None and caller.account.type != 1:
        raise PermissionDenied("Only a root admin may choose the host")
    if host is not None and host.zone_id != zone.pk:
        raise InvalidParameterValue(f"Host {host.name} is not in zone {zone.name}")
    cpu, speed, memory = _sizes(offering, details or {})
    disk_bytes = sum(d.size for d in disks)
    user_data = userdata_value(user_data, method)
    names = list(dict.fromkeys(keypairs or []))
    if names:
        _check_keypairs(owner, names)
    vm = VirtualMachine(account=owner, zone=zone, template=template, iso=template if template.is_iso else None,
                        service_offering=offering, cpu_number=cpu, cpu_speed=speed, memory=memory, group=group or "",
                        user_data=user_data, keypairs=names, vnc_password=crypto.encrypt(secrets.token_urlsafe(6)[:8]),
                        dynamically_scalable=template.dynamically_scalable)
    vm.name = hostname_value(name, str(vm.uuid))
    vm.display_name = display_name or vm.name
    if VirtualMachine.objects.filter(zone=zone, name__iexact=vm.name, removed__isnull=True).exists():
        raise InvalidParameterValue(f"A VM named {vm.name} already exists in zone {zone.name}; choose another name")
    fit = None
    if start:  # hosts are locked before the account (as the job's last step locks them): no deadlock
        fit = placement.choose_host(zone, cpu_number=cpu, cpu_speed=speed, memory=memory,
                                    hypervisor=template.hypervisor or hypervisor or "",
                                    host_tags=_tags(offering.host_tags), disk_bytes=disk_bytes, wanted=host)
        vm.pod, vm.host, vm.state = fit.host.pod, fit.host, VmState.STARTING
    else:
        vm.pod = zone.pods.filter(ip_ranges__isnull=False).order_by("id").first()
    _check_limits(owner, cpu, memory, volumes=len(disks), storage_bytes=disk_bytes)
    vm.save()
    vm.instance_name = f"i-{owner.pk}-{vm.pk}-{settings.NUBO_INSTANCE_NAME}"
    vm.save(update_fields=["instance_name"])
    networks.create_nic(vm, wanted_ip=ip_address)
    for device_id, disk in enumerate(disks):
        root = disk.type == "ROOT"
        Volume.objects.create(name=f"ROOT-{vm.pk}" if root else f"DATA-{vm.pk}-{device_id}", account=owner, zone=zone,
                              pool=fit.pool if fit else None, virtual_machine=vm, type=disk.type, device_id=device_id,
                              size=disk.size, template=disk.template, disk_offering=disk.disk_offering,
                              volume_name=f"{vm.instance_name}-" + ("root" if root else f"data-{device_id}"))
    if fit is not None:
        type(fit.pool).objects.filter(pk=fit.pool.pk).update(allocated_bytes=F("allocated_bytes") + disk_bytes)
    how = f" from ISO {template.name}" if template.is_iso else ""
    extra = f" and a {disks[-1].size >> 30} GiB data disk" if disks[-1].type == "DATADISK" else ""
    events.record(caller, "VM.CREATE", f"VM {vm.name} created in zone {zone.name}{how}{extra}", resource=vm,
                  account=owner)
    return vm


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _check_keypairs(owner, names: list[str]) -> None:
    from accounts.models import SSHKeyPair

    found = set(SSHKeyPair.objects.filter(account=owner, name__in=names).values_list("name", flat=True))
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidParameterValue(f"No SSH key pair named {', '.join(missing)} for account {owner.name}")


def _check_limits(owner, cpu: int, memory: int, *, volumes: int, storage_bytes: int) -> None:
    """Resource limits of the owner (user_vm, cpu, memory, and its volumes: volume and
    primary_storage), with its account row locked so concurrent deploys are counted one after
    another."""
    from accounts import limits

    type(owner).objects.select_for_update().filter(pk=owner.pk).first()
    for resource, amount in (("user_vm", 1), ("cpu", cpu), ("memory", memory), ("volume", volumes),
                             ("primary_storage", storage_bytes)):
        limits.check(owner, resource, amount)


# -- building and starting on the host --------------------------------------------------------------
def _driver_for(host: Host):
    from storage import services as storage_services

    return storage_services._open_driver(storage_services._host_uri(host))


ISO_DRIVE = "hdd"  # the CD-ROM drive of attached ISOs (the config drive is hdc); every VM has it, empty or not


def iso_drive(vm: VirtualMachine, iso_copy=None) -> DiskSpec:
    """The VM's ISO CD-ROM drive holding `iso_copy` (the ISO's TemplatePoolCopy on the VM's pool), or
    empty. A VM installed from an ISO boots from it first (then from its disk); the others never do."""
    installing = vm.template.is_iso
    if iso_copy is None:
        return DiskSpec(target=ISO_DRIVE, device="cdrom", bus="ide", format="raw", boot_order=1 if installing else None)
    return DiskSpec(target=ISO_DRIVE, pool=iso_copy.pool.libvirt_name, volume=iso_copy.volume_name, format="raw",
                    device="cdrom", bus="ide", boot_order=1 if installing else None)


def _domain_spec(vm: VirtualMachine, host: Host, volumes: list, config_volume: str, nic: Nic, network_name: str,
                 iso_copy=None) -> DomainSpec:
    """The domain: its volumes as virtio disks in device order (vda the root disk, vdb…), the config
    drive (hdc) and the ISO drive (hdd)."""
    root_order = 2 if vm.template.is_iso else 1
    disks = [DiskSpec(target="vd" + "abcdefghijklmnopqrstuvwxyz"[v.device_id], pool=v.pool.libvirt_name,
                      volume=v.volume_name, format="qcow2", bus="virtio",
                      boot_order=root_order if v.type == "ROOT" else None) for v in volumes]
    root = next(v for v in volumes if v.type == "ROOT")
    disks.append(DiskSpec(target="hdc", pool=root.pool.libvirt_name, volume=config_volume, format="raw",
                          device="cdrom", bus="ide"))
    disks.append(iso_drive(vm, iso_copy))
    max_vcpus, max_memory = room_to_grow(vm, host)
    return DomainSpec(name=vm.instance_name, uuid=str(vm.uuid), vcpus=vm.cpu_number, memory_mib=vm.memory,
                      max_vcpus=max_vcpus, max_memory_mib=max_memory, emulation=host.effective_emulation,
                      disks=tuple(disks),
                      nics=(NicSpec(mac=nic.mac, network=network_name),), vnc=True,
                      vnc_password=crypto.decrypt(vm.vnc_password) if vm.vnc_password else "",
                      description=f"Nubo VM {vm.name} of account {vm.account.name}",
                      metadata={"vm": str(vm.uuid), "account": str(vm.account.uuid)})


def scaling_enabled(zone: Zone) -> bool:
    """enable.dynamic.scale.vm in `zone` (or globally)."""
    return bool(config.get_value("enable.dynamic.scale.vm", scope="zone", scope_uuid=str(zone.uuid)))


def room_to_grow(vm: VirtualMachine, host: Host) -> tuple[int, int]:
    """(vCPUs, MiB) the VM's domain on `host` can grow to while it runs, as CloudStack's KVM agent
    sizes it: vm.serviceoffering.cpu.cores.max and vm.serviceoffering.ram.size.max of its zone, 0
    meaning the host's CPUs and memory, and never more than the host has (nor less than the VM has
    now). (0, 0), and the domain is defined as before, unless the VM is dynamically scalable and
    enable.dynamic.scale.vm is on in its zone."""
    if not (vm.dynamically_scalable and scaling_enabled(vm.zone)):
        return 0, 0
    zone = str(vm.zone.uuid)
    host_cpus, host_mib = host.cpu_number or vm.cpu_number, (host.memory_total >> 20) or vm.memory
    cpus = int(config.get_value("vm.serviceoffering.cpu.cores.max", scope="zone", scope_uuid=zone)) or host_cpus
    memory = int(config.get_value("vm.serviceoffering.ram.size.max", scope="zone", scope_uuid=zone)) or host_mib
    return max(vm.cpu_number, min(cpus, host_cpus)), max(vm.memory, min(memory, host_mib))


def image_on_pool(driver, image, pool):
    """The Ready copy of a template's base or an ISO on `pool` (storage.images.primary copies it
    there once per pool); copied again when the host lost it (the Simulator, a wiped host)."""
    from storage.images import primary
    from storage.models import PoolCopyState, TemplatePoolCopy

    copy = primary.ensure_on_pool(image, pool)
    if driver.volume_info(pool.libvirt_name, copy.volume_name) is None:
        TemplatePoolCopy.objects.filter(pk=copy.pk, state=PoolCopyState.READY).update(
            state=PoolCopyState.ERROR, error=f"the {image.kind} volume is missing on the host")
        copy = primary.ensure_on_pool(image, pool)
    return copy


def _config_drive(vm: VirtualMachine, nic: Nic, workdir: Path) -> Path:
    from storage import configdrive

    keys: dict[str, str] = {}
    if vm.keypairs:
        from accounts.models import SSHKeyPair

        keys = {k.name: k.public_key for k in SSHKeyPair.objects.filter(account=vm.account, name__in=vm.keypairs)}
    address = nic.address
    interface = configdrive.NetworkInterface(mac=nic.mac)  # DHCP: the host's lease carries the address
    return configdrive.build(configdrive.ConfigDrive(
        uuid=str(vm.uuid), hostname=vm.name, public_keys=keys,
        password=crypto.decrypt(vm.password) if vm.password else "",
        user_data=base64.b64decode(vm.user_data) if vm.user_data else b"", zone=vm.zone.name,
        interfaces=(interface,), extra_metadata={"ip": address.address if address else ""}),
        workdir / f"{vm.instance_name}-config.iso")


def _build_volume(driver, volume) -> None:
    """Make a volume of the VM on its pool: the root disk as a clone of its template's base, or a
    blank qcow2 (the root disk of an ISO install, a data disk)."""
    from storage.models import Volume, VolumeState

    fields = {}
    if volume.template_id:
        base = image_on_pool(driver, volume.template, volume.pool)
        info = driver.clone_volume(volume.pool.libvirt_name, base.volume_name, volume.volume_name,
                                   capacity_bytes=volume.size or None)
        fields["base"] = base
    else:
        info = driver.create_volume(volume.pool.libvirt_name, volume.volume_name, volume.size, "qcow2")
    Volume.objects.filter(pk=volume.pk).update(state=VolumeState.READY, path=info.path, size=info.capacity_bytes,
                                               **fields)


def start_on_host(caller, vm: VirtualMachine, *, first: bool) -> VirtualMachine:
    """Build and start a VM in state Starting on vm.host. On failure everything this start made
    is removed; a first start (deploy) also gives back what allocate took and leaves the VM in
    Error; a later start leaves it Stopped. Raises the failure."""
    from storage import services as storage_services
    from storage.models import Volume, VolumeState

    vm = VirtualMachine.objects.select_related("host__cluster", "host__pod", "zone", "account__domain", "template",
                                               "iso", "pod__zone").get(pk=vm.pk)
    host = vm.host
    volumes = list(Volume.objects.select_related("pool", "template").filter(virtual_machine=vm, removed__isnull=True)
                   .order_by("device_id", "id"))
    root = next(v for v in volumes if v.type == "ROOT")
    nic = Nic.objects.select_related("address", "virtual_machine").get(virtual_machine=vm, is_default=True)
    config_volume = f"{vm.instance_name}-config"
    made: list[str] = []
    driver = _driver_for(host)
    try:
        driver.connect()
        for pool in {v.pool_id: v.pool for v in volumes}.values():
            driver.ensure_pool(storage_services.pool_spec(pool))
        for volume in volumes:
            if volume.state != VolumeState.READY or driver.volume_info(volume.pool.libvirt_name,
                                                                       volume.volume_name) is None:
                _build_volume(driver, volume)
        iso_copy = image_on_pool(driver, vm.iso, root.pool) if vm.iso_id else None
        with tempfile.TemporaryDirectory(prefix="nubo-config-") as workdir:
            drive = _config_drive(vm, nic, Path(workdir))
            driver.delete_volume(root.pool.libvirt_name, config_volume)
            driver.upload_volume(root.pool.libvirt_name, config_volume, str(drive), "raw")
        made.append("config")
        spec = networks.host_network_spec(host)
        driver.ensure_network(spec)
        driver.add_dhcp_host(spec.name, networks.dhcp_host(nic))
        made.append("lease")
        volumes = list(Volume.objects.select_related("pool").filter(pk__in=[v.pk for v in volumes])
                       .order_by("device_id", "id"))
        domain = _domain_spec(vm, host, volumes, config_volume, nic, spec.name, iso_copy)
        driver.define_domain(domain)
        made.append("domain")
        driver.start_domain(vm.instance_name)
    except (DriverError, ApiError) as exc:
        reason = getattr(exc, "message", str(exc))
        _undo_start(driver, vm, volumes, nic, config_volume, made, remove_volumes=first)
        driver.close()
        with transaction.atomic():
            if first:
                _release(vm)
                VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.ERROR, host=None, state_reason=reason[:1024])
            else:
                VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPED, host=None, last_host=host,
                                                               state_reason=reason[:1024])
            # tenants are told that it failed and what was given back; the cause (host names, libvirt
            # URIs) goes to the admins' alerts and to state_reason, which only root admins are shown
            compute_services.raise_alert(AlertType.USERVM, "ALERT.USERVM", f"VM {vm.name} ({vm.instance_name}) could "
                                         f"not start on host {host.name}: {reason}", zone=vm.zone, pod=vm.pod)
            public = reason if caller.account.type == 1 else PUBLIC_START_FAILURE
            events.record(caller, "VM.START", f"VM {vm.name} could not start: {public}", resource=vm,
                          account=vm.account, level="ERROR")
        raise ResourceUnavailable(f"VM {vm.name} could not start: {public}"
                                  + ("; what it had taken was released" if first else "")) from None
    driver.close()
    with transaction.atomic():
        VirtualMachine.objects.filter(pk=vm.pk, state=VmState.STARTING).update(
            state=VmState.RUNNING, last_host=host, emulation=host.effective_emulation, state_reason="",
            max_cpu_number=domain.max_vcpus, max_memory=domain.max_memory_mib)
        events.record(caller, "VM.START", f"VM {vm.name} started", resource=vm, account=vm.account)
    vm.refresh_from_db()
    return vm


def _undo_start(driver, vm, volumes: list, nic, config_volume: str, made: list[str], *, remove_volumes: bool) -> None:
    """Remove what a failed start made on the host; a failed first start also the VM's volumes
    (the ones this start made, and any a crashed earlier attempt left)."""
    root = next(v for v in volumes if v.type == "ROOT")
    steps = []
    if "domain" in made:
        steps.append(lambda: driver.stop_domain(vm.instance_name, force=True))
        steps.append(lambda: driver.undefine_domain(vm.instance_name))
    if "lease" in made:
        steps.extend(lambda name=name: driver.remove_dhcp_host(name, nic.mac) for name in networks.network_names(vm))
    if "config" in made:
        steps.append(lambda: driver.delete_volume(root.pool.libvirt_name, config_volume))
    if remove_volumes:
        steps.extend(lambda v=v: driver.delete_volume(v.pool.libvirt_name, v.volume_name) for v in volumes)
    for step in steps:
        try:
            step()
        except DriverError as exc:
            log.warning("VM %s: undo step failed: %s", vm.instance_name, exc.message)


def _release(vm: VirtualMachine) -> None:
    """Give back what a VM holds in the database: its address, its volumes' pool allocation."""
    from storage.models import StoragePool, Volume, VolumeState

    networks.release_nics(vm)
    for volume in Volume.objects.filter(virtual_machine=vm, removed__isnull=True):
        if volume.pool_id and volume.size:
            StoragePool.objects.filter(pk=volume.pool_id).update(allocated_bytes=F("allocated_bytes") - volume.size)
        Volume.objects.filter(pk=volume.pk).update(state=VolumeState.EXPUNGED, removed=timezone.now())


def start(caller, vm: VirtualMachine, *, host: Host | None = None) -> VirtualMachine:
    """startVirtualMachine (in the job): place the VM again (its pod: its address lives there), then
    start it there."""
    from storage.models import StoragePool, Volume

    require_manage(caller, vm)
    if host is not None and caller.account.type != 1:
        raise PermissionDenied("Only a root admin may choose the host")
    with transaction.atomic():
        claim(vm, VmState.STARTING, "start")
        root = Volume.objects.select_related("pool").filter(virtual_machine=vm, type="ROOT", removed__isnull=True).first()
        unplaced = list(Volume.objects.filter(virtual_machine=vm, removed__isnull=True, pool__isnull=True))
        disk_bytes = sum(v.size for v in unplaced)
        try:
            fit = placement.choose_host(vm.zone, cpu_number=vm.cpu_number, cpu_speed=vm.cpu_speed, memory=vm.memory,
                                        hypervisor=vm.template.hypervisor,
                                        host_tags=_tags(vm.service_offering.host_tags), disk_bytes=disk_bytes,
                                        wanted=host or None, exclude_vm=vm)
        except ApiError:
            VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPED)
            raise
        if vm.pod_id and fit.host.pod_id != vm.pod_id:
            VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPED)
            raise InvalidParameterValue(f"VM {vm.name} has its address in pod {vm.pod.name}; host {fit.host.name} "
                                        f"is in pod {fit.host.pod.name}")
        if unplaced:  # a VM deployed with startvm=false: its volumes go to the pool of the host chosen now
            Volume.objects.filter(pk__in=[v.pk for v in unplaced]).update(pool=fit.pool)
            StoragePool.objects.filter(pk=fit.pool.pk).update(allocated_bytes=F("allocated_bytes") + disk_bytes)
        VirtualMachine.objects.filter(pk=vm.pk).update(host=fit.host, pod=fit.host.pod)
    first = not VirtualMachine.objects.filter(pk=vm.pk, last_host__isnull=False).exists() and (
        root is None or root.state != "Ready")
    return start_on_host(caller, vm, first=first)


def _stop_on_host(vm: VirtualMachine, *, forced: bool) -> None:
    host = vm.host
    if host is None:
        return
    driver = _driver_for(host)
    try:
        driver.connect()
        try:
            driver.stop_domain(vm.instance_name, force=forced or host.hypervisor == Hypervisor.SIMULATOR)
            driver.undefine_domain(vm.instance_name)
        except DriverNotFound:
            pass  # already gone (the Simulator forgets domains between processes)
        nic = Nic.objects.filter(virtual_machine=vm, is_default=True).first()
        if nic is not None and vm.pod_id:
            for name in networks.network_names(vm):
                driver.remove_dhcp_host(name, nic.mac)
    finally:
        driver.close()


def stop(caller, vm: VirtualMachine, *, forced: bool = False) -> VirtualMachine:
    require_manage(caller, vm)
    claim(vm, VmState.STOPPING, "stop")
    vm = VirtualMachine.objects.select_related("host", "pod__zone", "account").get(pk=vm.pk)
    try:
        _stop_on_host(vm, forced=forced)
    except DriverError as exc:
        VirtualMachine.objects.filter(pk=vm.pk, state=VmState.STOPPING).update(state=VmState.RUNNING)
        raise ResourceUnavailable(f"Cannot stop VM {vm.name}: {exc.message}") from None
    with transaction.atomic():
        VirtualMachine.objects.filter(pk=vm.pk).update(state=VmState.STOPPED, last_host=vm.host, host=None)
        events.record(caller, "VM.STOP", f"VM {vm.name} stopped" + (" (forced)" if forced else ""), resource=vm,
                      account=vm.account)
    vm.refresh_from_db()
    return vm


def reboot(caller, vm: VirtualMachine) -> VirtualMachine:
    require_manage(caller, vm)
    state = VirtualMachine.objects.filter(pk=vm.pk).values_list("state", flat=True).first()
    if state in BUSY_STATES:
        raise InvalidParameterValue(f"VM {vm.name} is busy: {state}; try again when it is done")
    if state != VmState.RUNNING:
        raise InvalidParameterValue(f"Cannot reboot VM {vm.name}: it is {state}; it must be Running")
    driver = _driver_for(vm.host)
    try:
        with driver:
            driver.reboot_domain(vm.instance_name)
    except DriverNotFound:
        if vm.host.hypervisor != Hypervisor.SIMULATOR:  # the Simulator forgets domains between processes
            raise ResourceUnavailable(f"Cannot reboot VM {vm.name}: its domain is gone from host {vm.host.name}; "
                                      f"stop and start it") from None
    except DriverError as exc:
        raise ResourceUnavailable(f"Cannot reboot VM {vm.name}: {exc.message}") from None
    events.record(caller, "VM.REBOOT", f"VM {vm.name} rebooted", resource=vm, account=vm.account)
    return vm


def check_expunge(caller) -> None:
    if caller.account.type not in (1, 2) and not config.get_value(
            "allow.user.expunge.recover.vm", scope="account", scope_uuid=str(caller.account.uuid)):
        raise PermissionDenied("Only administrators may expunge or recover a VM (allow.user.expunge.recover.vm is false)")


def destroy(caller, vm: VirtualMachine, *, expunge: bool = False) -> VirtualMachine:
    require_manage(caller, vm)
    if expunge:
        check_expunge(caller)
    if vm.state == VmState.RUNNING:
        vm = stop(caller, vm, forced=True)
    with transaction.atomic():
        claim(vm, VmState.DESTROYED, "destroy")
        VirtualMachine.objects.filter(pk=vm.pk).update(destroyed=timezone.now())
        events.record(caller, "VM.DESTROY", f"VM {vm.name} destroyed", resource=vm, account=vm.account)
    if expunge:
        return expunge_vm(caller, vm)
    vm.refresh_from_db()
    return vm


def recover(caller, vm: VirtualMachine) -> VirtualMachine:
    require_manage(caller, vm)
    check_expunge(caller)
    with transaction.atomic():
        if not VirtualMachine.objects.filter(pk=vm.pk, state=VmState.DESTROYED).update(state=VmState.STOPPED,
                                                                                      destroyed=None):
            raise InvalidParameterValue(f"Cannot recover VM {vm.name}: it is {vm.state}; only a Destroyed VM can be "
                                        f"recovered")
        events.record(caller, "VM.RECOVER", f"VM {vm.name} recovered", resource=vm, account=vm.account)
    vm.refresh_from_db()
    return vm


def expunge_vm(caller, vm: VirtualMachine) -> VirtualMachine:
    """Remove a destroyed VM for good: its disks on the pool, its address, its rows' claims."""
    from storage.models import Volume

    require_manage(caller, vm)
    check_expunge(caller)
    claim(vm, VmState.EXPUNGING, "expunge")
    for volume in Volume.objects.select_related("pool").filter(virtual_machine=vm, removed__isnull=True,
                                                                pool__isnull=False):
        host = vm.last_host or Host.objects.filter(cluster=volume.pool.cluster_id).first() if volume.pool else None
        if host is None:
            continue
        try:
            with _driver_for(host) as driver:
                for name in (f"{vm.instance_name}-config", volume.volume_name):
                    try:
                        driver.delete_volume(volume.pool.libvirt_name, name)
                    except DriverNotFound:
                        pass
        except DriverError as exc:
            log.warning("VM %s: its disk %s could not be removed from host %s: %s", vm.instance_name,
                        volume.volume_name, host.name, exc.message)
    with transaction.atomic():
        _release(vm)
        VirtualMachine.objects.filter(pk=vm.pk).update(removed=timezone.now(), host=None)
        events.record(caller, "VM.EXPUNGE", f"VM {vm.name} expunged", resource=vm, account=vm.account)
    vm.refresh_from_db()
    return vm


def expunge_due(caller_factory) -> int:
    """Periodic: expunge VMs destroyed more than expunge.delay seconds ago."""
    delay = int(config.get_value("expunge.delay"))
    due = VirtualMachine.objects.filter(state=VmState.DESTROYED, removed__isnull=True,
                                        destroyed__lt=timezone.now() - timezone.timedelta(seconds=delay))
    done = 0
    for vm in due.select_related("account__domain"):
        try:
            expunge_vm(caller_factory(), vm)
            done += 1
        except ApiError as exc:
            log.warning("expunge of VM %s failed: %s", vm.name, exc.message)
    return done



# -- hooks for other apps --------------------------------------------------------------------------
def template_users(template) -> list[str]:
    """storage.images.services.TEMPLATE_USERS_HOOKS: the VMs (not expunged) made from `template`,
    or holding it (an ISO) in their CD-ROM drive."""
    from django.db.models import Q

    return [f"VM {name}" for name in VirtualMachine.objects.filter(Q(template=template) | Q(iso=template),
                                                                   removed__isnull=True)
            .order_by("id").values_list("name", flat=True)]


def offering_users(offering) -> list[str]:
    """compute.offerings.OFFERING_USERS_HOOKS: the VMs (not expunged) of a service offering."""
    if not isinstance(offering, ServiceOffering):
        return []
    return [f"VM {name}" for name in VirtualMachine.objects.filter(service_offering=offering, removed__isnull=True)
            .order_by("id").values_list("name", flat=True)]


def delete_account_vms(caller, account) -> None:
    """accounts.services.ACCOUNT_CLEANUP_HOOKS: an account's VMs are stopped, destroyed and
    expunged before the account goes (its templates go after them)."""
    from accounts.models import User

    actor = User.objects.filter(account__type=1, account__domain__parent__isnull=True).order_by("id").first()
    for vm in VirtualMachine.objects.filter(account=account, removed__isnull=True).select_related(
            "account__domain", "host", "pod__zone"):
        if vm.state in (VmState.RUNNING, VmState.STOPPED, VmState.ERROR):
            destroy(actor, vm, expunge=True)
        elif vm.state == VmState.DESTROYED:
            expunge_vm(actor, vm)
        else:
            raise InvalidParameterValue(f"Account {account.name} has VM {vm.name} in state {vm.state}; try again when "
                                        f"it is done")
    from storage.models import Volume

    Volume.objects.filter(account=account).delete()  # expunged: their rows go with the account
    VirtualMachine.objects.filter(account=account).delete()


# -- resource counts (accounts.limits counters) ------------------------------------------------------
COUNTED_STATES = (VmState.STARTING, VmState.RUNNING, VmState.STOPPING, VmState.STOPPED, VmState.MIGRATING)


def _counted(account_ids: list[int]):
    return VirtualMachine.objects.filter(account_id__in=account_ids, state__in=COUNTED_STATES, removed__isnull=True)


def count_vms(account_ids: list[int]) -> dict[int, int]:
    from django.db.models import Count

    return {r["account_id"]: r["n"] for r in _counted(account_ids).values("account_id").annotate(n=Count("id"))}


def count_cpus(account_ids: list[int]) -> dict[int, int]:
    from django.db.models import Sum

    return {r["account_id"]: r["n"] for r in _counted(account_ids).values("account_id").annotate(n=Sum("cpu_number"))}


def count_memory(account_ids: list[int]) -> dict[int, int]:
    from django.db.models import Sum

    return {r["account_id"]: r["n"] for r in _counted(account_ids).values("account_id").annotate(n=Sum("memory"))}


# -- changes to a VM -------------------------------------------------------------------------------
def update(caller, vm: VirtualMachine, *, display_name: str | None = None, name: str | None = None,
           group: str | None = None, ha_enabled: bool | None = None, user_data: str | None = None,
           dynamically_scalable: bool | None = None, method: str = "GET") -> VirtualMachine:
    """updateVirtualMachine: what the VM is called and carries; a new host name or user data
    reaches the guest through its config drive at the next start, and so does room to grow
    (isdynamicallyscalable: its domain is defined with it at the next start)."""
    require_manage(caller, vm)
    with transaction.atomic():
        vm = VirtualMachine.objects.select_for_update().select_related("account").get(pk=vm.pk)
        if name is not None and name != vm.name:
            if vm.state != VmState.STOPPED:
                raise InvalidParameterValue(f"VM {vm.name} must be Stopped to change its host name; it is {vm.state}")
            new = hostname_value(name, str(vm.uuid))
            if VirtualMachine.objects.filter(zone=vm.zone, name__iexact=new, removed__isnull=True).exclude(
                    pk=vm.pk).exists():
                raise InvalidParameterValue(f"A VM named {new} already exists in zone {vm.zone.name}")
            vm.name = new
        if display_name is not None:
            vm.display_name = display_name
        if group is not None:
            vm.group = group
        if ha_enabled is not None:
            vm.ha_enabled = ha_enabled
        if user_data is not None:
            vm.user_data = userdata_value(user_data, method)
        if dynamically_scalable and not vm.dynamically_scalable:
            _check_can_scale(vm)
        if dynamically_scalable is not None:
            vm.dynamically_scalable = dynamically_scalable
        vm.save()
        events.record(caller, "VM.UPDATE", f"VM {vm.name} updated", resource=vm, account=vm.account)
    return vm


def _require_stopped(vm: VirtualMachine, what: str) -> None:
    state = VirtualMachine.objects.filter(pk=vm.pk).values_list("state", flat=True).first()
    if state != VmState.STOPPED:
        raise InvalidParameterValue(f"VM {vm.name} must be Stopped to {what}; it is {state}")


def reset_password(caller, vm: VirtualMachine) -> tuple[VirtualMachine, str]:
    """resetPasswordForVirtualMachine: a new root password, written to the config drive the VM
    reads at its next start (returned once, in this answer)."""
    require_manage(caller, vm)
    if not vm.template.password_enabled:
        raise InvalidParameterValue(f"Template {vm.template.name} of VM {vm.name} is not password enabled")
    _require_stopped(vm, "reset its password")
    password = secrets.token_urlsafe(9)
    with transaction.atomic():
        VirtualMachine.objects.filter(pk=vm.pk).update(password=crypto.encrypt(password))
        events.record(caller, "VM.RESETPASSWORD", f"Password of VM {vm.name} reset", resource=vm, account=vm.account)
    vm.refresh_from_db()
    return vm, password


def reset_ssh_keys(caller, vm: VirtualMachine, keypairs: list[str]) -> VirtualMachine:
    """resetSSHKeyForVirtualMachine: the key pairs the config drive carries from the next start."""
    require_manage(caller, vm)
    names = list(dict.fromkeys(keypairs))
    if not names:
        raise InvalidParameterValue("Give keypair or keypairs")
    _check_keypairs(vm.account, names)
    _require_stopped(vm, "reset its SSH keys")
    with transaction.atomic():
        VirtualMachine.objects.filter(pk=vm.pk).update(keypairs=names)
        events.record(caller, "VM.RESETSSHKEY", f"SSH keys of VM {vm.name} reset to {', '.join(names)}", resource=vm,
                      account=vm.account)
    vm.refresh_from_db()
    return vm


def _new_size(caller, vm: VirtualMachine, offering: ServiceOffering, details: dict | None) -> tuple[int, int, int]:
    require_manage(caller, vm)
    if not ServiceOffering.objects.usable_by(vm.account).filter(pk=offering.pk).exists():
        raise InvalidParameterValue(f"Service offering {offering.name} is not available to account {vm.account.name}")
    return _sizes(offering, details or {})


def _check_limits_for_growth(vm: VirtualMachine, cpu: int, memory: int) -> None:
    """The owner's cpu and memory limits, for what the VM gets more (its account row locked)."""
    from accounts import limits

    type(vm.account).objects.select_for_update().filter(pk=vm.account_id).first()
    for resource, more in (("cpu", cpu - vm.cpu_number), ("memory", memory - vm.memory)):
        if more > 0:
            limits.check(vm.account, resource, more)


def change_offering(caller, vm: VirtualMachine, offering: ServiceOffering, *, details: dict | None = None,
                    event: str = "VM.UPGRADE") -> VirtualMachine:
    """changeServiceForVirtualMachine (and scaleVirtualMachine) of a stopped VM: any size, from its
    next start; limits are checked for the difference. A running VM is refused (scale_running
    grows one)."""
    cpu, speed, memory = _new_size(caller, vm, offering, details)
    with transaction.atomic():
        locked = VirtualMachine.objects.select_for_update().select_related("account").get(pk=vm.pk)
        if locked.state != VmState.STOPPED:
            live = " (scaleVirtualMachine scales a running VM up where its zone allows it)" \
                if locked.state == VmState.RUNNING else ""
            raise InvalidParameterValue(f"VM {vm.name} must be Stopped to change its offering; it is "
                                        f"{locked.state}{live}")
        _check_limits_for_growth(locked, cpu, memory)
        VirtualMachine.objects.filter(pk=vm.pk).update(service_offering=offering, cpu_number=cpu, cpu_speed=speed,
                                                       memory=memory)
        events.record(caller, event, f"VM {vm.name} now has offering {offering.name} ({cpu} vCPU, {memory} MiB)",
                      resource=vm, account=vm.account)
    vm.refresh_from_db()
    return vm


# -- scaling a running VM (scaleVirtualMachine) ---------------------------------------------------------
MEMORY_STEP_MIB = 128  # a Linux guest onlines hot-plugged memory in blocks of 128 MiB (x86-64): smaller steps stay unused


def _check_can_scale(vm: VirtualMachine) -> None:
    """Whether dynamic scaling may be enabled for the VM (updateVirtualMachine isdynamicallyscalable),
    as CloudStack checks it: its template and its zone must allow it."""
    if not vm.template.dynamically_scalable:
        raise InvalidParameterValue(f"Dynamic scaling cannot be enabled for VM {vm.name} since its template "
                                    f"{vm.template.name} does not have dynamic scaling enabled (updateTemplate "
                                    f"isdynamicallyscalable=true)")
    if not scaling_enabled(vm.zone):
        raise InvalidParameterValue(f"Dynamic scaling cannot be enabled for VM {vm.name} since the setting "
                                    f"enable.dynamic.scale.vm is false in zone {vm.zone.name}")


def live_scalable(vm: VirtualMachine) -> bool:
    """Whether the running VM can grow now (its domain was started with room to grow, and it and its
    zone still allow it)."""
    return (vm.state == VmState.RUNNING and vm.max_cpu_number > 0 and vm.dynamically_scalable
            and scaling_enabled(vm.zone))


def check_live_scaling(vm: VirtualMachine, cpu: int, speed: int, memory: int) -> None:
    """Refuse, with what to change, a live scaling the VM, its zone or its domain do not allow."""
    stop = "; or stop it to change its offering"
    if not scaling_enabled(vm.zone):
        raise InvalidParameterValue(f"VM {vm.name} is Running and dynamic scaling is disabled in zone {vm.zone.name}: "
                                    f"an administrator enables it with the setting enable.dynamic.scale.vm, then the "
                                    f"VM can be scaled after its next start{stop}")
    if not vm.dynamically_scalable:
        raise InvalidParameterValue(f"VM {vm.name} is Running and not dynamically scalable: enable it with "
                                    f"updateVirtualMachine isdynamicallyscalable=true (its template must allow it), "
                                    f"then stop and start it{stop}")
    if not vm.max_cpu_number:
        raise InvalidParameterValue(f"VM {vm.name} was started before dynamic scaling was enabled, so its domain has "
                                    f"no room to grow: stop and start it{stop}")
    if (cpu < vm.cpu_number or speed < vm.cpu_speed or memory < vm.memory
            or (cpu, speed, memory) == (vm.cpu_number, vm.cpu_speed, vm.memory)):
        raise InvalidParameterValue(
            f"Only scaling up the vm is supported: the new offering ({cpu} vCPU x {speed} MHz, {memory} MiB) must be "
            f"larger than VM {vm.name}'s ({vm.cpu_number} vCPU x {vm.cpu_speed} MHz, {vm.memory} MiB) in CPU or "
            f"memory and smaller in nothing{stop}")
    if cpu > vm.max_cpu_number or memory > vm.max_memory:
        raise InvalidParameterValue(f"VM {vm.name} can grow to at most {vm.max_cpu_number} vCPU and {vm.max_memory} "
                                    f"MiB while it runs (vm.serviceoffering.cpu.cores.max, "
                                    f"vm.serviceoffering.ram.size.max and its host's size when it started){stop}")
    if (memory - vm.memory) % MEMORY_STEP_MIB:
        raise InvalidParameterValue(f"The memory of a running VM grows in steps of {MEMORY_STEP_MIB} MiB (what a "
                                    f"guest adds at a time): {vm.memory} to {memory} MiB is {memory - vm.memory} MiB "
                                    f"more{stop}")


def scale(caller, vm: VirtualMachine, offering: ServiceOffering, *, details: dict | None = None,
          event: str = "VM.SCALE") -> VirtualMachine:
    """scaleVirtualMachine: a stopped VM changes offering (change_offering); a running one grows
    without stopping, where its zone and the VM allow it (scale_running)."""
    state = VirtualMachine.objects.filter(pk=vm.pk).values_list("state", flat=True).first()
    if state == VmState.RUNNING:
        return scale_running(caller, vm, offering, details=details, event=event)
    return change_offering(caller, vm, offering, details=details, event=event)


def scale_running(caller, vm: VirtualMachine, offering: ServiceOffering, *, details: dict | None = None,
                  event: str = "VM.SCALE") -> VirtualMachine:
    """Grow a running VM to `offering` (or the details' size of a customized one): up only, within
    the room its domain was started with, its owner's limits (for the difference) and its host's
    free capacity (overprovisioning as placement counts it) all checked in the transaction that
    records the new size, with the VM, its host and its account locked; then its host hot-plugs the
    vCPUs and the memory. When the host fails, nothing changes and the job fails with the cause
    (root admins; the others are told it failed, the cause goes to the alerts)."""
    cpu, speed, memory = _new_size(caller, vm, offering, details)
    reason = ""
    with transaction.atomic():  # VM, then host, then account: the order start and deploy take them in
        locked = VirtualMachine.objects.select_for_update(of=("self",)).select_related(
            "host", "zone", "account", "template").get(pk=vm.pk)
        if locked.state in BUSY_STATES:
            raise InvalidParameterValue(f"VM {vm.name} is busy: {locked.state}; try again when it is done")
        if locked.state != VmState.RUNNING:
            raise InvalidParameterValue(f"Cannot scale VM {vm.name}: it is {locked.state}; it must be Running or "
                                        f"Stopped")
        check_live_scaling(locked, cpu, speed, memory)
        host = placement.check_growth(locked, cpu_number=cpu, cpu_speed=speed, memory=memory)
        _check_limits_for_growth(locked, cpu, memory)
        VirtualMachine.objects.filter(pk=vm.pk).update(service_offering=offering, cpu_number=cpu, cpu_speed=speed,
                                                       memory=memory)
        reason = _grow_on_host(locked, host, cpu, memory)
        if reason:
            transaction.set_rollback(True)
        else:
            events.record(caller, event, f"VM {vm.name} scaled while running to offering {offering.name} ({cpu} vCPU, "
                                         f"{memory} MiB)", resource=vm, account=vm.account)
    if reason:
        compute_services.raise_alert(AlertType.USERVM, "ALERT.USERVM", f"Cannot scale VM {vm.name} "
                                     f"({vm.instance_name}) on host {host.name}: {reason}", zone=vm.zone, pod=vm.pod)
        public = reason if caller.account.type == 1 else \
            "its host could not add the vCPUs or memory (an administrator finds the cause in the alerts)"
        events.record(caller, event, f"VM {vm.name} could not be scaled to offering {offering.name}: {public}",
                      resource=vm, account=vm.account, level="ERROR")
        raise ResourceUnavailable(f"Cannot scale VM {vm.name}: {public}; it keeps {locked.cpu_number} vCPU and "
                                  f"{locked.memory} MiB")
    vm.refresh_from_db()
    return vm


def _grow_on_host(vm: VirtualMachine, host: Host, cpu: int, memory: int) -> str:
    """Hot-plug the VM's new vCPUs and memory on its host: "" when done, else the host's reason."""
    try:
        with _driver_for(host) as driver:
            driver.scale_domain(vm.instance_name, cpu, memory)
    except DriverNotFound as exc:
        if host.hypervisor != Hypervisor.SIMULATOR:  # the Simulator forgets domains between processes
            return f"its domain is gone from its host ({exc.message}); stop and start it"
    except DriverError as exc:
        return exc.message
    return ""


def restore(caller, vm: VirtualMachine, *, template=None) -> VirtualMachine:
    """restoreVirtualMachine: a fresh root disk from the VM's template (or `template`); a running
    VM is stopped first and started again afterwards."""
    from storage.models import Volume, VolumeState

    require_manage(caller, vm)
    template = template or vm.template
    if template.is_iso:
        raise InvalidParameterValue(f"Restoring from ISO {template.name} is not supported: give a template "
                                    f"(templateid) for the new root disk")
    check_image(vm.account, template, vm.zone)
    was_running = vm.state == VmState.RUNNING
    if was_running:
        vm = stop(caller, vm, forced=True)
    _require_stopped(vm, "restore it")
    root = Volume.objects.select_related("pool").filter(virtual_machine=vm, type="ROOT", removed__isnull=True).first()
    if root is not None and root.pool_id and root.state == VolumeState.READY:
        host = vm.last_host or Host.objects.filter(cluster=root.pool.cluster_id).first()
        if host is not None:
            try:
                with _driver_for(host) as driver:
                    driver.delete_volume(root.pool.libvirt_name, root.volume_name)
            except DriverNotFound:
                pass
            except DriverError as exc:
                raise ResourceUnavailable(f"Cannot restore VM {vm.name}: {exc.message}") from None
    with transaction.atomic():
        if root is not None:
            Volume.objects.filter(pk=root.pk).update(state=VolumeState.ALLOCATED, template=template, base=None, path="")
        VirtualMachine.objects.filter(pk=vm.pk).update(template=template)
        events.record(caller, "VM.RESTORE", f"VM {vm.name} restored from template {template.name}", resource=vm,
                      account=vm.account)
    vm.refresh_from_db()
    if was_running:
        vm = start(caller, vm)
    return vm


# -- the ISO drive (attachIso, detachIso) -------------------------------------------------------------
ISO_STATES = (VmState.RUNNING, VmState.STOPPED)


def _lock_for_iso(vm: VirtualMachine, what: str) -> VirtualMachine:
    """The VM's row, locked until the caller's transaction ends, in a state whose drive may change:
    a start or stop waits for the change (and then sees it), and two changes run one after the other."""
    locked = VirtualMachine.objects.select_for_update(of=("self",)).select_related(
        "host__cluster", "template", "iso").get(pk=vm.pk)
    if locked.state in BUSY_STATES:
        raise InvalidParameterValue(f"VM {vm.name} is busy: {locked.state}; try again when it is done")
    if locked.state not in ISO_STATES:
        raise InvalidParameterValue(f"Cannot {what} VM {vm.name}: it is {locked.state}; it must be "
                                    f"{' or '.join(ISO_STATES)}")
    return locked


def _change_media(caller, vm: VirtualMachine, cdrom: DiskSpec, what: str) -> None:
    """Change a running VM's ISO drive on its host; a failure is refused with the cause for root
    admins, and told to the others without host details (the cause goes to the alerts)."""
    driver = _driver_for(vm.host)
    try:
        with driver:
            driver.change_media(vm.instance_name, cdrom)
    except DriverNotFound:
        if vm.host.hypervisor != Hypervisor.SIMULATOR:  # the Simulator forgets domains between processes
            raise ResourceUnavailable(f"Cannot {what} VM {vm.name}: its domain is gone from its host; stop and start "
                                      f"it") from None
    except DriverError as exc:
        compute_services.raise_alert(AlertType.USERVM, "ALERT.USERVM", f"Cannot {what} VM {vm.name} "
                                     f"({vm.instance_name}) on host {vm.host.name}: {exc.message}", zone=vm.zone,
                                     pod=vm.pod)
        cause = exc.message if caller.account.type == 1 else \
            "the host could not change its CD-ROM (an administrator finds the cause in the alerts)"
        raise ResourceUnavailable(f"Cannot {what} VM {vm.name}: {cause}") from None


def attach_iso(caller, vm: VirtualMachine, iso, *, forced: bool = False) -> VirtualMachine:
    """attachIso: put an ISO the VM's owner may use, Ready in the VM's zone, into its CD-ROM drive:
    in the running guest at once, or from the next start of a stopped VM. A VM holds one ISO: a
    second one is refused unless `forced`, which replaces it."""
    from storage import services as storage_services
    from storage.models import Volume

    require_manage(caller, vm)
    if not iso.is_iso:
        raise InvalidParameterValue(f"{iso.name} is a template, not an ISO")
    check_image(vm.account, iso, vm.zone)
    what = f"attach ISO {iso.name} to"
    iso_copy = None
    if vm.state == VmState.RUNNING:  # copied to the VM's pool before the row is locked: it may take a while
        root = Volume.objects.select_related("pool").get(virtual_machine=vm, type="ROOT", removed__isnull=True)
        try:
            with _driver_for(vm.host) as driver:
                driver.ensure_pool(storage_services.pool_spec(root.pool))
                iso_copy = image_on_pool(driver, iso, root.pool)
        except DriverError as exc:
            raise ResourceUnavailable(f"Cannot {what} VM {vm.name}: {exc.message}") from None
    with transaction.atomic():
        locked = _lock_for_iso(vm, what)
        if locked.iso_id == iso.pk:
            raise InvalidParameterValue(f"ISO {iso.name} is attached to VM {vm.name} already")
        if locked.iso_id and not forced:
            raise InvalidParameterValue(f"VM {vm.name} has ISO {locked.iso.name} attached; detach it first "
                                        f"(detachIso), or pass forced=true to replace it")
        if locked.state == VmState.RUNNING:
            if iso_copy is None:  # it was started meanwhile: its pool needs the ISO too
                raise InvalidParameterValue(f"VM {vm.name} started meanwhile; attach the ISO again")
            _change_media(caller, locked, iso_drive(locked, iso_copy), what)
        VirtualMachine.objects.filter(pk=vm.pk).update(iso=iso)
        when = "" if locked.state == VmState.RUNNING else " (its CD-ROM drive has it from the next start)"
        events.record(caller, "ISO.ATTACH", f"ISO {iso.name} attached to VM {vm.name}{when}", resource=vm,
                      account=vm.account)
    vm.refresh_from_db()
    return vm


def detach_iso(caller, vm: VirtualMachine) -> VirtualMachine:
    """detachIso: empty the VM's CD-ROM drive (a running guest at once, a stopped VM from its next start)."""
    require_manage(caller, vm)
    with transaction.atomic():
        locked = _lock_for_iso(vm, "detach the ISO of")
        if locked.iso_id is None:
            raise InvalidParameterValue(f"VM {vm.name} has no ISO attached")
        if locked.state == VmState.RUNNING:
            _change_media(caller, locked, iso_drive(locked), f"detach ISO {locked.iso.name} from")
        VirtualMachine.objects.filter(pk=vm.pk).update(iso=None)
        events.record(caller, "ISO.DETACH", f"ISO {locked.iso.name} detached from VM {vm.name}", resource=vm,
                      account=vm.account)
    vm.refresh_from_db()
    return vm
