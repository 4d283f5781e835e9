"""The browser console in Debian's chromium (Playwright, executable_path, no browser download): a
tenant logs in, deploys the built-in Tiny Linux template through the form, opens "View console",
and types a command into the VM's root shell on its screen; the command's output is read back from
the VM's serial console. Run twice: the page talking to the console proxy on its own port, and the
whole portal behind nginx on one HTTPS origin with docs/nginx-console.conf — where an idle console
outlives nginx's idle timeout thanks to the proxy's pings. It ends as issue 7's tenant flow does:
stop, then destroy."""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from compute.drivers import get_driver
from compute.models import ConsoleSession, VirtualMachine
from portal import config
from tests.compute.kvm import QEMU, make_kvm_zone, remove_kvm_zone
from tests.factories import bootstrap_cloud, make_account
from tests.storage.test_builtin_images import SerialConsole
from tests.ui.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS

from .procs import Proc, free_port, wait_tcp

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow_qemu]

REPO = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"


def nginx_front(work: Path, *, portal_port: int, proxy_port: int, idle_timeout_s: int) -> tuple[Proc, int]:
    """nginx serving docs/nginx-console.conf on a free port with a throwaway certificate."""
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: `make deps` installs nginx-light", pytrace=False)
    work.mkdir(parents=True, exist_ok=True)
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    site = (REPO / "docs" / "nginx-console.conf").read_text()
    for old, new in (("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
                     ("server_name cloud.example.org;", "server_name localhost;"),
                     ("/etc/ssl/certs/nubo.pem", str(cert)), ("/etc/ssl/private/nubo.key", str(key)),
                     ("/var/log/nginx/nubo.access.log", str(work / "access.log")),
                     ("http://127.0.0.1:6080/", f"http://127.0.0.1:{proxy_port}/"),
                     ("http://127.0.0.1:8080;", f"http://127.0.0.1:{portal_port};"),
                     ("proxy_read_timeout 60s;", f"proxy_read_timeout {idle_timeout_s}s;")):
        assert old in site, f"docs/nginx-console.conf no longer has {old!r}"
        site = site.replace(old, new)
    (work / "site.conf").write_text(site)
    temp = work / "temp"
    temp.mkdir(exist_ok=True)
    (work / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {work}/site.conf;
}}
""")
    proc = Proc("nginx", [NGINX, "-p", str(work), "-c", str(work / "nginx.conf")], env={"PATH": "/usr/sbin:/usr/bin"},
                log_dir=work)
    wait_tcp(port, [proc])
    return proc, port


COMMAND = "dd if=/etc/hostname of=/dev/console"  # the kernel's console is the serial port (console=ttyS0 last)


def type_until_echoed(page, serial: SerialConsole, hostname: str, attempts: int = 12, *, paste: bool = False) -> None:
    """Type into the console until the VM's shell runs it: the command writes the VM's host name
    to the serial port. No shifted characters: Playwright types "S" as the S key without Shift,
    as noVNC forwards it. Boot may still be under way when the console first connects, so the
    command is typed again until its output shows. `paste`: through the toolbar's Paste text."""
    line = re.escape(hostname)
    since = len(serial.output)
    for _ in range(attempts):
        if paste:
            page.get_by_role("button", name="Paste text").click()
            page.get_by_label("Text to type into the virtual machine (keystroke by keystroke)").fill(COMMAND + "\n")
            page.get_by_role("button", name="Type it").click()
        else:
            page.locator("#console-screen canvas").click()
            page.keyboard.type(COMMAND, delay=20)
            page.keyboard.press("Enter")
        try:
            serial.wait_for(rf"(?<![=\w-]){line}\r?\n", 5, since=since)
            return
        except pytest.fail.Exception:
            continue
    page.screenshot(path=str(ARTIFACTS / "console-typing-failed.png"))
    raise AssertionError(f"the typed command never ran (screen: artifacts/ui/console-typing-failed.png); serial console: {serial.output[-2000:]!r}")


