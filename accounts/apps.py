from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenancy"

    def ready(self) -> None:
        from . import commands  # noqa: F401  (registers the tenancy API commands)
