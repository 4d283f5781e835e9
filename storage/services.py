"""Storage use cases. For now: the OS catalogue seeded at bootstrap."""
from __future__ import annotations

from django.db import transaction

from .models import OsCategory, OsType

OS_CATALOGUE: dict[str, list[str]] = {
    "CentOS": ["CentOS 7", "CentOS Stream 8", "CentOS Stream 9"],
    "Debian": ["Debian GNU/Linux 10 (64-bit)", "Debian GNU/Linux 11 (64-bit)", "Debian GNU/Linux 12 (64-bit)"],
    "Ubuntu": ["Ubuntu 20.04 LTS", "Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"],
    "RedHat": ["Red Hat Enterprise Linux 8", "Red Hat Enterprise Linux 9", "Rocky Linux 9", "AlmaLinux 9"],
    "SUSE": ["SUSE Linux Enterprise Server 15", "openSUSE Leap 15"],
    "Oracle": ["Oracle Linux 8", "Oracle Linux 9"],
    "FreeBSD": ["FreeBSD 13 (64-bit)", "FreeBSD 14 (64-bit)", "OpenBSD 7 (64-bit)", "NetBSD 10 (64-bit)"],
    "Windows": ["Windows Server 2019 (64-bit)", "Windows Server 2022 (64-bit)", "Windows 10 (64-bit)",
                "Windows 11 (64-bit)"],
    "Other": ["Other Linux (64-bit)", "Other Linux (32-bit)", "Other (64-bit)", "Other PV (64-bit)"],
}


@transaction.atomic
def seed_os_types() -> int:
    """Idempotent: create the OS categories and types that are missing. Returns how many types were added."""
    added = 0
    for category_name, types in OS_CATALOGUE.items():
        category, _ = OsCategory.objects.get_or_create(name=category_name)
        for description in types:
            _, created = OsType.objects.get_or_create(description=description, defaults={"category": category})
            added += int(created)
    return added


# -- primary storage (filled in by the storage-pool work; these are the hooks compute calls) ----
def connect_host_pools(host) -> None:
    """Create and start, on `host`, the libvirt pool of every primary storage of its cluster and
    of its zone. Raises ResourceUnavailable (and removes the pools it created) on failure."""


def disconnect_host_pools(host, *, forced: bool = False) -> None:
    """Stop and undefine this host's pools of Nubo's primary storage (files are kept)."""
