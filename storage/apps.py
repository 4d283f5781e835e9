from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"
    verbose_name = "Storage"

    def ready(self) -> None:
        from accounts.services import ACCOUNT_CLEANUP_HOOKS

        from . import commands, commands_images, settings_defs  # noqa: F401  (registers API commands and settings)
        from accounts import limits

        from .images.services import count_secondary_storage, count_templates, delete_account_templates

        limits.register_counter("template", count_templates)
        limits.register_counter("secondary_storage", count_secondary_storage)

        from .volumes import count_primary_storage, count_volumes

        limits.register_counter("volume", count_volumes)
        limits.register_counter("primary_storage", count_primary_storage)

        if delete_account_templates not in ACCOUNT_CLEANUP_HOOKS:
            ACCOUNT_CLEANUP_HOOKS.append(delete_account_templates)

        # the pages a job's object links to (portal.ui.object_links)
        from portal.ui import register_object_page

        from .models import Template

        register_object_page("Template", "templates-detail", lambda caller: Template.objects.visible_to(caller).templates())
        register_object_page("Iso", "isos-detail", lambda caller: Template.objects.visible_to(caller).isos())
