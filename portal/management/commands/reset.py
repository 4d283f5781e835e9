"""`manage.py reset --yes-delete-everything`: delete all data, then bootstrap again."""
from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from portal.cache import bump_all_generations

CONFIRM_FLAG = "--yes-delete-everything"


class Command(BaseCommand):
    help = ("Delete every row in the database (domains, accounts, users, keys, jobs, events, …) and the "
            f"pending jobs in Redis, then run bootstrap. Does nothing without {CONFIRM_FLAG}.")

    def add_arguments(self, parser) -> None:
        parser.add_argument(CONFIRM_FLAG, dest="confirmed", action="store_true",
                            help="confirm that all data may be deleted")

    def handle(self, *args, **options) -> None:
        where = f"{connection.vendor} database {connection.settings_dict.get('NAME')}"
        if not options["confirmed"]:
            raise CommandError(
                f"This deletes ALL data in the {where} and cannot be undone. "
                f"To go ahead, run: manage.py reset {CONFIRM_FLAG}",
                returncode=2,
            )
        self.stdout.write(f"reset: deleting all data in the {where}")
        call_command("flush", interactive=False, verbosity=0)
        bump_all_generations()  # running processes must not serve callers or rules of deleted rows
        self._empty_job_queue()
        call_command("bootstrap", stdout=self.stdout, stderr=self.stderr)
        self.stdout.write("reset: done")

    def _empty_job_queue(self) -> None:
        """Jobs queued for rows that no longer exist would only fail; drop them."""
        from django.conf import settings

        try:
            import django_rq

            queue = django_rq.get_queue(getattr(settings, "NUBO_JOB_QUEUE", "default"))
            queue.connection.connection_pool.connection_kwargs.update(socket_connect_timeout=3, socket_timeout=3)
            dropped = queue.empty()
        except Exception as exc:
            self.stderr.write(f"reset: could not empty the job queue in Redis ({exc}); "
                              "jobs queued before the reset will fail when a worker runs them")
            return
        if dropped:
            self.stdout.write(f"reset: dropped {dropped} queued job(s)")
