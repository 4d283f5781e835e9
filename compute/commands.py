"""API commands of the infrastructure hierarchy (root admin), listZones/listHypervisors for all."""
from __future__ import annotations

from typing import Callable, ClassVar

from rest_framework import serializers

from accounts.access import ADMIN_ONLY, ALL_ROLE_TYPES
from accounts.models import Domain
from portal.api import params as P
from portal.api.listing import filter_by, inclusive_end, keyword_filter
from portal.api.registry import Command, ListParams, register
from portal.errors import ParamError

from . import alerts, services
from .capacity import capacities
from .choices import Hypervisor
from .models import Alert, Cluster, Host, Pod, VlanIpRange, Zone
from .responses import (
    AlertResponse,
    CapacityResponse,
    ClusterResponse,
    HostResponse,
    HypervisorResponse,
    PodResponse,
    VlanIpRangeListResponse,
    VlanIpRangeResponse,
    ZoneResponse,
)




# -- zones --------------------------------------------------------------------------------------
class CreateZoneParams(serializers.Serializer):
    name = P.String(required=True, help_text="the name of the Zone")
    networktype = P.String(required=True, help_text="network type of the zone, Basic or Advanced")
    dns1 = P.String(required=True, help_text="the first DNS for the Zone")
    internaldns1 = P.String(required=True, help_text="the first internal DNS for the Zone")
    dns2 = P.String(help_text="the second DNS for the Zone")
    internaldns2 = P.String(help_text="the second internal DNS for the Zone")
    guestcidraddress = P.String(help_text="the guest CIDR address for the Zone")
    domain = P.String(help_text="Network domain name for the networks in the zone")
    domainid = P.Entity(Domain, help_text="the ID of the containing domain, null for public zones")
    allocationstate = P.String(help_text="Allocation state of this Zone for allocation of new resources")
    localstorageenabled = P.Boolean(help_text="true if local storage offering enabled, false otherwise")
    securitygroupenabled = P.Boolean(help_text="true if network is security group enabled, false otherwise")


@register
class CreateZone(Command):
    name = "createZone"
    description = "Creates a Zone."
    Params = CreateZoneParams
    response = ZoneResponse
    roles = ADMIN_ONLY
    event = "ZONE.CREATE"

    def execute(self, params):
        return services.create_zone(
            self.caller, name=params["name"], network_type=params["networktype"], dns1=params["dns1"],
            internal_dns1=params["internaldns1"], dns2=params.get("dns2"), internal_dns2=params.get("internaldns2"),
            guest_cidr=params.get("guestcidraddress", ""), network_domain=params.get("domain", ""),
            domain=params.get("domainid"), allocation_state=params.get("allocationstate"),
            local_storage_enabled=params.get("localstorageenabled", False),
            security_groups_enabled=params.get("securitygroupenabled", False))


class ListZonesParams(ListParams):
    id = P.Uuid(help_text="the ID of the zone")
    name = P.String(help_text="the name of the zone")
    available = P.Boolean(help_text="true if you want to retrieve all available Zones. False if you only want to "
                                    "return the Zones from which you have at least one VM. Default is false.")
    domainid = P.Uuid(help_text="the ID of the domain associated with the zone")
    networktype = P.String(help_text="the network type of the zone that the virtual machine belongs to")
    showcapacities = P.Boolean(help_text="flag to display the capacity of the zones")
    tags = P.Map(help_text="List zones by resource tags (key/value pairs)")


@register
class ListZones(Command):
    name = "listZones"
    description = "Lists zones"
    Params = ListZonesParams
    response = ZoneResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = Zone.objects.visible_to(self.caller).select_related("domain")
        qs = filter_by(qs, params, id="uuid", name="name", networktype="network_type__iexact",
                       domainid="domain__uuid")
        return keyword_filter(qs, params.get("keyword"), "name", "description")


