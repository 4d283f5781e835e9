"""Template and ISO UI forms. They check shape (required fields, lengths, choices among what the
caller may see); the rules themselves (URL allowed, checksum syntax, who may make an image
public or featured, quotas) live in storage.images.services, whose errors `add_service_error`
puts next to the field they are about."""
from __future__ import annotations

from django import forms

from accounts.forms import ServiceForm
from compute.models import Zone

from .models import OsType

ALL_ZONES = "-1"


class OsTypeField(forms.ModelChoiceField):
    def label_from_instance(self, obj: OsType) -> str:
        return obj.description


def registrable_zones(caller):
    """Zones the caller may see that have secondary storage: where an image can be registered."""
    return Zone.objects.visible_to(caller).filter(image_stores__isnull=False).distinct().order_by("name", "id")


class RegisterForm(ServiceForm):
    """registerTemplate / registerIso from the UI. `is_iso` swaps format and hypervisor for
    bootable; `featured` is offered to root admins only."""

    service_error_fields = (  # the first phrase found names the field ("url" first: a URL may say anything)
        ("url", "url"),
        ("checksum", "checksum"),
        ("featured", "is_featured"),
        ("public", "is_public"),
        ("secondary storage", "zone"),
        ("zoneid", "zone"),
        ("hypervisor", "hypervisor"),
        ("format", "format"),
        ("name", "name"),
    )

    name = forms.CharField(label="Name", max_length=255, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    display_text = forms.CharField(label="Description", max_length=4096, required=False,
                                   help_text="Shown with the name; the name when left empty",
                                   widget=forms.TextInput(attrs={"autocomplete": "off"}))
    url = forms.CharField(label="URL", max_length=2048,
                          help_text="Where the image is downloaded from: http:// or https://",
                          widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                                        "inputmode": "url", "placeholder": "https://"}))
    zone = forms.ChoiceField(label="Zone")
    format = forms.ChoiceField(label="Format", choices=[("QCOW2", "QCOW2"), ("RAW", "RAW")], initial="QCOW2")
    hypervisor = forms.ChoiceField(label="Hypervisor", choices=[("KVM", "KVM"), ("Simulator", "Simulator")],
                                   initial="KVM")
    bootable = forms.BooleanField(label="Bootable", required=False, initial=True)
    os_type = OsTypeField(label="OS type", queryset=OsType.objects.order_by("description"), required=False,
                          to_field_name="uuid", empty_label="Other Linux (64-bit) (default)")
    checksum = forms.CharField(label="Checksum", max_length=255, required=False,
                               help_text="Optional: {SHA-256}…, {MD5}… or bare hex; the download is checked against it",
                               widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    is_public = forms.BooleanField(label="Public: every account may use it", required=False)
    is_featured = forms.BooleanField(label="Featured", required=False)
    is_extractable = forms.BooleanField(label="Extractable: may be downloaded again", required=False)
    password_enabled = forms.BooleanField(label="Password enabled", required=False)
    sshkey_enabled = forms.BooleanField(label="SSH key enabled", required=False)

    def __init__(self, *args, caller, is_iso: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_iso = is_iso
        self.fields["zone"].choices = [(ALL_ZONES, "All zones")] + [
            (str(zone.uuid), zone.name) for zone in registrable_zones(caller)]
        if is_iso:
            for name in ("format", "hypervisor", "password_enabled", "sshkey_enabled"):
                del self.fields[name]
        else:
            del self.fields["bootable"]
        if not caller.account.is_root_admin:
            del self.fields["is_featured"]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = dict(is_iso=self.is_iso, name=data["name"], url=data["url"], zoneid=data["zone"],
                      display_text=data["display_text"], os_type=data["os_type"], checksum=data["checksum"],
                      is_public=data["is_public"], is_featured=data.get("is_featured", False),
                      is_extractable=data["is_extractable"])
        if self.is_iso:
            kwargs["bootable"] = data["bootable"]
        else:
            kwargs.update(format=data["format"], hypervisor=data["hypervisor"],
                          password_enabled=data["password_enabled"], sshkey_enabled=data["sshkey_enabled"])
        return kwargs


class CopyForm(forms.Form):
    """Copy to one zone: the zones the caller may see with secondary storage, not holding it yet."""

    zone = forms.ChoiceField(label="Destination zone")

    def __init__(self, *args, zones, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].choices = [(str(zone.uuid), zone.name) for zone in zones]


class VisibilityForm(forms.Form):
    """Public / featured (root admins) / extractable."""

    is_public = forms.BooleanField(label="Public: every account may use it", required=False)
    is_featured = forms.BooleanField(label="Featured", required=False)
    is_extractable = forms.BooleanField(label="Extractable: may be downloaded again", required=False)

    def __init__(self, *args, caller, **kwargs):
        super().__init__(*args, **kwargs)
        if not caller.account.is_root_admin:
            del self.fields["is_featured"]


class ShareForm(forms.Form):
    """Share with (add), stop sharing with (remove) accounts of the owner's domain, or reset."""

    op = forms.ChoiceField(choices=[("add", "add"), ("remove", "remove"), ("reset", "reset")])
    accounts = forms.CharField(label="Account names", max_length=4096, required=False,
                               help_text="Accounts of the owner's domain, separated by commas",
                               widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))

    def account_names(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data.get("accounts", "").split(",") if name.strip()]


class EditForm(ServiceForm):
    """updateTemplate / updateIso: what the image says about itself."""

    service_error_fields = (("name", "name"), ("format", "format"))

    name = forms.CharField(label="Name", max_length=255, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    display_text = forms.CharField(label="Description", max_length=4096, required=False,
                                   widget=forms.TextInput(attrs={"autocomplete": "off"}))
    os_type = OsTypeField(label="OS type", queryset=OsType.objects.order_by("description"), required=False,
                          to_field_name="uuid", empty_label="(unchanged)")
    bootable = forms.BooleanField(label="Bootable", required=False)
    password_enabled = forms.BooleanField(label="Password enabled", required=False)
    sshkey_enabled = forms.BooleanField(label="SSH key enabled", required=False)

    def __init__(self, *args, is_iso: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.is_iso = is_iso
        if is_iso:
            del self.fields["password_enabled"], self.fields["sshkey_enabled"]
        else:
            del self.fields["bootable"]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"name": data["name"], "display_text": data["display_text"] or data["name"],
                  "os_type": data["os_type"]}
        for field in ("bootable", "password_enabled", "sshkey_enabled"):
            if field in self.fields:
                kwargs[field] = data[field]
        return kwargs
