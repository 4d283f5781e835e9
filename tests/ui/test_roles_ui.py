"""Roles and permissions pages (root admin only; a domain admin and a plain user get 404): the
list (sort, search, type filter), create (copying another role's rules), update with errors next
to the field, rules added, switched, moved and removed — each an event, and the rules take effect
on the API at once; delete refused while accounts use the role."""
from __future__ import annotations

import re

import pytest

from accounts import services
from accounts.models import Role, RolePermission
from portal.models import Event
from tests.factories import admin_user

from .conftest import logged_in
from .test_instances_ui import action_error, field_error, text, words


def names(response) -> list[str]:
    return re.findall(r'<td><a href="/client/roles/[0-9a-f-]+">([^<]+)</a>', text(response))


def rules(role: Role) -> list[tuple[str, str]]:
    return list(role.permissions.order_by("sort_order", "id").values_list("rule", "permission"))


@pytest.fixture
def auditor(cloud, admin):
    role = services.create_role(admin.user, name="Auditor", role_type="User", description="reads only")
    services.create_role_permission(admin.user, role=role, rule="list*", permission="allow")
    services.create_role_permission(admin.user, role=role, rule="*", permission="deny")
    return role


def test_only_root_admins_see_roles(auditor, user_ui, domain_admin_ui, admin_ui):
    for client in (user_ui, domain_admin_ui):
        for url in ("/client/roles", "/client/roles/new", f"/client/roles/{auditor.uuid}"):
            assert client.get(url).status_code == 404, url
        assert client.post(f"/client/roles/{auditor.uuid}/delete").status_code == 404
        assert client.post(f"/client/roles/{auditor.uuid}/rules", {"rule-rule": "x", "rule-permission": "allow"}
                           ).status_code == 404
        assert '<a href="/client/roles">Roles</a>' not in text(client.get("/client/"))
    assert Role.objects.filter(pk=auditor.pk).exists() and len(rules(auditor)) == 2
    assert '<a href="/client/roles">Roles</a>' in text(admin_ui.get("/client/"))


def test_list_sorts_searches_and_filters(auditor, admin_ui):
    assert names(admin_ui.get("/client/roles")) == ["Auditor", "Domain Admin", "Root Admin", "User"]
    assert names(admin_ui.get("/client/roles?sort=-name")) == ["User", "Root Admin", "Domain Admin", "Auditor"]
    assert names(admin_ui.get("/client/roles?type=User")) == ["Auditor", "User"]
    assert names(admin_ui.get("/client/roles?q=reads")) == ["Auditor"]
    wizard = admin_ui.get("/client/roles?type=Wizard")  # ignored and named
    assert names(wizard) == ["Auditor", "Domain Admin", "Root Admin", "User"]
    assert "“Wizard” is not a value of type: ignored." in text(wizard)
    assert admin_ui.get("/client/roles/00000000-0000-0000-0000-000000000000").status_code == 404


def test_create_copying_rules_and_errors_next_to_the_field(auditor, admin_ui):
    response = admin_ui.post("/client/roles/new", {"name": "auditor", "role_type": "User"})
    assert "already exists" in field_error(response, "id_name")
    response = admin_ui.post("/client/roles/new", {"name": "Ops", "role_type": ""})
    assert "Give either type" in field_error(response, "id_copy_from")
    response = admin_ui.post("/client/roles/new", {"name": "Auditor 2", "copy_from": str(auditor.uuid),
                                                   "description": "copy"})
    role = Role.objects.get(name="Auditor 2")
    assert response.status_code == 302 and response["Location"] == f"/client/roles/{role.uuid}"
    assert role.type == "User" and rules(role) == rules(auditor)
    assert Event.objects.filter(type="ROLE.CREATE", resource_uuid=str(role.uuid)).exists()


