"""Tenancy through the API: the domain tree, visibility of domain admins and users, list scoping,
usernames, API keys at rest, self-protection of the admin, settings and dynamic roles."""
from __future__ import annotations

import pytest
from django.db import connection

from accounts import crypto
from accounts.models import Account, Domain, Role, RolePermission, User
from portal import config
from tests.factories import make_account, make_domain


def uid(obj) -> str:
    return str(obj.uuid)


def rows(result, key: str) -> list[dict]:
    value = result.inner.get(key, [])
    return value if isinstance(value, list) else [value]


def names(result, key: str, field: str = "name") -> set[str]:
    return {row[field] for row in rows(result, key)}


@pytest.fixture
def tree(cloud, domain_admin):
    """ROOT/corp (domain_admin = corp-admin) with ROOT/corp/dev, and ROOT/other beside it; one user
    account in each of them."""
    corp = domain_admin.domain
    dev = make_domain("dev", parent=corp)
    other = make_domain("other")
    return {
        "corp": corp, "dev": dev, "other": other, "corp_admin": domain_admin,
        "corp_user": make_account("corp-user", domain=corp), "dev_user": make_account("dev-user", domain=dev),
        "other_user": make_account("other-user", domain=other),
    }


# -- the domain tree -------------------------------------------------------------------------------
def test_domain_paths_levels_and_children(api, cloud):
    corp = api("createDomain", name="corp").inner["domain"]
    assert (corp["path"], corp["level"], corp["haschild"]) == ("ROOT/corp", 1, False)
    assert corp["parentdomainid"] == uid(cloud.root) and corp["parentdomainname"] == "ROOT"
    dev = api("createDomain", name="dev", parentdomainid=corp["id"]).inner["domain"]
    assert (dev["path"], dev["level"], dev["parentdomainname"]) == ("ROOT/corp/dev", 2, "corp")
    listed = {d["name"]: d for d in rows(api("listDomains"), "domain")}
    assert listed["corp"]["haschild"] is True and listed["dev"]["haschild"] is False
    assert listed["ROOT"]["path"] == "ROOT" and listed["ROOT"]["level"] == 0
    assert "parentdomainid" not in listed["ROOT"]


def test_domain_names_are_unique_under_one_parent(api, cloud):
    corp = api("createDomain", name="corp").inner["domain"]
    duplicate = api("createDomain", name="CORP")
    assert duplicate.status == 431 and "already exists" in duplicate.errortext
    assert api("createDomain", name="corp", parentdomainid=corp["id"]).status == 200


def test_rename_updates_sub_domain_paths(api, tree):
    renamed = api("updateDomain", id=uid(tree["corp"]), name="acme").inner["domain"]
    assert renamed["path"] == "ROOT/acme"
    dev = rows(api("listDomains", id=uid(tree["dev"])), "domain")[0]
    assert dev["path"] == "ROOT/acme/dev"
    assert Domain.objects.get(pk=tree["dev"].pk).path == "/acme/dev/"
    users = rows(api("listUsers", username="dev-user"), "user")
    assert users[0]["domainpath"] == "ROOT/acme/dev"


def test_root_cannot_be_renamed_or_deleted(api, cloud):
    assert api("updateDomain", id=uid(cloud.root), name="TOP").status == 431
    job = api.job(api("deleteDomain", id=uid(cloud.root)))
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 431)


def test_list_domain_children(api, tree):
    direct = api("listDomainChildren")
    assert names(direct, "domain") == {"corp", "other"}
    recursive = api("listDomainChildren", isrecursive="true")
    assert names(recursive, "domain") == {"corp", "dev", "other"}
    assert names(api("listDomainChildren", id=uid(tree["corp"])), "domain") == {"dev"}


def test_delete_domain_refuses_while_it_has_children_or_accounts(api, tree):
    job = api.job(api("deleteDomain", id=uid(tree["corp"])))
    assert job["jobstatus"] == 2
    assert job["jobresultcode"] == 536
    text = job["jobresult"]["errortext"]
    assert "dev" in text and "corp-user" in text and "cleanup=true" in text
    assert Domain.objects.filter(pk=tree["corp"].pk).exists()
    empty = make_domain("empty")
    make_account("lodger", domain=empty)
    text = api.job(api("deleteDomain", id=uid(empty)))["jobresult"]["errortext"]
    assert "lodger" in text and "sub-domains" not in text


