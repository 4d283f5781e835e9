"""A Playwright page in Debian's chromium, logged in as the bootstrapped admin (admin-pw-1), that
accepts confirmations and records every answer of 400 or more (`failed`)."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS


@contextmanager
def admin_browser(live_server, *, timeout_ms: int = 10_000):
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
            page.goto(live_server.url + "/client/login")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill("admin-pw-1")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
            yield SimpleNamespace(page=page, expect=expect, failed=failed, artifacts=ARTIFACTS)
        finally:
            browser.close()


def fill_person(page, *, username: str, password: str, email: str, first: str, last: str) -> None:
    """The person fields shared by the Add account and Add user forms."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