class UpdateZoneParams(serializers.Serializer):
    id = P.Entity(Zone, required=True, help_text="the ID of the Zone")
    name = P.String(help_text="the name of the Zone")
    description = P.String(help_text="the description of the Zone")
    dns1 = P.String(help_text="the first DNS for the Zone")
    dns2 = P.String(help_text="the second DNS for the Zone")
    internaldns1 = P.String(help_text="the first internal DNS for the Zone")
    internaldns2 = P.String(help_text="the second internal DNS for the Zone")
    guestcidraddress = P.String(help_text="the guest CIDR address for the Zone")
    domain = P.String(help_text="Network domain name for the networks in the zone; empty string will update "
                                "domain with NULL value")
    allocationstate = P.String(help_text="Allocation state of this cluster for allocation of new resources")


@register
class UpdateZone(Command):
    name = "updateZone"
    description = "Updates a Zone."
    Params = UpdateZoneParams
    response = ZoneResponse
    roles = ADMIN_ONLY
    event = "ZONE.EDIT"

    def execute(self, params):
        return services.update_zone(
            self.caller, params["id"], name=params.get("name"), description=params.get("description"),
            dns1=params.get("dns1"), dns2=params.get("dns2"), internal_dns1=params.get("internaldns1"),
            internal_dns2=params.get("internaldns2"), guest_cidr=params.get("guestcidraddress"),
            network_domain=params.get("domain"), allocation_state=params.get("allocationstate"))


def id_params(model, help_text: str):
    return type(f"{model.__name__}IdParams", (serializers.Serializer,),
                {"id": P.Entity(model, required=True, help_text=help_text)})


@register
class DeleteZone(Command):
    name = "deleteZone"
    description = "Deletes a Zone."
    Params = id_params(Zone, "the ID of the Zone")
    kind = "success"
    roles = ADMIN_ONLY
    event = "ZONE.DELETE"

    def execute(self, params):
        services.delete_zone(self.caller, params["id"])
        return True


# -- pods ---------------------------------------------------------------------------------------
class CreatePodParams(serializers.Serializer):
    zoneid = P.Entity(Zone, required=True, help_text="the Zone ID in which the Pod will be created")
    name = P.String(required=True, help_text="the name of the Pod")
    gateway = P.String(help_text="the gateway for the Pod")
    netmask = P.String(help_text="the netmask for the Pod")
    startip = P.String(help_text="the starting IP address for the Pod")
    endip = P.String(help_text="the ending IP address for the Pod")
    allocationstate = P.String(help_text="Allocation state of this Pod for allocation of new resources")

    def validate(self, attrs):
        if not attrs.get("gateway") or not attrs.get("netmask"):
            raise serializers.ValidationError("A pod needs its gateway and netmask (the management network of its hosts)")
        return attrs


@register
class CreatePod(Command):
    name = "createPod"
    description = "Creates a new Pod."
    Params = CreatePodParams
    response = PodResponse
    roles = ADMIN_ONLY
    event = "POD.CREATE"

    def execute(self, params):
        return services.create_pod(self.caller, zone=params["zoneid"], name=params["name"], gateway=params["gateway"],
                                   netmask=params["netmask"], start_ip=params.get("startip"),
                                   end_ip=params.get("endip"), allocation_state=params.get("allocationstate"))


class ListPodsParams(ListParams):
    id = P.Uuid(help_text="list Pods by ID")
    name = P.String(help_text="list Pods by name")
    zoneid = P.Entity(Zone, help_text="list Pods by Zone ID")
    allocationstate = P.String(help_text="list pods by allocation state")
    showcapacities = P.Boolean(help_text="flag to display the capacity of the pods")


@register
class ListPods(Command):
    name = "listPods"
    description = "Lists all Pods."
    Params = ListPodsParams
    response = PodResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = Pod.objects.visible_to(self.caller).select_related("zone")
        qs = filter_by(qs, params, id="uuid", name="name", zoneid="zone", allocationstate="allocation_state__iexact")
        return keyword_filter(qs, params.get("keyword"), "name")


class UpdatePodParams(serializers.Serializer):
    id = P.Entity(Pod, required=True, help_text="the ID of the Pod")
    name = P.String(help_text="the name of the Pod")
    gateway = P.String(help_text="the gateway for the Pod")
    netmask = P.String(help_text="the netmask of the Pod")
    startip = P.String(help_text="the starting IP address for the Pod")
    endip = P.String(help_text="the ending IP address for the Pod")
    allocationstate = P.String(help_text="Allocation state of this cluster for allocation of new resources")