@pytest.mark.parametrize("front", ["direct", "https-proxy"])
def test_a_tenant_types_into_a_vm_console(front, live_server, backing, console_proxy, transactional_db, tmp_path,
                                          threaded_jobs, monkeypatch, settings):
    from playwright import sync_api

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium", pytrace=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bootstrap_cloud()
    make_account("tenant-c")
    kvm = make_kvm_zone(tmp_path)
    portal_port = urlsplit(live_server.url).port
    nginx = None
    if front == "direct":
        base = live_server.url
        config.set_value("consoleproxy.url", f"ws://localhost:{console_proxy.port}/websockify")
    else:
        settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # NUBO_BEHIND_PROXY=1
        nginx, port = nginx_front(tmp_path / "nginx", portal_port=portal_port, proxy_port=console_proxy.port,
                                  idle_timeout_s=5)
        base = f"https://localhost:{port}"
        config.set_value("consoleproxy.url", "/client/console/websockify")
        config.set_value("consoleproxy.keepalive", "2")

    # Playwright's sync API runs an event loop in this thread; the ORM calls between its steps are
    # plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    name = f"con-{front[:6]}-{secrets.token_hex(2)}"
    expect = sync_api.expect
    expect.set_options(timeout=60_000)
    serial = None
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"])
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
                page = context.new_page()
                page.set_default_timeout(30_000)
                page.on("dialog", lambda dialog: dialog.accept())
                page.goto(base + "/client/login")
                page.get_by_label("Username").fill("tenant-c")
                page.get_by_label("Password").fill("secret-pw-1")
                page.get_by_role("button", name="Log in").click()
                page.get_by_role("heading", name="Dashboard").wait_for()
                page.goto(base + "/client/instances/new")
                page.get_by_label("Zone").select_option(label="kz")
                page.get_by_label("Template").select_option(label="Tiny Linux")
                page.get_by_label("Service offering").select_option(
                    label=f"Tiny — 1 vCPU × 500 MHz, {kvm.offering.memory} MiB")
                page.get_by_role("textbox", name="Name", exact=True).fill(name)
                page.get_by_role("button", name="Review").click()
                page.get_by_role("button", name="Deploy VM").click()
                try:
                    expect(page.locator("#instance-state")).to_have_text("Running")
                except AssertionError:
                    vm = VirtualMachine.objects.filter(name=name).first()
                    raise AssertionError(f"the VM did not reach Running: {vm and vm.state}: {vm and vm.state_reason}")

                vm = VirtualMachine.objects.get(name=name)
                with get_driver(QEMU) as driver:
                    serial = SerialConsole(driver, vm.instance_name)
                with context.expect_page() as opened:
                    page.get_by_role("button", name="View console").click()
                console_page = opened.value
                expect(console_page.locator("body")).to_have_attribute("data-console", "connected")
                expect(console_page.locator("#console-status")).to_have_text("Connected")
                canvas = console_page.locator("#console-screen canvas")
                before = canvas.screenshot()
                type_until_echoed(console_page, serial, name)
                time.sleep(0.5)
                assert canvas.screenshot() != before  # what was typed shows on the screen too
                console_page.screenshot(path=str(ARTIFACTS / f"console-{front}.png"))

                if front == "https-proxy":  # idle for longer than nginx's idle timeout (5 s here)
                    time.sleep(8)
                    expect(console_page.locator("body")).to_have_attribute("data-console", "connected")
                    type_until_echoed(console_page, serial, name, attempts=2, paste=True)

                # Ctrl-Alt-Del reaches the guest (busybox init reboots it: the serial console shows it)
                since = len(serial.output)
                console_page.get_by_role("button", name="Ctrl-Alt-Del").click()
                serial.wait_for(r"(?i)reboot|restarting|going down", 30, since=since)

                # the VM stops: the page says why; Reconnect gets a fresh token and says it is not running
                page.bring_to_front()
                page.get_by_role("button", name="Force stop").click()
                expect(console_page.locator("#console-status")).to_contain_text("not running")
                console_page.get_by_role("button", name="Reconnect").click()
                expect(console_page.locator("#console-status")).to_contain_text("its console opens only while it is Running")
                console_page.screenshot(path=str(ARTIFACTS / f"console-{front}-stopped.png"))

                # and the tenant destroys it (issue 7's tenant flow ends here)
                page.bring_to_front()
                expect(page.locator("#instance-state")).to_have_text("Stopped")
                page.get_by_role("button", name="Destroy").click()
                expect(page.locator("#instance-state")).to_have_text("Destroyed")
                expect(page.locator("#instance-console")).to_have_count(0)  # the link; a disabled button stays
            finally:
                browser.close()
                connection.close()  # the ORM's connection of Playwright's greenlet, not the test's own
    finally:
        if serial is not None:
            serial.close()
        for thread in threaded_jobs:
            thread.join(60)
        if nginx is not None:
            nginx.stop()
        remove_kvm_zone(kvm)
    sessions = ConsoleSession.objects.filter(virtual_machine__name=name)
    assert sessions.filter(connected__isnull=False).count() >= 1
    assert all(s.origin == base for s in sessions)
    if front == "direct" and os.environ.get("NUBO_UPDATE_SCREENSHOTS") == "1":  # the README's picture
        shutil.copyfile(ARTIFACTS / "console-direct.png", SCREENSHOTS / "console.png")
    if nginx is not None:
        log = (tmp_path / "nginx" / "access.log").read_text()
        assert "/client/console/websockify" in log and "token=" not in log
    shutil.rmtree(tmp_path / "nginx", ignore_errors=True)