def test_delete_domain_with_cleanup(api, tree, client):
    job = api.job(api("deleteDomain", id=uid(tree["corp"]), cleanup="true"))
    assert (job["jobstatus"], job["jobresultcode"], job["jobresult"]) == (1, 0, {"success": True})
    assert not Domain.objects.filter(path__startswith="/corp/").exists()
    assert not Account.objects.filter(name__in=["corp-admin", "corp-user", "dev-user"]).exists()
    assert not User.objects.filter(username="dev-user").exists()
    assert Account.objects.filter(name="other-user").exists()
    deleted = api("listEvents", type="ACCOUNT.DELETE", listall="true")
    assert deleted.inner["count"] == 3
    assert api("listEvents", type="DOMAIN.DELETE", listall="true").inner["count"] == 1
    assert api.as_(tree["dev_user"])("listUsers").status == 401


def test_delete_domain_refuses_while_a_zone_is_dedicated_to_it(api, tree, admin):
    from compute import services as infra

    infra.create_zone(admin.user, name="corp-zone", dns1="8.8.8.8", internal_dns1="10.0.0.2", domain=tree["dev"])
    job = api.job(api("deleteDomain", id=uid(tree["corp"]), cleanup="true"))
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 536), job  # was a 530 crash
    assert "corp-zone" in job["jobresult"]["errortext"]
    assert Account.objects.filter(name="dev-user").exists()  # nothing half done
    assert Domain.objects.filter(path__startswith="/corp/").count() == 2


# -- domain admins ---------------------------------------------------------------------------------
def test_domain_admin_sees_only_its_subtree(api, tree):
    corp_admin = api.as_(tree["corp_admin"])
    assert names(corp_admin("listDomains"), "domain") == {"corp", "dev"}
    assert names(corp_admin("listAccounts"), "account") == {"corp-admin", "corp-user", "dev-user"}
    assert names(corp_admin("listUsers"), "user", "username") == {"corp-admin", "corp-user", "dev-user"}
    events = rows(corp_admin("listEvents", listall="true"), "event")
    assert events and {e["domainpath"] for e in events} <= {"ROOT/corp", "ROOT/corp/dev"}
    assert names(corp_admin("listDomainChildren", isrecursive="true"), "domain") == {"dev"}


def test_domain_admin_cannot_name_what_it_cannot_see(api, tree, admin):
    corp_admin = api.as_(tree["corp_admin"])
    other_account = uid(tree["other_user"].account)
    for command, params in [
        ("updateAccount", {"id": other_account, "newname": "x"}),
        ("enableAccount", {"id": other_account}),
        ("lockAccount", {"id": other_account}),
        ("disableAccount", {"id": other_account, "lock": "true"}),
        ("deleteAccount", {"id": other_account}),
        ("updateAccount", {"account": "other-user", "domainid": uid(tree["other"]), "newname": "x"}),
        ("enableAccount", {"account": "admin", "domainid": uid(admin.domain)}),
        ("createUser", {"account": "other-user", "domainid": uid(tree["other"]), "username": "x",
                        "password": "pw", "email": "e", "firstname": "f", "lastname": "l"}),
        ("createAccount", {"domainid": uid(tree["other"]), "username": "x", "password": "pw", "email": "e",
                           "firstname": "f", "lastname": "l"}),
        ("createDomain", {"name": "x", "parentdomainid": uid(tree["other"])}),
        ("deleteDomain", {"id": uid(tree["other"])}),
        ("updateUser", {"id": uid(tree["other_user"].user), "firstname": "x"}),
        ("disableUser", {"id": uid(admin.user)}),
        ("getUserKeys", {"id": uid(admin.user)}),
        ("listAccounts", {"domainid": uid(tree["other"])}),
        ("listUsers", {"domainid": uid(admin.domain)}),
    ]:
        answer = corp_admin(command, **params)
        assert answer.status == 431, (command, answer)
    assert Account.objects.get(pk=tree["other_user"].account.pk).state == "enabled"


