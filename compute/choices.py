"""States and kinds of the infrastructure hierarchy, with CloudStack's values."""
from django.db import models


class AllocationState(models.TextChoices):
    ENABLED = "Enabled"
    DISABLED = "Disabled"


class NetworkType(models.TextChoices):
    BASIC = "Basic"
    ADVANCED = "Advanced"


class Hypervisor(models.TextChoices):
    KVM = "KVM"
    SIMULATOR = "Simulator"


class ClusterType(models.TextChoices):
    CLOUD_MANAGED = "CloudManaged"
    EXTERNAL_MANAGED = "ExternalManaged"


class HostState(models.TextChoices):
    CONNECTING = "Connecting"
    UP = "Up"
    DOWN = "Down"
    DISCONNECTED = "Disconnected"
    ALERT = "Alert"


class ResourceState(models.TextChoices):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PREPARE_FOR_MAINTENANCE = "PrepareForMaintenance"
    MAINTENANCE = "Maintenance"
    ERROR_IN_MAINTENANCE = "ErrorInMaintenance"


class Emulation(models.TextChoices):
    """How guests run on a host: decided by the KVM probe unless an admin overrides it."""

    AUTO = "auto", "Automatic (probe)"
    KVM = "kvm", "KVM acceleration"
    QEMU = "qemu", "Software emulation"


class StoragePoolType(models.TextChoices):
    FILESYSTEM = "Filesystem"
    NFS = "NetworkFilesystem"


class StorageScope(models.TextChoices):
    CLUSTER = "CLUSTER"
    ZONE = "ZONE"


class StoragePoolState(models.TextChoices):
    UP = "Up"
    MAINTENANCE = "Maintenance"
    DISABLED = "Disabled"
    ERROR = "Error"


class AlertType(models.IntegerChoices):
    """CloudStack's alert type numbers (AlertManager)."""

    MEMORY = 0, "Memory"
    CPU = 1, "CPU"
    STORAGE = 2, "Primary storage"
    STORAGE_ALLOCATED = 3, "Primary storage allocated"
    PUBLIC_IP = 4, "Public IPs"
    PRIVATE_IP = 5, "Private IPs"
    SECONDARY_STORAGE = 6, "Secondary storage"
    HOST = 7, "Host"
    USERVM = 8, "User VM"
    MANAGEMENT_NODE = 13, "Management node"
    STORAGE_MISC = 25, "Storage"
    RESOURCE_LIMIT_EXCEEDED = 26, "Resource limit exceeded"


class CapacityType(models.IntegerChoices):
    MEMORY = 0, "MEMORY"
    CPU = 1, "CPU"
    STORAGE = 2, "STORAGE"
    STORAGE_ALLOCATED = 3, "STORAGE_ALLOCATED"
    VIRTUAL_NETWORK_PUBLIC_IP = 4, "VIRTUAL_NETWORK_PUBLIC_IP"
    PRIVATE_IP = 5, "PRIVATE_IP"
    SECONDARY_STORAGE = 6, "SECONDARY_STORAGE"
    DIRECT_ATTACHED_PUBLIC_IP = 8, "DIRECT_ATTACHED_PUBLIC_IP"
    CPU_CORE = 90, "CPU_CORE"


class VmState(models.TextChoices):
    """CloudStack's VirtualMachine.State values (the ones a user VM passes through)."""

    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DESTROYED = "Destroyed"
    EXPUNGING = "Expunging"
    MIGRATING = "Migrating"
    ERROR = "Error"


# Which states a VM may leave for each target (declared once; claimed with a conditional UPDATE).
VM_TRANSITIONS: dict[str, tuple[str, ...]] = {
    VmState.STARTING: (VmState.STOPPED,),
    VmState.RUNNING: (VmState.STARTING,),
    VmState.STOPPING: (VmState.RUNNING,),
    VmState.STOPPED: (VmState.STOPPING, VmState.STARTING, VmState.DESTROYED),
    VmState.DESTROYED: (VmState.STOPPED, VmState.RUNNING, VmState.ERROR),
    VmState.EXPUNGING: (VmState.DESTROYED, VmState.ERROR),
    VmState.ERROR: (VmState.STARTING,),
}

# A VM holds host capacity (cpu, memory) in these states.
VM_ON_HOST_STATES = (VmState.STARTING, VmState.RUNNING, VmState.STOPPING, VmState.MIGRATING)
