"""Console tokens on Simulator hosts: what the portal issues (API, UI), what the proxy's checks
refuse and why, the admins' session list. The proxy process itself: tests/e2e/test_console_proxy.py;
a real VM's screen in a real browser: tests/e2e/test_console_browser.py."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from compute import console
from compute.drivers import vnc
from compute.models import ConsoleSession, Host, VirtualMachine
from portal import config
from portal.models import Event
from tests.compute.test_instances import deploy, sim  # noqa: F401  (fixture)
from tests.factories import admin_user, make_account, make_domain

ORIGIN = "http://testserver"


@pytest.fixture
def running(api, sim, tenant_a):  # noqa: F811
    a = api.as_(tenant_a)
    vm = a.job(deploy(a, sim, name="con-1"))["jobresult"]["virtualmachine"]
    return VirtualMachine.objects.select_related("host", "account").get(uuid=vm["id"])


def ui(tenant) -> Client:
    client = Client()
    client.force_login(tenant.user)
    return client


def refused(code: int, says: str, **kwargs):
    with pytest.raises(console.ConsoleRefused) as caught:
        console.connect(**kwargs)
    assert caught.value.code == code and says in caught.value.reason, caught.value.reason
    return caught.value


# -- issuing ------------------------------------------------------------------------------------------
def test_a_token_is_random_stored_hashed_and_bound(running, tenant_a):
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    other, _ = console.issue(tenant_a.user, running, origin=ORIGIN)
    assert token != other and len(token) >= 43
    row = ConsoleSession.objects.get(pk=session.pk)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not ConsoleSession.objects.filter(token_hash=token).exists()
    assert (row.virtual_machine, row.host, row.user, row.origin) == (running, running.host, tenant_a.user, ORIGIN)
    assert (row.vnc_host, row.vnc_port) == ("127.0.0.1", 1)  # a Simulator host's (nothing listens there)
    assert timedelta(seconds=55) < row.expires - timezone.now() <= timedelta(seconds=60)
    assert Event.objects.filter(type="VM.CONSOLE", resource_uuid=str(running.uuid)).count() == 2


def test_the_api_answers_a_console_endpoint(api, running, tenant_a):
    answer = api.as_(tenant_a)("createConsoleEndpoint", virtualmachineid=str(running.uuid))
    assert answer.status == 200, answer
    endpoint = answer.inner["consoleendpoint"]
    token = endpoint["websocket"]["token"]
    assert endpoint["success"] is True
    assert endpoint["url"] == f"{ORIGIN}/client/console/?token={token}"
    assert endpoint["websocket"] == {"host": "testserver", "port": "6080", "path": "websockify", "token": token}
    assert ConsoleSession.objects.get(token_hash=console.token_hash(token)).user == tenant_a.user


def test_the_api_refuses_what_has_no_console(api, running, tenant_a, tenant_b):
    a = api.as_(tenant_a)
    answer = api.as_(tenant_b)("createConsoleEndpoint", virtualmachineid=str(running.uuid))
    assert answer.status == 431 and "does not exist" in answer.errortext
    assert a("createConsoleEndpoint").status == 431
    a.job(a("stopVirtualMachine", id=str(running.uuid)))
    answer = a("createConsoleEndpoint", virtualmachineid=str(running.uuid))
    assert answer.status == 431 and "is Stopped; its console opens only while it is Running" in answer.errortext
    a.job(a("startVirtualMachine", id=str(running.uuid)))
    Host.objects.filter(pk=running.host_id).update(state="Down")
    answer = a("createConsoleEndpoint", virtualmachineid=str(running.uuid))
    assert answer.status == 534 and "not reachable (Down)" in answer.errortext
    assert not ConsoleSession.objects.exists()


def test_websocket_endpoint_follows_consoleproxy_url(db):
    assert console.websocket_endpoint("http://cloud.example:8080").url == "ws://cloud.example:6080/websockify"
    config.set_value("consoleproxy.url", "/client/console/websockify")
    endpoint = console.websocket_endpoint("https://cloud.example")
    assert (endpoint.url, endpoint.port, endpoint.path) == ("wss://cloud.example/client/console/websockify", "443",
                                                            "client/console/websockify")
    config.set_value("consoleproxy.url", "wss://console.example:8443/ws")
    assert console.websocket_endpoint("https://cloud.example").url == "wss://console.example:8443/ws"
    with pytest.raises(ValueError, match="ws:// or wss://"):
        config.set_value("consoleproxy.url", "http://console.example/ws")


# -- the proxy's checks -----------------------------------------------------------------------------
def test_a_token_opens_one_connection(running, tenant_a):
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    target = console.connect(token, origin=ORIGIN, client_address="192.0.2.7", session_user_id=tenant_a.user.pk)
    assert (target.session_id, target.vnc_host, target.vnc_port, target.vm_name) == (session.pk, "127.0.0.1", 1,
                                                                                      "con-1")
    from accounts import crypto
    assert target.password == crypto.decrypt(running.vnc_password) and len(target.password) == 8
    row = ConsoleSession.objects.get(pk=session.pk)
    assert row.connected is not None and row.client_address == "192.0.2.7"
    refused(console.CLOSE_BAD_TOKEN, "already used", token=token, origin=ORIGIN)


def test_misused_tokens_are_refused_with_a_reason(running, tenant_a, tenant_b):
    refused(console.CLOSE_BAD_TOKEN, "has no token", token=None, origin=ORIGIN)
    refused(console.CLOSE_BAD_TOKEN, "is not valid", token="forged-" + "x" * 40, origin=ORIGIN)
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    ConsoleSession.objects.filter(pk=session.pk).update(expires=timezone.now() - timedelta(seconds=1))
    refused(console.CLOSE_BAD_TOKEN, "expired (links are valid for 60 seconds)", token=token, origin=ORIGIN)
    token, _ = console.issue(tenant_a.user, running, origin=ORIGIN)
    refused(console.CLOSE_FORBIDDEN, "issued for another site", token=token, origin="http://evil.example")
    refused(console.CLOSE_FORBIDDEN, "issued for another site", token=token, origin=None)
    refused(console.CLOSE_FORBIDDEN, "belongs to another user", token=token, origin=ORIGIN,
            session_user_id=tenant_b.user.pk)
    # none of these used the token up: its owner still connects with it
    assert console.connect(token, origin=ORIGIN, session_user_id=tenant_a.user.pk).vm_name == "con-1"


def test_the_vm_and_host_are_checked_when_connecting(api, running, tenant_a):
    a = api.as_(tenant_a)
    token, _ = console.issue(tenant_a.user, running, origin=ORIGIN)
    Host.objects.filter(pk=running.host_id).update(state="Down")
    refused(console.CLOSE_UNREACHABLE, "host of this virtual machine is not reachable (Down)", token=token,
            origin=ORIGIN)
    Host.objects.filter(pk=running.host_id).update(state="Up")
    a.job(a("stopVirtualMachine", id=str(running.uuid)))
    refused(console.CLOSE_NOT_RUNNING, "not running (Stopped)", token=token, origin=ORIGIN)
    a.job(a("startVirtualMachine", id=str(running.uuid)))
    other = Host.objects.create(name="h2", zone=running.zone, pod=running.pod, cluster=running.host.cluster,
                                url="http://sim/c1/h2", hypervisor="Simulator", state="Up")
    VirtualMachine.objects.filter(pk=running.pk).update(host=other)
    refused(console.CLOSE_NOT_RUNNING, "moved to another host", token=token, origin=ORIGIN)


def test_a_disabled_user_cannot_use_a_token_issued_before(api, running, tenant_a):
    token, _ = console.issue(tenant_a.user, running, origin=ORIGIN)
    assert api("disableUser", id=str(tenant_a.user.uuid)).status == 200
    refused(console.CLOSE_FORBIDDEN, "disabled or locked", token=token, origin=ORIGIN)


def test_a_connected_session_ends_when_asked_or_when_the_vm_stops(api, running, tenant_a):
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    console.connect(token, origin=ORIGIN)
    ConsoleSession.objects.filter(pk=session.pk).update(last_seen=timezone.now() - timedelta(seconds=5))
    console.check(session.pk)
    assert timezone.now() - ConsoleSession.objects.get(pk=session.pk).last_seen < timedelta(seconds=2)
    admin = admin_user()
    console.end(admin, session)
    assert Event.objects.filter(type="VM.CONSOLE.END", resource_uuid=str(running.uuid)).exists()
    with pytest.raises(console.ConsoleRefused, match="An administrator ended"):
        console.check(session.pk)
    console.closed(session.pk, "An administrator ended this console session.")
    assert not console.active_sessions(admin).exists()

    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    console.connect(token, origin=ORIGIN)
    a = api.as_(tenant_a)
    a.job(a("stopVirtualMachine", id=str(running.uuid)))
    with pytest.raises(console.ConsoleRefused, match=r"not running \(Stopped\)"):
        console.check(session.pk)
    assert "not running" in console.closed_reason(session.pk)


def test_unused_tokens_are_purged_a_day_after_they_expired(running, tenant_a):
    from compute.jobs import purge_console_tokens

    old, used, fresh = (console.issue(tenant_a.user, running, origin=ORIGIN) for _ in range(3))
    console.connect(used[0], origin=ORIGIN)
    day_ago = timezone.now() - timedelta(days=1, minutes=1)
    ConsoleSession.objects.filter(pk__in=[old[1].pk, used[1].pk]).update(expires=day_ago)
    assert purge_console_tokens() == 1
    assert set(ConsoleSession.objects.values_list("pk", flat=True)) == {used[1].pk, fresh[1].pk}


def test_active_sessions_are_scoped_and_go_stale(running, tenant_a):
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    assert not console.active_sessions(admin_user()).exists()  # not connected yet
    console.connect(token, origin=ORIGIN)
    assert list(console.active_sessions(admin_user())) == [session]
    other_admin = make_account("other-admin", domain=make_domain("elsewhere"), accounttype=2)
    assert not console.active_sessions(other_admin.user).exists()
    ConsoleSession.objects.filter(pk=session.pk).update(last_seen=timezone.now() - timedelta(minutes=5))
    assert not console.active_sessions(admin_user()).exists()  # its proxy stopped refreshing it


# -- the UI -----------------------------------------------------------------------------------------
def test_the_vm_page_offers_the_console_and_the_page_gets_a_token(running, tenant_a, tenant_b):
    client = ui(tenant_a)
    detail = client.get(f"/client/instances/{running.uuid}")
    assert f'href="/client/instances/{running.uuid}/console"' in detail.content.decode()
    page = client.get(f"/client/instances/{running.uuid}/console")
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer"
    html = page.content.decode()
    assert 'data-websocket-url="ws://testserver:6080/websockify"' in html and "nubo/console.js" in html
    assert "vnc_password" not in html and "token=" not in html
    answer = client.post(f"/client/instances/{running.uuid}/console/token")
    assert answer.status_code == 200
    body = answer.json()
    assert body["url"] == "ws://testserver:6080/websockify" and body["name"] == "con-1"
    assert console.connect(body["token"], origin=ORIGIN).vm_name == "con-1"
    other = ui(tenant_b)
    assert other.get(f"/client/instances/{running.uuid}/console").status_code == 404
    assert other.post(f"/client/instances/{running.uuid}/console/token").status_code == 404


def test_the_token_endpoint_says_why_there_is_no_console(api, running, tenant_a):
    a = api.as_(tenant_a)
    a.job(a("stopVirtualMachine", id=str(running.uuid)))
    answer = ui(tenant_a).post(f"/client/instances/{running.uuid}/console/token")
    assert answer.status_code == 409 and "is Stopped" in answer.json()["error"]
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(tenant_a.user)
    assert csrf.post(f"/client/instances/{running.uuid}/console/token").status_code == 403
    detail = ui(tenant_a).get(f"/client/instances/{running.uuid}").content.decode()
    assert "The console opens while the VM is Running." in detail


def test_an_api_link_opens_the_page_without_a_session(db):
    page = Client().get("/client/console/", {"token": "abc"})
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer"
    assert 'data-link="true"' in page.content.decode()


def test_admins_list_and_end_sessions(running, admin, tenant_a):
    admin_ui, user_ui = ui(admin), ui(tenant_a)
    token, session = console.issue(tenant_a.user, running, origin=ORIGIN)
    console.connect(token, origin=ORIGIN, client_address="192.0.2.9")
    page = admin_ui.get("/client/console-sessions").content.decode()
    assert "tenant-a" in page and "con-1" in page and "192.0.2.9" in page
    assert user_ui.get("/client/console-sessions").status_code == 404
    assert user_ui.post(f"/client/console-sessions/{session.uuid}/end").status_code == 404
    answer = admin_ui.post(f"/client/console-sessions/{session.uuid}/end", follow=True)
    assert "is ending" in answer.content.decode()
    assert ConsoleSession.objects.get(pk=session.pk).end_requested is not None


# -- RFB ------------------------------------------------------------------------------------------
def test_vnc_authentication_uses_the_bit_reversed_des_key():
    assert vnc._des_key("a") == bytes([0x86, 0, 0, 0, 0, 0, 0, 0])
    assert vnc._des_key("longer-than-8") == vnc._des_key("longer-t")
    challenge = bytes(range(16))
    answer = vnc.vnc_auth_response(challenge, "secret")
    assert len(answer) == 16 and answer != vnc.vnc_auth_response(challenge, "secreT")
    # single DES is its own inverse pair: decrypting the answer gives the challenge back
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    decryptor = Cipher(TripleDES(vnc._des_key("secret") * 3), modes.ECB()).decryptor()
    assert decryptor.update(answer) + decryptor.finalize() == challenge
