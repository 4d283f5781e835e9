"""User VM API commands: each parses its parameters and calls one use case of compute.instances."""
from __future__ import annotations

from rest_framework import serializers

from accounts.access import ALL_ROLE_TYPES, apply_list_scope, resolve_owner
from portal.api import params as P
from portal.api.listing import filter_by, keyword_filter
from portal.api.registry import Command, ScopedListParams, register
from portal.api.responses import SuccessResponse
from portal.errors import InvalidParameterValue
from storage.commands_images import IsoId, TemplateId
from storage.models import Template

from . import instances
from .models import DiskOffering, Host, Pod, ServiceOffering, VirtualMachine, Zone
from .responses_instances import VirtualMachineResponse


def _vms(qs):
    return qs.filter(removed__isnull=True).select_related("account__domain", "zone", "host", "template__os_type",
                                                         "service_offering", "iso")


def VmId(**kwargs):  # noqa: N802 - a parameter factory
    return P.Entity(VirtualMachine, queryset_hook=_vms, **kwargs)


def _details(value) -> dict[str, str]:
    from storage.services import _details as flatten

    return flatten(value)


class DeployVirtualMachineParams(serializers.Serializer):
    zoneid = P.Entity(Zone, required=True, help_text="availability zone for the virtual machine")
    serviceofferingid = P.Entity(ServiceOffering, required=True, help_text="the ID of the service offering")
    templateid = P.Entity(Template, required=True, help_text="the ID of the template, or of a bootable ISO to install "
                                                             "from (then diskofferingid sizes the root disk)")
    name = P.String(max_length=63, help_text="host name for the virtual machine")
    displayname = P.String(help_text="an optional user generated name for the virtual machine")
    group = P.String(help_text="an optional group for the virtual machine")
    keypair = P.String(help_text="name of the ssh key pair used to login to the virtual machine")
    keypairs = P.List(help_text="names of the ssh key pairs used to login to the virtual machine")
    userdata = P.String(help_text="base64 user data (at most 4 KB with GET, 1 MB with POST)")
    ipaddress = P.String(help_text="the ip address for default vm's network")
    hostid = P.Entity(Host, help_text="destination Host ID to deploy the VM to (root admins)")
    rootdisksize = P.Long(help_text="the root disk size in GiB (at least the template's)")
    startvm = P.Boolean(help_text="true by default: start the VM once created")
    details = P.Map(help_text="details: cpuNumber, cpuSpeed, memory for a customized offering")
    networkids = P.List(help_text="list of network ids (the zone's guest network)")
    account = P.String(help_text="an optional account for the virtual machine; must be used with domainId")
    domainid = P.Uuid(help_text="an optional domainId for the virtual machine")
    diskofferingid = P.Entity(DiskOffering, help_text="the ID of the disk offering: with a template, of a data disk "
                                                      "(DATADISK); with an ISO, of the root disk (required)")
    size = P.Long(help_text="the disk size in GiB, for a customized disk offering")
    hypervisor = P.String(help_text="the hypervisor (KVM); for an ISO, where the VM may run")


@register
class DeployVirtualMachine(Command):
    name = "deployVirtualMachine"
    description = "Creates and automatically starts a virtual machine based on a service offering, disk offering, " \
                  "and template."
    Params = DeployVirtualMachineParams
    response = VirtualMachineResponse
    roles = ALL_ROLE_TYPES
    is_async = True
    event = "VM.CREATE"
    instance_type = "VirtualMachine"
    cmd_class = "org.apache.cloudstack.api.command.user.vm.DeployVMCmd"

    def create(self, params):
        owner = resolve_owner(self.caller, params, command=self.name)
        offering = params["serviceofferingid"]
        if not ServiceOffering.objects.usable_by(owner).filter(pk=offering.pk).exists():
            raise InvalidParameterValue(f"Service offering {offering.name} is not available to account {owner.name}")
        keypairs = list(params.get("keypairs") or []) + ([params["keypair"]] if params.get("keypair") else [])
        method = self.request.method if self.request is not None else "POST"
        return instances.allocate(
            self.caller, owner=owner, zone=params["zoneid"], offering=offering, template=params["templateid"],
            name=params.get("name"), display_name=params.get("displayname"), group=params.get("group"),
            keypairs=keypairs, user_data=params.get("userdata"), ip_address=params.get("ipaddress"),
            host=params.get("hostid"), root_disk_size=params.get("rootdisksize"),
            disk_offering=params.get("diskofferingid"), size=params.get("size"), hypervisor=params.get("hypervisor"),
            start=params.get("startvm") is not False, details=_details(params.get("details")), method=method)

    def execute(self, params):
        vm = VirtualMachine.objects.get(uuid=params["_instance_uuid"])
        if vm.state == "Starting":
            vm = instances.start_on_host(self.caller, vm, first=True)
        return _vms(VirtualMachine.objects.filter(pk=vm.pk)).get()