def test_domain_admin_manages_its_subtree(api, tree):
    corp_admin = api.as_(tree["corp_admin"])
    created = corp_admin("createAccount", username="newbie", password="pw-12345", email="n@example.org",
                         firstname="N", lastname="B", domainid=uid(tree["dev"]))
    assert created.status == 200, created
    assert created.inner["account"]["domainpath"] == "ROOT/corp/dev"
    assert corp_admin("lockAccount", id=uid(tree["dev_user"].account)).inner["account"]["state"] == "locked"
    keys = corp_admin("getUserKeys", id=uid(tree["dev_user"].user)).inner["userkeys"]
    assert keys["apikey"] == tree["dev_user"].api_key


def test_domain_admin_cannot_create_or_promote_root_admins(api, tree):
    corp_admin = api.as_(tree["corp_admin"])
    common = {"password": "pw-12345", "email": "e@example.org", "firstname": "E", "lastname": "V"}
    as_type = corp_admin("createAccount", username="evil", accounttype="1", **common)
    assert as_type.status == 531, as_type
    admin_role = Role.objects.get(name="Root Admin")
    as_role = corp_admin("createAccount", username="evil2", roleid=uid(admin_role), **common)
    assert as_role.status in (431, 531), as_role  # the Admin role is not even visible to it
    assert not Account.objects.filter(name__in=["evil", "evil2"]).exists()


def test_domain_admin_cannot_change_its_own_domain(api, tree):
    corp_admin = api.as_(tree["corp_admin"])
    assert corp_admin("updateDomain", id=uid(tree["corp"]), name="mine").status == 531
    job = corp_admin.job(corp_admin("deleteDomain", id=uid(tree["corp"]), cleanup="true"))
    assert job["jobstatus"] == 2
    assert Domain.objects.filter(pk=tree["corp"].pk).exists()


# -- users -------------------------------------------------------------------------------------------
def test_a_user_sees_only_its_own_account(api, tree):
    corp_user = api.as_(tree["corp_user"])
    assert names(corp_user("listAccounts", listall="true"), "account") == {"corp-user"}
    assert names(corp_user("listUsers", listall="true"), "user", "username") == {"corp-user"}
    assert names(corp_user("listDomains", listall="true"), "domain") == {"corp"}
    events = rows(corp_user("listEvents", listall="true"), "event")
    assert events and {e["account"] for e in events} == {"corp-user"}
    assert corp_user("listAccounts", id=uid(tree["corp_admin"].account)).inner == {}
    assert corp_user("listUsers", account="corp-admin", domainid=uid(tree["corp"])).status == 431


def test_a_user_sees_the_other_users_of_its_account(api, tree):
    api("createUser", account="corp-user", domainid=uid(tree["corp"]), username="corp-user-2", password="pw-12345",
        email="e", firstname="f", lastname="l")
    listed = api.as_(tree["corp_user"])("listUsers")
    assert names(listed, "user", "username") == {"corp-user", "corp-user-2"}


def test_a_user_may_update_itself_but_needs_its_current_password(api, tree):
    me = api.as_(tree["corp_user"])
    user_id = uid(tree["corp_user"].user)
    assert me("updateUser", id=user_id, firstname="Carla").inner["user"]["firstname"] == "Carla"
    refused = me("updateUser", id=user_id, password="new-pw-1")
    assert refused.status == 431 and "currentpassword" in refused.errortext
    changed = me("updateUser", id=user_id, password="new-pw-1", currentpassword=tree["corp_user"].password)
    assert changed.status == 200
    assert User.objects.get(pk=tree["corp_user"].user.pk).check_password("new-pw-1")


# -- list scoping ------------------------------------------------------------------------------------
def test_listall_domainid_isrecursive_and_account(api, tree, admin):
    corp = uid(tree["corp"])
    assert names(api("listAccounts", domainid=corp), "account") == {"corp-admin", "corp-user"}
    assert names(api("listAccounts", domainid=corp, isrecursive="true"), "account") == {
        "corp-admin", "corp-user", "dev-user"}
    assert names(api("listAccounts", domainid=corp, listall="true"), "account") == {
        "corp-admin", "corp-user", "dev-user"}
    assert names(api("listAccounts", account="corp-user", domainid=corp), "account") == {"corp-user"}
    missing = api("listAccounts", account="corp-user")  # looked up in the caller's own domain (ROOT)
    assert missing.status == 431 and "Unable to find account corp-user" in missing.errortext
    assert names(api("listUsers", domainid=uid(tree["dev"])), "user", "username") == {"dev-user"}


