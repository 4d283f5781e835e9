"""What a basic zone's networking looks like to CloudStack clients: the zone's shared guest network
(NetworkResponse, key `network`), its fixed offering (NetworkOfferingResponse, `networkoffering`),
NICs (NicResponse, `nic`), and the items of the lists a basic zone answers empty (public IPs,
forwarding and firewall rules, security and affinity groups, VPCs, projects, tags).

A basic zone has one network offering, CloudStack's "DefaultSharedNetworkOffering". Its services
are provided by the config drive (user data, and the network configuration a guest reads there;
CloudStack 4.16+ also offers ConfigDrive for Dhcp and Dns) and by the host's libvirt network,
whose DHCP answers only the addresses allocated here."""
from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid

from .responses_instances import nic_entry

def fixed_uuid(name: str) -> str:
    """A stable id for an object that exists in every Nubo cloud without a database row (the same
    in every cloud and every release)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nubo:{name}"))


def _services() -> list[dict[str, Any]]:
    return [{"name": name, "provider": [{"name": "ConfigDrive"}], "capability": []}
            for name in ("Dhcp", "Dns", "UserData")]


SERVICE_NAMES = frozenset({"dhcp", "dns", "userdata"})


@dataclass(frozen=True)
class NetworkOffering:
    id: str
    name: str
    displaytext: str
    traffictype: str = "Guest"
    guestiptype: str = "Shared"
    isdefault: bool = True
    specifyvlan: bool = True
    specifyipranges: bool = True
    conservemode: bool = True
    availability: str = "Optional"
    state: str = "Enabled"
    forvpc: bool = False
    ispersistent: bool = False
    egressdefaultpolicy: bool = True
    service: list[dict[str, Any]] = field(default_factory=_services)
    tags: str | None = None


DEFAULT_SHARED_NETWORK_OFFERING = NetworkOffering(
    id=fixed_uuid("network-offering/DefaultSharedNetworkOffering"), name="DefaultSharedNetworkOffering",
    displaytext="Offering for Shared networks")


class Fixed(s.Field):
    """A value that is the same for every row (declared so that listApis documents it)."""

    def __init__(self, value: Any, **kwargs):
        self.value = value
        self.cs_type = "boolean" if isinstance(value, bool) else "list" if isinstance(value, list) else "string"
        kwargs.setdefault("source", "*")
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, instance) -> Any:
        return list(self.value) if isinstance(self.value, list) else self.value


# -- services of networks and offerings ---------------------------------------------------------
class ProviderResponse(ResponseSerializer):
    object_name = "provider"
    name = s.CharField(help_text="the provider name")


class CapabilityResponse(ResponseSerializer):
    object_name = "capability"
    name = s.CharField(help_text="the capability name")
    value = s.CharField(help_text="the capability value")
    canchooseservicecapability = s.BooleanField(help_text="can this service capability value can be choosable "
                                                          "while creatine network offerings")


class ServiceResponse(ResponseSerializer):
    object_name = "service"
    name = s.CharField(help_text="the service name")
    provider = ProviderResponse(many=True, read_only=True, help_text="the service provider name")
    capability = CapabilityResponse(many=True, read_only=True, help_text="the list of capabilities")


# -- the guest network and its offering ---------------------------------------------------------------
class NetworkOfferingResponse(ResponseSerializer):
    object_name = "networkoffering"
    id = s.CharField(help_text="the id of the network offering")
    name = s.CharField(help_text="the name of the network offering")
    displaytext = s.CharField(help_text="an alternate display text of the network offering.")
    traffictype = s.CharField(help_text="the traffic type for the network offering, supported types are Public, "
                                        "Management, Control, Guest, Vlan or Storage.")
    guestiptype = s.CharField(help_text="guest type of the network offering, can be Shared or Isolated")
    isdefault = s.BooleanField(help_text="true if network offering is default, false otherwise")
    specifyvlan = s.BooleanField(help_text="true if network offering supports vlans, false otherwise")
    specifyipranges = s.BooleanField(help_text="true if network offering supports specifying ip ranges, false "
                                               "otherwise")
    conservemode = s.BooleanField(help_text="true if network offering is ip conserve mode enabled")
    availability = s.CharField(help_text="availability of the network offering")
    state = s.CharField(help_text="state of the network offering. Can be Disabled/Enabled/Inactive")
    forvpc = s.BooleanField(help_text="true if network offering can be used by VPC networks only")
    ispersistent = s.BooleanField(help_text="true if network offering supports persistent networks, false "
                                            "otherwise")
    egressdefaultpolicy = s.BooleanField(help_text="true if guest network default egress policy is allow; false "
                                                   "if default egress policy is deny")
    service = ServiceResponse(many=True, read_only=True, help_text="the list of supported services")
    tags = s.CharField(help_text="the tags for the network offering")


def first_ranges(zone_ids) -> dict[int, Any]:
    """Per zone, the guest IP range of its first pod (one query)."""
    from .models import VlanIpRange

    first: dict[int, Any] = {}
    for ip_range in VlanIpRange.objects.filter(zone_id__in=set(zone_ids)).order_by("zone_id", "pod_id", "id"):
        first.setdefault(ip_range.zone_id, ip_range)
    return first


_OFFERING = DEFAULT_SHARED_NETWORK_OFFERING


class NetworkResponse(ResponseSerializer):
    """A basic zone's guest network as CloudStack shows "guestNetworkForBasicZone": shared,
    untagged (broadcast domain Native), open to every account that sees the zone."""

    object_name = "network"
    id = Uuid(source="uuid", help_text="the id of the network")
    name = s.CharField(help_text="the name of the network")
    displaytext = s.CharField(source="name", help_text="the displaytext of the network")
    broadcastdomaintype = Fixed("Native", help_text="Broadcast domain type of the network")
    traffictype = Fixed("Guest", help_text="the traffic type of the network")
    gateway = s.CharField(source="ip_range.gateway", help_text="the network's gateway")
    netmask = s.CharField(source="ip_range.netmask", help_text="the network's netmask")
    cidr = s.SerializerMethodField(help_text="Cloudstack managed address space, all CloudStack managed VMs get IP "
                                             "address from CIDR")
    zoneid = Uuid(source="zone.uuid", help_text="zone id of the network")
    zonename = s.CharField(source="zone.name", help_text="the name of the zone the network belongs to")
    networkofferingid = Fixed(_OFFERING.id, help_text="network offering id the network is created from")
    networkofferingname = Fixed(_OFFERING.name, help_text="name of the network offering the network is created "
                                                          "from")
    networkofferingdisplaytext = Fixed(_OFFERING.displaytext, help_text="display text of the network offering the "
                                                                        "network is created from")
    networkofferingconservemode = Fixed(_OFFERING.conservemode, help_text="true if network offering is ip conserve "
                                                                          "mode enabled")
    networkofferingavailability = Fixed(_OFFERING.availability, help_text="availability of the network offering the "
                                                                          "network is created from")
    issystem = Fixed(False, help_text="true if network is system, false otherwise")
    state = Fixed("Setup", help_text="state of the network")
    related = Uuid(source="uuid", help_text="related to what other network configuration")
    dns1 = s.CharField(source="zone.dns1", help_text="the first DNS for the network")
    dns2 = s.CharField(source="zone.dns2", help_text="the second DNS for the network")
    type = Fixed("Shared", help_text="the type of the network")
    acltype = Fixed("Domain", help_text="acl type - access type to the network")
    networkdomain = s.SerializerMethodField(help_text="the network domain")
    isdefault = Fixed(True, help_text="true if network is default, false otherwise")
    ispersistent = Fixed(False, help_text="list networks that are persistent")
    canusefordeploy = Fixed(True, help_text="list networks available for vm deployment")
    specifyipranges = Fixed(True, help_text="true if network supports specifying ip ranges, false otherwise")
    restartrequired = Fixed(False, help_text="true network requires restart")
    displaynetwork = Fixed(True, help_text="an optional field, whether to the display the network to the end user "
                                           "or not.")
    service = ServiceResponse(many=True, read_only=True, source="services",
                              help_text="the list of services")
    tags = Fixed([], help_text="the list of resource tags associated with network")
    created = DateTime(help_text="the date this network was created")

    @classmethod
    def prepare(cls, rows: list) -> None:
        ranges = first_ranges(row.zone_id for row in rows)
        for row in rows:
            row.ip_range = ranges.get(row.zone_id)
            row.services = _services()

    def get_cidr(self, obj) -> str | None:
        ip_range = getattr(obj, "ip_range", None)
        if ip_range is None:
            return None
        return str(ipaddress.IPv4Network(f"{ip_range.gateway}/{ip_range.netmask}", strict=False))

    def get_networkdomain(self, obj) -> str | None:
        return obj.zone.network_domain or None


# -- NICs ------------------------------------------------------------------------------------------
class NicResponse(ResponseSerializer):
    """One NIC of a VM (listNics); the same entry as a VM's `nic` list, plus virtualmachineid."""

    object_name = "nic"
    id = s.CharField(help_text="the ID of the nic")
    networkid = s.CharField(help_text="the ID of the corresponding network")
    networkname = s.CharField(help_text="the name of the corresponding network")
    ipaddress = s.CharField(help_text="the ip address of the nic")
    netmask = s.CharField(help_text="the netmask of the nic")
    gateway = s.CharField(help_text="the gateway of the nic")
    macaddress = s.CharField(help_text="the MAC address of the nic")
    isdefault = s.BooleanField(help_text="true if nic is default, false otherwise")
    deviceid = s.CharField(help_text="device id for the network when plugged into the virtual machine")
    traffictype = s.CharField(help_text="the traffic type of the nic")
    type = s.CharField(help_text="the type of the nic")
    broadcasturi = s.CharField(help_text="the broadcast uri of the nic")
    isolationuri = s.CharField(help_text="the isolation uri of the nic")
    secondaryip = s.ListField(help_text="the Secondary ipv4 addr of nic")
    virtualmachineid = s.CharField(help_text="Id of the vm to which the nic belongs")

    def to_representation(self, instance) -> dict[str, Any]:
        return {**nic_entry(instance), "virtualmachineid": str(instance.virtual_machine.uuid)}