class ListVirtualMachinesParams(ScopedListParams):
    id = P.Uuid(help_text="the ID of the virtual machine")
    ids = P.List(P.Uuid(), help_text="the IDs of the virtual machines")
    name = P.String(help_text="name of the virtual machine")
    state = P.String(help_text="state of the virtual machine")
    zoneid = P.Entity(Zone, help_text="the availability zone ID")
    templateid = P.Uuid(help_text="list vms by template")
    isoid = P.Uuid(help_text="list vms by the ISO attached to them")
    serviceofferingid = P.Uuid(help_text="list by the service offering")
    hostid = P.Entity(Host, help_text="the host ID (root admins)")
    podid = P.Entity(Pod, help_text="the pod ID (root admins)")
    groupid = P.String(help_text="the group ID")
    keypair = P.String(help_text="list vms by ssh keypair name")
    details = P.List(help_text="comma separated list of vm details requested (all by default)")


@register
class ListVirtualMachines(Command):
    name = "listVirtualMachines"
    description = "List the virtual machines owned by the account."
    Params = ListVirtualMachinesParams
    response = VirtualMachineResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = _vms(VirtualMachine.objects.all())
        qs = apply_list_scope(qs, self.caller, params, command=self.name)
        qs = filter_by(qs, params, id="uuid", ids="uuid__in", name="name", state="state__iexact", zoneid="zone",
                       templateid="template__uuid", isoid="iso__uuid", serviceofferingid="service_offering__uuid",
                       hostid="host", podid="pod", groupid="group", keypair="keypairs__contains")
        return keyword_filter(qs, params.get("keyword"), "name", "display_name", "state")


class VmParams(serializers.Serializer):
    id = VmId(required=True, help_text="The ID of the virtual machine")


class StartParams(VmParams):
    hostid = P.Entity(Host, help_text="destination Host ID to start the VM on (root admins)")


class StopParams(VmParams):
    forced = P.Boolean(help_text="Force stop the VM (the guest is powered off at once)")


class DestroyParams(VmParams):
    expunge = P.Boolean(help_text="If true, expunge the VM at once (administrators)")


class _VmCommand(Command):
    response = VirtualMachineResponse
    roles = ALL_ROLE_TYPES
    is_async = True
    instance_type = "VirtualMachine"

    def check(self, params):
        instances.require_manage(self.caller, params["id"])

    def answer(self, vm):
        return _vms(VirtualMachine.objects.filter(pk=vm.pk)).get()


@register
class StartVirtualMachine(_VmCommand):
    name = "startVirtualMachine"
    description = "Starts a virtual machine."
    Params = StartParams
    event = "VM.START"

    def execute(self, params):
        return self.answer(instances.start(self.caller, params["id"], host=params.get("hostid")))


@register
class StopVirtualMachine(_VmCommand):
    name = "stopVirtualMachine"
    description = "Stops a virtual machine."
    Params = StopParams
    event = "VM.STOP"

    def execute(self, params):
        return self.answer(instances.stop(self.caller, params["id"], forced=bool(params.get("forced"))))


@register
class RebootVirtualMachine(_VmCommand):
    name = "rebootVirtualMachine"
    description = "Reboots a virtual machine."
    Params = VmParams
    event = "VM.REBOOT"

    def execute(self, params):
        return self.answer(instances.reboot(self.caller, params["id"]))


@register
class DestroyVirtualMachine(_VmCommand):
    name = "destroyVirtualMachine"
    description = "Destroys a virtual machine."
    Params = DestroyParams
    event = "VM.DESTROY"

    def execute(self, params):
        vm = instances.destroy(self.caller, params["id"], expunge=bool(params.get("expunge")))
        return VirtualMachine.objects.select_related("account__domain", "zone", "host", "template__os_type",
                                                     "service_offering").get(pk=vm.pk)


