from django.apps import AppConfig


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
