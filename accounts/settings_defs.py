"""Settings of the tenancy app: the default resource limits of accounts and domains (CloudStack's
names and defaults). max.account.secondary.storage is defined by the storage app."""
from portal.config import Setting, define

_ACCOUNT_DEFAULTS = (
    ("max.account.user.vms", 20, "number of user VMs that can be deployed for an account"),
    ("max.account.public.ips", 20, "number of public IPs that can be consumed by an account"),
    ("max.account.templates", 20, "number of templates and ISOs that can be registered by an account"),
    ("max.account.snapshots", 20, "number of snapshots that can be created for an account"),
    ("max.account.volumes", 20, "number of volumes that can be created for an account"),
    ("max.account.projects", 10, "number of projects an account can own"),
    ("max.account.networks", 20, "number of networks that can be created for an account"),
    ("max.account.vpcs", 20, "number of VPCs that can be created for an account"),
    ("max.account.cpus", 40, "number of CPU cores that can be used by an account"),
    ("max.account.memory", 40960, "amount of memory (MiB) that can be used by an account"),
    ("max.account.primary.storage", 200, "amount of primary storage space (GiB) that can be used by an account"),
)

_DOMAIN_DEFAULTS = (
    ("max.domain.user.vms", 40, "number of user VMs that can be deployed for a domain"),
    ("max.domain.public.ips", 40, "number of public IPs that can be consumed by a domain"),
    ("max.domain.templates", 40, "number of templates and ISOs that can be registered in a domain"),
    ("max.domain.snapshots", 40, "number of snapshots that can be created for a domain"),
    ("max.domain.volumes", 40, "number of volumes that can be created for a domain"),
    ("max.domain.projects", 50, "number of projects that can be created in a domain"),
    ("max.domain.networks", 40, "number of networks that can be created for a domain"),
    ("max.domain.vpcs", 40, "number of VPCs that can be created for a domain"),
    ("max.domain.cpus", 80, "number of CPU cores that can be used by a domain"),
    ("max.domain.memory", 81920, "amount of memory (MiB) that can be used by a domain"),
    ("max.domain.primary.storage", 400, "amount of primary storage space (GiB) that can be used by a domain"),
    ("max.domain.secondary.storage", 800, "amount of secondary storage space (GiB) that can be used by a domain"),
)

for _name, _default, _what in _ACCOUNT_DEFAULTS:
    define(Setting(_name, "Account Defaults", "Integer", _default,
                   f"The default maximum {_what} without its own limit (updateResourceLimit); "
                   f"-1 for no limit.", scopes=("global", "account"), minimum=-1))

for _name, _default, _what in _DOMAIN_DEFAULTS:
    define(Setting(_name, "Domain Defaults", "Integer", _default,
                   f"The default maximum {_what}, all its accounts and sub-domains together, when "
                   f"neither the domain nor a parent domain has its own limit; -1 for no limit.", minimum=-1))
