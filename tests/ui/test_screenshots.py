"""A tour of the main pages in Debian's chromium, as the root admin and as a tenant, on a small
Simulator cloud with VMs: every page answers without an error and shows its heading, with no
request of the page failing; another tenant reaching a VM's page by its URL gets a 404. Screenshots land in artifacts/ui/tour-*.png; with
NUBO_UPDATE_SCREENSHOTS=1 they also replace the README's pictures in docs/screenshots/."""
from __future__ import annotations

import os
import shutil

import pytest
from django.test import Client

from compute.models import VirtualMachine
from tests.compute.test_instances import deploy
from tests.factories import ApiClient, bootstrap_cloud, make_account

from .browser import admin_browser
from .test_browser import ARTIFACTS, SCREENSHOTS
from .test_instances_ui import build_sim

# (file name, path, heading) for the root admin; {vm} is a VM's uuid
ADMIN_PAGES = (
    ("dashboard", "/client/", "Dashboard"),
    ("infrastructure", "/client/infrastructure", "Infrastructure"),
    ("hosts", "/client/infrastructure/hosts", "Hosts"),
    ("instances", "/client/instances", "Instances"),
    ("instance", "/client/instances/{vm}", "VM web-1"),
    ("deploy", "/client/instances/new", "Deploy VM"),
    ("templates", "/client/templates", "Templates"),
    ("offerings", "/client/offerings/service", "Service offerings"),
    ("networks", "/client/networks", "Networks"),
    ("accounts", "/client/accounts", "Accounts"),
    ("roles", "/client/roles", "Roles"),
    ("events", "/client/events", "Events"),
    ("jobs", "/client/jobs", "Async jobs"),
    ("settings", "/client/settings", "Global settings"),
    ("console-sessions", "/client/console-sessions", "Console sessions"),
)
TENANT_PAGES = (
    ("tenant-dashboard", "/client/", "Dashboard"),
    ("tenant-keypairs", "/client/ssh-keypairs", "SSH key pairs"),
)


@pytest.mark.browser
def test_a_tour_of_the_main_pages(live_server, transactional_db, tmp_path, threaded_jobs):
    bootstrap_cloud()
    tenant, other = make_account("tenant-a"), make_account("tenant-b")
    sim = build_sim(tmp_path)
    api = ApiClient(Client(), tenant)
    for name in ("web-1", "web-2", "db-1"):
        answer = deploy(api, sim, name=name)
        assert answer.status == 200, answer
    for thread in threaded_jobs:  # the deploy jobs
        thread.join(30)
    api("stopVirtualMachine", id=answer.inner["id"])
    for thread in threaded_jobs:
        thread.join(30)
    vm = VirtualMachine.objects.get(name="web-1")
    shots = []
    with admin_browser(live_server) as b:
        page, expect = b.page, b.expect
        for name, path, heading in ADMIN_PAGES:
            page.goto(live_server.url + path.format(vm=vm.uuid))
            expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
            shot = ARTIFACTS / f"tour-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username").fill("tenant-a")
        page.get_by_label("Password").fill(tenant.password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts")).to_have_count(0)
        for name, path, heading in TENANT_PAGES:
            page.goto(live_server.url + path)
            expect(page.get_by_role("heading", name=heading, exact=True).first).to_be_visible()
            shot = ARTIFACTS / f"tour-{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
        assert b.failed == [], b.failed
        # isolation: another tenant typing tenant-a's VM address gets the 404 page, not the VM
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username").fill("tenant-b")
        page.get_by_label("Password").fill(other.password)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        answer = page.goto(live_server.url + f"/client/instances/{vm.uuid}")
        assert answer.status == 404 and "web-1" not in page.content()
    if os.environ.get("NUBO_UPDATE_SCREENSHOTS") == "1":  # refresh the README's pictures on demand
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copyfile(shot, SCREENSHOTS / shot.name.removeprefix("tour-"))