# -- items of the lists a basic zone answers empty -----------------------------------------------------
class PublicIpAddressResponse(ResponseSerializer):
    object_name = "publicipaddress"
    id = s.CharField(help_text="public IP address id")
    ipaddress = s.CharField(help_text="public IP address")
    allocated = s.CharField(help_text="date the public IP address was acquired")
    zoneid = s.CharField(help_text="the ID of the zone the public IP address belongs to")
    zonename = s.CharField(help_text="the name of the zone the public IP address belongs to")
    issourcenat = s.BooleanField(help_text="true if the IP address is a source nat address, false otherwise")
    isstaticnat = s.BooleanField(help_text="true if this ip is for static nat, false otherwise")
    issystem = s.BooleanField(help_text="true if this ip is system ip (was allocated as a part of deployVm or "
                                        "createLbRule)")
    state = s.CharField(help_text="State of the ip address. Can be: Allocating, Allocated and Releasing")
    associatednetworkid = s.CharField(help_text="the ID of the Network associated with the IP address")
    networkid = s.CharField(help_text="the ID of the Network where ip belongs to")
    vlanid = s.CharField(help_text="the ID of the VLAN associated with the IP address")
    virtualmachineid = s.CharField(help_text="virtual machine id the ip address is assigned to")
    forvirtualnetwork = s.BooleanField(help_text="the virtual network for the IP address")
    purpose = s.CharField(help_text="purpose of the IP address")
    account = s.CharField(help_text="the account the public IP address is associated with")
    domainid = s.CharField(help_text="the domain ID the public IP address is associated with")
    domain = s.CharField(help_text="the domain the public IP address is associated with")
    tags = s.ListField(help_text="the list of resource tags associated with ip address")


