"""A Playwright page in Debian's chromium, logged in as the bootstrapped admin (admin-pw-1), that
accepts confirmations and records every answer of 400 or more (`failed`)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS


def log_in(page, expect, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/client/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


@contextmanager
def admin_browser(live_server, *, timeout_ms: int = 10_000, username: str = "admin", password: str = "admin-pw-1"):
    """Logged in as the bootstrapped admin, or as `username`."""
    from playwright import sync_api  # a dev dependency: a missing one is a failure, never a skip
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium, or make deps)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    expect.set_options(timeout=timeout_ms)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(timeout_ms)
            page.on("dialog", lambda dialog: dialog.accept())
            failed: list[str] = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            log_in(page, expect, live_server.url, username, password)
            yield SimpleNamespace(page=page, expect=expect, failed=failed, artifacts=ARTIFACTS, browser=browser)
        finally:
            browser.close()


def fill_person(page, *, username: str, password: str, email: str, first: str, last: str) -> None:
    """The person fields shared by the Add account and Add user forms."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)


def deployed_vm(user, sim, workers, name: str, *, stop: bool = False):
    """A VM of `user`'s deployed through the deploy form (a Django test client, before the browser
    starts), its jobs run by `threaded_jobs` and awaited; stopped too when `stop`."""
    from django.test import Client

    from compute.models import VirtualMachine

    from .test_instances_ui import form_data

    client = Client()
    client.force_login(user)
    response = client.post("/client/instances/new", form_data(sim, name=name, step="deploy"))
    assert response.status_code == 302, response.content.decode()[:2000]
    vm = VirtualMachine.objects.get(uuid=response["Location"].rsplit("/", 1)[1])
    for thread in workers:
        thread.join(60)
    if stop:
        assert client.post(f"/client/instances/{vm.uuid}/stop").status_code == 302
        for thread in workers:
            thread.join(60)
    vm.refresh_from_db()
    return vm