def test_owned_lists_default_to_the_callers_own_rows(api, tree, admin):
    own = rows(api("listEvents"), "event")
    assert own and {e["account"] for e in own} == {"admin"}
    everything = rows(api("listEvents", listall="true", pagesize="-1"), "event")
    assert {"admin", "corp-user", "other-user"} <= {e["account"] for e in everything}
    in_corp = rows(api("listEvents", domainid=uid(tree["corp"])), "event")
    assert in_corp and {e["domainpath"] for e in in_corp} == {"ROOT/corp"}
    recursive = rows(api("listEvents", domainid=uid(tree["corp"]), isrecursive="true"), "event")
    assert {e["domainpath"] for e in recursive} == {"ROOT/corp", "ROOT/corp/dev"}


# -- usernames ---------------------------------------------------------------------------------------
def test_usernames_are_unique_per_domain_only(api, tree):
    common = {"password": "pw-12345", "email": "d@example.org", "firstname": "D", "lastname": "D"}
    assert api("createAccount", username="dup", **common).status == 200
    again = api("createAccount", username="dup", account="dup-2", **common)
    assert again.status == 431 and "already exists" in again.errortext
    elsewhere = api("createAccount", username="dup", domainid=uid(tree["corp"]), **common)
    assert elsewhere.status == 200
    as_user = api("createUser", account="corp-user", domainid=uid(tree["corp"]), username="dup", **common)
    assert as_user.status == 431
    assert User.objects.filter(username="dup").count() == 2


def test_account_names_are_unique_per_domain(api, tree):
    common = {"password": "pw-12345", "email": "d@example.org", "firstname": "D", "lastname": "D"}
    refused = api("createAccount", username="someone", account="corp-user", domainid=uid(tree["corp"]), **common)
    assert refused.status == 431
    assert api("createAccount", username="someone", account="corp-user", **common).status == 200


# -- API keys ----------------------------------------------------------------------------------------
def test_secret_keys_are_encrypted_at_rest_and_never_listed(api, tenant_a):
    keys = api.as_(tenant_a)("registerUserKeys", id=uid(tenant_a.user)).inner["userkeys"]
    secret = keys["secretkey"]
    assert len(secret) == len(keys["apikey"]) == 86
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret_key_encrypted FROM accounts_user WHERE id = %s", [tenant_a.user.pk])
        (stored,) = cursor.fetchone()
    assert stored and secret not in stored
    assert crypto.decrypt(stored) == secret
    listed = api("listUsers", username="tenant-a")
    assert rows(listed, "user")[0]["apikey"] == keys["apikey"]
    assert "secretkey" not in listed.text and secret not in listed.text
    assert secret not in api("listAccounts", name="tenant-a").text
    assert api("getUserKeys", id=uid(tenant_a.user)).inner["userkeys"]["secretkey"] == secret


def test_registering_keys_retires_the_old_pair(api, tenant_a):
    old = api.as_(tenant_a)
    assert old("registerUserKeys", id=uid(tenant_a.user)).status == 200
    assert old("listUsers").status == 401


def test_update_user_sets_keys(api, tenant_a):
    answer = api("updateUser", id=uid(tenant_a.user), userapikey="my-key", usersecretkey="my-secret")
    assert answer.status == 200
    assert "my-secret" not in answer.text
    stored = User.objects.get(pk=tenant_a.user.pk)
    assert stored.api_key == "my-key" and crypto.decrypt(stored.secret_key_encrypted) == "my-secret"
    alone = api("updateUser", id=uid(tenant_a.user), userapikey="other-key")
    assert alone.status == 431


# -- the admin protects itself -----------------------------------------------------------------------
def test_admin_cannot_delete_or_disable_itself(api, admin):
    me = uid(admin.user)
    refused = api("deleteUser", id=me)
    assert refused.status == 431 and "yourself" in refused.errortext
    assert api("lockUser", id=me).status == 431
    job = api.job(api("disableUser", id=me))
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 431)
    job = api.job(api("deleteAccount", id=uid(admin.account)))
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 431)
    assert api("listUsers", id=me).inner["user"][0]["state"] == "enabled"


