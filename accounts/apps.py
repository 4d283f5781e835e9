from django.apps import AppConfig


def _openable_accounts(caller):
    """Account pages are for admins (their subtree's accounts)."""
    from portal.views import is_admin

    from .models import Account
    from .views import visible_accounts

    return visible_accounts(caller) if is_admin(caller) else Account.objects.none()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from . import commands, commands_keypairs, commands_limits, settings_defs  # noqa: F401  (commands, settings)

        # the pages a job's object links to (portal.ui.object_links)
        from portal.ui import register_object_page

        register_object_page("Account", "account-detail", _openable_accounts)

        from .access import announce_access_changes

        announce_access_changes()
