"""Offering UI forms. They check shape only (numbers are numbers, choices are choices, domains
are among those the caller sees); the rules (sizes, ranges, who may make what for which domain)
live in compute.offerings, whose sentences `add_service_error` puts next to the field they name."""
from __future__ import annotations

from typing import Any

from django import forms

from accounts.forms import ServiceForm

from .models import ProvisioningType, StorageType

SIZE_CHOICES = (("fixed", "Fixed size"), ("custom", "Chosen at deployment (customized)"))


class DomainsField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.display_path


def _int(label: str, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, help_text=help_text,
                              widget=forms.NumberInput(attrs={"inputmode": "numeric"}))


class OfferingForm(ServiceForm):
    """What both kinds share: name, text, order, domains, storage tags."""

    name = forms.CharField(label="Name", max_length=255)
    display_text = forms.CharField(label="Description", max_length=4096, required=False,
                                   help_text="Shown to users when they choose an offering.")
    sort_key = _int("Sort key", "Lower numbers are listed first.")
    domains = DomainsField(label="Domains", queryset=None, to_field_name="uuid", required=False,
                           help_text="Leave empty for a public offering (root admins only); otherwise the offering "
                                     "is for these domains and their sub-domains.")
    tags = forms.CharField(label="Storage tags", max_length=4096, required=False,
                           help_text="Comma-separated; the primary storage must carry them.")

    service_error_fields: tuple[tuple[str, str], ...] = (
        ("sortkey", "sort_key"), ("display text", "display_text"), ("name", "name"),
        ("may not create a public", "domains"), ("may only create", "domains"), ("may make a", "domains"),
    )

    def service_error_field(self, exc) -> str | None:
        """The field whose phrase comes first in the sentence ("leave cpunumber out (bound it with
        mincpunumber…)" is about cpunumber)."""
        text = exc.message.lower()
        found = [(text.find(phrase), index, field) for index, (phrase, field) in enumerate(self.service_error_fields)
                 if phrase in text and field in self.fields]
        return min(found)[2] if found else None

    def __init__(self, *args, domains=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["domains"].queryset = domains
        self.fields["domains"].widget.attrs["size"] = min(8, max(3, domains.count())) if domains is not None else 3


class ServiceOfferingEditForm(OfferingForm):
    host_tags = forms.CharField(label="Host tags", max_length=4096, required=False,
                                help_text="Comma-separated; VMs of this offering run only on hosts carrying them.")

    service_error_fields = OfferingForm.service_error_fields


class ServiceOfferingForm(ServiceOfferingEditForm):
    size = forms.ChoiceField(label="Size", choices=SIZE_CHOICES, initial="fixed", widget=forms.RadioSelect)
    cpu_number = _int("vCPUs", "Number of virtual CPUs (fixed size).")
    cpu_speed = _int("CPU speed (MHz)", "Per vCPU. Optional.")
    memory = _int("Memory (MiB)", "Fixed size.")
    min_cpu_number = _int("Minimum vCPUs", "Customized: bound the choice (give all four bounds, or none).")
    max_cpu_number = _int("Maximum vCPUs")
    min_memory = _int("Minimum memory (MiB)")
    max_memory = _int("Maximum memory (MiB)")
    root_disk_size = _int("Root disk size (GiB)", "Leave empty for the template's size.")
    storage_type = forms.ChoiceField(label="Storage type", choices=StorageType.choices, initial=StorageType.SHARED)
    provisioning_type = forms.ChoiceField(label="Provisioning", choices=ProvisioningType.choices,
                                          initial=ProvisioningType.THIN)
    offer_ha = forms.BooleanField(label="Offer high availability", required=False)
    limit_cpu_use = forms.BooleanField(label="Cap each vCPU at its speed", required=False)

    service_error_fields = (
        ("mincpunumber", "min_cpu_number"), ("maxcpunumber", "max_cpu_number"), ("minmemory", "min_memory"),
        ("maxmemory", "max_memory"), ("limitcpuuse", "limit_cpu_use"), ("cpunumber", "cpu_number"),
        ("cpuspeed", "cpu_speed"), ("memory", "memory"), ("rootdisksize", "root_disk_size"),
        ("storagetype", "storage_type"), ("provisioningtype", "provisioning_type"), ("system", "name"),
    ) + OfferingForm.service_error_fields

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"], "display_text": data["display_text"], "customized": data["size"] == "custom",
            "cpu_number": data["cpu_number"], "cpu_speed": data["cpu_speed"], "memory": data["memory"],
            "min_cpu_number": data["min_cpu_number"], "max_cpu_number": data["max_cpu_number"],
            "min_memory": data["min_memory"], "max_memory": data["max_memory"],
            "root_disk_size": data["root_disk_size"], "storage_type": data["storage_type"],
            "provisioning_type": data["provisioning_type"], "offer_ha": data["offer_ha"],
            "limit_cpu_use": data["limit_cpu_use"], "host_tags": data["host_tags"], "tags": data["tags"],
            "domains": list(data["domains"]), "sort_key": data["sort_key"],
        }


class DiskOfferingEditForm(OfferingForm):
    display_offering = forms.BooleanField(label="Shown to users", required=False, initial=True)


class DiskOfferingForm(DiskOfferingEditForm):
    size = forms.ChoiceField(label="Size", choices=(("fixed", "Fixed size"),
                                                    ("custom", "Chosen when the volume is created (customized)")),
                             initial="fixed", widget=forms.RadioSelect)
    disk_size = _int("Disk size (GiB)", "Fixed size.")
    storage_type = forms.ChoiceField(label="Storage type", choices=StorageType.choices, initial=StorageType.SHARED)
    provisioning_type = forms.ChoiceField(label="Provisioning", choices=ProvisioningType.choices,
                                          initial=ProvisioningType.THIN)

    service_error_fields = (("disksize", "disk_size"), ("customized", "disk_size"),
                            ("storagetype", "storage_type"), ("provisioningtype", "provisioning_type"),
                            ) + OfferingForm.service_error_fields

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"], "display_text": data["display_text"], "customized": data["size"] == "custom",
            "disk_size": data["disk_size"], "storage_type": data["storage_type"],
            "provisioning_type": data["provisioning_type"], "tags": data["tags"],
            "display_offering": data["display_offering"], "domains": list(data["domains"]),
            "sort_key": data["sort_key"],
        }
