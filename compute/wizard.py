"""The basic-installation wizard's back end: one use case, `setup_basic_zone`, that turns the
wizard's answers into a working zone (zone → pod → guest IP range → cluster → host → primary
storage → secondary storage → enable), and the async API command `setupBasicZone` that runs it
as one job with per-step progress.

Each step calls the one service function that owns it (compute.services, storage.services), so
the rules and events are those of the individual commands. The steps cannot share one database
transaction (adding a host and its storage pools acts on the host), so a failure is undone by
compensation: the objects created so far are deleted in reverse order, and the error names the
failing step and its cause. Nothing half-made is left behind."""
from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from rest_framework import serializers

from accounts.access import ADMIN_ONLY
from portal import events
from portal.api import params as P
from portal.api.registry import Command, register
from portal.errors import ApiError, InternalError

from . import services
from .choices import AllocationState, Hypervisor
from .models import Zone
from .responses import ZoneResponse

log = logging.getLogger(__name__)

DEFAULT_HOST_URL = "qemu:///system"
DEFAULT_PRIMARY_URL = "file:///var/lib/nubo/primary"
DEFAULT_SECONDARY_URL = "file:///var/lib/nubo/secondary"


@dataclass(frozen=True)
class Step:
    key: str
    title: str


STEPS: tuple[Step, ...] = (
    Step("zone", "Create the zone"),
    Step("pod", "Create the pod"),
    Step("range", "Create the guest IP range"),
    Step("cluster", "Add the cluster"),
    Step("host", "Add the host"),
    Step("primary", "Add primary storage"),
    Step("secondary", "Add secondary storage"),
    Step("enable", "Enable the zone"),
)
PROGRESS_RE = re.compile(r"^Step (\d+) of \d+: ")


def step_percent(index: int) -> int:
    """Progress (percent) reported when step `index` (0-based) starts."""
    return index * 100 // len(STEPS)


def progress_text(index: int, detail: str) -> str:
    return f"Step {index + 1} of {len(STEPS)}: {detail}"


def step_index(text: str) -> int | None:
    """The 0-based step a job's progress text names (None before the first step). The job row
    keeps its progress text when it fails, so this also names the failing step."""
    match = PROGRESS_RE.match(text or "")
    if not match:
        return None
    index = int(match.group(1)) - 1
    return index if 0 <= index < len(STEPS) else None


@dataclass(frozen=True)
class BasicZoneSpec:
    """Everything the wizard asks, as plain strings."""

    zone_name: str
    dns1: str
    internal_dns1: str
    pod_name: str
    pod_gateway: str
    pod_netmask: str
    pod_start_ip: str
    pod_end_ip: str
    guest_gateway: str
    guest_netmask: str
    guest_start_ip: str
    guest_end_ip: str
    cluster_name: str
    hypervisor: str
    host_url: str
    primary_name: str
    primary_url: str
    secondary_url: str
    host_username: str = ""
    host_password: str = ""
    secondary_name: str = ""

    # API parameter name of each field (setupBasicZone's parameters)
    PARAMS = {
        "zone_name": "name", "dns1": "dns1", "internal_dns1": "internaldns1",
        "pod_name": "podname", "pod_gateway": "podgateway", "pod_netmask": "podnetmask",
        "pod_start_ip": "podstartip", "pod_end_ip": "podendip",
        "guest_gateway": "guestgateway", "guest_netmask": "guestnetmask", "guest_start_ip": "gueststartip",
        "guest_end_ip": "guestendip", "cluster_name": "clustername", "hypervisor": "hypervisor",
        "host_url": "url", "host_username": "username", "host_password": "password",
        "primary_name": "primaryname", "primary_url": "primaryurl",
        "secondary_url": "secondaryurl", "secondary_name": "secondaryname",
    }

    def as_params(self) -> dict[str, str]:
        """The raw parameters of setupBasicZone (what the async job row stores); empty optional
        values are left out."""
        return {self.PARAMS[name]: value for name, value in asdict(self).items() if value not in ("", None)}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "BasicZoneSpec":
        values = {f.name: params.get(cls.PARAMS[f.name]) for f in fields(cls)}
        return cls(**{name: ("" if value is None else str(value)) for name, value in values.items()})


# -- the use case -------------------------------------------------------------------------------
def _storage():
    from storage import services as storage_services

    return storage_services


Progress = Callable[[int, str], None]


