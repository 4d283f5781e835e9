"""Settings of the compute app (CloudStack's names where it has them)."""
from urllib.parse import urlsplit

from portal.config import Setting, define


def _console_url(value: str) -> None:
    if not value or value.startswith("/"):
        return
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("consoleproxy.url takes a path such as /client/console/websockify or a ws:// or wss:// "
                         f"URL, not {value!r}")


def _uplink(value: str) -> None:
    if value and (len(value) > 15 or not all(c.isascii() and (c.isalnum() or c in "._-@") for c in value)):
        raise ValueError(f"guest.network.uplink takes a network interface name such as eth1 (at most 15 letters, "
                         f"digits and . _ - @), not {value!r}")


define(Setting("guest.network.uplink", "Network", "String", "",
               "The network interface through which a zone's KVM hosts share one layer-2 segment for guests "
               "(the same name on every host, such as eth1 or bond0). Empty: each host keeps its guests on a "
               "private network of its own, NAT'd through the host (one-host zones, labs). Set: each host's "
               "guest network is bridge nuboz<zone> with this interface in it (Nubo's libvirt network hook "
               "enslaves it), the pod's gateway is the segment's router, and each host's DHCP server has an "
               "address of its own from the pod's range and answers only its own VMs. Applies to VMs started "
               "afterwards; see docs/networking.md.", scopes=("global", "zone"), validator=_uplink))
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
define(Setting("console.token.ttl", "Console Proxy", "Integer", 60,
               "Seconds a console link (token) stays valid; each link opens one connection.", minimum=5, maximum=3600))
define(Setting("consoleproxy.keepalive", "Console Proxy", "Integer", 20,
               "Seconds between the console proxy's websocket pings and session checks, below common reverse "
               "proxy idle timeouts (nginx: 60 s).", minimum=2, maximum=300))
define(Setting("consoleproxy.url", "Console Proxy", "String", "",
               "Where browsers reach the console proxy's websocket: empty for the portal's host name on the "
               "proxy's own port (NUBO_CONSOLE_PORT, 6080), a path such as /client/console/websockify when a "
               "reverse proxy serves it on the portal's origin, or a full ws:// or wss:// URL.",
               validator=_console_url))
define(Setting("enable.dynamic.scale.vm", "Advanced", "Boolean", False,
               "Whether running VMs can be scaled up (scaleVirtualMachine) in a zone: a dynamically scalable VM "
               "started while it is on gets room to grow (vm.serviceoffering.cpu.cores.max, "
               "vm.serviceoffering.ram.size.max). Takes effect at each VM's next start.",
               scopes=("global", "zone")))
define(Setting("vm.serviceoffering.cpu.cores.max", "Advanced", "Integer", 0,
               "The most vCPUs a running, dynamically scalable VM can grow to; 0: as many as its host has "
               "CPUs (never more than its host has).", scopes=("global", "zone"), minimum=0, maximum=255))
define(Setting("vm.serviceoffering.ram.size.max", "Advanced", "Integer", 0,
               "The most memory (MiB) a running, dynamically scalable VM can grow to; 0: as much as its host has "
               "(never more than its host has).", scopes=("global", "zone"), minimum=0, maximum=16777216))