@register
class RecoverVirtualMachine(_VmCommand):
    name = "recoverVirtualMachine"
    description = "Recovers a virtual machine."
    Params = VmParams
    is_async = False
    event = "VM.RECOVER"

    def execute(self, params):
        return self.answer(instances.recover(self.caller, params["id"]))


@register
class ExpungeVirtualMachine(_VmCommand):
    name = "expungeVirtualMachine"
    description = "Expunge a virtual machine. Once expunged, it cannot be recoverd."
    Params = VmParams
    kind = "success"
    response = SuccessResponse
    event = "VM.EXPUNGE"

    def check(self, params):
        super().check(params)
        instances.check_expunge(self.caller)

    def execute(self, params):
        instances.expunge_vm(self.caller, params["id"])
        return True


# -- changes to a VM -------------------------------------------------------------------------------
class UpdateVirtualMachineParams(VmParams):
    displayname = P.String(help_text="user generated name")
    name = P.String(max_length=63, help_text="new host name of the vm (the VM must be stopped)")
    group = P.String(help_text="group of the virtual machine")
    haenable = P.Boolean(help_text="true if high-availability is enabled for the virtual machine")
    userdata = P.String(help_text="new base64 user data (at most 4 KB with GET, 1 MB with POST; applied at the next "
                                  "start)")
    displayvm = P.Boolean(help_text="an optional field, whether to the display the vm to the end user or not")
    isdynamicallyscalable = P.Boolean(help_text="true if the VM can be scaled while running (its template and "
                                                "enable.dynamic.scale.vm must allow it; from its next start)")


@register
class UpdateVirtualMachine(_VmCommand):
    name = "updateVirtualMachine"
    description = "Updates properties of a virtual machine. The VM has to be stopped and restarted for the new " \
                  "properties to take effect."
    Params = UpdateVirtualMachineParams
    is_async = False
    event = "VM.UPDATE"

    def execute(self, params):
        method = self.request.method if self.request is not None else "POST"
        return self.answer(instances.update(
            self.caller, params["id"], display_name=params.get("displayname"), name=params.get("name"),
            group=params.get("group"), ha_enabled=params.get("haenable"), user_data=params.get("userdata"),
            dynamically_scalable=params.get("isdynamicallyscalable"), method=method))


class VirtualMachineWithPasswordResponse(VirtualMachineResponse):
    """The VM plus its new password, shown only in the answer that set it."""

    password = serializers.SerializerMethodField(help_text="the password (if exists) of the virtual machine")

    def get_password(self, obj) -> str | None:
        return getattr(obj, "new_password", None)


@register
class ResetPasswordForVirtualMachine(_VmCommand):
    name = "resetPasswordForVirtualMachine"
    description = "Resets the password for virtual machine. The virtual machine must be in a \"Stopped\" state and " \
                  "the template must already support this feature for this command to take effect."
    Params = VmParams
    response = VirtualMachineWithPasswordResponse
    event = "VM.RESETPASSWORD"

    def execute(self, params):
        vm, password = instances.reset_password(self.caller, params["id"])
        vm = self.answer(vm)
        vm.new_password = password
        return vm


class ResetSSHKeyParams(VmParams):
    keypair = P.String(help_text="name of the ssh key pair used to login to the virtual machine")
    keypairs = P.List(help_text="names of the ssh key pairs to be used to login to the virtual machine")
    account = P.String(help_text="an optional account for the ssh key; must be used with domainId")
    domainid = P.Uuid(help_text="an optional domainId for the virtual machine")


@register
class ResetSSHKeyForVirtualMachine(_VmCommand):
    name = "resetSSHKeyForVirtualMachine"
    description = "Resets the SSH Key for virtual machine. The virtual machine must be in a \"Stopped\" state."
    Params = ResetSSHKeyParams
    event = "VM.RESETSSHKEY"

    def execute(self, params):
        names = list(params.get("keypairs") or []) + ([params["keypair"]] if params.get("keypair") else [])
        return self.answer(instances.reset_ssh_keys(self.caller, params["id"], names))


class ChangeServiceParams(VmParams):
    serviceofferingid = P.Entity(ServiceOffering, required=True, help_text="the service offering ID to apply")
    details = P.Map(help_text="cpuNumber, cpuSpeed, memory for a customized offering")


