"""Infrastructure UI forms: the basic-installation wizard's steps and the small forms of the
detail pages.

The wizard's forms check each answer where it is typed (addresses, netmasks, ranges inside the
network, start before end, the gateway outside the range, names and urls not yet taken), so the
operator fixes mistakes step by step; compute.services checks the same rules again when the
setup job runs."""
from __future__ import annotations

import ipaddress
from typing import Any

from django import forms

from accounts.forms import ServiceForm
from portal import config
from portal.errors import ApiError
from portal.ui import is_uuid

from .choices import Emulation, Hypervisor
from .drivers import DriverError, libvirt_uri
from .models import Host, Zone
from .wizard import DEFAULT_HOST_URL, DEFAULT_PRIMARY_URL, DEFAULT_SECONDARY_URL


def _ipv4_field(label: str, *, required: bool = True, help_text: str = "", placeholder: str = "") -> forms.Field:
    return forms.GenericIPAddressField(
        label=label, protocol="IPv4", required=required, help_text=help_text,
        error_messages={"invalid": "Enter an IPv4 address such as 192.168.1.10"},
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "spellcheck": "false",
                                      **({"placeholder": placeholder} if placeholder else {})}))


def _name_field(label: str, **kwargs) -> forms.CharField:
    return forms.CharField(label=label, max_length=255, widget=forms.TextInput(attrs={"autocomplete": "off"}),
                           **kwargs)


def _url_field(label: str, help_text: str, **kwargs) -> forms.CharField:
    return forms.CharField(label=label, max_length=1024, help_text=help_text,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}), **kwargs)


