"""Editing domains, accounts and users from their pages, and a domain's resource limits, each
through the service the API command calls (updateDomain, updateAccount, updateUser,
updateResourceLimit with domainid): the change and its event, a refusal shown next to the field
it is about, and what another domain's admin or a plain user cannot reach (404) or do."""
from __future__ import annotations

import html
import re

from django.test import Client

from accounts import limits, services
from accounts.models import Account, Domain, User
from portal.models import Event
from tests.factories import admin_user, make_account, make_domain

from .conftest import logged_in


def text(response) -> str:
    return response.content.decode()


def field_error(response, field_id: str) -> str:
    match = re.search(rf'<small id="{field_id}_error" class="nubo-field-error"[^>]*>([^<]*)</small>', text(response))
    return html.unescape(match.group(1)) if match else ""


def words(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text(response))))


def limit_row(response, name: str) -> str:
    row = re.search(rf"<tr>\s*<td>{name}\b.*?</tr>", text(response), re.S)
    assert row, name
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row.group(0))).split())


# -- domains ------------------------------------------------------------------------------------------
def test_a_domain_page_edits_the_domain(admin_ui, cloud):
    corp = make_domain("corp")
    make_domain("other")
    page = admin_ui.get(f"/client/domains/{corp.uuid}")
    assert page.status_code == 200 and 'id="domain-edit"' in text(page)
    assert f'href="/client/domains/{corp.uuid}"' in text(admin_ui.get("/client/domains"))  # linked from the list
    answer = admin_ui.post(f"/client/domains/{corp.uuid}/edit", {"name": "corporate", "network_domain": "corp.example"},
                           follow=True)
    assert "Domain ROOT/corporate updated." in words(answer)
    corp.refresh_from_db()
    assert (corp.name, corp.path, corp.network_domain) == ("corporate", "/corporate/", "corp.example")
    assert Event.objects.filter(type="DOMAIN.UPDATE", description="Domain ROOT/corporate updated").exists()
    # a name clash and ROOT's rename: the service's sentence next to the name
    clash = admin_ui.post(f"/client/domains/{corp.uuid}/edit", {"name": "Other", "network_domain": ""})
    assert clash.status_code == 200 and field_error(clash, "id_name") == "Domain with name Other already exists under ROOT"
    root = Domain.objects.get(path="/")
    refused = admin_ui.post(f"/client/domains/{root.uuid}/edit", {"name": "TOP", "network_domain": ""})
    assert field_error(refused, "id_name") == "The ROOT domain cannot be renamed"
    assert Domain.objects.get(pk=root.pk).name == "ROOT"
    empty = admin_ui.post(f"/client/domains/{corp.uuid}/edit", {"name": "", "network_domain": ""})
    assert field_error(empty, "id_name") == "This field is required."
    assert Domain.objects.get(pk=corp.pk).name == "corporate"


def test_a_domain_admin_edits_only_the_domains_below_its_own(domain_admin, cloud):
    corp = domain_admin.account.domain
    team = make_domain("team", parent=corp)
    other = make_domain("other")
    client = logged_in(domain_admin.user)
    assert 'id="domain-edit"' not in text(client.get(f"/client/domains/{corp.uuid}"))  # its own: not offered
    refused = client.post(f"/client/domains/{corp.uuid}/edit", {"name": "corp2", "network_domain": ""})
    assert "A domain admin may not update its own domain" in words(refused)
    assert client.post(f"/client/domains/{other.uuid}/edit", {"name": "x", "network_domain": ""}).status_code == 404
    assert client.get(f"/client/domains/{other.uuid}").status_code == 404
    client.post(f"/client/domains/{team.uuid}/edit", {"name": "squad", "network_domain": ""})
    assert Domain.objects.get(pk=team.pk).path == "/corp/squad/"
    assert Domain.objects.get(pk=other.pk).name == "other" and Domain.objects.get(pk=corp.pk).name == "corp"


def test_users_do_not_reach_domain_pages(user_ui, cloud):
    corp = make_domain("corp")
    assert user_ui.get(f"/client/domains/{corp.uuid}").status_code == 404
    assert user_ui.post(f"/client/domains/{corp.uuid}/edit", {"name": "x"}).status_code == 404
    assert user_ui.post(f"/client/domains/{corp.uuid}/limits/0", {"max": "1"}).status_code == 404


