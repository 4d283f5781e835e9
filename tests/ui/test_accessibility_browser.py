"""An automated accessibility check in the real browser: axe-core (pinned in package.json, never
served to users: injected here from node_modules) runs on the main pages as the root admin and as
a tenant, and any "serious" or "critical" violation fails — colour contrast included.

One browser, one login per role; each page is loaded once and checked once."""
from __future__ import annotations

import pytest

from tests.factories import bootstrap_cloud, make_account

from .browser import admin_browser, deployed_vm, log_in
from .test_browser import ROOT
from .test_instances_ui import _private_mount_dirs, build_sim  # noqa: F401  (the fixture applies here too)

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILING = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe's violations on the page as loaded (WCAG 2.x A/AA rules and best practices)."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + (n.failureSummary ?
                " — " + n.failureSummary.replace(/\\s+/g, " ").slice(0, 300) : ""))}));
    }""")


def check_pages(page, base_url: str, who: str, paths: list[tuple[str, str]]) -> list[str]:
    problems = []
    for name, path in paths:
        response = page.goto(base_url + path)
        assert response is not None and response.status == 200, f"{who}: {name} answered {response and response.status}"
        page.wait_for_load_state("load")
        for violation in axe_violations(page):
            if violation["impact"] in FAILING:
                problems.append(f"{who} · {name} ({path}): {violation['impact']} {violation['id']}: "
                                f"{violation['help']}\n      " + "\n      ".join(violation["nodes"]))
    return problems


@pytest.mark.browser
def test_main_pages_have_no_serious_accessibility_violations(live_server, transactional_db, tmp_path,
                                                             threaded_jobs):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run make assets (npm ci installs axe-core from package-lock.json)")
    cloud = bootstrap_cloud()
    tenant = make_account("tenant-a")
    sim = build_sim(tmp_path)
    vm = deployed_vm(tenant.user, sim, threaded_jobs, "web-1")
    vm_page, account_page = f"/client/instances/{vm.uuid}", f"/client/accounts/{tenant.account.uuid}"
    common = [("dashboard", "/client/"), ("instances", "/client/instances"), ("VM page", vm_page),
              ("deploy wizard", "/client/instances/new"), ("templates", "/client/templates")]
    admin_pages = common + [("account page", account_page), ("zones", "/client/infrastructure/zones"),
                            ("settings", "/client/settings"),
                            ("domain page", f"/client/domains/{tenant.account.domain.uuid}"),
                            ("user page", f"/client/users/{tenant.user.uuid}")]
    tenant_pages = common + [("my account", "/client/account"), ("own user page", f"/client/users/{tenant.user.uuid}")]
    assert cloud.admin.user.username == "admin"

    with admin_browser(live_server, timeout_ms=15_000) as b:
        page = b.page
        problems = check_pages(page, live_server.url, "admin", admin_pages)
        context = b.browser.new_context(viewport={"width": 1280, "height": 900})
        tenant_page = context.new_page()
        tenant_page.set_default_timeout(15_000)
        tenant_page.goto(live_server.url + "/client/login")
        problems += check_pages(tenant_page, live_server.url, "anonymous", [("login", "/client/login")])
        log_in(tenant_page, b.expect, live_server.url, "tenant-a", tenant.password)
        problems += check_pages(tenant_page, live_server.url, "tenant", tenant_pages)
        context.close()
    assert not problems, "serious or critical accessibility violations:\n" + "\n".join(problems)
