"""One real-browser run of the foundation UI (Debian's chromium driven by Playwright): the admin
creates a domain and an account, generates the user's API keys on the account page, and those keys
sign a real listAccounts request."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from portal.api import signing
from tests.factories import bootstrap_cloud

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "ui"
SCREENSHOTS = ROOT / "docs" / "screenshots"


def signed_get(base_url: str, command: str, api_key: str, secret: str) -> requests.Response:
    params = {"command": command, "response": "json", "apiKey": api_key, "signatureVersion": "3",
              "expires": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() + 300))}
    params["signature"] = signing.sign(params, secret)
    return requests.get(base_url + "/client/api", params=params, timeout=10)


@pytest.mark.browser
def test_admin_generates_working_keys_in_the_browser(live_server, transactional_db):
    from playwright import sync_api  # a dev dependency: a missing one is a failure, never a skip
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium, or make deps)")
    bootstrap_cloud()  # admin / admin-pw-1; no ORM use below while the browser's event loop runs
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    expect.set_options(timeout=10_000)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            page.on("dialog", lambda dialog: dialog.accept())
            failed: list[str] = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

            page.goto(live_server.url + "/client/login")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill("admin-pw-1")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

            main_nav = page.get_by_role("navigation", name="Main")
            main_nav.get_by_role("link", name="Domains").click()
            page.get_by_role("link", name="Add domain").click()
            page.get_by_label("Name").fill("acme")
            page.get_by_label("Network domain").fill("acme.example.org")
            page.get_by_role("button", name="Create domain").click()
            expect(page.get_by_text("Domain ROOT/acme created.")).to_be_visible()

            main_nav.get_by_role("link", name="Accounts").click()
            page.get_by_role("link", name="Add account").click()
            page.get_by_label("Account name").fill("acme-ops")
            page.get_by_label("Account type").select_option(label="User")
            page.get_by_role("combobox", name="Domain", exact=True).select_option(label="ROOT/acme")
            from .browser import fill_person  # tests/ui/browser.py imports this module's constants

            fill_person(page, username="olivia", password="olivia-pw-1", email="olivia@acme.example.org",
                        first="Olivia", last="Ops")
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_text("Account acme-ops created.")).to_be_visible()

            # open the account from the list, as a user would
            main_nav.get_by_role("link", name="Accounts").click()
            page.get_by_role("searchbox").fill("acme")
            page.get_by_role("button", name="Search").click()
            page.get_by_role("link", name="acme-ops").click()
            expect(page.get_by_role("heading", name="Account acme-ops")).to_be_visible()

            generate = page.get_by_role("button", name="Generate keys")
            expect(generate).to_have_text("Generate keys")
            generate.click()
            expect(page.get_by_role("heading", name="New keys for user olivia")).to_be_visible()
            api_key = page.locator("#new-api-key").inner_text().strip()
            secret = page.locator("#new-secret-key").inner_text().strip()
            page.screenshot(path=str(ARTIFACTS / "account.png"), full_page=True)

            # phone width: one column, the navigation behind the Menu button
            page.set_viewport_size({"width": 390, "height": 844})
            expect(main_nav).to_be_hidden()
            page.get_by_role("button", name="Menu").click()
            expect(main_nav).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "account-phone.png"), full_page=True)
            assert failed == []  # every page, stylesheet and script loaded
            assert page.evaluate("getComputedStyle(document.body).getPropertyValue('--pico-font-family').length") > 0
        finally:
            browser.close()

    if os.environ.get("NUBO_UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures on demand
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "account.png", SCREENSHOTS / "account.png")

    assert api_key and secret and api_key != secret
    response = signed_get(live_server.url, "listAccounts", api_key, secret)
    assert response.status_code == 200, response.text
    accounts = response.json()["listaccountsresponse"]["account"]
    assert [a["name"] for a in accounts] == ["acme-ops"]
    assert signed_get(live_server.url, "listAccounts", api_key, "wrong-secret").status_code == 401
