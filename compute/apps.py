from django.apps import AppConfig


def _openable_vms(caller):
    from .views_instances import visible_vms

    return visible_vms(caller)


def _root_admin_only(model):
    """The rows of an infrastructure model whose pages only a root admin opens."""
    return lambda caller: model.objects.all() if caller.account.is_root_admin else model.objects.none()


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute"

    def ready(self) -> None:
        # API commands and settings register themselves on import
        from . import (commands, commands_console, commands_instances, commands_network,  # noqa: F401
                       commands_offerings, settings_defs, wizard)
        from accounts.services import ACCOUNT_CLEANUP_HOOKS
        from storage.images.services import TEMPLATE_USERS_HOOKS

        from .instances import delete_account_vms, offering_users, template_users
        from .offerings import OFFERING_USERS_HOOKS

        if offering_users not in OFFERING_USERS_HOOKS:
            OFFERING_USERS_HOOKS.append(offering_users)
        if template_users not in TEMPLATE_USERS_HOOKS:
            TEMPLATE_USERS_HOOKS.append(template_users)
        if delete_account_vms not in ACCOUNT_CLEANUP_HOOKS:
            ACCOUNT_CLEANUP_HOOKS.append(delete_account_vms)

        from accounts import limits

        from .instances import count_cpus, count_memory, count_vms

        limits.register_counter("user_vm", count_vms)
        limits.register_counter("cpu", count_cpus)
        limits.register_counter("memory", count_memory)

        # the pages a job's object links to (portal.ui.object_links)
        from portal.ui import register_object_page

        from .models import Host, Zone

        register_object_page("VirtualMachine", "instance-detail", _openable_vms)
        register_object_page("Zone", "infra-zone", _root_admin_only(Zone))
        register_object_page("Host", "infra-host", _root_admin_only(Host))
