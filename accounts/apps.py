from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from . import commands, commands_keypairs, commands_limits, settings_defs  # noqa: F401  (commands, settings)
        from .access import announce_access_changes

        announce_access_changes()
