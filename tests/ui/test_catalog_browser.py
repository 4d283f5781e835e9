"""One real-browser run (Debian's chromium driven by Playwright) of the offering and key pair pages:
the admin creates a service offering — a first try with too little memory shows the sentence next
to the field — and makes an SSH key pair whose private key is shown once; the dashboard at phone
width."""
from __future__ import annotations

import pytest

from tests.factories import bootstrap_cloud

from .browser import admin_browser
from .test_browser import ARTIFACTS


@pytest.mark.browser
def test_admin_creates_an_offering_and_a_key_pair_in_the_browser(live_server, transactional_db):
    bootstrap_cloud()  # admin / admin-pw-1; no ORM use below while the browser's event loop runs
    with admin_browser(live_server) as b:
        page, expect, failed = b.page, b.expect, b.failed
        expect(page.get_by_role("heading", name="Capacity by zone")).to_be_visible()

        main_nav = page.get_by_role("navigation", name="Main")
        main_nav.get_by_role("link", name="Offerings").click()
        expect(page.get_by_role("heading", name="Service offerings")).to_be_visible()
        page.get_by_role("link", name="Add service offering").click()
        page.get_by_label("Name").fill("Large")
        page.get_by_label("Description").fill("4 vCPUs, 8 GiB")
        page.get_by_label("Fixed size").check()
        page.get_by_role("spinbutton", name="vCPUs", exact=True).fill("4")
        page.get_by_role("spinbutton", name="Memory (MiB)", exact=True).fill("16")
        page.get_by_label("CPU speed (MHz)").fill("2000")
        page.get_by_role("button", name="Create service offering").click()
        expect(page.locator("#id_memory_error")).to_contain_text("memory must be between 32")
        page.get_by_role("spinbutton", name="Memory (MiB)", exact=True).fill("8192")
        page.get_by_role("button", name="Create service offering").click()
        expect(page.get_by_text("Service offering Large created.")).to_be_visible()
        expect(page.get_by_role("heading", name="Service offering Large")).to_be_visible()
        expect(page.get_by_text("SERVICE.OFFERING.CREATE")).to_be_visible()
        main_nav.get_by_role("link", name="Offerings").click()
        page.get_by_role("link", name="Name", exact=True).click()  # sort by name
        expect(page.get_by_role("link", name="Large")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "offerings.png"), full_page=True)

        main_nav.get_by_role("link", name="SSH key pairs").click()
        page.get_by_role("link", name="Add key pair").click()
        page.get_by_label("Name").fill("ops-laptop")
        page.get_by_role("button", name="Add key pair").click()
        expect(page.get_by_role("heading", name="SSH key pair ops-laptop created")).to_be_visible()
        private_key = page.locator("#private-key").inner_text()
        assert private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
        page.screenshot(path=str(ARTIFACTS / "keypair.png"), full_page=True)
        page.get_by_role("link", name="I have saved it").click()
        expect(page.get_by_role("heading", name="SSH key pair ops-laptop")).to_be_visible()
        assert "PRIVATE KEY" not in page.content()
        main_nav.get_by_role("link", name="SSH key pairs").click()
        expect(page.get_by_role("link", name="ops-laptop")).to_be_visible()

        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("button", name="Menu").click()
        main_nav.get_by_role("link", name="Dashboard").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
        assert failed == []
