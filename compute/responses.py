"""Response objects of the infrastructure commands (CloudStack field names)."""
from __future__ import annotations

from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid


def _page_capacity(context: dict, level: str, obj) -> list | None:
    """showcapacities=true: the capacity rows of `obj`, computed once per page (the serializer
    context is shared by the rows of a page), not once per row."""
    params = context.get("params") or {}
    caller = context.get("caller")
    if not params.get("showcapacities") or caller is None or not caller.account.is_root_admin:
        return None  # capacity is infrastructure data: root admins only
    key = f"_capacities_by_{level}"
    if key not in context:
        from .capacity import capacities_by

        context[key] = capacities_by(level)
    return [row.as_response() for row in context[key].get(obj.pk, [])]


class ZoneResponse(ResponseSerializer):
    object_name = "zone"
    id = Uuid(source="uuid", help_text="Zone id")
    name = s.CharField(help_text="Zone name")
    description = s.CharField(help_text="Zone description")
    networktype = s.CharField(source="network_type", help_text="the network type of the zone; can be Basic or Advanced")
    allocationstate = s.CharField(source="allocation_state", help_text="the allocation state of the cluster")
    securitygroupsenabled = s.BooleanField(source="security_groups_enabled", help_text="true if security groups support is enabled, false otherwise")
    localstorageenabled = s.BooleanField(source="local_storage_enabled", help_text="true if local storage offering enabled, false otherwise")
    dns1 = s.CharField(help_text="the first DNS for the Zone")
    dns2 = s.CharField(default=None, help_text="the second DNS for the Zone")
    internaldns1 = s.CharField(source="internal_dns1", help_text="the first internal DNS for the Zone")
    internaldns2 = s.CharField(source="internal_dns2", default=None, help_text="the second internal DNS for the Zone")
    guestcidraddress = s.CharField(source="guest_cidr", default=None, help_text="the guest CIDR address for the Zone")
    networkdomain = s.CharField(source="network_domain", default=None, help_text="Network domain name for the networks in the zone")
    domainid = Uuid(source="domain.uuid", default=None, help_text="the UUID of the containing domain, null for public zones")
    domain = s.CharField(source="domain.name", default=None, help_text="Network domain name for the networks in the zone")
    dhcpprovider = s.SerializerMethodField(help_text="the dhcp Provider for the Zone")
    type = s.SerializerMethodField(help_text="The type of the zone - core or edge")
    tags = s.SerializerMethodField(help_text="the list of resource tags associated with zone.")
    capacity = s.SerializerMethodField(help_text="the capacity of the Zone")

    def get_dhcpprovider(self, obj) -> str:
        return "libvirt-dnsmasq"

    def get_type(self, obj) -> str:
        return "Core"

    def get_tags(self, obj) -> list:
        return []

    def get_capacity(self, obj):
        return _page_capacity(self.context, "zone", obj)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for key in ("guestcidraddress", "networkdomain", "description"):
            if data.get(key) == "":
                data.pop(key)
        return data


class PodResponse(ResponseSerializer):
    object_name = "pod"
    id = Uuid(source="uuid", help_text="the ID of the Pod")
    name = s.CharField(help_text="the name of the Pod")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the Pod")
    zonename = s.CharField(source="zone.name", help_text="the Zone name of the Pod")
    gateway = s.CharField(help_text="the gateway of the Pod")
    netmask = s.CharField(help_text="the netmask of the Pod")
    startip = s.SerializerMethodField(help_text="the starting IP for the Pod")
    endip = s.SerializerMethodField(help_text="the ending IP for the Pod")
    allocationstate = s.CharField(source="allocation_state", help_text="the allocation state of the Pod")

    def get_startip(self, obj) -> list:
        return [obj.start_ip] if obj.start_ip else []

    def get_endip(self, obj) -> list:
        return [obj.end_ip] if obj.end_ip else []