def test_update_a_role(auditor, admin_ui):
    url = f"/client/roles/{auditor.uuid}"
    response = admin_ui.post(url, {"name": "Readers", "role_type": "User", "description": "read-only"})
    assert response.status_code == 302
    auditor.refresh_from_db()
    assert (auditor.name, auditor.description) == ("Readers", "read-only")
    assert Event.objects.filter(type="ROLE.UPDATE", resource_uuid=str(auditor.uuid)).exists()
    response = admin_ui.post(url, {"name": "Root Admin", "role_type": "User"})
    assert "already exists" in field_error(response, "id_name")
    default = Role.objects.get(name="User")
    response = admin_ui.post(f"/client/roles/{default.uuid}", {"name": "Users", "role_type": "User"})
    assert "cannot be renamed" in field_error(response, "id_role_type")


def test_rules_added_switched_moved_removed_and_enforced(auditor, admin_ui, tenant_a, api):
    url = f"/client/roles/{auditor.uuid}"
    response = admin_ui.post(url + "/rules", {"rule-rule": "bad rule!", "rule-permission": "allow"})
    assert "is not an API name" in field_error(response, "id_rule-rule")
    response = admin_ui.post(url + "/rules", {"rule-rule": "list*", "rule-permission": "deny"})
    assert "already has a rule" in field_error(response, "id_rule-rule")
    assert admin_ui.post(url + "/rules", {"rule-rule": "listZones", "rule-permission": "deny"}).status_code == 302
    assert rules(auditor) == [("list*", "allow"), ("*", "deny"), ("listZones", "deny")]
    zones_rule = RolePermission.objects.get(role=auditor, rule="listZones")
    assert admin_ui.post(f"{url}/rules/{zones_rule.uuid}/up").status_code == 302
    assert admin_ui.post(f"{url}/rules/{zones_rule.uuid}/up").status_code == 302
    assert rules(auditor) == [("listZones", "deny"), ("list*", "allow"), ("*", "deny")]
    assert admin_ui.post(f"{url}/rules/{zones_rule.uuid}/up").status_code == 302  # already first: unchanged
    star = RolePermission.objects.get(role=auditor, rule="*")
    assert admin_ui.post(f"{url}/rules/{star.uuid}/allow").status_code == 302
    assert rules(auditor)[2] == ("*", "allow")
    assert admin_ui.post(f"{url}/rules/{star.uuid}/sideways").status_code == 404
    other = services.create_role(api.tenant.user, name="Other", role_type="User")
    foreign = services.create_role_permission(api.tenant.user, role=other, rule="x", permission="allow")
    assert admin_ui.post(f"{url}/rules/{foreign.uuid}/delete").status_code == 404  # not a rule of this role
    types = list(Event.objects.filter(resource_uuid=str(auditor.uuid)).values_list("type", flat=True))
    assert types.count("ROLE.PERMISSION.CREATE") == 3 and "ROLE.PERMISSION.UPDATE" in types
    # the rules apply to the API at once: tenant-a with this role may not list zones any more
    services.update_account(api.tenant.user, tenant_a.account, role=auditor)
    assert api.as_(tenant_a)("listZones").status == 401
    assert admin_ui.post(f"{url}/rules/{zones_rule.uuid}/delete").status_code == 302
    assert ("listZones", "deny") not in rules(auditor)
    assert api.as_(tenant_a)("listZones").status == 200
    page = words(admin_ui.get(url))
    assert "Rule listZones removed from role Auditor" in page and "tenant-a" in page


def test_delete_a_role(auditor, admin_ui, tenant_a):
    url = f"/client/roles/{auditor.uuid}"
    user_role = Role.objects.get(name="User")
    response = admin_ui.post(f"/client/roles/{user_role.uuid}/delete")
    assert "cannot be deleted" in action_error(response)
    services.update_account(admin_user(), tenant_a.account, role=auditor)
    assert "in use by accounts tenant-a" in action_error(admin_ui.post(url + "/delete"))
    services.update_account(admin_user(), tenant_a.account, role=user_role)
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 302 and response["Location"] == "/client/roles"
    assert not Role.objects.filter(pk=auditor.pk).exists()
    assert Event.objects.filter(type="ROLE.DELETE", description="Role Auditor deleted").exists()
    assert logged_in(tenant_a.user).get("/client/").status_code == 200