def setup_basic_zone(caller, spec: BasicZoneSpec, progress: Progress | None = None) -> Zone:
    """Create and enable a basic zone with one pod, guest IP range, cluster, host, primary and
    secondary storage. Raises ApiError naming the failing step after undoing what it created."""
    services.require_root_admin(caller, "set up zones")
    report = progress or (lambda percent, text: None)
    undo: list[tuple[str, Callable[[], None]]] = []  # (what, how), in creation order
    current = 0

    def start(index: int, detail: str) -> None:
        nonlocal current
        current = index
        report(step_percent(index), progress_text(index, detail))

    try:
        start(0, f"creating zone {spec.zone_name}")
        zone = services.create_zone(caller, name=spec.zone_name, dns1=spec.dns1, internal_dns1=spec.internal_dns1,
                                    allocation_state=AllocationState.DISABLED)
        undo.append((f"zone {zone.name}", lambda: services.delete_zone(caller, zone)))

        start(1, f"creating pod {spec.pod_name}")
        pod = services.create_pod(caller, zone=zone, name=spec.pod_name, gateway=spec.pod_gateway,
                                  netmask=spec.pod_netmask, start_ip=spec.pod_start_ip or None,
                                  end_ip=spec.pod_end_ip or None)
        undo.append((f"pod {pod.name}", lambda: services.delete_pod(caller, pod)))

        start(2, f"creating guest IP range {spec.guest_start_ip}-{spec.guest_end_ip}")
        ip_range = services.create_vlan_ip_range(caller, pod=pod, gateway=spec.guest_gateway,
                                                 netmask=spec.guest_netmask, start_ip=spec.guest_start_ip,
                                                 end_ip=spec.guest_end_ip or None)
        undo.append((f"guest IP range {ip_range.start_ip}-{ip_range.end_ip}",
                     lambda: services.delete_vlan_ip_range(caller, ip_range)))

        start(3, f"adding {spec.hypervisor} cluster {spec.cluster_name}")
        cluster = services.add_cluster(caller, zone=zone, pod=pod, name=spec.cluster_name, hypervisor=spec.hypervisor)
        undo.append((f"cluster {cluster.name}", lambda: services.delete_cluster(caller, cluster)))

        start(4, f"adding host {spec.host_url}")
        host = services.add_host(caller, zone=zone, pod=pod, cluster=cluster, url=spec.host_url,
                                 username=spec.host_username, password=spec.host_password)
        undo.append((f"host {host.name}", lambda: services.delete_host(caller, host, forced=True)))

        start(5, f"adding primary storage {spec.primary_name} ({spec.primary_url})")
        storage = _storage()
        pool = storage.create_storage_pool(caller, zone=zone, pod=pod, cluster=cluster, name=spec.primary_name,
                                           url=spec.primary_url, scope="cluster", tags="")
        undo.append((f"primary storage {pool.name}", lambda: storage.delete_storage_pool(caller, pool)))

        start(6, f"adding secondary storage {spec.secondary_url}")
        store = storage.add_image_store(caller, url=spec.secondary_url, zone=zone,
                                        name=spec.secondary_name or f"{zone.name}-secondary")
        undo.append((f"secondary storage {store.name}", lambda: storage.delete_image_store(caller, store)))

        start(7, f"enabling zone {zone.name}")
        zone = services.update_zone(caller, zone, allocation_state=AllocationState.ENABLED)
    except Exception as exc:  # noqa: BLE001 - whatever failed, undo and say which step
        if isinstance(exc, ApiError):
            error_class, cause = type(exc), exc.message
            codes = {"errorcode": exc.errorcode, "cserrorcode": exc.cserrorcode}
        else:
            log.exception("setupBasicZone: step %s crashed", STEPS[current].key)
            error_class, cause, codes = InternalError, "internal error (see the management server log)", {}
        left = _undo(undo)
        # The same error class and codes as the cause (431 for a bad value, 534 for an unreachable host…).
        raise error_class(_failure_sentence(current, cause, [what for what, _ in undo], left), **codes) from exc
    events.record(caller, "ZONE.SETUP", f"Zone {zone.name} set up with pod {pod.name}, cluster {cluster.name}, "
                                        f"host {host.name}, primary storage {pool.name} and secondary storage "
                                        f"{store.name}", resource=zone)
    report(100, f"Zone {zone.name} is enabled")
    return zone


def _undo(undo: list[tuple[str, Callable[[], None]]]) -> list[str]:
    """Delete what was created, newest first; returns what could not be deleted, with why."""
    left: list[str] = []
    for what, action in reversed(undo):
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - keep undoing the rest
            reason = exc.message if isinstance(exc, ApiError) else "internal error"
            log.warning("setupBasicZone: could not remove %s: %s", what, reason, exc_info=not isinstance(exc, ApiError))
            left.append(f"{what} ({reason})")
    return left