# -- domain limits ----------------------------------------------------------------------------------------
def test_a_domain_page_shows_and_sets_its_limits(admin_ui, cloud):
    corp = make_domain("corp")
    make_account("corp-user", domain=corp)
    page = admin_ui.get(f"/client/domains/{corp.uuid}")
    assert limit_row(page, "user_vm").startswith("user_vm 0 40 (not set here)")  # max.domain.user.vms
    answer = admin_ui.post(f"/client/domains/{corp.uuid}/limits/0", {"max": "4"}, follow=True)
    assert "Limit of user_vm for domain ROOT/corp: 4." in words(answer)
    assert limit_row(answer, "user_vm").startswith("user_vm 0 4 New limit")  # set here: no "(not set here)"
    assert limits.domain_max(corp, "user_vm") == 4
    assert Event.objects.filter(type="RESOURCE.LIMIT.UPDATE",
                                description="Resource limit user_vm of domain ROOT/corp set to 4").exists()
    # a sub-domain inherits it, and may not go above it: the sentence next to its field
    team = make_domain("team", parent=corp)
    assert "(not set here)" in limit_row(admin_ui.get(f"/client/domains/{team.uuid}"), "user_vm")
    refused = admin_ui.post(f"/client/domains/{team.uuid}/limits/0", {"max": "9"})
    assert refused.status_code == 200
    assert field_error(refused, "limit-0") == ("Domain ROOT/corp has maximum allowed resource limit 4 for user_vm, please "
                                               "specify a value less than or equal to 4")
    bad = admin_ui.post(f"/client/domains/{team.uuid}/limits/0", {"max": "lots"})
    assert field_error(bad, "limit-0") == "A limit is a whole number (-1 for no limit), not 'lots'."
    assert 'name="max" value="lots"' in text(bad)  # the answer refused, shown again
    assert limits.domain_max(team, "user_vm") == 4
    assert admin_ui.post(f"/client/domains/{team.uuid}/limits/99", {"max": "1"}).status_code == 404


def test_root_and_a_domain_admins_own_domain_show_limits_without_forms(admin_ui, domain_admin, cloud):
    root = Domain.objects.get(path="/")
    page = admin_ui.get(f"/client/domains/{root.uuid}")
    assert 'id="domain-limits"' in text(page) and 'class="nubo-inline nubo-limit-form"' not in text(page)
    assert "Cannot update resource limit for ROOT domain" in words(page)
    assert "Cannot update resource limit for ROOT domain" in words(
        admin_ui.post(f"/client/domains/{root.uuid}/limits/0", {"max": "1"}))
    corp = domain_admin.account.domain
    team = make_domain("team", parent=corp)
    client = logged_in(domain_admin.user)
    own = client.get(f"/client/domains/{corp.uuid}")
    assert "nubo-limit-form" not in text(own) and "your own domain ROOT/corp" in words(own)
    refused = client.post(f"/client/domains/{corp.uuid}/limits/0", {"max": "1000"})
    assert "Unable to update resource limit for your own domain ROOT/corp" in field_error(refused, "limit-0")
    assert limits.domain_max(corp, "user_vm") == 40  # the default, unchanged
    # a domain below its own: set by clicking
    assert "nubo-limit-form" in text(client.get(f"/client/domains/{team.uuid}"))
    client.post(f"/client/domains/{team.uuid}/limits/8", {"max": "6"})
    assert limits.domain_max(team, "cpu") == 6
    other = make_domain("other")
    assert client.post(f"/client/domains/{other.uuid}/limits/8", {"max": "6"}).status_code == 404


# -- accounts -------------------------------------------------------------------------------------------
def test_the_account_page_edits_the_account(admin_ui, tenant_a, tenant_b):
    url = f"/client/accounts/{tenant_a.account.uuid}"
    assert 'id="account-edit"' in text(admin_ui.get(url))
    answer = admin_ui.post(url + "/edit", {"new_name": "alpha", "network_domain": "alpha.example"}, follow=True)
    assert "Account alpha updated." in words(answer)
    account = Account.objects.get(pk=tenant_a.account.pk)
    assert (account.name, account.network_domain) == ("alpha", "alpha.example")
    assert Event.objects.filter(type="ACCOUNT.UPDATE", account=account).exists()
    clash = admin_ui.post(url + "/edit", {"new_name": "tenant-b", "network_domain": ""})
    assert clash.status_code == 200
    assert field_error(clash, "id_new_name") == "The specified account: tenant-b already exists in domain ROOT"
    slash = admin_ui.post(url + "/edit", {"new_name": "a/b", "network_domain": ""})
    assert "may not contain" in field_error(slash, "id_new_name")
    assert Account.objects.get(pk=account.pk).name == "alpha"
    admin_account = Account.objects.get(name="admin", domain__path="/")
    default = admin_ui.post(f"/client/accounts/{admin_account.uuid}/edit", {"new_name": "boss", "network_domain": ""})
    assert field_error(default, "id_new_name") == "The default account admin cannot be renamed"


def test_another_domains_admin_cannot_edit_an_account(domain_admin, tenant_a, user_ui):
    corp_user = make_account("corp-user", domain=domain_admin.account.domain)
    client = logged_in(domain_admin.user)
    assert client.post(f"/client/accounts/{tenant_a.account.uuid}/edit",
                       {"new_name": "mine", "network_domain": ""}).status_code == 404
    client.post(f"/client/accounts/{corp_user.account.uuid}/edit", {"new_name": "corp-two", "network_domain": ""})
    assert Account.objects.get(pk=corp_user.account.pk).name == "corp-two"
    assert user_ui.post(f"/client/accounts/{tenant_a.account.uuid}/edit",
                        {"new_name": "self", "network_domain": ""}).status_code == 404
    assert Account.objects.get(pk=tenant_a.account.pk).name == "tenant-a"