@register
class UpdatePod(Command):
    name = "updatePod"
    description = "Updates a Pod."
    Params = UpdatePodParams
    response = PodResponse
    roles = ADMIN_ONLY
    event = "POD.EDIT"

    def execute(self, params):
        return services.update_pod(self.caller, params["id"], name=params.get("name"), gateway=params.get("gateway"),
                                   netmask=params.get("netmask"), start_ip=params.get("startip"),
                                   end_ip=params.get("endip"), allocation_state=params.get("allocationstate"))


@register
class DeletePod(Command):
    name = "deletePod"
    description = "Deletes a Pod."
    Params = id_params(Pod, "the ID of the Pod")
    kind = "success"
    roles = ADMIN_ONLY
    event = "POD.DELETE"

    def execute(self, params):
        services.delete_pod(self.caller, params["id"])
        return True


# -- guest IP ranges ----------------------------------------------------------------------------
class CreateVlanIpRangeParams(serializers.Serializer):
    podid = P.Entity(Pod, help_text="optional parameter. Have to be specified for Direct Untagged vlan only.")
    zoneid = P.Entity(Zone, help_text="the Zone ID of the VLAN IP range")
    gateway = P.String(help_text="the gateway of the VLAN IP range")
    netmask = P.String(help_text="the netmask of the VLAN IP range")
    startip = P.String(help_text="the beginning IP address in the VLAN IP range")
    endip = P.String(help_text="the ending IP address in the VLAN IP range")
    forvirtualnetwork = P.Boolean(help_text="true if VLAN is of Virtual type, false if Direct")
    vlan = P.String(help_text="the ID or VID of the VLAN. If not specified, will be defaulted to the vlan of the "
                              "network or if vlan of the network is null - to Untagged")
    networkid = P.Uuid(help_text="the network id")

    def validate(self, attrs):
        missing = [name for name in ("podid", "gateway", "netmask", "startip") if not attrs.get(name)]
        if missing:
            raise serializers.ValidationError(f"A basic zone's guest IP range needs {', '.join(missing)}")
        if attrs.get("vlan") and attrs["vlan"].lower() not in ("untagged", "vlan://untagged"):
            raise serializers.ValidationError("A basic zone's guest IP range is untagged; leave vlan out")
        return attrs


@register
class CreateVlanIpRange(Command):
    name = "createVlanIpRange"
    description = "Creates a VLAN IP range."
    Params = CreateVlanIpRangeParams
    response = VlanIpRangeResponse
    roles = ADMIN_ONLY
    event = "VLAN.IP.RANGE.CREATE"

    def execute(self, params):
        return services.create_vlan_ip_range(
            self.caller, pod=params["podid"], zone=params.get("zoneid"), gateway=params["gateway"],
            netmask=params["netmask"], start_ip=params["startip"], end_ip=params.get("endip"),
            for_virtual_network=params.get("forvirtualnetwork", False))


class ListVlanIpRangesParams(ListParams):
    id = P.Uuid(help_text="the ID of the VLAN IP range")
    zoneid = P.Entity(Zone, help_text="the Zone ID of the VLAN IP range")
    podid = P.Entity(Pod, help_text="the Pod ID of the VLAN IP range")
    forvirtualnetwork = P.Boolean(help_text="true if VLAN is of Virtual type, false if Direct")
    vlan = P.String(help_text="the ID or VID of the VLAN. Default is an \"untagged\" VLAN.")


@register
class ListVlanIpRanges(Command):
    name = "listVlanIpRanges"
    description = "Lists all VLAN IP ranges."
    Params = ListVlanIpRangesParams
    response = VlanIpRangeListResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = VlanIpRange.objects.visible_to(self.caller).select_related("zone", "pod")
        qs = filter_by(qs, params, id="uuid", zoneid="zone", podid="pod", forvirtualnetwork="for_virtual_network")
        return keyword_filter(qs, params.get("keyword"), "start_ip", "end_ip", "gateway")


