"""Basic-zone network API commands: the zone's shared guest network (listNetworks), its offering
(listNetworkOfferings) and a VM's NICs (listNics); and the lists CloudStack answers empty in a
basic zone without security groups (public IPs, forwarding, firewall and load balancer rules,
security and affinity groups, VPCs, projects, tags), so that clients which call them while listing
or deploying VMs keep working.

Every one of them accepts CloudStack 4.18's parameter names; objects named by id are resolved
through the visibility rule (another tenant's VM or zone is answered as not found), and filters the
fixed basic-zone objects do not match give an empty answer."""
from __future__ import annotations

from typing import Any

from accounts.access import ALL_ROLE_TYPES, resolve_scope
from portal.api import params as P
from portal.api.listing import keyword_filter
from portal.api.registry import Command, ListParams, ScopedListParams, register

from . import networks
from .commands_instances import VmId
from .models import GuestNetwork, Nic, Zone
from .responses_network import (
    DEFAULT_SHARED_NETWORK_OFFERING,
    SERVICE_NAMES,
    AffinityGroupResponse,
    AffinityGroupTypeResponse,
    FirewallRuleResponse,
    IpForwardingRuleResponse,
    LoadBalancerRuleResponse,
    NetworkOfferingResponse,
    NetworkResponse,
    NicResponse,
    PortForwardingRuleResponse,
    ProjectResponse,
    PublicIpAddressResponse,
    ResourceTagResponse,
    SecurityGroupResponse,
    VpcOfferingResponse,
    VpcResponse,
)


class ProjectId(P.Uuid):
    """A project's id, or -1 (all projects) as some clients send. Nubo has no projects: lists
    given one answer nothing."""

    def to_internal_value(self, data: Any) -> str:
        return "-1" if str(data).strip() == "-1" else super().to_internal_value(data)


def NetworkId(**kwargs):  # noqa: N802 - a parameter factory
    return P.Entity(GuestNetwork, **kwargs)


def mismatch(params: dict, **fixed: Any) -> bool:
    """Does a given filter exclude a fixed object whose values are `fixed`? (strings compare
    case-insensitively; absent parameters match)."""
    for name, value in fixed.items():
        given = params.get(name)
        if given is None or given == "":
            continue
        if isinstance(value, str) and str(given).lower() != value.lower():
            return True
        if not isinstance(value, str) and given != value:
            return True
    return False


def unsupported_services(params: dict) -> bool:
    return any(name.lower() not in SERVICE_NAMES for name in params.get("supportedservices") or [])


def check_scope(caller, params: dict, command: str) -> None:
    """account/domainid name something the caller may see (else 431), though they filter nothing
    here: the shared network is everybody's who sees the zone, and the empty lists hold nothing."""
    if params.get("account") or params.get("domainid"):
        resolve_scope(caller, params, command=command)


# -- listNetworks ------------------------------------------------------------------------------------
class ListNetworksParams(ScopedListParams):
    id = P.Uuid(help_text="list networks by ID")
    zoneid = P.Entity(Zone, help_text="the zone ID of the network")
    type = P.String(help_text="the type of the network. Supported values are: isolated, l2, shared and all")
    traffictype = P.String(help_text="type of the traffic")
    isdefault = P.Boolean(help_text="true if network is default, false otherwise")
    issystem = P.Boolean(help_text="true if network is system, false otherwise")
    canusefordeploy = P.Boolean(help_text="list networks available for vm deployment")
    forvpc = P.Boolean(help_text="the network belongs to vpc")
    acltype = P.String(help_text="list networks by ACL (access control list) type. Supported values are account "
                                 "and domain")
    vpcid = P.Uuid(help_text="List networks by VPC")
    networkofferingid = P.Uuid(help_text="list networks by network offering ID")
    physicalnetworkid = P.Uuid(help_text="list networks by physical network id")
    supportedservices = P.List(help_text="list networks supporting certain services")
    restartrequired = P.Boolean(help_text="list networks by restartRequired")
    specifyipranges = P.Boolean(help_text="true if need to list only networks which support specifying ip ranges")
    networkfilter = P.String(help_text="possible values are \"account\", \"domain\", \"accountdomain\", \"shared\", "
                                       "and \"all\"")
    displaynetwork = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                         "parameter")
    projectid = ProjectId(help_text="list objects by project (projects are not supported)")
    tags = P.Map(help_text="List resources by tags (key/value pairs)")