def _failure_sentence(index: int, cause: str, created: list[str], left: list[str]) -> str:
    step = STEPS[index]
    cause = cause.strip()
    text = f"Step {index + 1} of {len(STEPS)} ({step.title.lower()}) failed: {cause}"
    text += "" if cause.endswith((".", "?", "!")) else "."
    if left:
        text += f" Could not remove {', '.join(left)}; delete it by hand."
    elif created:
        text += f" Removed what this setup had created ({', '.join(reversed(created))})."
    return text


# -- the API command ------------------------------------------------------------------------------
class SetupBasicZoneParams(serializers.Serializer):
    name = P.String(required=True, help_text="the name of the Zone")
    dns1 = P.String(required=True, help_text="the first DNS for the Zone")
    internaldns1 = P.String(required=True, help_text="the first internal DNS for the Zone")
    podname = P.String(required=True, help_text="the name of the Pod")
    podgateway = P.String(required=True, help_text="the gateway for the Pod")
    podnetmask = P.String(required=True, help_text="the netmask for the Pod")
    podstartip = P.String(help_text="the starting IP address of the Pod's reserved range")
    podendip = P.String(help_text="the ending IP address of the Pod's reserved range")
    guestgateway = P.String(required=True, help_text="the gateway of the guest IP range")
    guestnetmask = P.String(required=True, help_text="the netmask of the guest IP range")
    gueststartip = P.String(required=True, help_text="the first address of the guest IP range")
    guestendip = P.String(help_text="the last address of the guest IP range")
    clustername = P.String(required=True, help_text="the cluster name")
    hypervisor = P.String(required=True, help_text="hypervisor type of the cluster: KVM or Simulator")
    url = P.String(required=True, max_length=1024, help_text="the host URL: a libvirt URI such as qemu:///system, "
                                                             "or a Simulator host name such as http://sim/c1/h1")
    username = P.String(help_text="the username for the host")
    password = P.Password(help_text="the password for the host")
    primaryname = P.String(required=True, help_text="the name of the primary storage")
    primaryurl = P.String(required=True, max_length=1024, help_text="the primary storage URL: nfs://server/path "
                                                                    "or file:///path")
    secondaryurl = P.String(required=True, max_length=1024, help_text="the secondary storage URL: "
                                                                      "nfs://server/path or file:///path")
    secondaryname = P.String(help_text="the name of the secondary storage (default: <zone name>-secondary)")

    IPV4_PARAMS = ("dns1", "internaldns1", "podgateway", "podnetmask", "podstartip", "podendip", "guestgateway",
                   "guestnetmask", "gueststartip", "guestendip")

    def validate(self, attrs):
        """Shapes are checked before the job is queued (431 at once); the rules between values
        (ranges inside networks, names not taken…) are the services' and fail the job's step."""
        for name in self.IPV4_PARAMS:
            value = attrs.get(name)
            if value:
                try:
                    ipaddress.IPv4Address(value.strip())
                except ValueError:
                    raise serializers.ValidationError(
                        f"Invalid parameter {name} value={value}: not an IPv4 address such as 192.168.1.10") from None
        hypervisor = attrs.get("hypervisor", "")
        if hypervisor.lower() not in {h.lower() for h in Hypervisor.values}:
            raise serializers.ValidationError(f"Invalid parameter hypervisor value={hypervisor}: use KVM or Simulator")
        return attrs


@register
class SetupBasicZone(Command):
    name = "setupBasicZone"
    description = ("Sets up a basic zone in one job: creates the zone (disabled), a pod, a guest IP range, a "
                   "cluster, adds a host, primary and secondary storage, then enables the zone. On failure "
                   "it removes what it created and names the failing step.")
    Params = SetupBasicZoneParams
    response = ZoneResponse
    kind = "object"
    roles = ADMIN_ONLY
    is_async = True
    event = "ZONE.SETUP"
    instance_type = "Zone"

    def instance_of(self, params):
        return None  # the zone does not exist yet; the job's result names it

    def execute(self, params):
        self._forget_password()
        return setup_basic_zone(self.caller, BasicZoneSpec.from_params(params), progress=self.job_progress)

    def _forget_password(self) -> None:
        """The job row keeps its parameters for queryAsyncJobResult; the host password is needed
        only by this run, so it is removed from the row as soon as the job starts."""
        if self.job is not None and "password" in (self.job.params or {}):
            from portal.models import AsyncJob

            kept = {key: value for key, value in self.job.params.items() if key != "password"}
            AsyncJob.objects.filter(pk=self.job.pk).update(params=kept)
