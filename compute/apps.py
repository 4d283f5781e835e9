from django.apps import AppConfig


class ComputeConfig(AppConfig):
    name = "compute"
    verbose_name = "Compute"

    def ready(self) -> None:
        from . import commands, settings_defs, wizard  # noqa: F401  (registers API commands and settings)
