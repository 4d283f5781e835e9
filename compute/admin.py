"""The compute app's rows in Django admin, read-only: zones, hosts, VMs and the rest change through
compute's services (which also act on the hosts and write events)."""
from django.contrib import admin

from portal.admin import ReadOnlyAdmin

from .models import (Alert, Cluster, ConsoleSession, DiskOffering, GuestIpAddress, GuestNetwork, Host, Nic, Pod,
                     ServiceOffering, VirtualMachine, VlanIpRange, Zone)


@admin.register(Zone)
class ZoneAdmin(ReadOnlyAdmin):
    list_display = ("name", "network_type", "allocation_state", "created")
    search_fields = ("name",)


@admin.register(Pod)
class PodAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "gateway", "netmask")


@admin.register(VlanIpRange)
class VlanIpRangeAdmin(ReadOnlyAdmin):
    list_display = ("pod", "start_ip", "end_ip", "gateway", "netmask")


@admin.register(GuestIpAddress)
class GuestIpAddressAdmin(ReadOnlyAdmin):
    list_display = ("address", "ip_range", "allocated")
    search_fields = ("address",)


@admin.register(Cluster)
class ClusterAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "pod", "hypervisor")


@admin.register(Host)
class HostAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "cluster", "url", "state", "resource_state", "last_pinged")
    list_filter = ("state", "resource_state", "hypervisor")
    search_fields = ("name", "url")


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("sent", "type", "name", "subject", "archived")


@admin.register(ServiceOffering)
class ServiceOfferingAdmin(ReadOnlyAdmin):
    list_display = ("name", "cpu_number", "cpu_speed", "memory", "state")


@admin.register(DiskOffering)
class DiskOfferingAdmin(ReadOnlyAdmin):
    list_display = ("name", "disk_size", "customized", "state")


@admin.register(GuestNetwork)
class GuestNetworkAdmin(ReadOnlyAdmin):
    list_display = ("name", "zone", "created")


@admin.register(VirtualMachine)
class VirtualMachineAdmin(ReadOnlyAdmin):
    list_display = ("name", "instance_name", "account", "zone", "host", "state", "created")
    list_filter = ("state", "zone")
    search_fields = ("name", "display_name", "instance_name")
    exclude = ("password", "vnc_password", "user_data")  # secrets (encrypted) and the tenant's data


@admin.register(Nic)
class NicAdmin(ReadOnlyAdmin):
    list_display = ("virtual_machine", "mac", "address", "network")


@admin.register(ConsoleSession)
class ConsoleSessionAdmin(ReadOnlyAdmin):
    list_display = ("virtual_machine", "user", "created", "connected", "ended", "end_reason", "client_address")
    list_filter = ("ended",)
    exclude = ("token_hash",)