class _RuleResponse(ResponseSerializer):
    id = s.CharField(help_text="the ID of the rule")
    ipaddressid = s.CharField(help_text="the public ip address id for the rule")
    ipaddress = s.CharField(help_text="the public ip address for the rule")
    protocol = s.CharField(help_text="the protocol of the rule")
    state = s.CharField(help_text="the state of the rule")
    cidrlist = s.CharField(help_text="the cidr list to forward traffic from")
    networkid = s.CharField(help_text="the id of the guest network the rule belongs to")
    fordisplay = s.BooleanField(help_text="is firewall for display to the regular user")
    tags = s.ListField(help_text="the list of resource tags associated with the rule")


class PortForwardingRuleResponse(_RuleResponse):
    object_name = "portforwardingrule"
    publicport = s.CharField(help_text="the starting port of port forwarding rule's public port range")
    publicendport = s.CharField(help_text="the ending port of port forwarding rule's private port range")
    privateport = s.CharField(help_text="the starting port of port forwarding rule's private port range")
    privateendport = s.CharField(help_text="the ending port of port forwarding rule's private port range")
    virtualmachineid = s.CharField(help_text="the VM ID for the port forwarding rule")
    virtualmachinename = s.CharField(help_text="the VM name for the port forwarding rule")
    virtualmachinedisplayname = s.CharField(help_text="the VM display name for the port forwarding rule")
    vmguestip = s.CharField(help_text="the vm ip address for the port forwarding rule")


