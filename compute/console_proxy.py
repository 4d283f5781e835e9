"""The console proxy: websockify's forking WebSocket server with our request handler.

websockify's token plugins see only the token; our checks need the request too (the Origin header,
the portal session cookie, the client address), so the token check lives in the handler, after the
websocket handshake — a refused connection is closed with a code and a sentence the console page
shows (websockify's own plugins just drop the TCP connection).

Per connection (a forked child process): `compute.console.connect` checks and uses up the token
and names the VNC endpoint; the proxy logs in to the VM's VNC server with the VM's password
(compute.drivers.vnc), greets the browser as a VNC server that needs no password, then relays bytes
with websockify's loop. Every `consoleproxy.keepalive` seconds it pings the browser (reverse proxies
keep idle websockets open) and re-checks the session (an admin ended it, the VM stopped or moved).

Nothing here logs a token, a session cookie or a password: websockify's own log lines pass through
`log_message`, which drops query strings.
"""
from __future__ import annotations

import logging
import re
import select
import socket
import time
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import close_old_connections, connections
from websockify.websocketproxy import ProxyRequestHandler, WebSocketProxy

from compute import console
from compute.drivers import vnc

log = logging.getLogger("nubo.consoleproxy")

HANDSHAKE_TIMEOUT = 15.0  # seconds for each side of the RFB handshake
CLOSE_REASON_BYTES = 123  # a websocket close frame's reason is at most 123 bytes
QUERY_RE = re.compile(r"\?[^\s'\"]*")


def _reason(text: str) -> str:
    raw = text.encode("utf-8")[:CLOSE_REASON_BYTES]
    return raw.decode("utf-8", "ignore")