def ensure_guest_networks(caller) -> None:
    """Zones the caller sees that have a guest IP range get their shared network row the first time
    they are listed (a deploy makes it too): one query when every zone has its row."""
    for zone in Zone.objects.visible_to(caller).filter(ip_ranges__isnull=False,
                                                       guest_network__isnull=True).distinct():
        networks.guest_network(zone)


@register
class ListNetworks(Command):
    name = "listNetworks"
    description = "Lists all available networks."
    Params = ListNetworksParams
    response = NetworkResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        check_scope(self.caller, params, self.name)
        offering = DEFAULT_SHARED_NETWORK_OFFERING
        if (params.get("type") or "").lower() == "all":
            params = {**params, "type": None}
        if (mismatch(params, type="Shared", traffictype="Guest", isdefault=True, issystem=False,
                     canusefordeploy=True, forvpc=False, acltype="Domain", networkofferingid=offering.id,
                     restartrequired=False, specifyipranges=True, displaynetwork=True)
                or (params.get("networkfilter") or "").lower() == "account" or unsupported_services(params)
                or any(params.get(name) for name in ("vpcid", "physicalnetworkid", "projectid", "tags"))):
            return GuestNetwork.objects.none()
        ensure_guest_networks(self.caller)
        qs = GuestNetwork.objects.visible_to(self.caller).select_related("zone").order_by("id")
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("zoneid"):
            qs = qs.filter(zone=params["zoneid"])
        return keyword_filter(qs, params.get("keyword"), "name", "zone__name")


# -- listNetworkOfferings ----------------------------------------------------------------------------
class ListNetworkOfferingsParams(ListParams):
    id = P.Uuid(help_text="list network offerings by ID")
    name = P.String(help_text="list network offerings by name")
    displaytext = P.String(help_text="list network offerings by display text")
    zoneid = P.Entity(Zone, help_text="list network offerings available for network creation in specific zone")
    guestiptype = P.String(help_text="list network offerings by guest type: shared, l2 or isolated")
    traffictype = P.String(help_text="list by traffic type")
    availability = P.String(help_text="the availability of network offering. The default value is required")
    isdefault = P.Boolean(help_text="true if need to list only default network offerings. Default value is false")
    specifyvlan = P.Boolean(help_text="the tags for the network offering.")
    specifyipranges = P.Boolean(help_text="true if need to list only network offerings which support specifying ip "
                                          "ranges")
    state = P.String(help_text="list network offerings by state")
    forvpc = P.Boolean(help_text="the network offering can be used only for network creation inside the VPC")
    supportedservices = P.List(help_text="list network offerings supporting certain services")
    sourcenatsupported = P.Boolean(help_text="true if need to list only netwok offerings where source NAT is "
                                             "supported, false otherwise")
    networkid = NetworkId(help_text="the ID of the network. Pass this in if you want to see the available network "
                                    "offering that a network can be changed to.")
    istagged = P.Boolean(help_text="true if offering has tags specified")
    tags = P.String(max_length=4096, help_text="list network offerings by tags")
    domainid = P.Uuid(help_text="list network offerings available for network creation in specific domain")


@register
class ListNetworkOfferings(Command):
    name = "listNetworkOfferings"
    description = "Lists all available network offerings."
    Params = ListNetworkOfferingsParams
    response = NetworkOfferingResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        offering = DEFAULT_SHARED_NETWORK_OFFERING
        keyword = (params.get("keyword") or "").lower()
        if (mismatch(params, id=offering.id, name=offering.name, displaytext=offering.displaytext,
                     guestiptype=offering.guestiptype, traffictype=offering.traffictype,
                     availability=offering.availability, isdefault=offering.isdefault,
                     specifyvlan=offering.specifyvlan, specifyipranges=offering.specifyipranges,
                     state=offering.state, forvpc=offering.forvpc, sourcenatsupported=False, istagged=False)
                or unsupported_services(params) or params.get("tags")
                or (keyword and keyword not in offering.name.lower() and keyword not in offering.displaytext.lower())):
            return []
        if params.get("domainid"):
            check_scope(self.caller, {"domainid": params["domainid"]}, self.name)
        return [offering]


