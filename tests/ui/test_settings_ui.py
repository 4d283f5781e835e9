"""Global settings and alerts pages (root admin only; a domain admin and a plain user get 404):
settings listed with their descriptions, searched, filtered by category and sorted; a value
changed with the setting's own validation (errors next to the value) and an event; alerts
filtered by type and searched (tests/ui/test_lists_ui.py: archived, deleted, the open/archived filter)."""
from __future__ import annotations

import re

import pytest

from compute import services as compute_services
from compute.choices import AlertType
from portal import config
from portal.models import Event
from tests.factories import make_account

from .test_instances_ui import field_error, text, words


def setting_names(response) -> list[str]:
    return re.findall(r'<a href="/client/settings/[^"]+"><code>([^<]+)</code></a>', text(response))


def test_only_root_admins_see_settings_and_alerts(cloud, user_ui, domain_admin_ui, admin_ui):
    for client in (user_ui, domain_admin_ui):
        for url in ("/client/settings", "/client/settings/expunge.delay", "/client/alerts"):
            assert client.get(url).status_code == 404, url
        assert client.post("/client/settings/expunge.delay", {"value": "1"}).status_code == 404
        body = text(client.get("/client/"))
        assert "/client/settings" not in body and "/client/alerts" not in body
    assert config.get_value("expunge.delay") == 86400
    body = text(admin_ui.get("/client/"))
    assert '<a href="/client/settings">Global settings</a>' in body and '<a href="/client/alerts">Alerts</a>' in body


def test_settings_are_listed_searched_filtered_and_sorted(cloud, admin_ui):
    page = words(admin_ui.get("/client/settings?q=overprovisioning"))
    assert "cpu.overprovisioning.factor" in page and "CPU capacity is multiplied by this factor" in page
    assert setting_names(admin_ui.get("/client/settings?q=overprovisioning")) == [
        "cpu.overprovisioning.factor", "mem.overprovisioning.factor", "storage.overprovisioning.factor"]
    assert setting_names(admin_ui.get("/client/settings?q=overprovisioning&sort=-name"))[0] == \
        "storage.overprovisioning.factor"
    assert setting_names(admin_ui.get("/client/settings?q=overprovisioning&category=Storage")) == [
        "storage.overprovisioning.factor"]
    nope = admin_ui.get("/client/settings?q=overprovisioning&category=Nope")  # ignored and named
    assert len(setting_names(nope)) == 3 and "“Nope” is not a value of category: ignored." in text(nope)
    everything = admin_ui.get("/client/settings?page=2")
    assert everything.status_code == 200 and "Page 2 of" in text(everything)
    assert admin_ui.get("/client/settings/no.such.setting").status_code == 404


@pytest.mark.parametrize("name, value, error", [
    ("expunge.delay", "soon", "expunge.delay takes a whole number, not 'soon'"),
    ("cpu.overprovisioning.factor", "0.5", "cpu.overprovisioning.factor must be at least 1"),
    ("default.ui.page.size", "100000", "default.ui.page.size must be at most 500"),
    ("vm.allocation.algorithm", "best", "Select a valid choice. best is not one of the available choices."),
])
def test_bad_values_are_refused_next_to_the_field(cloud, admin_ui, name, value, error):
    before = config.get_value(name)
    response = admin_ui.post(f"/client/settings/{name}", {"value": value})
    assert response.status_code == 200
    assert field_error(response, "id_value") == error
    assert config.get_value(name) == before
    assert not Event.objects.filter(type="CONFIGURATION.VALUE.EDIT").exists()


def test_a_value_is_changed_with_an_event(cloud, admin_ui):
    form = text(admin_ui.get("/client/settings/expunge.delay"))
    assert 'value="86400"' in form and "A whole number, at least 0." in form
    response = admin_ui.post("/client/settings/expunge.delay", {"value": " 3600 "})
    assert response.status_code == 302 and response["Location"] == "/client/settings/expunge.delay"
    assert config.get_value("expunge.delay") == 3600
    assert Event.objects.filter(type="CONFIGURATION.VALUE.EDIT", description__contains="expunge.delay set to 3600"
                                ).exists()
    assert "expunge.delay is now 3600." in words(admin_ui.get("/client/settings/expunge.delay"))
    assert "<strong>3600</strong>" in text(admin_ui.get("/client/settings?q=expunge.delay"))
    response = admin_ui.post("/client/settings/api.throttling.enabled", {"value": "true"})
    assert response.status_code == 302 and config.get_value("api.throttling.enabled") is True


def test_alerts_are_filtered_and_searched(cloud, admin_ui):
    compute_services.raise_alert(AlertType.HOST, "ALERT.HOST", "Host h1 (qemu+ssh://h1/system) is Alert: timeout")
    compute_services.raise_alert(AlertType.STORAGE_MISC, "ALERT.STORAGE", "Pool p1 is short of space")
    page = words(admin_ui.get("/client/alerts"))
    assert "Host h1" in page and "Pool p1" in page and "Host (1)" in page
    only_hosts = words(admin_ui.get(f"/client/alerts?type={AlertType.HOST.value}"))
    assert "Host h1" in only_hosts and "Pool p1" not in only_hosts
    searched = words(admin_ui.get("/client/alerts?q=short"))
    assert "Pool p1" in searched and "Host h1" not in searched
    unknown = admin_ui.get("/client/alerts?type=99")  # an unknown type is ignored, and said so
    assert unknown.status_code == 200 and "“99” is not a value of type: ignored." in words(unknown)
    assert "Host h1" in words(unknown) and "Pool p1" in words(unknown)
    assert admin_ui.get("/client/alerts?sort=-type&page=9").status_code == 200


def test_the_ui_page_size_setting_applies_to_every_list(cloud, admin_ui):
    assert admin_ui.post("/client/settings/default.ui.page.size", {"value": "5"}).status_code == 302
    assert len(setting_names(admin_ui.get("/client/settings"))) == 5
    for n in range(6):
        make_account(f"many-{n}")
    assert "showing 1–5" in words(admin_ui.get("/client/accounts"))
