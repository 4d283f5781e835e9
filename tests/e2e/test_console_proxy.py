"""The console proxy process (`manage.py consoleproxy`) over real websockets: every misused token is
refused with a reason and never reaches a VNC port; a good token reaches a real VM's VNC server,
which the proxy logs in to with the VM's password while the client needs none; pings keep an
idle connection alive; an admin ending the session, or the VM stopping, closes it with a reason."""
from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from compute import console
from compute.models import ConsoleSession, Host, VirtualMachine
from portal import config
from tests.compute.kvm import make_kvm_zone, remove_kvm_zone
from tests.compute.test_instances import deploy, sim  # noqa: F401  (fixture)
from tests.factories import admin_user, bootstrap_cloud, make_account

pytestmark = [pytest.mark.e2e]

ORIGIN = "http://portal.test"


@pytest.fixture
def cloud(transactional_db):
    return bootstrap_cloud()


class Sentinel:
    """A TCP listener standing in for a VNC server: counts the connections that reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def ws(proxy, token: str | None, *, origin: str | None = ORIGIN, cookie: str | None = None):
    url = f"ws://127.0.0.1:{proxy.port}/websockify" + (f"?token={token}" if token is not None else "")
    return connect(url, origin=origin, additional_headers={"Cookie": cookie} if cookie else None,
                   compression=None, proxy=None, open_timeout=10, close_timeout=5)


def closed_with(proxy, token: str | None, **kwargs) -> tuple[int, str]:
    with ws(proxy, token, **kwargs) as conn:
        with pytest.raises(ConnectionClosed) as caught:
            conn.recv(timeout=20)
    return caught.value.rcvd.code, caught.value.rcvd.reason


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    from django.conf import settings
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_misused_tokens_never_reach_a_vnc_port(console_proxy, api, sim, tenant_a, tenant_b):  # noqa: F811
    a = api.as_(tenant_a)
    vm = VirtualMachine.objects.get(uuid=a.job(deploy(a, sim, name="con-p"))["jobresult"]["virtualmachine"]["id"])
    sentinel = Sentinel()
    try:
        def token(**changes) -> str:
            value, session = console.issue(tenant_a.user, vm, origin=ORIGIN)
            ConsoleSession.objects.filter(pk=session.pk).update(vnc_port=sentinel.port, **changes)
            return value

        cases = [
            (dict(token=None), 4001, "has no token"),
            (dict(token="forged" * 8), 4001, "is not valid"),
            (dict(token=token(expires=timezone.now() - timedelta(seconds=1))), 4001, "expired"),
            (dict(token=token(), origin="http://evil.example"), 4003, "issued for another site"),
            (dict(token=token(), origin=None), 4003, "issued for another site"),
            (dict(token=token(), cookie=session_cookie(tenant_b.user)), 4003, "belongs to another user"),
        ]
        for kwargs, code, says in cases:
            got = closed_with(console_proxy, **kwargs)
            assert got[0] == code and says in got[1], (kwargs, got)
        assert sentinel.connections == 0

        # a good token (its owner's own session cookie is fine) reaches the endpoint it names, once
        good = token()
        code, reason = closed_with(console_proxy, good, cookie=session_cookie(tenant_a.user))
        assert (code, reason) == (4503, "The virtual machine's console could not be opened. Try again.")
        assert sentinel.connections == 1
        assert closed_with(console_proxy, good)[1].startswith("This console link was already used")

        stopped, down = token(), token()
        a.job(a("stopVirtualMachine", id=str(vm.uuid)))
        assert "not running (Stopped)" in closed_with(console_proxy, stopped)[1]
        a.job(a("startVirtualMachine", id=str(vm.uuid)))
        Host.objects.filter(pk=vm.host_id).update(state="Down")
        assert closed_with(console_proxy, down)[0] == 4503
        assert sentinel.connections == 1
    finally:
        sentinel.close()
    log = console_proxy.procs[0].log_path.read_text()
    assert good not in log and "token=" not in log and "console refused: This console link" in log


# -- a real VM --------------------------------------------------------------------------------------
def rfb_handshake(conn) -> tuple[int, int, bytes]:
    """The client side of RFB 3.8 with security type None (what noVNC does), then ClientInit;
    returns the framebuffer's width, height and the desktop name from ServerInit."""
    buffer = bytearray()

    def recv(n: int) -> bytes:
        while len(buffer) < n:
            buffer.extend(conn.recv(timeout=20))
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    assert recv(12) == b"RFB 003.008\n"
    conn.send(b"RFB 003.008\n")
    assert recv(2) == b"\x01\x01"  # one security type: None — the proxy logged in with the password
    conn.send(b"\x01")
    assert recv(4) == b"\0\0\0\0"
    conn.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", recv(4))
    recv(16)  # pixel format
    (length,) = struct.unpack(">I", recv(4))
    name = recv(length)
    conn.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))  # FramebufferUpdateRequest
    assert recv(1) == b"\x00"  # FramebufferUpdate
    return width, height, name


@pytest.mark.slow_qemu
def test_a_real_vm_console_through_the_proxy(console_proxy, api, cloud, tmp_path):
    kvm = make_kvm_zone(tmp_path)
    try:
        tenant = make_account("con-real")
        t = api.as_(tenant)
        job = t.job(t("deployVirtualMachine", zoneid=str(kvm.zone.uuid), serviceofferingid=str(kvm.offering.uuid),
                      templateid=str(kvm.template.uuid), name="con-real"))
        assert job["jobstatus"] == 1, job
        vm = VirtualMachine.objects.get(uuid=job["jobresult"]["virtualmachine"]["id"])
        config.set_value("consoleproxy.keepalive", "2")

        token, session = console.issue(tenant.user, vm, origin=ORIGIN)
        assert session.vnc_port >= 5900
        with ws(console_proxy, token) as conn:
            width, height, name = rfb_handshake(conn)
            assert width >= 640 and height >= 200 and vm.instance_name.encode() in name
            time.sleep(5)  # idle: the proxy pings (the client answers) and refreshes the session
            row = ConsoleSession.objects.get(pk=session.pk)
            assert row.last_seen - row.connected >= timedelta(seconds=2)
            assert list(console.active_sessions(admin_user())) == [row]
            console.end(admin_user(), row)
            with pytest.raises(ConnectionClosed) as caught:
                while True:
                    conn.recv(timeout=15)
            assert (caught.value.rcvd.code, caught.value.rcvd.reason) == (
                4000, "An administrator ended this console session.")
        assert ConsoleSession.objects.get(pk=session.pk).ended is not None
        assert not console.active_sessions(admin_user()).exists()

        token, session = console.issue(tenant.user, vm, origin=ORIGIN)
        with ws(console_proxy, token) as conn:
            rfb_handshake(conn)
            assert t.job(t("stopVirtualMachine", id=str(vm.uuid), forced="true"))["jobstatus"] == 1
            with pytest.raises(ConnectionClosed) as caught:
                while True:
                    conn.recv(timeout=15)
            assert caught.value.rcvd.code == 4000 and "not running" in caught.value.rcvd.reason
        assert "not running" in ConsoleSession.objects.get(pk=session.pk).end_reason
    finally:
        remove_kvm_zone(kvm)