# -- listNics --------------------------------------------------------------------------------------
class ListNicsParams(ListParams):
    virtualmachineid = VmId(required=True, help_text="the ID of the vm")
    nicid = P.Uuid(help_text="the ID of the nic to to list IPs")
    networkid = P.Uuid(help_text="list nic of the specific vm's network")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListNics(Command):
    name = "listNics"
    description = "list the vm nics  IP to NIC"
    Params = ListNicsParams
    response = NicResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        if params.get("fordisplay") is False:
            return Nic.objects.none()
        qs = Nic.objects.filter(virtual_machine=params["virtualmachineid"]).select_related(
            "address__ip_range", "network", "virtual_machine")
        if params.get("nicid"):
            qs = qs.filter(uuid=params["nicid"])
        if params.get("networkid"):
            qs = qs.filter(network__uuid=params["networkid"])
        return keyword_filter(qs, params.get("keyword"), "mac", "address__address")


# -- lists a basic zone answers empty --------------------------------------------------------------------
class _EmptyInBasicZone(Command):
    """What exists only in advanced zones, with security groups or with projects: Nubo holds none,
    so these answer CloudStack's empty list (`{}`) once their parameters are valid."""

    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        check_scope(self.caller, params, self.name)
        return []


class _ScopedParams(ScopedListParams):
    projectid = ProjectId(help_text="list objects by project (projects are not supported)")


class _TaggedParams(_ScopedParams):
    tags = P.Map(help_text="List resources by tags (key/value pairs)")


class ListPublicIpAddressesParams(_TaggedParams):
    id = P.Uuid(help_text="lists IP address by ID")
    ipaddress = P.String(help_text="lists the specified IP address")
    allocatedonly = P.Boolean(help_text="limits search results to allocated public IP addresses")
    zoneid = P.Entity(Zone, help_text="lists all public IP addresses by zone ID")
    vlanid = P.Uuid(help_text="lists all public IP addresses by VLAN ID")
    associatednetworkid = NetworkId(help_text="lists all public IP addresses associated to the network specified")
    networkid = NetworkId(help_text="lists all public IP addresses by source network ID")
    vpcid = P.Uuid(help_text="List ips belonging to the VPC")
    physicalnetworkid = P.Uuid(help_text="lists all public IP addresses by physical network ID")
    issourcenat = P.Boolean(help_text="list only source NAT IP addresses")
    isstaticnat = P.Boolean(help_text="list only static NAT IP addresses")
    forvirtualnetwork = P.Boolean(help_text="the virtual network for the IP address")
    forloadbalancing = P.Boolean(help_text="list only IPs used for load balancing")
    state = P.String(help_text="lists all public IP addresses by state")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListPublicIpAddresses(_EmptyInBasicZone):
    name = "listPublicIpAddresses"
    description = "Lists all public IP addresses"
    Params = ListPublicIpAddressesParams
    response = PublicIpAddressResponse


class ListPortForwardingRulesParams(_TaggedParams):
    id = P.Uuid(help_text="Lists rule with the specified ID.")
    ipaddressid = P.Uuid(help_text="the ID of IP address of the port forwarding services")
    networkid = NetworkId(help_text="list port forwarding rules for certain network")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListPortForwardingRules(_EmptyInBasicZone):
    name = "listPortForwardingRules"
    description = "Lists all port forwarding rules for an IP address."
    Params = ListPortForwardingRulesParams
    response = PortForwardingRuleResponse


class ListIpForwardingRulesParams(_ScopedParams):
    id = P.Uuid(help_text="Lists rule with the specified ID.")
    ipaddressid = P.Uuid(help_text="list the rule belonging to this public IP address")
    virtualmachineid = VmId(help_text="Lists all rules applied to the specified VM.")


@register
class ListIpForwardingRules(_EmptyInBasicZone):
    name = "listIpForwardingRules"
    description = "List the IP forwarding rules"
    Params = ListIpForwardingRulesParams
    response = IpForwardingRuleResponse


class ListFirewallRulesParams(_TaggedParams):
    id = P.Uuid(help_text="Lists rule with the specified ID.")
    ipaddressid = P.Uuid(help_text="the ID of IP address of the firewall services")
    networkid = NetworkId(help_text="list firewall rules for certain network")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListFirewallRules(_EmptyInBasicZone):
    name = "listFirewallRules"
    description = "Lists all firewall rules for an IP address."
    Params = ListFirewallRulesParams
    response = FirewallRuleResponse


class ListLoadBalancerRulesParams(_TaggedParams):
    id = P.Uuid(help_text="the ID of the load balancer rule")
    name = P.String(help_text="the name of the load balancer rule")
    publicipid = P.Uuid(help_text="the public IP address ID of the load balancer rule")
    virtualmachineid = VmId(help_text="the ID of the virtual machine of the load balancer rule")
    zoneid = P.Entity(Zone, help_text="the availability zone ID")
    networkid = NetworkId(help_text="list by network ID the rule belongs to")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListLoadBalancerRules(_EmptyInBasicZone):
    name = "listLoadBalancerRules"
    description = "Lists load balancer rules."
    Params = ListLoadBalancerRulesParams
    response = LoadBalancerRuleResponse