@register
class DeleteVlanIpRange(Command):
    name = "deleteVlanIpRange"
    description = "Deletes a VLAN IP range."
    Params = id_params(VlanIpRange, "the id of the VLAN IP range")
    kind = "success"
    roles = ADMIN_ONLY
    event = "VLAN.IP.RANGE.DELETE"

    def execute(self, params):
        services.delete_vlan_ip_range(self.caller, params["id"])
        return True


# -- clusters -----------------------------------------------------------------------------------
class AddClusterParams(serializers.Serializer):
    zoneid = P.Entity(Zone, required=True, help_text="the Zone ID for the cluster")
    podid = P.Entity(Pod, required=True, help_text="the Pod ID for the host")
    clustername = P.String(required=True, help_text="the cluster name")
    clustertype = P.String(required=True, help_text="type of the cluster: CloudManaged, ExternalManaged")
    hypervisor = P.String(required=True, help_text="hypervisor type of the cluster: KVM, Simulator")
    allocationstate = P.String(help_text="Allocation state of this cluster for allocation of new resources")
    emulation = P.String(help_text="how guests run on the cluster's hosts: auto (the KVM probe decides, default), "
                                   "kvm or qemu (software emulation)")
    url = P.String(help_text="the URL")
    username = P.String(help_text="the username for the cluster")
    password = P.Password(help_text="the password for the host")


@register
class AddCluster(Command):
    name = "addCluster"
    description = "Adds a new cluster"
    Params = AddClusterParams
    response = ClusterResponse
    kind = "list"
    roles = ADMIN_ONLY
    event = "CLUSTER.CREATE"

    def execute(self, params):
        return [services.add_cluster(self.caller, zone=params["zoneid"], pod=params["podid"],
                                     name=params["clustername"], hypervisor=params["hypervisor"],
                                     cluster_type=params["clustertype"],
                                     allocation_state=params.get("allocationstate"),
                                     emulation=params.get("emulation"))]


class ListClustersParams(ListParams):
    id = P.Uuid(help_text="lists clusters by the cluster ID")
    name = P.String(help_text="lists clusters by the cluster name")
    zoneid = P.Entity(Zone, help_text="lists clusters by Zone ID")
    podid = P.Entity(Pod, help_text="lists clusters by Pod ID")
    hypervisor = P.String(help_text="lists clusters by hypervisor type")
    clustertype = P.String(help_text="lists clusters by cluster type")
    allocationstate = P.String(help_text="lists clusters by allocation state")
    managedstate = P.String(help_text="whether this cluster is managed by cloudstack")
    showcapacities = P.Boolean(help_text="flag to display the capacity of the clusters")


@register
class ListClusters(Command):
    name = "listClusters"
    description = "Lists clusters."
    Params = ListClustersParams
    response = ClusterResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = Cluster.objects.visible_to(self.caller).select_related("zone", "pod")
        qs = filter_by(qs, params, id="uuid", name="name", zoneid="zone", podid="pod",
                       hypervisor="hypervisor__iexact", clustertype="cluster_type__iexact",
                       allocationstate="allocation_state__iexact", managedstate="managed_state__iexact")
        return keyword_filter(qs, params.get("keyword"), "name")


class UpdateClusterParams(serializers.Serializer):
    id = P.Entity(Cluster, required=True, help_text="the ID of the Cluster")
    clustername = P.String(help_text="the cluster name")
    allocationstate = P.String(help_text="Allocation state of this cluster for allocation of new resources")
    managedstate = P.String(help_text="whether this cluster is managed by cloudstack")
    emulation = P.String(help_text="how guests run on the cluster's hosts: auto, kvm or qemu")


@register
class UpdateCluster(Command):
    name = "updateCluster"
    description = "Updates an existing cluster"
    Params = UpdateClusterParams
    response = ClusterResponse
    roles = ADMIN_ONLY
    event = "CLUSTER.EDIT"

    def execute(self, params):
        return services.update_cluster(self.caller, params["id"], name=params.get("clustername"),
                                       allocation_state=params.get("allocationstate"),
                                       managed_state=params.get("managedstate"), emulation=params.get("emulation"))


