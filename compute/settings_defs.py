"""Settings of the compute app (CloudStack's names where it has them)."""
from portal.config import Setting, define

define(Setting("ping.interval", "Advanced", "Integer", 60,
               "Seconds between pings of every host by the monitoring job.", minimum=5, maximum=3600))
define(Setting("ping.timeout", "Advanced", "Float", 2.5,
               "A host that has not answered for ping.interval x ping.timeout seconds goes to Alert "
               "(it is Disconnected from its first missed ping).", minimum=1.0, maximum=100.0))
define(Setting("host.kvm.probe.timeout", "Advanced", "Integer", 20,
               "Seconds the KVM probe guest may take before KVM is judged unusable on a host.", minimum=2, maximum=300))
define(Setting("guest.ip.range.max.size", "Advanced", "Integer", 65536,
               "Largest number of addresses one guest IP range may hold.", minimum=1, maximum=1048576))
define(Setting("vm.allocation.algorithm", "Advanced", "String", "firstfitleastconsumed",
               "How a host is chosen among those that fit a VM: firstfit (the first), firstfitleastconsumed (the "
               "least allocated: spreads load) or random.",
               choices=("firstfit", "firstfitleastconsumed", "random")))
define(Setting("allow.user.expunge.recover.vm", "Advanced", "Boolean", False,
               "Whether users (not only administrators) may expunge and recover their destroyed VMs.",
               scopes=("global", "account")))