@register
class ChangeServiceForVirtualMachine(_VmCommand):
    name = "changeServiceForVirtualMachine"
    description = "Changes the service offering for a virtual machine. The virtual machine must be in a \"Stopped\" " \
                  "state for this command to take effect."
    Params = ChangeServiceParams
    is_async = False
    event = "VM.UPGRADE"

    def execute(self, params):
        return self.answer(instances.change_offering(self.caller, params["id"], params["serviceofferingid"],
                                                     details=_details(params.get("details"))))


@register
class ScaleVirtualMachine(_VmCommand):
    name = "scaleVirtualMachine"
    description = "Scales the virtual machine to a new service offering: a stopped VM to any size, a running one " \
                  "up only, where enable.dynamic.scale.vm and the VM allow it."
    Params = ChangeServiceParams
    event = "VM.SCALE"

    def execute(self, params):
        return self.answer(instances.scale(self.caller, params["id"], params["serviceofferingid"],
                                           details=_details(params.get("details"))))


class _VmByVirtualMachineIdCommand(_VmCommand):
    """A VM command whose VM parameter is `virtualmachineid` (CloudStack's name on these)."""

    def check(self, params):
        instances.require_manage(self.caller, params["virtualmachineid"])

    def instance_of(self, params):
        return params["virtualmachineid"]


class RestoreParams(serializers.Serializer):
    virtualmachineid = VmId(required=True, help_text="Virtual Machine ID")
    templateid = TemplateId(help_text="an optional template Id to restore vm from")


@register
class RestoreVirtualMachine(_VmByVirtualMachineIdCommand):
    name = "restoreVirtualMachine"
    description = "Restore a VM to original template/ISO or new template/ISO"
    Params = RestoreParams
    event = "VM.RESTORE"
    response_name = "restorevmresponse"

    def execute(self, params):
        return self.answer(instances.restore(self.caller, params["virtualmachineid"],
                                             template=params.get("templateid")))


class VirtualMachineMetricsResponse(VirtualMachineResponse):
    """listVirtualMachinesMetrics: the VM plus its allocation in CloudStack's display strings
    (read from the database: lists never call hypervisors)."""

    ipaddress = serializers.SerializerMethodField(help_text="the VM's primary IP address")
    cputotal = serializers.SerializerMethodField(help_text="the total cpu capacity in Ghz")
    memorytotal = serializers.SerializerMethodField(help_text="the total memory capacity in GiB")

    def get_ipaddress(self, obj) -> str | None:
        nics = self.get_nic(obj)
        return nics[0].get("ipaddress") if nics else None

    def get_cputotal(self, obj) -> str:
        return f"{obj.cpu_number * obj.cpu_speed / 1000:.2f} Ghz"

    def get_memorytotal(self, obj) -> str:
        return f"{obj.memory / 1024:.2f} GB"


@register
class ListVirtualMachinesMetrics(ListVirtualMachines):
    name = "listVirtualMachinesMetrics"
    description = "Lists VM metrics"
    response = VirtualMachineMetricsResponse


# -- the ISO drive -----------------------------------------------------------------------------------
class AttachIsoParams(serializers.Serializer):
    id = IsoId(required=True, help_text="the ID of the ISO file")
    virtualmachineid = VmId(required=True, help_text="the ID of the virtual machine")
    forced = P.Boolean(help_text="If true, the ISO attached already is replaced (else attaching is refused)")


@register
class AttachIso(_VmByVirtualMachineIdCommand):
    name = "attachIso"
    description = "Attaches an ISO to a virtual machine."
    Params = AttachIsoParams
    event = "ISO.ATTACH"

    def execute(self, params):
        return self.answer(instances.attach_iso(self.caller, params["virtualmachineid"], params["id"],
                                                forced=bool(params.get("forced"))))


class DetachIsoParams(serializers.Serializer):
    virtualmachineid = VmId(required=True, help_text="The ID of the virtual machine")


@register
class DetachIso(_VmByVirtualMachineIdCommand):
    name = "detachIso"
    description = "Detaches any ISO file (if any) currently attached to a virtual machine."
    Params = DetachIsoParams
    event = "ISO.DETACH"

    def execute(self, params):
        return self.answer(instances.detach_iso(self.caller, params["virtualmachineid"]))
