"""Instance UI forms. The deploy form offers, section by section, what the caller may deploy with
(zones it sees, templates and bootable ISOs Ready in the chosen zone, service and disk offerings
its account may use, its SSH key pairs) and turns the answers into deployVirtualMachine's
parameters. It checks shape only; the
rules (name syntax and uniqueness, capacity, limits, user data) live in compute.instances, whose
sentences `add_service_error` puts next to the field they are about."""
from __future__ import annotations

import base64
from typing import Any

from django import forms
from django.db.models import Case, Value, When

from accounts.forms import ServiceForm
from accounts.models import SSHKeyPair
from portal.errors import ApiError
from storage.models import DownloadState, ImageFormat, Template, TemplateZone

from .instances import USERDATA_POST_MAX
from .models import DiskOffering, GuestNetwork, ServiceOffering, VlanIpRange, Zone


def deploy_zones(caller):
    """Zones the caller may deploy into (a root admin also sees disabled ones)."""
    return Zone.objects.visible_to(caller).order_by("name", "id")


def ready_images(caller, zone: Zone | None):
    """Templates, then bootable ISOs, the caller may use that are Ready in `zone`."""
    if zone is None:
        return Template.objects.none()
    ready = TemplateZone.objects.filter(zone=zone, state=DownloadState.DOWNLOADED).values("template_id")
    isos_last = Case(When(format=ImageFormat.ISO, then=Value(1)), default=Value(0))
    return (Template.objects.visible_to(caller).filter(pk__in=ready).exclude(format=ImageFormat.ISO, bootable=False)
            .select_related("os_type").order_by(isos_last, "-is_featured", "name", "id"))


def deploy_disk_offerings(caller):
    """Disk offerings the caller's account may use that are shown to users."""
    return DiskOffering.objects.usable_by(caller.account).filter(display_offering=True).order_by("sort_key", "name",
                                                                                                 "id")


def disk_offering_label(offering: DiskOffering) -> str:
    if offering.customized:
        return f"{offering.name} — custom: choose {offering.min_size}–{offering.max_size} GiB"
    return f"{offering.name} — {offering.disk_size} GiB"


def deploy_offerings(caller):
    """Service offerings the caller's account may deploy with (system VMs' offerings left out)."""
    return ServiceOffering.objects.usable_by(caller.account).filter(is_system=False).order_by("sort_key", "name", "id")


def offering_label(offering: ServiceOffering) -> str:
    if offering.cpu_number and offering.memory:
        speed = f"{offering.cpu_speed / 1000:.2f} GHz" if (offering.cpu_speed or 0) >= 1000 else \
            f"{offering.cpu_speed or 0} MHz"
        return f"{offering.name} — {offering.cpu_number} vCPU × {speed}, {offering.memory} MiB"
    ranges = ""
    if offering.min_cpu_number is not None:
        ranges = (f" ({offering.min_cpu_number}–{offering.max_cpu_number} vCPUs, "
                  f"{offering.min_memory}–{offering.max_memory} MiB)")
    return f"{offering.name} — custom: choose vCPUs and memory{ranges}"


def template_label(template: Template) -> str:
    os_name = template.os_type.description if template.os_type_id else ""
    label = f"{template.name} — {os_name}" if os_name else template.name
    return ("ISO: " if template.is_iso else "") + label + (" (featured)" if template.is_featured else "")


def guest_network(zone: Zone | None) -> dict[str, Any] | None:
    """What the deploy form shows of a zone's guest network (read-only: a basic zone has one
    shared network; the VM gets an address of its guest IP ranges by DHCP). Nothing is written:
    the network row itself is made with the zone's first NIC."""
    if zone is None:
        return None
    ranges = list(VlanIpRange.objects.filter(zone=zone).order_by("id").values("gateway", "netmask", "start_ip",
                                                                              "end_ip"))
    network = GuestNetwork.objects.filter(zone=zone).first()
    return {"name": network.name if network else "guestNetworkForBasicZone", "zone": zone,
            "type": f"Shared, {zone.get_network_type_display().lower()} zone", "ranges": ranges}


