"""The basic-installation wizard in a real browser (Debian's chromium driven by Playwright): the
root admin walks through every step (fixing one mistake the server points out), launches, the
set-up job runs (in-process after the request's commit: NUBO_JOBS_EAGER) and the progress page
shows success; the zone is enabled and its Simulator host is Up. The admin flow goes on: a template
becomes Ready in the new zone, then an offering, an account and a second user of it. Then the progress page of a
running set-up follows the job live, without reloading, until it fails at a named step."""
from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from tests.factories import bootstrap_cloud
from tests.images import make_qcow2

from .browser import fill_person
from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS


def in_thread(work):
    """Run ORM work outside the browser's event loop (Django refuses it inside one)."""
    result: dict = {}

    def target():
        from django.db import connection

        try:
            result["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.mark.browser
def test_basic_zone_wizard_in_the_browser(live_server, transactional_db, tmp_path):
    from playwright import sync_api  # a dev dependency: a missing one is a failure, never a skip
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium, or make deps)")
    cloud = bootstrap_cloud()  # admin / admin-pw-1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    expect.set_options(timeout=20_000)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.on("dialog", lambda dialog: dialog.accept())
            failed: list[str] = []
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)

            page.goto(live_server.url + "/client/login")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill("admin-pw-1")
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Infrastructure").click()
            expect(page.get_by_role("heading", name="Infrastructure", exact=True)).to_be_visible()
            page.get_by_role("link", name="Start the basic installation wizard").click()

            # 1. zone
            expect(page.get_by_text("Step 1 of 7: Zone")).to_be_visible()
            page.get_by_label("Zone name").fill("zone-b")
            page.get_by_role("textbox", name="DNS 1", exact=True).fill("9.9.9.9")
            page.get_by_label("Internal DNS 1").fill("10.0.0.2")
            page.get_by_role("button", name="Next").click()
            # 2. pod, with a mistake the server points out next to the field
            expect(page.get_by_text("Step 2 of 7: Pod")).to_be_visible()
            page.get_by_label("Gateway").fill("192.168.60.15")
            page.get_by_label("Netmask").fill("255.255.255.0")
            page.get_by_label("Reserved start IP").fill("192.168.60.10")
            page.get_by_label("Reserved end IP").fill("192.168.60.20")
            page.get_by_role("button", name="Next").click()
            error = page.locator("#id_gateway_error")
            expect(error).to_contain_text("lies inside the reserved range 192.168.60.10–192.168.60.20")
            expect(page.get_by_label("Gateway")).to_have_attribute("aria-invalid", "true")
            page.screenshot(path=str(ARTIFACTS / "wizard-error.png"), full_page=True)
            page.get_by_label("Gateway").fill("192.168.60.1")
            page.get_by_role("button", name="Next").click()
            # 3. guest IP range: gateway and netmask start from the pod's
            expect(page.get_by_text("Step 3 of 7: Guest IP range")).to_be_visible()
            expect(page.get_by_label("Guest gateway")).to_have_value("192.168.60.1")
            page.get_by_label("Guest start IP").fill("192.168.60.100")
            page.get_by_label("Guest end IP").fill("192.168.60.199")
            page.get_by_role("button", name="Next").click()
            # 4. cluster
            expect(page.get_by_text("Step 4 of 7: Cluster")).to_be_visible()
            page.get_by_role("radio", name="Simulator").check()
            page.get_by_role("button", name="Next").click()
            # 5. host
            expect(page.get_by_text("Step 5 of 7: Host")).to_be_visible()
            expect(page.get_by_label("Host URL")).to_have_value("qemu:///system")
            page.get_by_label("Host URL").fill("http://sim/c1/h1")
            page.get_by_role("button", name="Next").click()
            # 6, 7. storage, in directories of this test
            expect(page.get_by_text("Step 6 of 7: Primary storage")).to_be_visible()
            page.get_by_label("Primary storage URL").fill(f"file://{tmp_path}/primary")
            page.get_by_role("button", name="Next").click()
            expect(page.get_by_text("Step 7 of 7: Secondary storage")).to_be_visible()
            page.get_by_label("Secondary storage URL").fill(f"file://{tmp_path}/secondary")
            page.screenshot(path=str(ARTIFACTS / "wizard-step.png"), full_page=True)
            page.get_by_role("button", name="Review").click()

            expect(page.get_by_role("heading", name="Review and launch")).to_be_visible()
            expect(page.locator(".nubo-review")).to_contain_text("zone-b")
            expect(page.locator(".nubo-review")).to_contain_text("http://sim/c1/h1")
            page.get_by_role("button", name="Launch").click()

            expect(page.get_by_role("heading", name="Setting up zone zone-b")).to_be_visible()
            done = page.locator("#setup-done")
            expect(done).to_contain_text("Zone zone-b is set up and enabled.")
            expect(page.locator(".nubo-setup-done")).to_have_count(8)
            page.screenshot(path=str(ARTIFACTS / "wizard.png"), full_page=True)

            done.get_by_role("link", name="Open zone zone-b").click()
            expect(page.get_by_role("heading", name="Zone zone-b")).to_be_visible()
            expect(page.locator("#zone-state")).to_have_text("Enabled")
            expect(page.get_by_role("heading", name="Guest IPs")).to_be_visible()
            expect(page.locator(".nubo-capacity")).to_contain_text("0 of 100 addresses allocated")
            page.screenshot(path=str(ARTIFACTS / "infra-zone.png"), full_page=True)
            page.get_by_role("link", name="1 host").click()
            page.get_by_role("link", name="h1", exact=True).click()
            expect(page.get_by_role("heading", name="Host h1")).to_be_visible()
            expect(page.locator("#host-state")).to_have_text("Up")
            page.screenshot(path=str(ARTIFACTS / "infra-host.png"), full_page=True)

            # the rest of the admin flow (issue 7): a template Ready in the new zone, an offering,
            # an account and a second user in it
            main_nav = page.get_by_role("navigation", name="Main")
            main_nav.get_by_role("link", name="Templates").click()
            page.get_by_role("link", name="Register template").click()
            page.get_by_role("textbox", name="Name", exact=True).fill("admin-tiny")
            page.get_by_label("URL").fill(make_qcow2(tmp_path / "admin-tiny.qcow2").as_uri())  # file://: root only
            page.get_by_label("Zone").select_option(label="zone-b")
            page.get_by_role("button", name="Register template").click()
            expect(page.get_by_role("heading", name="Template admin-tiny")).to_be_visible()
            expect(page.locator("#image-zones")).to_contain_text("Download Complete")
            main_nav.get_by_role("link", name="Offerings").click()
            page.get_by_role("link", name="Add service offering").click()
            page.get_by_label("Name").fill("Flow")
            page.get_by_label("Description").fill("1 vCPU, 256 MiB")
            page.get_by_label("Fixed size").check()
            page.get_by_role("spinbutton", name="vCPUs", exact=True).fill("1")
            page.get_by_role("spinbutton", name="Memory (MiB)", exact=True).fill("256")
            page.get_by_label("CPU speed (MHz)").fill("500")
            page.get_by_role("button", name="Create service offering").click()
            expect(page.get_by_text("Service offering Flow created.")).to_be_visible()
            main_nav.get_by_role("link", name="Accounts").click()
            page.get_by_role("link", name="Add account").click()
            page.get_by_label("Account name").fill("flow-team")
            page.get_by_label("Account type").select_option(label="User")
            fill_person(page, username="flo", password="flo-pw-123", email="flo@example.org", first="Flo", last="Team")
            page.get_by_role("button", name="Create account").click()
            expect(page.get_by_text("Account flow-team created.")).to_be_visible()
            main_nav.get_by_role("link", name="Users").click()
            page.get_by_role("link", name="Add user").click()
            page.locator("#id_account").select_option(label="flow-team (ROOT)")
            fill_person(page, username="flo2", password="flo2-pw-123", email="flo2@example.org", first="Flo",
                        last="Two")
            page.get_by_role("button", name="Create user").click()
            expect(page.get_by_text(re.compile(r"User flo2 .*created"))).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "admin-flow-user.png"), full_page=True)

            # a running set-up: its page follows the job live, until it fails at a named step
            job_uuid = in_thread(lambda: str(_pending_setup(cloud).uuid))
            page.goto(f"{live_server.url}/client/infrastructure/setup/{job_uuid}")
            expect(page.locator("#setup-step-5")).to_have_class("nubo-setup-running")
            in_thread(lambda: _advance(job_uuid))
            expect(page.locator("#setup-step-6")).to_have_class("nubo-setup-running")  # no reload
            expect(page.locator("#setup-step-5")).to_have_class("nubo-setup-done")
            in_thread(lambda: _fail(job_uuid))
            expect(page.locator("#setup-error")).to_contain_text("Step 6 of 8 (add primary storage) failed: no room")
            expect(page.locator("#setup-step-6")).to_have_class("nubo-setup-failed")

            # phone width: one column, the steps and forms still usable
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{live_server.url}/client/infrastructure")
            expect(page.locator("#count-hosts")).to_contain_text("Up 1")
            page.screenshot(path=str(ARTIFACTS / "infrastructure-phone.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
            assert failed == []  # every page, fragment, stylesheet and script loaded
        finally:
            browser.close()

    if os.environ.get("NUBO_UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures on demand
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for name in ("wizard.png", "infra-zone.png", "infra-host.png"):
            shutil.copyfile(ARTIFACTS / name, SCREENSHOTS / name)

    from compute.models import Host, Zone

    zone = Zone.objects.get(name="zone-b")
    assert zone.allocation_state == "Enabled"
    assert list(Host.objects.filter(zone=zone).values_list("name", "state")) == [("h1", "Up")]


def _pending_setup(cloud):
    from compute import wizard
    from portal.models import AsyncJob

    return AsyncJob.objects.create(command="setupBasicZone", params={"name": "zone-live"}, user=cloud.admin.user,
                                   account=cloud.admin.account, progress=wizard.step_percent(4),
                                   progress_text=wizard.progress_text(4, "adding host http://sim/live/h1"))


def _advance(job_uuid: str) -> None:
    from compute import wizard
    from portal.models import AsyncJob

    AsyncJob.objects.filter(uuid=job_uuid).update(progress=wizard.step_percent(5),
                                                  progress_text=wizard.progress_text(5, "adding primary storage"))


def _fail(job_uuid: str) -> None:
    from django.utils import timezone

    from portal.models import AsyncJob, JobStatus

    text = "Step 6 of 8 (add primary storage) failed: no room on the device."
    AsyncJob.objects.filter(uuid=job_uuid).update(status=JobStatus.FAILED, result_code=530, completed=timezone.now(),
                                                  result={"errorcode": 530, "errortext": text})