def test_another_root_admin_cannot_delete_the_default_admin(api, admin, cloud):
    root2 = api.as_(make_account("root2", accounttype=1))
    refused = root2("deleteUser", id=uid(admin.user))
    assert refused.status == 431 and "default" in refused.errortext
    job = root2.job(root2("deleteAccount", id=uid(admin.account)))
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 431)
    assert root2.job(root2("disableAccount", id=uid(admin.account), lock="false"))["jobstatus"] == 2
    assert Account.objects.get(pk=admin.account.pk).state == "enabled"


# -- settings ----------------------------------------------------------------------------------------
def test_list_configurations(api, cloud):
    answer = api("listConfigurations", name="default.page.size")
    assert answer.inner["count"] == 1
    row = answer.inner["configuration"][0]
    assert row["value"] == "500" and row["defaultvalue"] == "500"
    assert row["type"] == "Integer" and row["isdynamic"] is True
    assert row["description"] and row["category"]
    keyword = {r["name"] for r in rows(api("listConfigurations", keyword="page.size"), "configuration")}
    assert {"default.page.size", "default.ui.page.size"} <= keyword
    names_ = {r["name"] for r in rows(api("listConfigurations", pagesize="-1"), "configuration")}
    assert {"default.page.size", "expunge.delay", "cpu.overprovisioning.factor"} <= names_


def test_update_configuration(api, cloud):
    answer = api("updateConfiguration", name="default.page.size", value="300")
    assert answer.status == 200
    assert answer.inner["configuration"]["value"] == "300"
    assert rows(api("listConfigurations", name="default.page.size"), "configuration")[0]["value"] == "300"
    assert config.get_value("default.page.size") == 300
    too_big = api("listUsers", page="1", pagesize="301")
    assert too_big.errortext == "Page size can't exceed max allowed page size value: 300"
    event = rows(api("listEvents", type="CONFIGURATION.VALUE.EDIT"), "event")
    assert event and "default.page.size" in event[0]["description"]


@pytest.mark.parametrize("params, text", [
    ({"name": "default.page.size", "value": "many"}, "default.page.size takes a whole number, not 'many'"),
    ({"name": "default.page.size", "value": "0"}, "default.page.size must be at least 1"),
    ({"name": "enforce.post.requests.and.timestamps", "value": "maybe"}, "takes true or false"),
    ({"name": "no.such.setting", "value": "1"}, "Configuration no.such.setting does not exist"),
    ({"name": "default.page.size"}, "missing parameter value"),
])
def test_update_configuration_validation(api, cloud, params, text):
    answer = api("updateConfiguration", **params)
    assert answer.status == 431, answer
    assert text in answer.errortext
    assert config.get_value("default.page.size") == 500


def test_update_configuration_scope(api, tenant_a):
    refused = api("updateConfiguration", name="default.page.size", value="10", accountid=uid(tenant_a.account))
    assert refused.status == 431 and "not per account" in refused.errortext


# -- roles -------------------------------------------------------------------------------------------
def test_role_lifecycle(api, cloud):
    role = api("createRole", name="Auditor", type="User", description="reads").inner["role"]
    assert (role["name"], role["type"], role["isdefault"]) == ("Auditor", "User", False)
    assert api("createRole", name="auditor", type="User").status == 431  # names are unique
    assert api("createRole", name="Weird", type="Superuser").status == 431
    assert api("createRole", name="Typeless").status == 431
    assert api("createRole", name="Blank", type="").status == 431  # was a 530 crash
    updated = api("updateRole", id=role["id"], name="Reader", description="reads more").inner["role"]
    assert (updated["name"], updated["description"]) == ("Reader", "reads more")
    assert "Reader" in names(api("listRoles"), "role")
    assert api("deleteRole", id=role["id"]).inner == {"success": True}
    assert "Reader" not in names(api("listRoles"), "role")


def test_default_roles_are_protected(api, cloud):
    user_role = Role.objects.get(name="User")
    assert api("updateRole", id=uid(user_role), name="Users").status == 431
    assert api("deleteRole", id=uid(user_role)).status == 431
    assert api("updateRole", id=uid(user_role), description="still editable").status == 200


def test_a_role_in_use_cannot_be_deleted_or_change_type(api, cloud):
    role = api("createRole", name="Busy", type="User").inner["role"]
    api("createAccount", username="busy", password="pw-12345", email="b@example.org", firstname="B", lastname="B",
        roleid=role["id"])
    refused = api("deleteRole", id=role["id"])
    assert refused.status == 536 and "busy" in refused.errortext
    assert api("updateRole", id=role["id"], type="DomainAdmin").status == 536