class NetworkFields(forms.Form):
    """gateway + netmask + start/end IP, checked together: the netmask is a real netmask, the
    addresses lie inside the network, start ≤ end, and the gateway lies outside the range."""

    range_name = "range"  # how messages name the start–end range
    gateway = _ipv4_field("Gateway", placeholder="192.168.1.1")
    netmask = _ipv4_field("Netmask", placeholder="255.255.255.0")
    start_ip = _ipv4_field("Start IP")
    end_ip = _ipv4_field("End IP")

    def network(self) -> ipaddress.IPv4Network | None:
        data = self.cleaned_data
        gateway, netmask = data.get("gateway"), data.get("netmask")
        if not gateway or not netmask:
            return None
        try:
            network = ipaddress.IPv4Network(f"{gateway}/{netmask}", strict=False)
        except ValueError:
            self.add_error("netmask", f"{netmask} is not a netmask; use one such as 255.255.255.0")
            return None
        if network.prefixlen > 30:
            self.add_error("netmask", f"The netmask {netmask} leaves no room for addresses; use /30 "
                                      "(255.255.255.252) or larger")
            return None
        if ipaddress.IPv4Address(gateway) in (network.network_address, network.broadcast_address):
            self.add_error("gateway", f"{gateway} is the network or broadcast address of {network}")
            return None
        return network

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        network = self.network()
        if network is None:
            return data
        addresses = {}
        for field in ("start_ip", "end_ip"):
            value = data.get(field)
            if not value:
                continue
            address = ipaddress.IPv4Address(value)
            if address not in network:
                self.add_error(field, f"{address} is outside the network {network} given by the gateway and netmask")
            elif address in (network.network_address, network.broadcast_address):
                self.add_error(field, f"{address} is the network or broadcast address of {network}")
            else:
                addresses[field] = address
        first, last = addresses.get("start_ip"), addresses.get("end_ip") or addresses.get("start_ip")
        if first is not None and last is not None and "end_ip" not in self.errors:
            if last < first:
                self.add_error("end_ip", f"The end IP {last} comes before the start IP {first}")
            elif first <= ipaddress.IPv4Address(data["gateway"]) <= last:
                self.add_error("gateway", f"The gateway {data['gateway']} lies inside the {self.range_name} "
                                          f"{first}–{last}; leave it out of the range")
        return data

    def address_range(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
        data = self.cleaned_data
        if not data.get("start_ip"):
            return None
        start = ipaddress.IPv4Address(data["start_ip"])
        return start, ipaddress.IPv4Address(data.get("end_ip") or data["start_ip"])


# -- wizard steps --------------------------------------------------------------------------------
class WizardStepForm(forms.Form):
    """A wizard step. `answers` holds the cleaned data of the steps before it (as strings)."""

    def __init__(self, *args, answers: dict[str, dict[str, str]] | None = None, **kwargs):
        self.answers = answers or {}
        super().__init__(*args, **kwargs)

    def stored(self) -> dict[str, str]:
        """What the session keeps for this step (all strings)."""
        return {name: "" if value is None else str(value) for name, value in self.cleaned_data.items()}


class ZoneStepForm(WizardStepForm):
    name = _name_field("Zone name", help_text="For example zone1 or paris-1")
    dns1 = _ipv4_field("DNS 1", help_text="Public DNS server that guests use, e.g. 9.9.9.9")
    internal_dns1 = _ipv4_field("Internal DNS 1", help_text="DNS server for the management network")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the zone a name")
        if Zone.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(f"A zone named {name} already exists")
        return name


class PodStepForm(NetworkFields, WizardStepForm):
    range_name = "reserved range"
    name = _name_field("Pod name", initial="pod1")
    gateway = _ipv4_field("Gateway", placeholder="192.168.1.1",
                          help_text="Gateway of the management network of the pod's hosts")
    netmask = _ipv4_field("Netmask", placeholder="255.255.255.0")
    start_ip = _ipv4_field("Reserved start IP", help_text="First address reserved for the management of this pod")
    end_ip = _ipv4_field("Reserved end IP", required=False, help_text="Leave empty to reserve the start IP only")
    field_order = ["name", "gateway", "netmask", "start_ip", "end_ip"]


class GuestRangeStepForm(NetworkFields, WizardStepForm):
    range_name = "guest IP range"
    gateway = _ipv4_field("Guest gateway", placeholder="192.168.1.1")
    netmask = _ipv4_field("Guest netmask", placeholder="255.255.255.0")
    start_ip = _ipv4_field("Guest start IP", help_text="First address given to guests")
    end_ip = _ipv4_field("Guest end IP", help_text="Last address given to guests")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        pod = self.answers.get("pod") or {}
        # In a basic zone guests usually share the pod's network: start from its gateway and netmask.
        for field in ("gateway", "netmask"):
            if pod.get(field):
                self.fields[field].initial = pod[field]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        guest = self.address_range() if not ({"start_ip", "end_ip"} & set(self.errors)) else None
        if guest is None:
            return data
        size = int(guest[1]) - int(guest[0]) + 1
        limit = config.get_value("guest.ip.range.max.size")
        if size > limit:
            self.add_error("end_ip", f"The range holds {size} addresses; at most {limit} are allowed "
                                     "(setting guest.ip.range.max.size)")
        pod = self.answers.get("pod") or {}
        if pod.get("start_ip"):
            reserved = (ipaddress.IPv4Address(pod["start_ip"]),
                        ipaddress.IPv4Address(pod.get("end_ip") or pod["start_ip"]))
            if int(guest[0]) <= int(reserved[1]) and int(reserved[0]) <= int(guest[1]):
                self.add_error("start_ip", f"The guest range {guest[0]}–{guest[1]} overlaps the pod's reserved range "
                                           f"{reserved[0]}–{reserved[1]}")
        return data


class ClusterStepForm(WizardStepForm):
    name = _name_field("Cluster name", initial="cluster1")
    hypervisor = forms.ChoiceField(
        label="Hypervisor", initial=Hypervisor.KVM,
        choices=[(Hypervisor.KVM.value, "KVM"), (Hypervisor.SIMULATOR.value, "Simulator (no real guests; for tests)")],
        widget=forms.RadioSelect)


class HostStepForm(WizardStepForm):
    url = _url_field("Host URL", initial=DEFAULT_HOST_URL,
                     help_text="A libvirt URI: qemu:///system (this machine), qemu+ssh://root@host/system, "
                               "qemu+tls://host/system, or a host name. Simulator hosts: a name such as "
                               "http://sim/c1/h1")
    username = forms.CharField(label="Username", max_length=255, required=False,
                               help_text="Optional: only if libvirt asks for credentials",
                               widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = forms.CharField(label="Password", max_length=255, required=False, strip=False,
                               help_text="Optional. Not shown again; leave empty to keep one entered before",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        hypervisor = (self.answers.get("cluster") or {}).get("hypervisor", Hypervisor.KVM)
        if hypervisor == Hypervisor.KVM:
            if url.startswith("test:"):
                raise forms.ValidationError("test:/// URIs are for Simulator clusters; this cluster is KVM")
            try:
                libvirt_uri(url)
            except DriverError as exc:
                raise forms.ValidationError(exc.message) from None
        if Host.objects.filter(url=url).exists():
            raise forms.ValidationError(f"A host with URL {url} is already added")
        return url


def _storage_url(value: str, what: str) -> str:
    """The url normalised by the storage service's own parser (the rules addImageStore and
    createStoragePool apply), or its sentence as the field's error."""
    from storage.services import parse_storage_url

    try:
        return parse_storage_url(value, what).url
    except ApiError as exc:
        raise forms.ValidationError(exc.message) from None


class PrimaryStorageStepForm(WizardStepForm):
    name = _name_field("Primary storage name", initial="primary1")
    url = _url_field("Primary storage URL", initial=DEFAULT_PRIMARY_URL,
                     help_text="Where guest disks live: file:///path (a directory on the host) or nfs://server/path")

    def clean_url(self) -> str:
        return _storage_url(self.cleaned_data["url"], "primary storage")


class SecondaryStorageStepForm(WizardStepForm):
    url = _url_field("Secondary storage URL", initial=DEFAULT_SECONDARY_URL,
                     help_text="Where templates, ISOs and snapshots live: file:///path (on this management "
                               "server) or nfs://server/path")

    def clean_url(self) -> str:
        url = _storage_url(self.cleaned_data["url"], "secondary storage")
        from storage.models import ImageStore

        other = ImageStore.objects.filter(url=url).select_related("zone").first()
        if other is not None:
            raise forms.ValidationError(f"Secondary storage {other.name} of zone {other.zone.name} already uses {url}")
        return url


# -- detail pages ---------------------------------------------------------------------------------
class EmulationForm(ServiceForm):
    emulation = forms.ChoiceField(label="Guest emulation", choices=Emulation.choices,
                                  help_text="Automatic follows the KVM probe; override only if you know better")

    service_error_fields = (("emulation", "emulation"),)


class DeleteHostForm(forms.Form):
    forced = forms.BooleanField(label="Force, even if the host is Up and enabled", required=False)


class AlertSelectionForm(forms.Form):
    """Which alerts to archive or delete (the alerts page): those ticked, of a type, sent on or
    before a day — what is chosen combined, as archiveAlerts / deleteAlerts combine ids, type and
    enddate."""

    ids = forms.TypedMultipleChoiceField(required=False, coerce=str, choices=())
    type = forms.TypedChoiceField(label="Type", required=False, coerce=int, empty_value=None, choices=())
    before = forms.DateField(label="Sent on or before", required=False,
                             widget=forms.DateInput(attrs={"type": "date"}),
                             error_messages={"invalid": "Enter a day such as 2024-05-31"})

    def __init__(self, *args, alerts, types, **kwargs):
        super().__init__(*args, **kwargs)
        self.alerts = alerts
        ticked = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(uuid, uuid) for uuid in ticked if is_uuid(uuid)]
        self.fields["type"].choices = [("", "Any type")] + list(types)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and not (data.get("ids") or data.get("type") is not None or data.get("before")):
            raise forms.ValidationError("Tick alerts, or choose a type or a day, first.")
        return data

    def selection(self) -> dict[str, Any] | None:
        """The keyword arguments of compute.alerts.archive_alerts / delete_alerts; None when every
        ticked alert is gone already (nothing to do: never widen the choice to the other criteria)."""
        import datetime as dt

        data = self.cleaned_data
        chosen = list(self.alerts.filter(uuid__in=data["ids"])) if data["ids"] else None
        if data["ids"] and not chosen:
            return None
        day = data.get("before")
        end = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.timezone.utc) if day else None
        return {"alerts": chosen, "alert_type": data.get("type"), "end": end}

