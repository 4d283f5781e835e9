"""UserVmResponse (key `virtualmachine`): every list field always an array (nic, securitygroup,
affinitygroup, tags), as CloudStack initialises them; host and instance names for root admins."""
from __future__ import annotations

from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid


def nic_entry(nic) -> dict:
    """A NIC as CloudStack's NicResponse shows it (a VM's `nic` list and listNics): the NIC with
    its network, and its address with the range's netmask and gateway (select_related
    "address__ip_range" and "network")."""
    entry = {"id": str(nic.uuid), "networkid": str(nic.network.uuid), "networkname": nic.network.name,
             "macaddress": nic.mac, "isdefault": nic.is_default, "deviceid": str(nic.device_id),
             "traffictype": "Guest", "type": "Shared", "broadcasturi": "vlan://untagged",
             "isolationuri": "ec2://untagged", "secondaryip": []}
    if nic.address is not None:
        entry.update(ipaddress=nic.address.address, netmask=nic.address.ip_range.netmask,
                     gateway=nic.address.ip_range.gateway)
    return entry


class VirtualMachineResponse(ResponseSerializer):
    object_name = "virtualmachine"
    id = Uuid(source="uuid", help_text="the ID of the virtual machine")
    name = s.CharField(help_text="the name (host name) of the virtual machine")
    displayname = s.CharField(source="display_name", help_text="user generated name")
    state = s.CharField(help_text="the state of the virtual machine")
    instancename = s.SerializerMethodField(help_text="instance name of the VM on its host (root admins)")
    account = s.CharField(source="account.name", help_text="the account associated with the virtual machine")
    domainid = Uuid(source="account.domain.uuid", help_text="the ID of the domain of the virtual machine")
    domain = s.CharField(source="account.domain.name", help_text="the name of the domain of the virtual machine")
    created = DateTime(help_text="the date when this virtual machine was created")
    zoneid = Uuid(source="zone.uuid", help_text="the ID of the availability zone for the virtual machine")
    zonename = s.CharField(source="zone.name", help_text="the name of the availability zone")
    hostid = s.SerializerMethodField(help_text="the ID of the host for the virtual machine (root admins)")
    hostname = s.SerializerMethodField(help_text="the name of the host for the virtual machine (root admins)")
    templateid = Uuid(source="template.uuid", help_text="the ID of the template for the virtual machine")
    templatename = s.CharField(source="template.name", help_text="the name of the template")
    templatedisplaytext = s.CharField(source="template.display_text", help_text="the template's display text")
    isoid = Uuid(source="iso.uuid", help_text="the ID of the ISO attached to the virtual machine")
    isoname = s.CharField(source="iso.name", help_text="the name of the ISO attached to the virtual machine")
    isodisplaytext = s.CharField(source="iso.display_text", help_text="an alternate display text of the ISO attached "
                                                                      "to the virtual machine")
    serviceofferingid = Uuid(source="service_offering.uuid", help_text="the ID of the service offering")
    serviceofferingname = s.CharField(source="service_offering.name", help_text="the name of the service offering")
    cpunumber = s.IntegerField(source="cpu_number", help_text="the number of vCPUs of the virtual machine")
    cpuspeed = s.IntegerField(source="cpu_speed", help_text="the speed of each vCPU (MHz)")
    memory = s.IntegerField(help_text="the memory allocated for the virtual machine (MiB)")
    guestosid = Uuid(source="template.os_type.uuid", help_text="Os type ID of the virtual machine")
    ostypeid = Uuid(source="template.os_type.uuid", help_text="OS type id of the vm")
    osdisplayname = s.CharField(source="template.os_type.description", help_text="OS name of the vm")
    hypervisor = s.SerializerMethodField(help_text="the hypervisor on which the template runs")
    rootdeviceid = s.SerializerMethodField(help_text="device ID of the root volume")
    rootdevicetype = s.SerializerMethodField(help_text="device type of the root volume")
    haenable = s.BooleanField(source="ha_enabled", help_text="true if high-availability is enabled")
    passwordenabled = s.BooleanField(source="template.password_enabled",
                                     help_text="true if the password reset feature is enabled")
    keypairs = s.SerializerMethodField(help_text="the names of the SSH key pairs of the virtual machine")
    group = s.CharField(help_text="the group name of the virtual machine")
    displayvm = s.SerializerMethodField(help_text="an optional field whether to show the vm to the end user")
    isdynamicallyscalable = s.BooleanField(source="dynamically_scalable",
                                           help_text="true if vm can be scaled while running")
    nic = s.SerializerMethodField(help_text="the list of nics associated with vm")
    securitygroup = s.SerializerMethodField(help_text="list of security groups associated with the virtual machine")
    affinitygroup = s.SerializerMethodField(help_text="list of affinity groups associated with the virtual machine")
    tags = s.SerializerMethodField(help_text="the list of resource tags associated")
    details = s.SerializerMethodField(help_text="Vm details in key/value pairs.")

    @classmethod
    def prepare(cls, rows: list) -> None:
        """The NICs of a page of VMs in one query."""
        from compute.models import Nic

        by_vm: dict[int, list] = {}
        for nic in Nic.objects.filter(virtual_machine__in=rows).select_related("address__ip_range", "network"):
            by_vm.setdefault(nic.virtual_machine_id, []).append(nic)
        for vm in rows:
            vm._nics = by_vm.get(vm.pk, [])

    def get_instancename(self, obj) -> str | None:
        return obj.instance_name if self.for_root_admin() else None

    def get_hostid(self, obj) -> str | None:
        return str(obj.host.uuid) if self.for_root_admin() and obj.host_id else None

    def get_hostname(self, obj) -> str | None:
        return obj.host.name if self.for_root_admin() and obj.host_id else None

    def get_hypervisor(self, obj) -> str:
        return obj.host.hypervisor if obj.host_id else obj.template.hypervisor or "KVM"

    def get_rootdeviceid(self, obj) -> int:
        return 0

    def get_rootdevicetype(self, obj) -> str:
        return "ROOT"

    def get_keypairs(self, obj) -> str | None:
        return ",".join(obj.keypairs) or None

    def get_displayvm(self, obj) -> bool:
        return True

    def get_nic(self, obj) -> list[dict]:
        nics = getattr(obj, "_nics", None)
        if nics is None:
            nics = list(obj.nics.select_related("address__ip_range", "network"))
        return [nic_entry(nic) for nic in nics]

    def get_securitygroup(self, obj) -> list:
        return []

    def get_affinitygroup(self, obj) -> list:
        return []

    def get_tags(self, obj) -> list:
        return []

    def get_details(self, obj) -> dict | None:
        return None