class ConsoleRequestHandler(ProxyRequestHandler):
    """One browser's console connection (runs in a child process of the proxy)."""

    session_id: int | None = None

    # -- logging without secrets ---------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 - websockify's signature
        text = format % args if args else format
        log.info("%s %s", self.client_address[0] if self.client_address else "-", QUERY_RE.sub("", text))

    def log_request(self, code="-", size="-"):
        pass  # the upgrade request line carries the token; connect/close lines are logged instead

    # -- the request ---------------------------------------------------------------------------
    def _token(self) -> str | None:
        values = parse_qs(urlsplit(self.path).query).get("token")
        return values[0].strip() if values else None

    def _session_user_id(self) -> int | None:
        """The portal user of the request's session cookie (sent when the page and the proxy
        share a host name), or None when it carries none or an expired one."""
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        try:
            morsel = SimpleCookie(raw).get(settings.SESSION_COOKIE_NAME)
        except CookieError:
            return None
        if morsel is None or not morsel.value:
            return None
        store = import_module(settings.SESSION_ENGINE).SessionStore(morsel.value)
        user_id = store.get("_auth_user_id")
        return int(user_id) if user_id is not None else None

    # -- websocket byte streams for the RFB handshake ----------------------------------------------
    def _ws_reader(self):
        buffer = bytearray()
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT

        def recv(n: int) -> bytes:
            while len(buffer) < n:
                if not self.request.pending():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not select.select([self.request], [], [], remaining)[0]:
                        raise vnc.RfbError("the console client did not complete the handshake in time")
                bufs, closed = self.recv_frames()
                buffer.extend(b"".join(bufs))
                if closed and len(buffer) < n:
                    raise vnc.RfbError("the console client closed the connection during the handshake")
            data = bytes(buffer[:n])
            del buffer[:n]
            return data

        return recv, buffer

    def _ws_send(self, data: bytes) -> None:
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        pending = self.send_frames([data])
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self.request], [], remaining)[1]:
                raise vnc.RfbError("the console client stopped reading during the handshake")
            pending = self.send_frames()

    # -- the connection ------------------------------------------------------------------------
    def new_websocket_client(self):
        try:
            self._serve()
        except self.CClose:
            raise
        except Exception:  # a bug or a lost database: logged in full here, a sentence for the page
            log.exception("console proxy failure")
            raise self.CClose(1011, "The console proxy failed. Try again; if it keeps failing, tell an "
                                    "administrator.") from None

    def _serve(self) -> None:
        close_old_connections()
        try:
            target = console.connect(self._token(), origin=self.headers.get("Origin"),
                                     client_address=self.client_address[0] if self.client_address else "",
                                     session_user_id=self._session_user_id())
        except console.ConsoleRefused as exc:
            self.log_message("console refused: %s", exc.reason)
            raise self.CClose(exc.code, _reason(exc.reason)) from None
        self.session_id = target.session_id
        reason = "The console connection closed."
        try:
            reason = self._proxy(target)
        except self.CClose as exc:
            code, reason = (exc.args + (None, reason))[:2]
            if code is not None and code < 4000:  # the browser closed (or vanished): nothing to tell it
                reason = f"The browser closed the console ({code})."
                return
            raise
        finally:
            console.closed(target.session_id, reason)
            self.log_message("console of %s closed: %s", target.vm_name, reason)

    def _proxy(self, target: console.ConsoleTarget) -> str:
        try:
            tsock = socket.create_connection((target.vnc_host, target.vnc_port), timeout=HANDSHAKE_TIMEOUT)
        except OSError:
            raise self.CClose(console.CLOSE_UNREACHABLE,
                              "The virtual machine's console did not answer. Try again later.") from None
        try:
            recv, leftover = self._ws_reader()
            try:
                vnc.login(*vnc.socket_io(tsock), target.password)
                vnc.serve_without_password(recv, self._ws_send)
            except (vnc.RfbError, OSError) as exc:
                self.log_message("console handshake for %s failed: %s", target.vm_name, exc)
                raise self.CClose(console.CLOSE_UNREACHABLE, _reason(
                    "The virtual machine's console could not be opened. Try again.")) from None
            tsock.settimeout(None)
            tsock.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
            self.request.setsockopt(socket.SOL_TCP, socket.TCP_NODELAY, 1)
            if leftover:  # the client's first message (ClientInit) may have come with its last answer
                tsock.sendall(bytes(leftover))
            self.log_message("console of %s connected", target.vm_name)
            # websockify's loop pings every `heartbeat` seconds: our send_ping also re-checks the session.
            self.server.heartbeat = console.keepalive_interval()
            try:
                self.do_proxy(tsock)
            except self.CClose as exc:
                if exc.args[:2] == (1000, "Target closed"):
                    raise self.CClose(console.CLOSE_ENDED, _reason(console.closed_reason(target.session_id))) from None
                raise
            return "The console connection closed."
        finally:
            try:
                tsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tsock.close()

    def send_ping(self, data=b""):
        if self.session_id is not None:
            try:
                console.check(self.session_id)
            except console.ConsoleRefused as exc:
                raise self.CClose(exc.code, _reason(exc.reason)) from None
        super().send_ping(data)


class ConsoleProxy(WebSocketProxy):
    """websockify's forking server, websocket upgrades only (no static files)."""

    def __init__(self, *, host: str, port: int, cert: str = "", key: str = ""):
        # websockify takes a missing cert file to mean "no TLS"; "" would name the working directory
        super().__init__(RequestHandlerClass=ConsoleRequestHandler, listen_host=host, listen_port=port,
                         cert=cert or "/nonexistent/nubo-console-proxy.pem", key=key, web="", heartbeat=None)

    def started(self):
        log.info("console proxy listening on %s:%s", self.listen_host, self.listen_port)


def serve(host: str, port: int, *, cert: str = "", key: str = "") -> None:
    """Run the proxy in the foreground (the main thread: websockify forks per connection and
    installs signal handlers). The parent never holds a database connection: each child opens
    its own."""
    connections.close_all()
    ConsoleProxy(host=host, port=port, cert=cert, key=key).start_server()