class VlanIpRangeResponse(ResponseSerializer):
    object_name = "vlan"
    id = Uuid(source="uuid", help_text="the ID of the VLAN IP range")
    forvirtualnetwork = s.BooleanField(source="for_virtual_network", help_text="the virtual network for the VLAN IP range")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the VLAN IP range")
    vlan = s.CharField(help_text="the ID or VID of the VLAN.")
    podid = Uuid(source="pod.uuid", help_text="the Pod ID for the VLAN IP range")
    podname = s.CharField(source="pod.name", help_text="the Pod name for the VLAN IP range")
    gateway = s.CharField(help_text="the gateway of the VLAN IP range")
    netmask = s.CharField(help_text="the netmask of the VLAN IP range")
    startip = s.CharField(source="start_ip", help_text="the start ip of the VLAN IP range")
    endip = s.CharField(source="end_ip", help_text="the end ip of the VLAN IP range")
    forsystemvms = s.SerializerMethodField(help_text="indicates whether VLAN IP range is dedicated to system vms or not")

    def get_forsystemvms(self, obj) -> bool:
        return False


class VlanIpRangeListResponse(VlanIpRangeResponse):
    """listVlanIpRanges names its items `vlaniprange` (createVlanIpRange answers `vlan`)."""

    object_name = "vlaniprange"


class ClusterResponse(ResponseSerializer):
    object_name = "cluster"
    id = Uuid(source="uuid", help_text="the cluster ID")
    name = s.CharField(help_text="the cluster name")
    podid = Uuid(source="pod.uuid", help_text="the Pod ID of the cluster")
    podname = s.CharField(source="pod.name", help_text="the Pod name of the cluster")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the cluster")
    zonename = s.CharField(source="zone.name", help_text="the Zone name of the cluster")
    hypervisortype = s.CharField(source="hypervisor", help_text="the hypervisor type of the cluster")
    clustertype = s.CharField(source="cluster_type", help_text="the type of the cluster")
    allocationstate = s.CharField(source="allocation_state", help_text="the allocation state of the cluster")
    managedstate = s.CharField(source="managed_state", help_text="whether this cluster is managed by CloudStack")
    emulation = s.CharField(help_text="how guests run on this cluster's hosts: auto (KVM probe), kvm or qemu")
    cpuovercommitratio = s.SerializerMethodField(help_text="The cpu overcommit ratio of the cluster")
    memoryovercommitratio = s.SerializerMethodField(help_text="The memory overcommit ratio of the cluster")
    capacity = s.SerializerMethodField(help_text="the capacity of the Cluster")

    def get_cpuovercommitratio(self, obj) -> str:
        from portal import config

        return str(config.get_value("cpu.overprovisioning.factor", scope="cluster", scope_uuid=str(obj.uuid)))

    def get_memoryovercommitratio(self, obj) -> str:
        from portal import config

        return str(config.get_value("mem.overprovisioning.factor", scope="cluster", scope_uuid=str(obj.uuid)))

    def get_capacity(self, obj):
        return _page_capacity(self.context, "cluster", obj)


