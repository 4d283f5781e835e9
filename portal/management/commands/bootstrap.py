"""`manage.py bootstrap`: idempotent first-run data (roles, ROOT, admin, OS types)."""
import logging
import os

from django.core.management.base import BaseCommand

from accounts.services import bootstrap as bootstrap_accounts
from storage.services import seed_os_types

log = logging.getLogger("nubo.bootstrap")


class Command(BaseCommand):
    help = "Create the first-run data that is missing: default roles, the ROOT domain, the admin account, OS types."

    def handle(self, *args, **options):
        password = os.environ.get("NUBO_ADMIN_PASSWORD") or None
        done = bootstrap_accounts(password)
        added = seed_os_types()
        if added:
            done.append(f"{added} OS types")
        for item in done:
            self.stdout.write(f"bootstrap: created {item}")
        if not done:
            self.stdout.write("bootstrap: nothing to do")
        from accounts.models import User

        if User.objects.filter(username="admin", domain__path="/", password_is_default=True).exists():
            log.warning("The admin password is still the default 'password': log in and change it, "
                        "or set NUBO_ADMIN_PASSWORD before the first `make run`.")