@register
class DeleteCluster(Command):
    name = "deleteCluster"
    description = "Deletes a cluster."
    Params = id_params(Cluster, "the cluster ID")
    kind = "success"
    roles = ADMIN_ONLY
    event = "CLUSTER.DELETE"

    def execute(self, params):
        services.delete_cluster(self.caller, params["id"])
        return True


# -- hosts --------------------------------------------------------------------------------------
class AddHostParams(serializers.Serializer):
    zoneid = P.Entity(Zone, required=True, help_text="the Zone ID for the host")
    podid = P.Entity(Pod, required=True, help_text="the Pod ID for the host")
    url = P.String(required=True, max_length=1024, help_text="the host URL: a libvirt URI (qemu:///system, "
                                                             "qemu+ssh://user@host/system, qemu+tls://host/system) "
                                                             "or a host name")
    hypervisor = P.String(required=True, help_text="hypervisor type of the host")
    clusterid = P.Entity(Cluster, help_text="the cluster ID for the host")
    clustername = P.String(help_text="the cluster name for the host")
    username = P.String(help_text="the username for the host; required to be passed for hypervisors other than VMWare")
    password = P.Password(help_text="the password for the host; required to be passed for hypervisors other than VMWare")
    hosttags = P.String(help_text="list of tags to be added to the host")
    allocationstate = P.String(help_text="Allocation state of this Host for allocation of new resources")

    def validate(self, attrs):
        if attrs.get("clusterid") is None:
            name = attrs.get("clustername")
            cluster = Cluster.objects.filter(pod=attrs["podid"], name=name).first() if name else None
            if cluster is None:
                raise serializers.ValidationError("Give clusterid (or the clustername of a cluster in that pod)")
            attrs["clusterid"] = cluster
        return attrs


@register
class AddHost(Command):
    name = "addHost"
    description = "Adds a new host."
    Params = AddHostParams
    response = HostResponse
    kind = "list"
    roles = ADMIN_ONLY
    event = "HOST.ADD"

    def execute(self, params):
        return [services.add_host(self.caller, zone=params["zoneid"], pod=params["podid"], cluster=params["clusterid"],
                                  url=params["url"], username=params.get("username", ""),
                                  password=params.get("password", ""), host_tags=params.get("hosttags", ""),
                                  hypervisor=params["hypervisor"], allocation_state=params.get("allocationstate"))]


class ListHostsParams(ListParams):
    id = P.Uuid(help_text="the id of the host")
    name = P.String(help_text="the name of the host")
    type = P.String(help_text="the host type")
    state = P.String(help_text="the state of the host")
    resourcestate = P.String(help_text="list hosts by resource state. Resource state represents current state "
                                       "determined by admin of host, value can be one of [Enabled, Disabled, "
                                       "Unmanaged, PrepareForMaintenance, ErrorInMaintenance, Maintenance, Error]")
    zoneid = P.Entity(Zone, help_text="the Zone ID for the host")
    podid = P.Entity(Pod, help_text="the Pod ID for the host")
    clusterid = P.Entity(Cluster, help_text="lists hosts existing in particular cluster")
    hypervisor = P.String(help_text="hypervisor type of host: KVM, Simulator")
    virtualmachineid = P.Uuid(help_text="lists hosts in the same cluster as this VM and flag hosts with enough "
                                        "CPU/RAm to host this VM")
    hahost = P.Boolean(help_text="if true, list only hosts dedicated to HA")
    details = P.List(help_text="comma separated list of host details requested, value can be a list of [ min, "
                               "all, capacity, events, stats]")


@register
class ListHosts(Command):
    name = "listHosts"
    description = "Lists hosts."
    Params = ListHostsParams
    response = HostResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = Host.objects.visible_to(self.caller).select_related("zone", "pod", "cluster")
        qs = filter_by(qs, params, id="uuid", name="name", zoneid="zone", podid="pod", clusterid="cluster",
                       type="type__iexact", state="state__iexact", resourcestate="resource_state__iexact",
                       hypervisor="hypervisor__iexact")
        if params.get("hahost"):
            qs = qs.none()
        return keyword_filter(qs, params.get("keyword"), "name", "url")