class HostResponse(ResponseSerializer):
    object_name = "host"
    id = Uuid(source="uuid", help_text="the ID of the host")
    name = s.CharField(help_text="the name of the host")
    state = s.CharField(help_text="the state of the host")
    resourcestate = s.CharField(source="resource_state", help_text="the resource state of the host")
    type = s.CharField(help_text="the host type")
    hypervisor = s.CharField(help_text="the host hypervisor")
    hypervisorversion = s.CharField(source="hypervisor_version", help_text="the hypervisor version")
    ipaddress = s.CharField(source="ip_address", help_text="the IP address of the host")
    zoneid = Uuid(source="zone.uuid", help_text="the Zone ID of the host")
    zonename = s.CharField(source="zone.name", help_text="the Zone name of the host")
    podid = Uuid(source="pod.uuid", help_text="the Pod ID of the host")
    podname = s.CharField(source="pod.name", help_text="the Pod name of the host")
    clusterid = Uuid(source="cluster.uuid", help_text="the cluster ID of the host")
    clustername = s.CharField(source="cluster.name", help_text="the cluster name of the host")
    clustertype = s.CharField(source="cluster.cluster_type", help_text="the cluster type of the cluster that host belongs to")
    cpusockets = s.IntegerField(source="cpu_sockets", help_text="the number of CPU sockets on the host")
    cpunumber = s.IntegerField(source="cpu_number", help_text="the CPU number of the host")
    cpuspeed = s.IntegerField(source="cpu_speed", help_text="the CPU speed of the host")
    cpuallocated = s.SerializerMethodField(help_text="the amount of the host's CPU currently allocated")
    cpuused = s.SerializerMethodField(help_text="the amount of the host's CPU currently used")
    memorytotal = s.IntegerField(source="memory_total", help_text="the memory total of the host, this parameter is deprecated use memorywithoverprovisioning")
    memoryallocated = s.SerializerMethodField(help_text="the amount of the host's memory currently allocated")
    memoryused = s.IntegerField(source="memory_used", help_text="the amount of the host's memory currently used")
    hosttags = s.CharField(source="host_tags", default=None, help_text="comma-separated list of tags for the host")
    version = s.SerializerMethodField(help_text="the host version")
    libvirtversion = s.CharField(source="libvirt_version", help_text="the libvirt version of the host")
    arch = s.CharField(help_text="CPU Arch of the host")
    created = DateTime(help_text="the date and time the host was created")
    lastpinged = DateTime(source="last_pinged", help_text="the date and time the host was last pinged")
    disconnected = DateTime(help_text="true if the host is disconnected. False otherwise.")
    statereason = s.CharField(source="state_reason", default=None, help_text="why the host is not Up")
    kvmusable = s.BooleanField(source="kvm_usable", default=None, help_text="whether guests can use KVM acceleration (probe verdict)")
    kvmreason = s.CharField(source="kvm_reason", default=None, help_text="the KVM probe's reason")
    emulation = s.CharField(help_text="the emulation override of the host: auto, kvm or qemu")
    effectiveemulation = s.CharField(source="effective_emulation", help_text="how guests run on this host: kvm or qemu")
    events = s.SerializerMethodField(help_text="events available for the host")
    capabilities = s.SerializerMethodField(help_text="capabilities of the host")

    def get_cpuallocated(self, obj) -> str:
        return "0%"

    def get_memoryallocated(self, obj) -> int:
        return 0

    def get_cpuused(self, obj) -> str | None:
        return None if obj.cpu_used_percent is None else f"{obj.cpu_used_percent:.2f}%"

    def get_version(self, obj) -> str:
        from django.conf import settings

        return settings.CLOUDSTACK_VERSION

    def get_events(self, obj) -> str:
        return "PingTimeout; AgentDisconnected; Ping; Remove; HostDown; ShutdownRequested; AgentConnected; ManagementServerDown; StartAgentRebalance"

    def get_capabilities(self, obj) -> str:
        return "hvm" if obj.effective_emulation == "kvm" else "hvm,emulated"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for key in ("hosttags", "statereason", "kvmreason"):
            if data.get(key) == "":
                data.pop(key)
        return data


class HypervisorResponse(ResponseSerializer):
    object_name = "hypervisor"
    name = s.CharField(help_text="Hypervisor name")


class CapacityResponse(ResponseSerializer):
    object_name = "capacity"
    type = s.IntegerField(help_text="the capacity type")
    name = s.CharField(help_text="the capacity name")
    zoneid = s.CharField(default=None, help_text="the Zone ID")
    zonename = s.CharField(default=None, help_text="the Zone name")
    podid = s.CharField(default=None, help_text="the Pod ID")
    podname = s.CharField(default=None, help_text="the Pod name")
    clusterid = s.CharField(default=None, help_text="the Cluster ID")
    clustername = s.CharField(default=None, help_text="the Cluster name")
    capacitytotal = s.IntegerField(help_text="the total capacity available")
    capacityused = s.IntegerField(help_text="the capacity currently in use")
    capacityallocated = s.IntegerField(help_text="the capacity currently in allocated")
    percentused = s.CharField(help_text="the percentage of capacity currently in use")


class AlertResponse(ResponseSerializer):
    object_name = "alert"
    id = Uuid(source="uuid", help_text="the id of the alert")
    type = s.IntegerField(help_text="One of the following alert types: MEMORY = 0, CPU = 1, STORAGE = 2, ...")
    name = s.CharField(help_text="the name of the alert")
    description = s.CharField(source="subject", help_text="description of the alert")
    sent = DateTime(help_text="the date and time the alert was sent")