class DeployForm(ServiceForm):
    """deployVirtualMachine from the UI, for the caller's own account."""

    service_error_fields = (  # the first phrase found names the field
        ("needs a disk offering", "disk_offering"),
        ("give size", "disk_size"),
        ("leave out size", "disk_size"),
        ("gib is outside the range", "disk_size"),
        ("disk offering", "disk_offering"),
        ("iso ", "template"),
        ("ssh key pair", "keypair"),
        ("keypair", "keypair"),
        ("user data", "user_data"),
        ("userdata", "user_data"),
        ("cpunumber", "cpu_number"),
        ("details[0].memory", "memory"),
        ("service offering", "offering"),
        ("serviceofferingid", "offering"),
        ("template", "template"),
        ("invalid name", "name"),
        ("a vm named", "name"),
        ("parameter name ", "name"),
        ("displayname", "display_name"),
        ("zoneid", "zone"),
        ("is disabled", "zone"),
    )

    zone = forms.ChoiceField(label="Zone")
    template = forms.ChoiceField(label="Template or ISO")
    offering = forms.ChoiceField(label="Service offering")
    cpu_number = forms.IntegerField(label="vCPUs", required=False, min_value=1, max_value=1024,
                                    help_text="Custom offerings only")
    memory = forms.IntegerField(label="Memory (MiB)", required=False, min_value=1, max_value=16 * 1024 * 1024,
                                help_text="Custom offerings only")
    disk_offering = forms.ChoiceField(label="Disk offering", required=False,
                                      help_text="With a template: a data disk besides the root disk (optional). "
                                                "With an ISO: the size of the blank disk it installs onto.")
    disk_size = forms.IntegerField(label="Disk size (GiB)", required=False, min_value=1, max_value=1024 * 1024,
                                   help_text="Custom disk offerings only")
    keypair = forms.ChoiceField(label="SSH key pair", required=False,
                                help_text="Its public key is put into the VM (cloud-init) at the first boot")
    user_data = forms.CharField(label="User data", required=False, strip=False,
                                widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false",
                                                             "placeholder": "#cloud-config"}),
                                help_text="Plain text, for example a #cloud-config document or a script; Nubo "
                                          "encodes it for you")
    name = forms.CharField(label="Name", required=False, max_length=63,
                           help_text="The VM's host name: letters, digits and hyphens, starting with a letter. "
                                     "Left empty, Nubo makes one up.",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    display_name = forms.CharField(label="Display name", required=False, max_length=255,
                                   help_text="Shown in lists; the name when left empty",
                                   widget=forms.TextInput(attrs={"autocomplete": "off"}))

    def __init__(self, *args, caller, **kwargs):
        super().__init__(*args, **kwargs)
        self.caller = caller
        self.zones = list(deploy_zones(caller))
        wanted = (self.data.get("zone") if self.is_bound else self.initial.get("zone")) or ""
        self.current_zone = next((z for z in self.zones if str(z.uuid) == wanted), None)
        if self.current_zone is None and not self.is_bound:
            self.current_zone = self._default_zone()
        self.templates = list(ready_images(caller, self.current_zone))
        self.offerings = list(deploy_offerings(caller))
        self.disk_offerings = list(deploy_disk_offerings(caller))
        self.keypairs = list(SSHKeyPair.objects.filter(account=caller.account).order_by("name", "id"))
        self.fields["zone"].choices = [(str(z.uuid), z.name + ("" if z.allocation_state == "Enabled" else
                                                                " (disabled)")) for z in self.zones]
        self.fields["template"].choices = [(str(t.uuid), template_label(t)) for t in self.templates]
        self.fields["offering"].choices = [(str(o.uuid), offering_label(o)) for o in self.offerings]
        self.fields["disk_offering"].choices = [("", "None (no data disk)")] + [
            (str(o.uuid), disk_offering_label(o)) for o in self.disk_offerings]
        self.fields["keypair"].choices = [("", "No key pair")] + [(k.name, k.name) for k in self.keypairs]
        if self.current_zone is not None and not self.is_bound:
            self.initial["zone"] = str(self.current_zone.uuid)
        self.network = guest_network(self.current_zone)

    @property
    def has_custom(self) -> bool:
        """Does the caller have a custom offering (vCPUs and memory chosen at deployment)?"""
        return any(not (o.cpu_number and o.memory) for o in self.offerings)

    @property
    def has_custom_disk(self) -> bool:
        return any(o.customized for o in self.disk_offerings)

    def _default_zone(self) -> Zone | None:
        """The first zone with a template or ISO the caller may deploy; else the first zone."""
        for zone in self.zones:
            if ready_images(self.caller, zone).exists():
                return zone
        return self.zones[0] if self.zones else None

    # -- checks of shape ----------------------------------------------------------------------
    def clean_user_data(self) -> str:
        # Browsers send a text area's line breaks as CRLF: a script's "#!/bin/sh\r" would not run.
        text = self.cleaned_data["user_data"].replace("\r\n", "\n")
        encoded = len(base64.b64encode(text.encode()))
        if encoded > USERDATA_POST_MAX:
            raise forms.ValidationError(f"User data is too long: {encoded} bytes once encoded (base64), at most "
                                        f"{USERDATA_POST_MAX}")
        return text

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        offering = self.chosen_offering()
        if offering is not None and not (offering.cpu_number and offering.memory):
            for name, what in (("cpu_number", "the number of vCPUs"), ("memory", "the memory")):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, f"Service offering {offering.name} is custom: give {what}")
        template, disk_offering = self.chosen_template(), self.chosen_disk_offering()
        if template is not None and template.is_iso and disk_offering is None and "disk_offering" not in self.errors:
            self.add_error("disk_offering", f"ISO {template.name} installs onto a blank disk: choose its disk offering")
        if disk_offering is not None and disk_offering.customized and data.get("disk_size") is None \
                and "disk_size" not in self.errors:
            self.add_error("disk_size", f"Disk offering {disk_offering.name} is custom: give the size")
        return data

    def service_error_field(self, exc: ApiError) -> str | None:
        if exc.message.lower().startswith("memory "):  # "memory 99 is outside the range … of service offering"
            return "memory"
        return super().service_error_field(exc)

    # -- what was chosen ----------------------------------------------------------------------
    def _chosen(self, rows, name: str):
        value = (self.cleaned_data.get(name) if hasattr(self, "cleaned_data") else None) or self.data.get(name)
        return next((row for row in rows if str(row.uuid) == value), None)

    def chosen_offering(self) -> ServiceOffering | None:
        return self._chosen(self.offerings, "offering")

    def chosen_template(self) -> Template | None:
        return self._chosen(self.templates, "template")

    def chosen_disk_offering(self) -> DiskOffering | None:
        return self._chosen(self.disk_offerings, "disk_offering")

    def api_data(self) -> dict[str, str]:
        """The raw parameters of deployVirtualMachine, as a client would send them."""
        data = self.cleaned_data
        raw = {"zoneid": data["zone"], "templateid": data["template"], "serviceofferingid": data["offering"]}
        if data["name"].strip():
            raw["name"] = data["name"].strip()
        if data["display_name"].strip():
            raw["displayname"] = data["display_name"].strip()
        if data["keypair"]:
            raw["keypair"] = data["keypair"]
        if data["user_data"]:
            raw["userdata"] = base64.b64encode(data["user_data"].encode()).decode()
        offering = self.chosen_offering()
        if offering is not None and not (offering.cpu_number and offering.memory):
            raw["details[0].cpuNumber"] = str(data["cpu_number"])
            raw["details[0].memory"] = str(data["memory"])
        disk_offering = self.chosen_disk_offering()
        if disk_offering is not None:
            raw["diskofferingid"] = str(disk_offering.uuid)
            if disk_offering.customized:
                raw["size"] = str(data["disk_size"])
        return raw

    def review_rows(self) -> list[tuple[str, str]]:
        """What the review shows, in the order of the sections."""
        data = self.cleaned_data
        offering, template = self.chosen_offering(), self.chosen_template()
        sizes = offering_label(offering) if offering else "—"
        if offering is not None and not (offering.cpu_number and offering.memory):
            sizes = f"{offering.name} — {data['cpu_number']} vCPU, {data['memory']} MiB"
        user_data = data["user_data"]
        lines = user_data.count("\n") + (0 if user_data.endswith("\n") else 1) if user_data else 0
        return [
            ("Zone", self.current_zone.name if self.current_zone else "—"),
            ("ISO" if template and template.is_iso else "Template", template_label(template) if template else "—"),
            ("Service offering", sizes),
            ("Disk", self._disk_text(template)),
            ("Network", f"{self.network['name']} ({self.network['type']})" if self.network else "—"),
            ("SSH key pair", data["keypair"] or "None"),
            ("User data", f"{lines} line{'s' if lines != 1 else ''}, {len(user_data.encode())} bytes"
             if user_data else "None"),
            ("Name", data["name"].strip() or "Made up by Nubo (VM-…)"),
            ("Display name", data["display_name"].strip() or "The name"),
        ]


    def _disk_text(self, template: Template | None) -> str:
        disk_offering = self.chosen_disk_offering()
        size = ""
        if disk_offering is not None:
            gib = self.cleaned_data.get("disk_size") if disk_offering.customized else disk_offering.disk_size
            size = f"{gib} GiB (disk offering {disk_offering.name})"
        if template is not None and template.is_iso:
            return f"A blank {size} root disk; the VM boots from the ISO to install onto it"
        root = "The template's root disk" + (f" ({_gib(template.size)})" if template and template.size else "")
        return root + (f", and a blank {size} data disk" if size else "")


def _gib(size: int) -> str:
    from .views import format_bytes

    return format_bytes(size)