class IpForwardingRuleResponse(PortForwardingRuleResponse):
    object_name = "ipforwardingrule"
    startport = s.IntegerField(help_text="the starting port of the rule's port range")
    endport = s.IntegerField(help_text="the ending port of the rule's port range")


class FirewallRuleResponse(_RuleResponse):
    object_name = "firewallrule"
    startport = s.IntegerField(help_text="the starting port of firewall rule's port range")
    endport = s.IntegerField(help_text="the ending port of firewall rule's port range")
    icmptype = s.IntegerField(help_text="type of the icmp message being sent")
    icmpcode = s.IntegerField(help_text="error code for this icmp message")
    destcidrlist = s.CharField(help_text="the cidr list to forward traffic to")


class LoadBalancerRuleResponse(ResponseSerializer):
    object_name = "loadbalancerrule"
    id = s.CharField(help_text="the load balancer rule ID")
    name = s.CharField(help_text="the name of the load balancer")
    description = s.CharField(help_text="the description of the load balancer")
    publicipid = s.CharField(help_text="the public ip address id")
    publicip = s.CharField(help_text="the public ip address")
    publicport = s.CharField(help_text="the public port")
    privateport = s.CharField(help_text="the private port")
    algorithm = s.CharField(help_text="the load balancer algorithm (source, roundrobin, leastconn)")
    protocol = s.CharField(help_text="the protocol of the loadbalanacer rule")
    cidrlist = s.CharField(help_text="the cidr list to forward traffic from")
    networkid = s.CharField(help_text="the id of the guest network the lb rule belongs to")
    zoneid = s.CharField(help_text="the id of the zone the rule belongs to")
    state = s.CharField(help_text="the state of the rule")
    account = s.CharField(help_text="the account of the load balancer rule")
    domainid = s.CharField(help_text="the domain ID of the load balancer rule")
    domain = s.CharField(help_text="the domain of the load balancer rule")
    tags = s.ListField(help_text="the list of resource tags associated with load balancer")


class SecurityGroupResponse(ResponseSerializer):
    object_name = "securitygroup"
    id = s.CharField(help_text="the ID of the security group")
    name = s.CharField(help_text="the name of the security group")
    description = s.CharField(help_text="the description of the security group")
    account = s.CharField(help_text="the account owning the security group")
    domainid = s.CharField(help_text="the domain ID of the security group")
    domain = s.CharField(help_text="the domain name of the security group")
    ingressrule = s.ListField(help_text="the list of ingress rules associated with the security group")
    egressrule = s.ListField(help_text="the list of egress rules associated with the security group")
    virtualmachinecount = s.IntegerField(help_text="the number of virtualmachines associated with this "
                                                   "securitygroup")
    virtualmachineids = s.ListField(help_text="the list of virtualmachine ids associated with this securitygroup")
    tags = s.ListField(help_text="the list of resource tags associated with the rule")