def test_create_role_by_copying(api, cloud):
    source = api("createRole", name="Source", type="User").inner["role"]
    api("createRolePermission", roleid=source["id"], rule="list*", permission="allow")
    api("createRolePermission", roleid=source["id"], rule="delete*", permission="deny")
    copy = api("createRole", name="Copy", roleid=source["id"]).inner["role"]
    assert copy["type"] == "User"
    copied = rows(api("listRolePermissions", roleid=copy["id"]), "rolepermission")
    assert [(r["rule"], r["permission"]) for r in copied] == [("list*", "allow"), ("delete*", "deny")]


def test_role_permission_validation(api, cloud):
    role = api("createRole", name="Checked", type="User").inner["role"]
    assert api("createRolePermission", roleid=role["id"], rule="list users", permission="deny").status == 431
    assert api("createRolePermission", roleid=role["id"], rule="listUsers", permission="maybe").status == 431
    assert api("createRolePermission", roleid=role["id"], rule="listUsers", permission="deny").status == 200
    duplicate = api("createRolePermission", roleid=role["id"], rule="listusers", permission="allow")
    assert duplicate.status == 431 and "already" in duplicate.errortext


@pytest.fixture
def ruled(api, cloud):
    """A user whose role says: allow listUsers, then deny list*."""
    role = api("createRole", name="Ruled", type="User").inner["role"]
    allow = api("createRolePermission", roleid=role["id"], rule="listUsers", permission="allow").inner
    deny = api("createRolePermission", roleid=role["id"], rule="list*", permission="deny").inner
    tenant = make_account("ruled")
    Account.objects.filter(pk=tenant.account.pk).update(role=Role.objects.get(uuid=role["id"]))
    return role, allow["rolepermission"], deny["rolepermission"], api.as_(tenant)


def test_first_matching_rule_wins(api, ruled):
    role, allow, deny, user = ruled
    assert user("listUsers").status == 200
    assert user("listAccounts").status == 401
    assert user("listCapabilities").status == 401  # list* matches it too
    assert user("getUserKeys", id=uid(user.tenant.user)).status == 200  # no rule matches: the role type decides
    listed = rows(api("listRolePermissions", roleid=role["id"]), "rolepermission")
    assert [r["rule"] for r in listed] == ["listUsers", "list*"]
    reordered = api("updateRolePermission", roleid=role["id"], ruleorder=f"{deny['id']},{allow['id']}")
    assert reordered.status == 200, reordered
    assert [r["rule"] for r in rows(api("listRolePermissions", roleid=role["id"]), "rolepermission")] == [
        "list*", "listUsers"]
    assert user("listUsers").status == 401


def test_update_and_delete_role_permission(api, ruled):
    role, allow, deny, user = ruled
    assert api("updateRolePermission", roleid=role["id"], ruleid=deny["id"], permission="allow").status == 200
    assert user("listAccounts").status == 200
    assert api("updateRolePermission", roleid=role["id"], ruleid=allow["id"], permission="deny").status == 200
    assert user("listUsers").status == 401
    assert api("deleteRolePermission", id=allow["id"]).inner == {"success": True}
    assert user("listUsers").status == 200
    assert not RolePermission.objects.filter(uuid=allow["id"]).exists()


def test_update_role_permission_of_another_role_is_refused(api, ruled):
    role, allow, deny, user = ruled
    other = api("createRole", name="Other", type="User").inner["role"]
    refused = api("updateRolePermission", roleid=other["id"], ruleid=allow["id"], permission="deny")
    assert refused.status == 431


def test_rules_never_grant_beyond_the_role_type(api, ruled):
    role, allow, deny, user = ruled
    api("createRolePermission", roleid=role["id"], rule="createDomain", permission="allow")
    api("updateRolePermission", roleid=role["id"], ruleorder=",".join(
        [r["id"] for r in rows(api("listRolePermissions", roleid=role["id"]), "rolepermission")][::-1]))
    assert user("createDomain", name="nope").status == 401


def test_domain_admins_do_not_see_admin_roles(api, domain_admin):
    listed = names(api.as_(domain_admin)("listRoles"), "role")
    assert "Root Admin" not in listed
    assert {"Domain Admin", "User"} <= listed
