"""Real-browser runs (Debian's chromium driven by Playwright) of the edits by clicking: the admin
sets a domain's resource limit (a refused one shows its sentence next to its field), edits a
user and sets its password, and the user logs in with it; on a stopped VM, the admin changes to a
customized offering (its size fields appear when it is chosen) and reinstalls from another
template."""
from __future__ import annotations

import pytest

from accounts import limits
from accounts.models import Domain, User
from compute.models import ServiceOffering, VirtualMachine
from tests.factories import bootstrap_cloud, make_account, make_domain

from .browser import admin_browser, deployed_vm
from .test_browser import ARTIFACTS
from .test_instance_actions_ui import template
from .test_instances_ui import _private_mount_dirs, build_sim  # noqa: F401  (the fixture applies here too)


@pytest.mark.browser
def test_domain_limits_user_edit_and_password_by_clicking(live_server, transactional_db):
    bootstrap_cloud()
    corp = make_domain("corp")
    make_domain("team", parent=corp)
    make_account("alice", domain=corp)
    with admin_browser(live_server) as b:
        page, expect, failed = b.page, b.expect, b.failed
        main_nav = page.get_by_role("navigation", name="Main")
        main_nav.get_by_role("link", name="Domains").click()
        page.get_by_role("link", name="corp", exact=True).click()
        expect(page.get_by_role("heading", name="Domain ROOT/corp")).to_be_visible()
        limits_table = page.locator("#domain-limits")
        page.get_by_label("New limit of user_vm").fill("5")
        page.get_by_role("button", name="Set the limit of user_vm").click()
        expect(page.get_by_text("Limit of user_vm for domain ROOT/corp: 5.")).to_be_visible()
        expect(limits_table.locator("tr", has_text="user_vm")).to_contain_text("5")
        # the sub-domain may not go above it: the sentence next to its field
        page.get_by_role("link", name="team").click()
        expect(page.get_by_role("heading", name="Domain ROOT/corp/team")).to_be_visible()
        page.get_by_label("New limit of user_vm").fill("9")
        page.get_by_role("button", name="Set the limit of user_vm").click()
        expect(page.locator("#limit-0_error")).to_have_text(
            "Domain ROOT/corp has maximum allowed resource limit 5 for user_vm, please specify a value less than or "
            "equal to 5")
        page.screenshot(path=str(ARTIFACTS / "domain-limits.png"), full_page=True)

        main_nav.get_by_role("link", name="Users").click()
        page.get_by_role("link", name="alice").first.click()  # the username (then its account)
        expect(page.get_by_role("heading", name="User alice")).to_be_visible()
        page.get_by_label("First name").fill("Alice")
        page.get_by_label("Last name").fill("Liddell")
        page.get_by_label("E-mail").fill("not an address")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#id_email_error")).to_have_text("Enter a valid email address.")
        page.get_by_label("E-mail").fill("alice@wonder.example")
        page.get_by_label("Time zone").select_option("Europe/London")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("User alice updated.")).to_be_visible()
        expect(page.locator("#user-details")).to_contain_text("Alice Liddell")
        expect(page.locator("#user-details")).to_contain_text("Europe/London")
        page.locator("#id_new_password").fill("wonder-pw-1")
        page.locator("#id_new_password_again").fill("wonder-pw-1")
        page.get_by_role("button", name="Set password").click()  # confirmed (the dialog is accepted)
        expect(page.get_by_text("Password of user alice set")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "user-page.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        page.goto(live_server.url + "/client/login")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("wonder-pw-1")
        page.get_by_label("Domain").fill("/corp")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        assert not failed, failed
    alice = User.objects.get(username="alice")
    assert (alice.firstname, alice.email, alice.timezone) == ("Alice", "alice@wonder.example", "Europe/London")
    assert limits.domain_max(Domain.objects.get(path="/corp/"), "user_vm") == 5
    assert limits.domain_max(Domain.objects.get(path="/corp/team/"), "user_vm") == 5


@pytest.mark.browser
def test_custom_offering_and_reinstall_from_another_template_by_clicking(live_server, transactional_db, tmp_path,
                                                                        threaded_jobs):
    bootstrap_cloud()
    tenant = make_account("tenant-a")
    sim = build_sim(tmp_path)
    other = template(sim, "other-os")
    ServiceOffering.objects.create(name="Flex", display_text="flex", customized=True, cpu_speed=1000,
                                   min_cpu_number=1, max_cpu_number=4, min_memory=128, max_memory=1024)
    ServiceOffering.objects.create(name="Big", display_text="big", cpu_number=2, cpu_speed=500, memory=256)
    vm = deployed_vm(tenant.user, sim, threaded_jobs, "web-1", stop=True)
    with admin_browser(live_server, username="tenant-a", password=tenant.password, timeout_ms=15_000) as b:
        page, expect, failed = b.page, b.expect, b.failed
        page.goto(f"{live_server.url}/client/instances/{vm.uuid}")
        expect(page.locator("#instance-state")).to_have_text("Stopped")
        sizes = page.locator("#instance-custom-sizes")
        page.get_by_label("Service offering").select_option(label="Big — 2 vCPU × 500 MHz, 256 MiB")
        expect(sizes).to_be_hidden()  # a fixed offering is chosen
        page.get_by_label("Service offering").select_option(
            label="Flex — custom: choose vCPUs and memory (1–4 vCPUs, 128–1024 MiB)")
        expect(sizes).to_be_visible()
        page.get_by_label("vCPUs").fill("9")
        page.get_by_label("Memory (MiB)").fill("512")
        page.get_by_role("button", name="Change offering").click()
        expect(page.locator("#instance-change-offering #action-error")).to_have_text(
            "cpuNumber 9 is outside the range 1-4 of service offering Flex")
        expect(sizes).to_be_visible()  # the answers are still there, with the custom offering chosen
        page.get_by_label("vCPUs").fill("2")
        page.get_by_role("button", name="Change offering").click()
        expect(page.get_by_text("VM web-1 now has offering Flex.")).to_be_visible()
        expect(page.locator("#instance-details")).to_contain_text("Flex: 2 vCPU × 1000 MHz, 512 MiB")

        page.get_by_label("Reinstall from template").select_option(label="other-os")
        page.get_by_role("button", name="Reinstall").click()  # confirmed (the dialog is accepted)
        expect(page.locator("#instance-job")).to_contain_text("restoreVirtualMachine succeeded")
        # the live part follows: the template now chosen by default is the new one
        expect(page.get_by_label("Reinstall from template")).to_have_value(str(other.uuid))
        page.reload()
        expect(page.locator("#instance-details")).to_contain_text("Templateother-os")
        page.screenshot(path=str(ARTIFACTS / "instance-changed.png"), full_page=True)
        assert not failed, failed
    for thread in threaded_jobs:
        thread.join(30)
    vm = VirtualMachine.objects.get(pk=vm.pk)
    assert (vm.service_offering.name, vm.cpu_number, vm.memory, vm.template_id) == ("Flex", 2, 512, other.pk)