class AffinityGroupResponse(ResponseSerializer):
    object_name = "affinitygroup"
    id = s.CharField(help_text="the ID of the affinity group")
    name = s.CharField(help_text="the name of the affinity group")
    description = s.CharField(help_text="the description of the affinity group")
    type = s.CharField(help_text="the type of the affinity group")
    account = s.CharField(help_text="the account owning the affinity group")
    domainid = s.CharField(help_text="the domain ID of the affinity group")
    domain = s.CharField(help_text="the domain name of the affinity group")
    virtualmachineIds = s.ListField(help_text="virtual machine IDs associated with this affinity group")


class AffinityGroupTypeResponse(ResponseSerializer):
    object_name = "affinityGroupType"
    type = s.CharField(help_text="the type of the affinity group")


class VpcResponse(ResponseSerializer):
    object_name = "vpc"
    id = s.CharField(help_text="the id of the VPC")
    name = s.CharField(help_text="the name of the VPC")
    displaytext = s.CharField(help_text="an alternate display text of the VPC.")
    state = s.CharField(help_text="state of the VPC. Can be Inactive/Enabled")
    zoneid = s.CharField(help_text="zone id of the vpc")
    zonename = s.CharField(help_text="the name of the zone the VPC belongs to")
    cidr = s.CharField(help_text="the cidr the VPC")
    vpcofferingid = s.CharField(help_text="vpc offering id the VPC is created from")
    vpcofferingname = s.CharField(help_text="vpc offering name the VPC is created from")
    networkdomain = s.CharField(help_text="the network domain of the VPC")
    restartrequired = s.BooleanField(help_text="true VPC requires restart")
    account = s.CharField(help_text="the owner of the VPC")
    domainid = s.CharField(help_text="the domain id of the VPC owner")
    domain = s.CharField(help_text="the domain name of the owner")
    network = s.ListField(help_text="the list of networks belongign to the VPC")
    service = ServiceResponse(many=True, read_only=True, help_text="the list of supported services")
    tags = s.ListField(help_text="the list of resource tags associated with the project")
    created = s.CharField(help_text="the date this VPC was created")


class VpcOfferingResponse(ResponseSerializer):
    object_name = "vpcoffering"
    id = s.CharField(help_text="the id of the vpc offering")
    name = s.CharField(help_text="the name of the vpc offering")
    displaytext = s.CharField(help_text="an alternate display text of the vpc offering.")
    isdefault = s.BooleanField(help_text="true if vpc offering is default, false otherwise")
    state = s.CharField(help_text="state of the vpc offering. Can be Disabled/Enabled")
    distributedvpcrouter = s.BooleanField(help_text="indicates if the vpc offering supports distributed router "
                                                    "for one-hop forwarding")
    service = ServiceResponse(many=True, read_only=True, help_text="the list of supported services")
    created = s.CharField(help_text="the date this vpc offering was created")


class ProjectResponse(ResponseSerializer):
    object_name = "project"
    id = s.CharField(help_text="the id of the project")
    name = s.CharField(help_text="the name of the project")
    displaytext = s.CharField(help_text="the displaytext of the project")
    state = s.CharField(help_text="the state of the project")
    domainid = s.CharField(help_text="the domain id the project belongs to")
    domain = s.CharField(help_text="the domain name where the project belongs to")
    owner = s.ListField(help_text="the account name of the project's owners")
    tags = s.ListField(help_text="the list of resource tags associated with the project")
    created = s.CharField(help_text="the date this project was created")


class ResourceTagResponse(ResponseSerializer):
    object_name = "tag"
    key = s.CharField(help_text="tag key name")
    value = s.CharField(help_text="tag value")
    resourcetype = s.CharField(help_text="resource type")
    resourceid = s.CharField(help_text="id of the resource")
    account = s.CharField(help_text="the account associated with the tag")
    domainid = s.CharField(help_text="the ID of the domain associated with the tag")
    domain = s.CharField(help_text="the domain associated with the tag")
    customer = s.CharField(help_text="customer associated with the tag")
