"""`manage.py bootstrap`: idempotent first-run data (roles, ROOT, admin, OS types, default offerings)."""
import logging
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from accounts.services import bootstrap as bootstrap_accounts
from compute.offerings import seed_default_offerings
from storage.services import seed_os_types

log = logging.getLogger("nubo.bootstrap")


class Command(BaseCommand):
    help = ("Create the first-run data that is missing: default roles, the ROOT domain, the admin account, OS types, "
            "the default service and disk offerings, and the built-in Tiny Linux template and ISO (built from Debian "
            "packages).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--skip-images", action="store_true",
                            help="do not build and register the built-in Tiny Linux template and ISO")

    def _builtin_images(self) -> list[str]:
        """Build (or find up to date) the Tiny Linux images and register them; a build that cannot
        run (packages missing, no apt) is reported, and the rest of the bootstrap still counts."""
        from django.conf import settings

        from storage.images import builtin
        from storage.images.services import register_builtin

        try:
            manifest = builtin.build(Path(settings.VAR_DIR) / "images",
                                     cache_dir=Path(settings.VAR_DIR) / "cache" / "images")
        except builtin.BuildError as exc:
            log.warning("The built-in Tiny Linux images were not built: %s", exc.message)
            return []
        return register_builtin(manifest)

    def handle(self, *args, **options):
        password = os.environ.get("NUBO_ADMIN_PASSWORD") or None
        done = bootstrap_accounts(password)
        added = seed_os_types()
        if added:
            done.append(f"{added} OS types")
        done.extend(seed_default_offerings())
        if not options["skip_images"]:
            done.extend(self._builtin_images())
        for item in done:
            self.stdout.write(f"bootstrap: created {item}")
        if not done:
            self.stdout.write("bootstrap: nothing to do")
        from accounts.models import User

        if User.objects.filter(username="admin", domain__path="/", password_is_default=True).exists():
            log.warning("The admin password is still the default 'password': log in and change it, "
                        "or set NUBO_ADMIN_PASSWORD before the first `make run`.")
