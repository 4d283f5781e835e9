"""Browser consoles: the tokens the portal issues and the checks the console proxy makes.

A token is 32 random bytes (URL-safe base64), shown once to the user who asked and stored only as
its SHA-256. It is bound to one VM, the VNC endpoint of the VM's host when it was issued, the user
and the origin of the page that will open the websocket; it opens one connection within
`console.token.ttl` seconds. The proxy (compute/console_proxy.py) calls `connect` with what the
websocket request carried and gets the VNC endpoint and password, or a refusal with a close code and
a sentence the console page shows. While connected it calls `check` every few seconds (the session
ends when an admin ends it or the VM stops or moves) and `closed` at the end.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts import crypto
from accounts.access import scope_filter
from compute.choices import HostState, VmState
from compute.drivers import DriverError, DriverNotFound
from compute.models import ConsoleSession, VirtualMachine
from portal import config, events
from portal.errors import InvalidParameterValue, PermissionDenied, ResourceUnavailable

# Close codes the proxy sends (4000-4999 are the application's own); the page shows the reason.
CLOSE_ENDED = 4000  # the session ended on the server side: VM stopped or moved, admin ended it
CLOSE_BAD_TOKEN = 4001  # missing, unknown, used or expired
CLOSE_FORBIDDEN = 4003  # wrong origin, another user's link, account disabled
CLOSE_NOT_RUNNING = 4009  # the VM is not running (any more) where the token points
CLOSE_UNREACHABLE = 4503  # the host is down or its VNC server does not answer

LOCAL_LISTEN = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class ConsoleTarget:
    """What the proxy needs to reach one VM's screen (the password stays in the proxy)."""

    session_id: int
    vnc_host: str
    vnc_port: int
    password: str
    vm_name: str


class ConsoleRefused(Exception):
    """The proxy closes the websocket with `code` and `reason` (a sentence for the user)."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def token_ttl() -> int:
    return int(config.get_value("console.token.ttl"))


def keepalive_interval() -> int:
    return int(config.get_value("consoleproxy.keepalive"))


def _may_open(caller, vm: VirtualMachine) -> bool:
    """The VM's owner, and admins over its domain: those who may act on it."""
    from compute.instances import require_manage

    try:
        require_manage(caller, vm)
    except PermissionDenied:
        return False
    return True


# -- the portal side ------------------------------------------------------------------------------
def issue(caller, vm: VirtualMachine, *, origin: str) -> tuple[str, ConsoleSession]:
    """A new single-use token for `vm`'s console, for `caller` on a page served from `origin`.
    Refuses (clear API errors) a VM the caller may not act on, one that is not running, or whose
    host is not up or has no VNC endpoint for it."""
    from compute.instances import _driver_for

    if not _may_open(caller, vm):
        raise PermissionDenied(f"You may not open the console of VM {vm.name}")
    if vm.state != VmState.RUNNING or vm.host is None:
        raise InvalidParameterValue(f"VM {vm.name} is {vm.state}; its console opens only while it is Running")
    host = vm.host
    if host.state != HostState.UP:
        raise ResourceUnavailable(f"The host of VM {vm.name} is not reachable ({host.state}); try again later")
    try:
        with _driver_for(host) as driver:
            console = driver.domain_console(vm.instance_name)
    except (DriverError, DriverNotFound) as exc:
        raise ResourceUnavailable(f"The console of VM {vm.name} is not available: its host did not report a VNC "
                                  f"endpoint ({exc})") from exc
    vnc_host = (host.ip_address or "127.0.0.1") if console.host in LOCAL_LISTEN else console.host
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        session = ConsoleSession.objects.create(
            token_hash=token_hash(token), virtual_machine=vm, host=host, vnc_host=vnc_host, vnc_port=console.port,
            user=caller, origin=origin, expires=timezone.now() + timedelta(seconds=token_ttl()))
        events.record(caller, "VM.CONSOLE", f"Issued a console link for VM {vm.name}", resource=vm,
                      account=vm.account)
    return token, session


def active_sessions(caller):
    """Connected sessions the caller may see (admins: the VMs in their scope), newest first. A
    session whose proxy stopped refreshing it (a crashed proxy) is not active."""
    stale = timezone.now() - timedelta(seconds=3 * keepalive_interval() + 5)
    return (ConsoleSession.objects
            .filter(scope_filter(caller, account_field="virtual_machine__account"),
                    connected__isnull=False, ended__isnull=True, last_seen__gte=stale)
            .select_related("virtual_machine__account__domain", "user", "host")
            .order_by("-connected"))


def end(caller, session: ConsoleSession) -> ConsoleSession:
    """Ask the proxy to end a connected session (it closes the websocket within seconds)."""
    if not active_sessions(caller).filter(pk=session.pk).exists():
        raise InvalidParameterValue("That console session is not active")
    with transaction.atomic():
        ConsoleSession.objects.filter(pk=session.pk, end_requested__isnull=True).update(end_requested=timezone.now())
        events.record(caller, "VM.CONSOLE.END",
                      f"Ended the console session of {session.user.username} on VM {session.virtual_machine.name}",
                      resource=session.virtual_machine, account=session.virtual_machine.account)
    session.refresh_from_db()
    return session


# -- the proxy side -------------------------------------------------------------------------------
def _refuse_link(row: ConsoleSession | None, now) -> None:
    if row is None:
        raise ConsoleRefused(CLOSE_BAD_TOKEN, "This console link is not valid. Open the console again from the "
                                              "instance's page.")
    if row.connected is not None:
        raise ConsoleRefused(CLOSE_BAD_TOKEN, "This console link was already used: each link opens one connection. "
                                              "Open the console again.")
    if row.expires <= now:
        raise ConsoleRefused(CLOSE_BAD_TOKEN, f"This console link expired (links are valid for {token_ttl()} "
                                              "seconds). Open the console again.")