# -- users ------------------------------------------------------------------------------------------------
def test_an_admin_edits_a_user_and_sets_its_password(admin_ui, tenant_a):
    url = f"/client/users/{tenant_a.user.uuid}"
    page = admin_ui.get(url)
    assert 'id="user-edit"' in text(page) and 'id="user-password"' in text(page)
    assert f'href="{url}"' in text(admin_ui.get("/client/users"))
    answer = admin_ui.post(url + "/edit", {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org",
                                           "timezone": "Europe/Paris"}, follow=True)
    assert "User tenant-a updated." in words(answer)
    user = User.objects.get(pk=tenant_a.user.pk)
    assert (user.firstname, user.lastname, user.email, user.timezone) == ("Ada", "Lovelace", "ada@example.org",
                                                                          "Europe/Paris")
    assert Event.objects.filter(type="USER.UPDATE", description="User tenant-a updated").exists()
    bad = admin_ui.post(url + "/edit", {"firstname": "Ada", "lastname": "", "email": "not-mail", "timezone": "Mars/Base"})
    assert field_error(bad, "id_email") == "Enter a valid email address."
    assert field_error(bad, "id_lastname") == "This field is required."
    assert "Mars/Base is not one of the available choices" in field_error(bad, "id_timezone")
    # the password: set without the current one, the two must agree, and the user logs in with it
    differ = admin_ui.post(url + "/password", {"new_password": "new-pw-1", "new_password_again": "new-pw-2"})
    assert field_error(differ, "id_new_password_again") == "The two new passwords differ"
    open_session = logged_in(User.objects.get(pk=tenant_a.user.pk))
    assert open_session.get("/client/").status_code == 200
    done = admin_ui.post(url + "/password", {"new_password": "new-pw-1", "new_password_again": "new-pw-1"},
                         follow=True)
    assert open_session.get("/client/").status_code == 302  # its open sessions ended
    assert "Password of user tenant-a set" in words(done)
    assert User.objects.get(pk=user.pk).check_password("new-pw-1")
    assert Client().post("/client/login", {"username": "tenant-a", "password": "new-pw-1"}).status_code == 302


def test_a_user_edits_itself_only(tenant_a, tenant_b):
    client = logged_in(tenant_a.user)
    own = client.get(f"/client/users/{tenant_a.user.uuid}")
    assert own.status_code == 200 and 'id="user-password"' not in text(own)  # its own: with the current one
    assert "/client/account/password" in text(own)
    assert f"/client/users/{tenant_a.user.uuid}" in text(client.get("/client/account"))
    client.post(f"/client/users/{tenant_a.user.uuid}/edit", {"firstname": "Me", "lastname": "Myself",
                                                             "email": "me@example.org", "timezone": ""})
    assert User.objects.get(pk=tenant_a.user.pk).firstname == "Me"
    # another user, even of its own account, and another tenant's: not found
    colleague = services.create_user(admin_user(), account=tenant_a.account, username="colleague",
                                     password="c-pw-1", email="c@example.org", firstname="Col", lastname="League")
    for target in (colleague, tenant_b.user):
        assert client.get(f"/client/users/{target.uuid}").status_code == 404
        assert client.post(f"/client/users/{target.uuid}/edit", {"firstname": "X", "lastname": "Y",
                                                                 "email": "x@example.org"}).status_code == 404
    assert client.post(f"/client/users/{tenant_b.user.uuid}/password",
                       {"new_password": "x-pw-1", "new_password_again": "x-pw-1"}).status_code == 404
    assert client.post(f"/client/users/{tenant_a.user.uuid}/password",
                       {"new_password": "x-pw-1", "new_password_again": "x-pw-1"}).status_code == 404
    assert not User.objects.filter(firstname="X").exists()
    assert User.objects.get(pk=tenant_a.user.pk).check_password("secret-pw-1")


def test_a_domain_admin_sets_passwords_only_in_its_subtree(domain_admin, tenant_a):
    corp_user = make_account("corp-user", domain=domain_admin.account.domain)
    client = logged_in(domain_admin.user)
    assert client.post(f"/client/users/{tenant_a.user.uuid}/password",
                       {"new_password": "x-pw-1", "new_password_again": "x-pw-1"}).status_code == 404
    assert User.objects.get(pk=tenant_a.user.pk).check_password("secret-pw-1")
    client.post(f"/client/users/{corp_user.user.uuid}/password",
                {"new_password": "corp-pw-2", "new_password_again": "corp-pw-2"})
    assert User.objects.get(pk=corp_user.user.pk).check_password("corp-pw-2")
