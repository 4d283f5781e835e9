"""Settings of one zone, cluster, primary storage pool or account (updateConfiguration's zoneid,
clusterid, storageid, accountid; resetConfiguration): root admins only, reached from the object's
page; each setting of that scope with its value here (own or inherited) and the global one, set
with the setting's own validation (the error next to the value), reset to the global value."""
from __future__ import annotations

from compute import networks
from compute import services as compute_services
from portal import config
from portal.models import Event

from .test_instances_ui import field_error, text, words


def test_a_zones_settings_are_set_and_reset_by_root_admins_only(cloud, admin, admin_ui, user_ui, domain_admin_ui):
    zone = compute_services.create_zone(admin.user, name="z9", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    page = f"/client/settings/zone/{zone.uuid}"
    assert f'href="{page}"' in text(admin_ui.get(f"/client/infrastructure/zones/{zone.uuid}"))
    listing = words(admin_ui.get(page))
    assert "Settings of zone z9" in listing and "guest.network.uplink (empty) inherited" in listing
    assert "expunge.delay" not in listing  # global only: not settable per zone

    one = f"{page}/guest.network.uplink"
    refused = admin_ui.post(one, {"value": "eth1; reboot"})
    assert refused.status_code == 200 and "network interface name" in field_error(refused, "id_value")
    assert networks.uplink(zone) == ""
    done = admin_ui.post(one, {"value": "eth1"}, follow=True)
    assert "guest.network.uplink of zone z9 is now eth1." in words(done)
    assert "guest.network.uplink eth1 set here" in words(done)
    assert networks.uplink(zone) == "eth1" and config.get_value("guest.network.uplink") == ""
    assert Event.objects.filter(type="CONFIGURATION.VALUE.EDIT", description__contains=f"for zone {zone.uuid}").exists()

    config.set_value("guest.network.uplink", "bond0")
    assert "Reset to the global value" in text(admin_ui.get(one))
    reset = admin_ui.post(one, {"reset": "1"}, follow=True)
    assert "now follows the global value (bond0)" in words(reset)
    assert networks.uplink(zone) == "bond0" and "Reset to the global value" not in text(admin_ui.get(one))

    for client in (user_ui, domain_admin_ui):
        assert client.get(page).status_code == 404
        assert client.post(one, {"value": "eth2"}).status_code == 404
    assert networks.uplink(zone) == "bond0"


def test_unknown_scopes_objects_and_settings_are_not_found(cloud, admin, admin_ui, tenant_a):
    zone = compute_services.create_zone(admin.user, name="z8", dns1="8.8.8.8", internal_dns1="10.0.0.1")
    for url in (f"/client/settings/planet/{zone.uuid}", f"/client/settings/cluster/{zone.uuid}",
                f"/client/settings/zone/{zone.uuid}/expunge.delay", f"/client/settings/zone/{zone.uuid}/nope"):
        assert admin_ui.get(url).status_code == 404, url


def test_an_accounts_settings_are_linked_for_root_admins(cloud, admin_ui, domain_admin_ui, tenant_a):
    account_page = f"/client/accounts/{tenant_a.account.uuid}"
    settings_page = f"/client/settings/account/{tenant_a.account.uuid}"
    assert f'href="{settings_page}"' in text(admin_ui.get(account_page))
    assert "allow.user.expunge.recover.vm" in words(admin_ui.get(settings_page))
    assert settings_page not in text(domain_admin_ui.get(account_page))
    done = admin_ui.post(f"{settings_page}/allow.user.expunge.recover.vm", {"value": "true"}, follow=True)
    assert "is now true" in words(done)
    assert config.get_value("allow.user.expunge.recover.vm", scope="account", scope_uuid=str(tenant_a.account.uuid))