def _refuse_vm(row: ConsoleSession) -> None:
    vm = row.virtual_machine
    if vm.state == VmState.MIGRATING or (vm.state == VmState.RUNNING and vm.host_id != row.host_id):
        raise ConsoleRefused(CLOSE_NOT_RUNNING, "The virtual machine moved to another host. Reconnect to follow it.")
    if vm.state != VmState.RUNNING:
        raise ConsoleRefused(CLOSE_NOT_RUNNING, f"The virtual machine is not running ({vm.state}).")


def connect(token: str | None, *, origin: str | None, client_address: str = "",
            session_user_id: int | None = None) -> ConsoleTarget:
    """Check a websocket's token and use it up. `origin` is the request's Origin header;
    `session_user_id` the portal user of the request's session cookie, if it carries one."""
    if not token:
        raise ConsoleRefused(CLOSE_BAD_TOKEN, "This console link has no token. Open the console from the "
                                              "instance's page.")
    now = timezone.now()
    with transaction.atomic():
        row = (ConsoleSession.objects.select_for_update(of=("self",))
               .select_related("virtual_machine", "host", "user__account")
               .filter(token_hash=token_hash(token)).first())
        _refuse_link(row, now)
        if not origin or origin != row.origin:
            raise ConsoleRefused(CLOSE_FORBIDDEN, "This console link was issued for another site. Open the console "
                                                  "from the portal page that issued it.")
        if session_user_id is not None and session_user_id != row.user_id:
            raise ConsoleRefused(CLOSE_FORBIDDEN, "This console link belongs to another user.")
        if not row.user.is_active:
            raise ConsoleRefused(CLOSE_FORBIDDEN, "The user who opened this console is disabled or locked.")
        _refuse_vm(row)
        if row.host.state != HostState.UP:
            raise ConsoleRefused(CLOSE_UNREACHABLE, f"The host of this virtual machine is not reachable "
                                                    f"({row.host.state}). Try again later.")
        row.connected = row.last_seen = now
        row.client_address = client_address[:64]
        row.save(update_fields=["connected", "last_seen", "client_address"])
    vm = row.virtual_machine
    return ConsoleTarget(session_id=row.pk, vnc_host=row.vnc_host, vnc_port=row.vnc_port,
                         password=crypto.decrypt(vm.vnc_password) if vm.vnc_password else "", vm_name=vm.name)


def check(session_id: int) -> None:
    """Called by the proxy every few seconds while connected: refreshes the session, or raises
    ConsoleRefused when it must end (admin ended it, the VM stopped or moved)."""
    row = ConsoleSession.objects.select_related("virtual_machine").filter(pk=session_id).first()
    if row is None:
        raise ConsoleRefused(CLOSE_ENDED, "This console session no longer exists.")
    if row.end_requested is not None:
        raise ConsoleRefused(CLOSE_ENDED, "An administrator ended this console session.")
    try:
        _refuse_vm(row)
    except ConsoleRefused as exc:
        raise ConsoleRefused(CLOSE_ENDED, exc.reason) from None
    ConsoleSession.objects.filter(pk=session_id).update(last_seen=timezone.now())


def closed_reason(session_id: int) -> str:
    """Why the VNC server closed the connection, as far as the database knows."""
    try:
        check(session_id)
    except ConsoleRefused as exc:
        return exc.reason
    return "The virtual machine's console closed the connection. Reconnect to try again."


def closed(session_id: int, reason: str) -> None:
    ConsoleSession.objects.filter(pk=session_id, ended__isnull=True).update(ended=timezone.now(),
                                                                            end_reason=reason[:255])


def purge_unused(older_than: timedelta = timedelta(days=1)) -> int:
    """Delete tokens that were never used and expired long ago (used ones stay as the record)."""
    cutoff = timezone.now() - older_than
    deleted, _ = ConsoleSession.objects.filter(connected__isnull=True, expires__lt=cutoff).delete()
    return deleted


# -- where browsers find the proxy ------------------------------------------------------------------
@dataclass(frozen=True)
class WebsocketEndpoint:
    url: str  # without the query string: ws(s)://host:port/path
    host: str
    port: str
    path: str


def websocket_endpoint(origin: str) -> WebsocketEndpoint:
    """The proxy's websocket as seen from a page on `origin` (consoleproxy.url)."""
    from urllib.parse import urlsplit

    from django.conf import settings

    page = urlsplit(origin)
    secure = page.scheme == "https"
    configured = str(config.get_value("consoleproxy.url") or "")
    if configured.startswith(("ws://", "wss://")):
        target = urlsplit(configured)
        scheme, host, port, path = target.scheme, target.hostname or "", target.port, target.path or "/"
        port = port or (443 if scheme == "wss" else 80)
    elif configured:  # a path on the portal's own origin (behind a reverse proxy)
        scheme, host, path = ("wss" if secure else "ws"), page.hostname or "", configured
        port = page.port or (443 if secure else 80)
    else:
        scheme, host, port, path = ("wss" if secure else "ws"), page.hostname or "", settings.NUBO_CONSOLE_PORT, "/websockify"
    netloc = f"[{host}]" if ":" in host else host
    default = (scheme == "ws" and port == 80) or (scheme == "wss" and port == 443)
    url = f"{scheme}://{netloc}{'' if default else f':{port}'}{path}"
    return WebsocketEndpoint(url=url, host=host, port=str(port), path=path.lstrip("/"))


def request_origin(request) -> str:
    """The origin of the portal page a request came from (scheme://host[:port])."""
    return f"{request.scheme}://{request.get_host()}"