class UpdateHostParams(serializers.Serializer):
    id = P.Entity(Host, required=True, help_text="the ID of the host to update")
    name = P.String(help_text="the new name of the host")
    hosttags = P.String(help_text="list of tags to be added to the host")
    allocationstate = P.String(help_text="Change resource state of host, valid values are [Enable, Disable]. "
                                         "Operation may failed if host in states not allowing Enable/Disable")
    emulation = P.String(help_text="how guests run on this host: auto (KVM probe), kvm or qemu")
    oscategoryid = P.Uuid(help_text="the id of Os category to update the host with")
    annotation = P.String(help_text="Add an annotation to this host")


@register
class UpdateHost(Command):
    name = "updateHost"
    description = "Updates a host."
    Params = UpdateHostParams
    response = HostResponse
    roles = ADMIN_ONLY
    event = "HOST.UPDATE"

    def execute(self, params):
        return services.update_host(self.caller, params["id"], name=params.get("name"),
                                    host_tags=params.get("hosttags"), allocation_state=params.get("allocationstate"),
                                    emulation=params.get("emulation"))


class DeleteHostParams(serializers.Serializer):
    id = P.Entity(Host, required=True, help_text="the host ID")
    forced = P.Boolean(help_text="Force delete the host. All HA enabled vms running on the host will be put to HA; "
                                 "HA disabled ones will be stopped")
    forcedestroylocalstorage = P.Boolean(help_text="Force destroy local storage on this host. All VMs created on "
                                                   "this local storage will be destroyed")


@register
class DeleteHost(Command):
    name = "deleteHost"
    description = "Deletes a host."
    Params = DeleteHostParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "HOST.DELETE"

    def execute(self, params):
        services.delete_host(self.caller, params["id"], forced=params.get("forced", False))
        return True


class HostAsyncCommand(Command):
    Params = id_params(Host, "the host ID")
    response = HostResponse
    roles = ADMIN_ONLY
    is_async = True
    instance_type = "Host"

    def instance_of(self, params):
        return params["id"]


@register
class ReconnectHost(HostAsyncCommand):
    name = "reconnectHost"
    description = "Reconnects a host."
    event = "HOST.RECONNECT"

    def execute(self, params):
        return services.reconnect_host(self.caller, params["id"])


@register
class PrepareHostForMaintenance(HostAsyncCommand):
    name = "prepareHostForMaintenance"
    description = "Prepares a host for maintenance."
    event = "MAINT.PREPARE"

    def execute(self, params):
        return services.prepare_host_for_maintenance(self.caller, params["id"])


@register
class CancelHostMaintenance(HostAsyncCommand):
    name = "cancelHostMaintenance"
    description = "Cancels host maintenance."
    event = "MAINT.CANCEL"

    def execute(self, params):
        return services.cancel_host_maintenance(self.caller, params["id"])


# -- hypervisors, capacity, alerts --------------------------------------------------------------
class ListHypervisorsParams(serializers.Serializer):
    zoneid = P.Entity(Zone, help_text="the zone id for listing hypervisors.")


@register
class ListHypervisors(Command):
    name = "listHypervisors"
    description = "List hypervisors"
    Params = ListHypervisorsParams
    response = HypervisorResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        if params.get("zoneid"):
            names = sorted(set(Cluster.objects.filter(zone=params["zoneid"]).values_list("hypervisor", flat=True)))
        else:
            names = list(Hypervisor.values)
        return [{"name": name} for name in names]


