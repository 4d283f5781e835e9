"""`manage.py doctor`: check this installation, one line per check, with a fix for each problem."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils.module_loading import autodiscover_modules

from portal.doctor import FAIL, run_checks


class Command(BaseCommand):
    help = ("Check the database, migrations, Redis, workers, secrets, var/ and the web port; print one line "
            "per check and how to fix each problem. Exit status 1 when a check fails.")
    requires_system_checks: list[str] = []  # the doctor must run even when the project is broken

    def handle(self, *args, **options) -> None:
        autodiscover_modules("doctor")  # every installed app's doctor.py registers its checks
        results = run_checks()
        width = max(len(name) for name, _ in results)
        style = {"OK": self.style.SUCCESS, "WARN": self.style.WARNING, "FAIL": self.style.ERROR}
        for name, result in results:
            status = style.get(result.status, str)(f"{result.status:<4}")
            self.stdout.write(f"{status}  {name:<{width}}  {result.detail}")
            if result.fix and result.status != "OK":
                self.stdout.write(f"      {'':<{width}}  fix: {result.fix}")
        failed = [name for name, result in results if result.status == FAIL]
        if failed:
            self.stderr.write(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}")
            raise SystemExit(1)
