from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Nubo portal"

    def ready(self) -> None:
        from . import commands  # noqa: F401  (registers the framework's API commands)