class ListCapacityParams(ListParams):
    zoneid = P.Entity(Zone, help_text="lists capacity by the Zone ID")
    podid = P.Entity(Pod, help_text="lists capacity by the Pod ID")
    clusterid = P.Entity(Cluster, help_text="lists capacity by the Cluster ID")
    type = P.Integer(help_text="lists capacity by type* CAPACITY_TYPE_MEMORY = 0* CAPACITY_TYPE_CPU = 1* "
                               "CAPACITY_TYPE_STORAGE = 2* CAPACITY_TYPE_STORAGE_ALLOCATED = 3* "
                               "CAPACITY_TYPE_VIRTUAL_NETWORK_PUBLIC_IP = 4* CAPACITY_TYPE_PRIVATE_IP = 5* "
                               "CAPACITY_TYPE_SECONDARY_STORAGE = 6* CAPACITY_TYPE_VLAN = 7* "
                               "CAPACITY_TYPE_DIRECT_ATTACHED_PUBLIC_IP = 8* CAPACITY_TYPE_LOCAL_STORAGE = 9* "
                               "CAPACITY_TYPE_CPU_CORE = 90.")
    fetchlatest = P.Boolean(help_text="recalculate capacities and fetch the latest")
    sortby = P.String(help_text="Sort the results. Available values: Usage")


@register
class ListCapacity(Command):
    name = "listCapacity"
    description = "Lists all the system wide capacities."
    Params = ListCapacityParams
    response = CapacityResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        rows = capacities(zone=params.get("zoneid"), pod=params.get("podid"), cluster=params.get("clusterid"),
                          capacity_type=params.get("type"))
        result = [row.as_response() for row in rows]
        if (params.get("sortby") or "").lower() == "usage":
            result.sort(key=lambda r: float(r["percentused"]), reverse=True)
        return result


class ListAlertsParams(ListParams):
    id = P.Uuid(help_text="the ID of the alert")
    type = P.String(help_text="list by alert type")
    name = P.String(help_text="list by alert name")


@register
class ListAlerts(Command):
    name = "listAlerts"
    description = "Lists all alerts."
    Params = ListAlertsParams
    response = AlertResponse
    kind = "list"
    roles = ADMIN_ONLY

    def execute(self, params):
        qs = Alert.objects.visible_to(self.caller).filter(archived=False)
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("type"):
            qs = qs.filter(type=alert_type(params))
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        return keyword_filter(qs, params.get("keyword"), "subject", "name")


def alert_type(params) -> int | None:
    """The `type` parameter of the alert commands: a string holding the type's number."""
    if not params.get("type"):
        return None
    try:
        number = int(params["type"])
    except ValueError:
        number = None
    if number is None or not 0 <= number < 2 ** 31:
        raise ParamError(f"Invalid parameter type value={params['type']}: alert types are numbers such as 7")
    return number


def alert_selection_params(verb: str) -> type[serializers.Serializer]:
    """The parameters of archiveAlerts / deleteAlerts (CloudStack 4.18's)."""
    formats = '(use format "yyyy-MM-dd" or the new format "yyyy-MM-dd HH:mm:ss")'
    return type(f"{verb.title()}AlertsParams", (serializers.Serializer,), {
        "ids": P.List(P.Entity(Alert), help_text="the IDs of the alerts"),
        "type": P.String(help_text=f"{verb} by alert type"),
        "startdate": P.Date(help_text=f"start date range to {verb} alerts (including) this date {formats}"),
        "enddate": P.Date(help_text=f"end date range to {verb} alerts (including) this date {formats}"),
    })


def _alert_selection(params) -> dict:
    return {"alerts": params.get("ids") or None, "alert_type": alert_type(params),
            "start": params.get("startdate"), "end": inclusive_end(params.get("enddate"))}


class AlertSelectionCommand(Command):
    """archiveAlerts / deleteAlerts: one compute.alerts function over the alerts the parameters choose."""

    kind = "success"
    roles = ADMIN_ONLY
    service: ClassVar[Callable[..., int]]

    def execute(self, params):
        type(self).service(self.caller, **_alert_selection(params))
        return True


@register
class ArchiveAlerts(AlertSelectionCommand):
    name = "archiveAlerts"
    description = "Archive one or more alerts."
    Params = alert_selection_params("archive")
    event = "ALERT.ARCHIVE"
    service = staticmethod(alerts.archive_alerts)


@register
class DeleteAlerts(AlertSelectionCommand):
    name = "deleteAlerts"
    description = "Delete one or more alerts."
    Params = alert_selection_params("delete")
    event = "ALERT.DELETE"
    service = staticmethod(alerts.delete_alerts)
