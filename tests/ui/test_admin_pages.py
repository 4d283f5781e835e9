"""Admin pages: domains, accounts, users — scoped by the visibility rule, 404 for plain users,
field errors in place, POST + CSRF for every change."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts import services
from accounts.choices import AccountState, AccountType, UserState
from accounts.models import Account, Domain, User
from portal.models import Event
from tests.factories import ApiClient, Tenant, admin_user, make_account, make_domain


def text(response) -> str:
    return response.content.decode()


def field_error(response, field: str) -> str:
    """The error text shown next to `field` (empty if none)."""
    match = re.search(rf'<small id="id_{field}_error" class="nubo-field-error">([^<]*)</small>', text(response))
    return match.group(1) if match else ""


def follow_messages(client, response) -> str:
    assert response.status_code == 302, response
    return text(client.get(response["Location"]))


# -- access ------------------------------------------------------------------------------------------
def admin_urls(tenant: Tenant) -> list[tuple[str, str]]:
    account, user = tenant.account, tenant.user
    return [
        ("get", "/client/domains"), ("get", "/client/domains/new"), ("post", "/client/domains/new"),
        ("post", f"/client/domains/{account.domain.uuid}/delete"),
        ("get", "/client/accounts"), ("get", "/client/accounts/new"), ("post", "/client/accounts/new"),
        ("get", f"/client/accounts/{account.uuid}"), ("post", f"/client/accounts/{account.uuid}/disable"),
        ("get", "/client/users"), ("get", "/client/users/new"), ("post", "/client/users/new"),
        ("post", f"/client/users/{user.uuid}/keys"), ("post", f"/client/users/{user.uuid}/disable"),
    ]


def test_plain_user_gets_404_on_every_admin_page(user_ui, tenant_a, tenant_b):
    for tenant in (tenant_a, tenant_b):  # its own account and another one alike
        for method, url in admin_urls(tenant):
            assert getattr(user_ui, method)(url).status_code == 404, (method, url)
    tenant_a.account.refresh_from_db()
    assert tenant_a.account.state == AccountState.ENABLED


def test_domain_admin_gets_404_outside_its_subtree(domain_admin_ui, tenant_a, cloud):
    for method, url in admin_urls(tenant_a):
        if "/new" in url or url in ("/client/domains", "/client/accounts", "/client/users"):
            continue
        assert getattr(domain_admin_ui, method)(url).status_code == 404, (method, url)
    assert domain_admin_ui.post(f"/client/domains/{cloud.root.uuid}/delete").status_code == 404


def test_unknown_objects_and_actions_are_404(admin_ui, tenant_a):
    assert admin_ui.get("/client/accounts/00000000-0000-0000-0000-000000000000").status_code == 404
    assert admin_ui.get("/client/accounts/not-a-uuid").status_code == 404
    assert admin_ui.post(f"/client/accounts/{tenant_a.account.uuid}/explode").status_code == 404
    assert admin_ui.post(f"/client/users/{tenant_a.user.uuid}/lock").status_code == 404


def test_actions_need_post(admin_ui, tenant_a):
    assert admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}/disable").status_code == 405
    assert admin_ui.get(f"/client/users/{tenant_a.user.uuid}/delete").status_code == 405
    assert admin_ui.get(f"/client/users/{tenant_a.user.uuid}/keys").status_code == 405
    assert admin_ui.get(f"/client/domains/{tenant_a.domain.uuid}/delete").status_code == 405


def test_admin_posts_are_csrf_protected(admin, tenant_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    corp_parent = str(admin.domain.uuid)
    assert client.post("/client/domains/new", {"name": "x", "parent": corp_parent}).status_code == 403
    assert client.post(f"/client/accounts/{tenant_a.account.uuid}/disable").status_code == 403
    assert client.post(f"/client/users/{tenant_a.user.uuid}/keys").status_code == 403
    assert not Domain.objects.filter(name="x").exists()
    tenant_a.account.refresh_from_db()
    assert tenant_a.account.state == AccountState.ENABLED


# -- domains -----------------------------------------------------------------------------------------
def test_domain_list_is_in_tree_order_with_levels(admin_ui, cloud):
    a = make_domain("alpha")
    make_domain("beta")
    make_domain("zeta", parent=a)
    make_domain("alpha-2")
    body = text(admin_ui.get("/client/domains"))
    names = re.findall(r'class="nubo-tree-name" style="--level: (\d)"><a href="[^"]+">([^<]+)<', body)
    assert names == [("0", "ROOT"), ("1", "alpha"), ("2", "zeta"), ("1", "alpha-2"), ("1", "beta")]
    assert 'aria-label="Delete domain ROOT"' not in body and 'aria-label="Delete domain ROOT/alpha"' in body


def test_domain_admin_sees_its_subtree_only(domain_admin_ui, domain_admin):
    make_domain("team", parent=domain_admin.domain)
    make_domain("other")
    body = text(domain_admin_ui.get("/client/domains"))
    names = re.findall(r'class="nubo-tree-name" style="--level: \d"><a href="[^"]+">([^<]+)<', body)
    assert names == ["corp", "team"]
    assert 'aria-label="Delete domain ROOT/corp"' not in body  # its own domain


def test_create_domain(admin_ui, cloud):
    form = text(admin_ui.get("/client/domains/new"))
    assert f'<option value="{cloud.root.uuid}" selected>ROOT</option>' in form
    response = admin_ui.post("/client/domains/new", {"name": "sales", "parent": str(cloud.root.uuid),
                                                     "network_domain": "sales.example.org"})
    assert response.status_code == 302 and response["Location"] == "/client/domains"
    domain = Domain.objects.get(path="/sales/")
    assert domain.network_domain == "sales.example.org"
    assert Event.objects.filter(type="DOMAIN.CREATE", resource_uuid=str(domain.uuid)).exists()
    assert "Domain ROOT/sales created." in text(admin_ui.get("/client/domains"))


def test_create_domain_bad_input_shows_field_errors(admin_ui, cloud):
    root = str(cloud.root.uuid)
    response = admin_ui.post("/client/domains/new", {"name": "", "parent": root})
    assert response.status_code == 200 and field_error(response, "name") == "This field is required."
    response = admin_ui.post("/client/domains/new", {"name": "a/b", "parent": root})
    assert response.status_code == 200 and "may not contain" in field_error(response, "name")
    make_domain("dup")
    response = admin_ui.post("/client/domains/new", {"name": "dup", "parent": root})
    assert response.status_code == 200 and "already exists" in field_error(response, "name")
    response = admin_ui.post("/client/domains/new", {"name": "x", "parent": "00000000-0000-0000-0000-000000000000"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "parent")
    assert 'aria-invalid="true"' in text(response)
    assert not Domain.objects.filter(name__in=["a/b", "x"]).exists()


def test_domain_admin_creates_only_inside_its_subtree(domain_admin_ui, domain_admin, cloud):
    form = text(domain_admin_ui.get("/client/domains/new"))
    assert str(cloud.root.uuid) not in form
    response = domain_admin_ui.post("/client/domains/new", {"name": "x", "parent": str(cloud.root.uuid)})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "parent")
    response = domain_admin_ui.post("/client/domains/new", {"name": "x", "parent": str(domain_admin.domain.uuid)})
    assert response.status_code == 302
    assert Domain.objects.filter(path="/corp/x/").exists()


def test_delete_domain(admin_ui, cloud):
    empty = make_domain("empty")
    body = follow_messages(admin_ui, admin_ui.post(f"/client/domains/{empty.uuid}/delete"))
    assert "Domain ROOT/empty deleted." in body
    assert not Domain.objects.filter(pk=empty.pk).exists()
    assert Event.objects.filter(type="DOMAIN.DELETE").exists()


def test_delete_domain_with_contents_shows_the_reason_then_cleans_up(admin_ui, cloud):
    full = make_domain("full")
    make_domain("child", parent=full)
    make_account("inside", domain=full)
    body = follow_messages(admin_ui, admin_ui.post(f"/client/domains/{full.uuid}/delete"))
    assert "Domain ROOT/full still has sub-domains child and accounts inside" in body
    assert 'role="alert"' in body
    assert Domain.objects.filter(pk=full.pk).exists()
    body = follow_messages(admin_ui, admin_ui.post(f"/client/domains/{full.uuid}/delete", {"cleanup": "on"}))
    assert "Domain ROOT/full deleted." in body
    assert not Domain.objects.filter(path__startswith="/full/").exists()
    assert not Account.objects.filter(name="inside").exists()


# -- accounts ----------------------------------------------------------------------------------------
def test_account_list_is_paginated_and_searchable(admin_ui, cloud):
    for i in range(22):
        make_account(f"acct-{i:02d}")
    rows = re.compile(r'href="/client/accounts/[0-9a-f-]{36}"')
    body = text(admin_ui.get("/client/accounts"))
    assert len(rows.findall(body)) == 20
    assert "Page 1 of 2" in body and ">system<" not in body
    body = text(admin_ui.get("/client/accounts?page=2"))
    assert len(rows.findall(body)) == 3  # 23 accounts: admin + 22
    body = text(admin_ui.get("/client/accounts?q=acct-1"))
    assert len(rows.findall(body)) == 10 and "Page 1 of" not in body
    body = text(admin_ui.get("/client/accounts?q=nothing-like-this"))
    assert "No account matches" in body


def test_domain_admin_lists_its_subtree_accounts(domain_admin_ui, domain_admin, tenant_a):
    body = text(domain_admin_ui.get("/client/accounts"))
    assert "corp-admin" in body and "tenant-a" not in body and ">admin<" not in body


def test_create_account(admin_ui, cloud):
    corp = make_domain("corp")
    form = text(admin_ui.get("/client/accounts/new"))
    assert '<option value="1">Root admin</option>' in form
    response = admin_ui.post("/client/accounts/new", {
        "account_name": "acme", "account_type": "2", "domain": str(corp.uuid), "username": "alice",
        "password": "pw-alice-1", "email": "alice@example.org", "firstname": "Alice", "lastname": "Doe"})
    account = Account.objects.get(name="acme")
    assert response.status_code == 302 and response["Location"] == f"/client/accounts/{account.uuid}"
    assert account.type == AccountType.DOMAIN_ADMIN and account.domain == corp
    user = account.users.get()
    assert user.username == "alice" and user.check_password("pw-alice-1")
    assert Event.objects.filter(type="ACCOUNT.CREATE", account=account).exists()
    body = text(admin_ui.get(response["Location"]))
    assert "Account acme created." in body and "alice@example.org" in body and "ROOT/corp" in body


def test_create_account_name_defaults_to_username(admin_ui, cloud):
    response = admin_ui.post("/client/accounts/new", {
        "account_name": "", "account_type": "0", "domain": str(cloud.root.uuid), "username": "bob",
        "password": "pw", "email": "bob@example.org", "firstname": "Bob", "lastname": "Roe"})
    assert response.status_code == 302
    assert Account.objects.filter(name="bob", type=AccountType.USER).exists()


def test_create_account_bad_input_shows_field_errors(admin_ui, tenant_a, cloud):
    good = {"account_name": "", "account_type": "0", "domain": str(cloud.root.uuid), "username": "carol",
            "password": "pw", "email": "carol@example.org", "firstname": "Carol", "lastname": "Poe"}
    response = admin_ui.post("/client/accounts/new", {**good, "email": "not-an-email"})
    assert response.status_code == 200 and field_error(response, "email") == "Enter a valid email address."
    response = admin_ui.post("/client/accounts/new", {**good, "password": ""})
    assert response.status_code == 200 and field_error(response, "password") == "This field is required."
    response = admin_ui.post("/client/accounts/new", {**good, "username": "tenant-a", "account_name": "fresh"})
    assert response.status_code == 200
    assert field_error(response, "username") == "The user tenant-a already exists in domain ROOT"
    response = admin_ui.post("/client/accounts/new", {**good, "account_name": "tenant-a"})
    assert response.status_code == 200
    assert "The specified account: tenant-a already exists" in field_error(response, "account_name")
    response = admin_ui.post("/client/accounts/new", {**good, "username": "tenant-a"})  # name from username
    assert response.status_code == 200 and "already exists" in field_error(response, "username")
    response = admin_ui.post("/client/accounts/new", {**good, "username": "a/b"})
    assert response.status_code == 200 and "may not contain" in field_error(response, "username")
    response = admin_ui.post("/client/accounts/new", {**good, "account_type": "7"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "account_type")
    assert not Account.objects.filter(name__in=["carol", "fresh"]).exists()
    # the typed values are kept, the password is not sent back
    assert 'value="carol@example.org"' in text(response) and 'value="pw"' not in text(response)


def test_domain_admin_cannot_create_root_admins_or_outside_its_subtree(domain_admin_ui, domain_admin, cloud):
    form = text(domain_admin_ui.get("/client/accounts/new"))
    assert "Root admin" not in form and str(cloud.root.uuid) not in form
    good = {"account_type": "0", "domain": str(domain_admin.domain.uuid), "username": "dave", "password": "pw",
            "email": "dave@example.org", "firstname": "Dave", "lastname": "Loe"}
    response = domain_admin_ui.post("/client/accounts/new", {**good, "account_type": "1"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "account_type")
    response = domain_admin_ui.post("/client/accounts/new", {**good, "domain": str(cloud.root.uuid)})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "domain")
    assert domain_admin_ui.post("/client/accounts/new", good).status_code == 302
    assert Account.objects.get(name="dave").domain == domain_admin.domain


def test_account_detail(admin_ui, tenant_a):
    services.create_user(admin_user(), account=tenant_a.account, username="second", password="pw",
                         email="second@example.org", firstname="Sec", lastname="Ond")
    response = admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}")
    assert response.status_code == 200
    body = text(response)
    assert "Account tenant-a" in body and "tenant-a@example.org" in body and "second@example.org" in body
    assert tenant_a.api_key in body and tenant_a.secret not in body  # secrets only right after generating
    assert body.count(">Generate keys</button>") == 2
    for action in ("disable", "lock", "delete"):
        assert f'action="/client/accounts/{tenant_a.account.uuid}/{action}"' in body
    assert f'action="/client/accounts/{tenant_a.account.uuid}/enable"' not in body
    assert 'data-confirm="Delete account tenant-a' in body


def test_account_state_actions(admin_ui, tenant_a):
    base = f"/client/accounts/{tenant_a.account.uuid}"
    body = follow_messages(admin_ui, admin_ui.post(base + "/disable"))
    assert "Account tenant-a disabled." in body and f'action="{base}/enable"' in body
    tenant_a.account.refresh_from_db()
    assert tenant_a.account.state == AccountState.DISABLED
    follow_messages(admin_ui, admin_ui.post(base + "/enable"))
    follow_messages(admin_ui, admin_ui.post(base + "/lock"))
    tenant_a.account.refresh_from_db()
    assert tenant_a.account.state == AccountState.LOCKED
    assert {"ACCOUNT.DISABLE", "ACCOUNT.ENABLE", "ACCOUNT.LOCK"} <= set(
        Event.objects.filter(account=tenant_a.account).values_list("type", flat=True))


def test_account_action_errors_are_shown(admin_ui, admin):
    body = follow_messages(admin_ui, admin_ui.post(f"/client/accounts/{admin.account.uuid}/disable"))
    assert "You cannot disable your own account" in body and 'role="alert"' in body
    body = follow_messages(admin_ui, admin_ui.post(f"/client/accounts/{admin.account.uuid}/delete"))
    assert "cannot be deleted" in body
    admin.account.refresh_from_db()
    assert admin.account.state == AccountState.ENABLED


def test_delete_account(admin_ui, tenant_a):
    response = admin_ui.post(f"/client/accounts/{tenant_a.account.uuid}/delete")
    assert response["Location"] == "/client/accounts"
    assert "Account tenant-a deleted." in follow_messages(admin_ui, response)
    assert not Account.objects.filter(pk=tenant_a.account.pk).exists()
    assert admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}").status_code == 404


def test_generate_keys_for_a_user_shows_them_once(admin_ui, tenant_a, client, django_capture_on_commit_callbacks):
    response = admin_ui.post(f"/client/users/{tenant_a.user.uuid}/keys")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = text(response)
    api_key = re.search(r'<code id="new-api-key" class="nubo-key">([^<]+)</code>', body).group(1)
    secret = re.search(r'<code id="new-secret-key" class="nubo-key">([^<]+)</code>', body).group(1)
    assert api_key != tenant_a.api_key
    assert secret not in text(admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}"))
    assert secret not in response.get("Location", "")
    fresh = Tenant(account=tenant_a.account, user=tenant_a.user, api_key=api_key, secret=secret)
    listed = ApiClient(client, fresh, django_capture_on_commit_callbacks)("listAccounts")
    assert listed.status == 200 and [a["name"] for a in listed.inner["account"]] == ["tenant-a"]
    assert Event.objects.filter(type="REGISTER.USER.KEY", resource_uuid=str(tenant_a.user.uuid), user__username="admin").exists()


def test_domain_admin_cannot_generate_keys_for_a_root_admin_in_its_subtree(domain_admin_ui, domain_admin):
    boss = make_account("boss", domain=domain_admin.domain, accounttype=1)
    response = domain_admin_ui.post(f"/client/users/{boss.user.uuid}/keys")
    assert response.status_code == 302
    assert "may not generate keys for a root admin account" in text(domain_admin_ui.get(response["Location"]))
    boss.user.refresh_from_db()
    assert boss.user.api_key == boss.api_key


# -- users -------------------------------------------------------------------------------------------
def test_user_list_and_search(admin_ui, tenant_a, tenant_b):
    body = text(admin_ui.get("/client/users"))
    assert "tenant-a@example.org" in body and "tenant-b@example.org" in body and ">system<" not in body
    body = text(admin_ui.get("/client/users?q=tenant-b"))
    assert "tenant-b@example.org" in body and "tenant-a@example.org" not in body


def test_domain_admin_lists_its_subtree_users(domain_admin_ui, domain_admin, tenant_a):
    body = text(domain_admin_ui.get("/client/users"))
    assert "corp-admin@example.org" in body and "tenant-a@example.org" not in body


def test_create_user(admin_ui, tenant_a):
    form = text(admin_ui.get(f"/client/users/new?account={tenant_a.account.uuid}"))
    assert f'<option value="{tenant_a.account.uuid}" selected>tenant-a (ROOT)</option>' in form
    response = admin_ui.post(f"/client/users/new?next=/client/accounts/{tenant_a.account.uuid}", {
        "account": str(tenant_a.account.uuid), "username": "erin", "password": "pw-erin",
        "email": "erin@example.org", "firstname": "Erin", "lastname": "Moe"})
    assert response.status_code == 302 and response["Location"] == f"/client/accounts/{tenant_a.account.uuid}"
    user = User.objects.get(username="erin")
    assert user.account == tenant_a.account and user.check_password("pw-erin")
    assert "User erin created in account tenant-a." in follow_messages(admin_ui, response)


def test_create_user_bad_input_shows_field_errors(admin_ui, tenant_a, tenant_b):
    good = {"account": str(tenant_a.account.uuid), "username": "frank", "password": "pw",
            "email": "frank@example.org", "firstname": "Frank", "lastname": "Hoe"}
    response = admin_ui.post("/client/users/new", {**good, "email": ""})
    assert response.status_code == 200 and field_error(response, "email") == "This field is required."
    response = admin_ui.post("/client/users/new", {**good, "username": "tenant-b"})
    assert response.status_code == 200
    assert field_error(response, "username") == "The user tenant-b already exists in domain ROOT"
    response = admin_ui.post("/client/users/new", {**good, "account": "nope"})
    assert response.status_code == 200 and "is not a valid UUID" in field_error(response, "account")
    response = admin_ui.post("/client/users/new", {**good, "account": "00000000-0000-0000-0000-000000000000"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "account")
    assert not User.objects.filter(username="frank").exists()


def test_domain_admin_cannot_add_users_outside_its_subtree(domain_admin_ui, domain_admin, tenant_a):
    form = text(domain_admin_ui.get("/client/users/new"))
    assert str(tenant_a.account.uuid) not in form and str(domain_admin.account.uuid) in form
    response = domain_admin_ui.post("/client/users/new", {
        "account": str(tenant_a.account.uuid), "username": "gina", "password": "pw",
        "email": "gina@example.org", "firstname": "Gina", "lastname": "Koe"})
    assert response.status_code == 200 and "Select a valid choice" in field_error(response, "account")


def test_user_actions(admin_ui, tenant_a):
    extra = services.create_user(admin_user(), account=tenant_a.account, username="henry", password="pw",
                                 email="henry@example.org", firstname="Henry", lastname="Zoe")
    body = follow_messages(admin_ui, admin_ui.post(f"/client/users/{extra.uuid}/disable"))
    assert "User henry disabled." in body
    extra.refresh_from_db()
    assert extra.state == UserState.DISABLED
    follow_messages(admin_ui, admin_ui.post(f"/client/users/{extra.uuid}/enable"))
    extra.refresh_from_db()
    assert extra.state == UserState.ENABLED
    detail = f"/client/accounts/{tenant_a.account.uuid}"
    response = admin_ui.post(f"/client/users/{extra.uuid}/delete", {"next": detail})
    assert response["Location"] == detail
    assert "User henry deleted." in follow_messages(admin_ui, response)
    assert not User.objects.filter(pk=extra.pk).exists()
    response = admin_ui.post(f"/client/users/{tenant_a.user.uuid}/disable", {"next": "https://evil.example/"})
    assert response["Location"] == "/client/users"


def test_user_action_errors_are_shown(admin_ui, admin):
    body = follow_messages(admin_ui, admin_ui.post(f"/client/users/{admin.user.uuid}/delete"))
    assert "You cannot delete yourself" in body
    body = follow_messages(admin_ui, admin_ui.post(f"/client/users/{admin.user.uuid}/disable"))
    assert "You cannot disable yourself" in body
    assert User.objects.filter(pk=admin.user.pk, state=UserState.ENABLED).exists()


@pytest.mark.parametrize("url", ["/client/domains", "/client/accounts", "/client/users", "/client/events",
                                 "/client/jobs", "/client/"])
def test_list_pages_cost_a_constant_number_of_queries(admin_ui, cloud, url, django_assert_max_num_queries):
    for i in range(30):
        make_account(f"many-{i:02d}", domain=make_domain(f"d{i:02d}") if i % 3 == 0 else None)
    # the dashboard adds capacity, VM and host states and alerts: constant too (tests/ui/test_dashboard_ui.py)
    with django_assert_max_num_queries(24 if url == "/client/" else 12):
        assert admin_ui.get(url).status_code == 200


def test_key_page_highlights_accounts_in_navigation(admin_ui, tenant_a):
    body = text(admin_ui.post(f"/client/users/{tenant_a.user.uuid}/keys"))
    assert 'href="/client/accounts" aria-current="page"' in body
    assert 'href="/client/users" aria-current="page"' not in body