class ListSecurityGroupsParams(_TaggedParams):
    id = P.Uuid(help_text="list the security group by the id provided")
    securitygroupname = P.String(help_text="lists security groups by name")
    virtualmachineid = VmId(help_text="lists security groups by virtual machine id")


@register
class ListSecurityGroups(_EmptyInBasicZone):
    name = "listSecurityGroups"
    description = "Lists security groups"
    Params = ListSecurityGroupsParams
    response = SecurityGroupResponse


class ListAffinityGroupsParams(_ScopedParams):
    id = P.Uuid(help_text="list the affinity group by the ID provided")
    name = P.String(help_text="lists affinity groups by name")
    type = P.String(help_text="lists affinity groups by type")
    virtualmachineid = VmId(help_text="lists affinity groups by virtual machine ID")


@register
class ListAffinityGroups(_EmptyInBasicZone):
    name = "listAffinityGroups"
    description = "Lists affinity groups"
    Params = ListAffinityGroupsParams
    response = AffinityGroupResponse


@register
class ListAffinityGroupTypes(_EmptyInBasicZone):
    name = "listAffinityGroupTypes"
    description = "Lists affinity group types available"
    Params = ListParams
    response = AffinityGroupTypeResponse


class ListVPCsParams(_TaggedParams):
    id = P.Uuid(help_text="list VPC by id")
    zoneid = P.Entity(Zone, help_text="list by zone")
    name = P.String(help_text="list by name")
    displaytext = P.String(help_text="List by display text of the VPC")
    cidr = P.String(help_text="list by cidr of the VPC. All VPC guest networks' cidrs should be within this CIDR")
    vpcofferingid = P.Uuid(help_text="list by ID of the VPC offering")
    supportedservices = P.List(help_text="list VPC supporting certain services")
    restartrequired = P.Boolean(help_text="list VPCs by restartRequired option")
    state = P.String(help_text="list VPCs by state")
    fordisplay = P.Boolean(help_text="list resources by display flag; only ROOT admin is eligible to pass this "
                                     "parameter")


@register
class ListVPCs(_EmptyInBasicZone):
    name = "listVPCs"
    description = "Lists VPCs"
    Params = ListVPCsParams
    response = VpcResponse


class ListVPCOfferingsParams(ListParams):
    id = P.Uuid(help_text="list VPC offerings by id")
    name = P.String(help_text="list VPC offerings by name")
    displaytext = P.String(help_text="list VPC offerings by display text")
    isdefault = P.Boolean(help_text="true if need to list only default VPC offerings. Default value is false")
    supportedservices = P.List(help_text="list VPC offerings supporting certain services")
    state = P.String(help_text="list VPC offerings by state")
    zoneid = P.Entity(Zone, help_text="id of zone VPC offering is associated with")
    domainid = P.Uuid(help_text="list VPC offerings available for VPC creation in specific domain")


@register
class ListVPCOfferings(_EmptyInBasicZone):
    name = "listVPCOfferings"
    description = "Lists VPC offerings"
    Params = ListVPCOfferingsParams
    response = VpcOfferingResponse


class ListProjectsParams(ScopedListParams):
    id = P.Uuid(help_text="list projects by project ID")
    name = P.String(help_text="list projects by name")
    displaytext = P.String(help_text="list projects by display text")
    state = P.String(help_text="list projects by state")
    tags = P.Map(help_text="List projects by tags (key/value pairs)")
    details = P.List(help_text="comma separated list of project details requested")


@register
class ListProjects(_EmptyInBasicZone):
    name = "listProjects"
    description = "Lists projects and provides detailed information for listed projects"
    Params = ListProjectsParams
    response = ProjectResponse


class ListTagsParams(_ScopedParams):
    resourcetype = P.String(help_text="list by resource type")
    resourceid = P.String(help_text="list by resource id")
    key = P.String(help_text="list by key")
    value = P.String(help_text="list by value")
    customer = P.String(help_text="list by customer name")


@register
class ListTags(_EmptyInBasicZone):
    name = "listTags"
    description = "List resource tag(s)"
    Params = ListTagsParams
    response = ResourceTagResponse
