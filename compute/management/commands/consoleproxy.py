"""`manage.py consoleproxy`: the browser console's websocket proxy (compute/console_proxy.py)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Run the console proxy: websockify with Nubo's single-use console tokens (foreground)."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=settings.NUBO_CONSOLE_BIND,
                            help="address:port to listen on (default NUBO_CONSOLE_BIND or 127.0.0.1:6080)")
        parser.add_argument("--cert", default="", help="PEM certificate: also accept wss:// directly")
        parser.add_argument("--key", default="", help="PEM private key of --cert (if not in the same file)")

    def handle(self, *args, bind: str, cert: str, key: str, **options):
        from compute.console_proxy import serve

        host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise CommandError(f"--bind takes address:port such as 127.0.0.1:6080, not {bind!r}")
        serve(host.strip("[]") or "127.0.0.1", int(port), cert=cert, key=key)
