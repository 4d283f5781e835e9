"""The page shell, login/logout, the default-password banner, My account and its keys,
the dashboard, events and async jobs."""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import User
from portal.models import AsyncJob, Event, JobStatus
from tests.factories import ApiClient, Tenant, make_account

from .conftest import logged_in

PAGES = ["dashboard", "my-account", "change-password", "domains", "domain-create", "accounts", "account-create",
         "users", "user-create", "events", "jobs"]


def text(response) -> str:
    return response.content.decode()


# -- login, logout, shell ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_login(client, cloud, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/client/login?next=")


def test_login_page_has_labelled_fields(client, cloud):
    response = client.get("/client/login")
    assert response.status_code == 200
    body = text(response)
    for field in ("username", "password", "domain"):
        assert f'for="id_{field}"' in body and f'id="id_{field}"' in body
    assert "csrfmiddlewaretoken" in body
    assert 'href="/static/vendor/%40picocss/pico/css/pico.min.css"' in body


def test_login_and_logout(client, admin):
    response = client.post("/client/login", {"username": "admin", "password": admin.password, "domain": ""})
    assert response.status_code == 302 and response["Location"] == "/client/"
    assert Event.objects.filter(type="USER.LOGIN", user=admin.user).exists()
    assert client.get("/client/").status_code == 200

    assert client.get("/client/logout").status_code == 302  # GET does not log out
    assert client.get("/client/").status_code == 200
    response = client.post("/client/logout")
    assert response.status_code == 302 and response["Location"] == "/client/login"
    assert client.get("/client/").status_code == 302


def test_login_in_a_sub_domain(client, domain_admin):
    response = client.post("/client/login", {"username": "corp-admin", "password": domain_admin.password, "domain": "/corp"})
    assert response.status_code == 302
    client.post("/client/logout")
    response = client.post("/client/login", {"username": "corp-admin", "password": domain_admin.password, "domain": ""})
    assert response.status_code == 200
    assert "Failed to authenticate user corp-admin in domain /" in text(response)
    response = client.post("/client/login", {"username": "corp-admin", "password": domain_admin.password, "domain": "corp"})
    assert response.status_code == 302


def test_login_errors_are_shown_in_place(client, admin):
    response = client.post("/client/login", {"username": "admin", "password": "wrong"})
    assert response.status_code == 200
    assert "Failed to authenticate user admin" in text(response)
    assert 'role="alert"' in text(response)

    response = client.post("/client/login", {"username": "", "password": ""})
    assert response.status_code == 200
    assert re.search(r'id="id_username_error"[^>]*>This field is required', text(response))


def test_lockout_reason_is_shown(client, admin):
    for _ in range(5):
        client.post("/client/login", {"username": "admin", "password": "wrong"})
    response = client.post("/client/login", {"username": "admin", "password": admin.password})
    assert response.status_code == 200
    assert "Too many failed login attempts for user admin" in text(response)


def test_login_follows_only_local_next(client, admin):
    response = client.post("/client/login?next=/client/events", {"username": "admin", "password": admin.password})
    assert response["Location"] == "/client/events"
    client.post("/client/logout")
    response = client.post("/client/login?next=https://evil.example/", {"username": "admin", "password": admin.password})
    assert response["Location"] == "/client/"


def test_logged_in_user_visiting_login_goes_to_dashboard(admin_ui):
    response = admin_ui.get("/client/login")
    assert response.status_code == 302 and response["Location"] == "/client/"


def test_shell_shows_who_and_admin_navigation(admin_ui):
    body = text(admin_ui.get("/client/"))
    assert 'aria-label="Main"' in body
    for url in ("/client/domains", "/client/accounts", "/client/users", "/client/events", "/client/jobs",
                "/client/account"):
        assert f'href="{url}"' in body
    assert 'href="/client/" aria-current="page"' in body
    assert "admin" in body and "ROOT" in body
    assert re.search(r'<form method="post" action="/client/logout"', body)


def test_plain_user_navigation_has_no_admin_items(user_ui):
    body = text(user_ui.get("/client/"))
    for url in ("/client/domains", "/client/accounts", "/client/users"):
        assert f'href="{url}"' not in body
    for url in ("/client/events", "/client/jobs", "/client/account"):
        assert f'href="{url}"' in body
    assert "tenant-a" in body


def test_current_navigation_item(admin_ui, tenant_a):
    body = text(admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}"))
    assert 'href="/client/accounts" aria-current="page"' in body
    body = text(admin_ui.get("/client/account/password"))
    assert 'href="/client/account" aria-current="page"' in body


# -- default password banner ------------------------------------------------------------------------
BANNER = "The admin password is still the default one."


def test_banner_until_the_default_password_is_changed(client, default_admin):
    response = client.post("/client/login", {"username": "admin", "password": "password"})
    assert response.status_code == 302
    body = text(client.get("/client/"))
    assert BANNER in body and 'href="/client/account/password"' in body
    assert BANNER in text(client.get("/client/events"))

    # wrong current password: error next to that field
    response = client.post("/client/account/password", {
        "current_password": "nope", "new_password": "n3w-secret", "new_password_again": "n3w-secret"})
    assert response.status_code == 200
    assert re.search(r'id="id_current_password_error"[^>]*>To change your password, give your current password',
                     text(response))
    # the two new passwords differ
    response = client.post("/client/account/password", {
        "current_password": "password", "new_password": "n3w-secret", "new_password_again": "other"})
    assert response.status_code == 200
    assert re.search(r'id="id_new_password_again_error"[^>]*>The two new passwords differ', text(response))
    assert BANNER in text(response)

    response = client.post("/client/account/password", {
        "current_password": "password", "new_password": "n3w-secret", "new_password_again": "n3w-secret"})
    assert response.status_code == 302 and response["Location"] == "/client/account"
    page = client.get("/client/")
    assert page.status_code == 200  # still logged in
    assert BANNER not in text(page)
    default_admin.refresh_from_db()
    assert not default_admin.password_is_default
    assert Event.objects.filter(type="USER.UPDATE", user=default_admin).exists()

    client.post("/client/logout")
    assert client.post("/client/login", {"username": "admin", "password": "password"}).status_code == 200
    assert client.post("/client/login", {"username": "admin", "password": "n3w-secret"}).status_code == 302


def test_no_banner_when_the_password_was_set(admin_ui, user_ui):
    assert BANNER not in text(admin_ui.get("/client/"))
    assert BANNER not in text(user_ui.get("/client/"))


def test_plain_user_changes_own_password(user_ui, tenant_a):
    response = user_ui.post("/client/account/password", {
        "current_password": tenant_a.password, "new_password": "brand-new-1", "new_password_again": "brand-new-1"})
    assert response.status_code == 302
    tenant_a.user.refresh_from_db()
    assert tenant_a.user.check_password("brand-new-1")


# -- my account and keys -----------------------------------------------------------------------------
def test_my_account_shows_details_and_keys(user_ui, tenant_a):
    response = user_ui.get("/client/account")
    assert response.status_code == 200
    body = text(response)
    assert "tenant-a@example.org" in body and "ROOT" in body
    assert tenant_a.api_key in body and tenant_a.secret in body
    assert ">Generate keys</button>" in body
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_user_without_keys_sees_none(cloud):
    account = services.create_account(services_admin(), username="nokeys", password="pw-123456", email="n@example.org",
                                      firstname="No", lastname="Keys")
    client = logged_in(account.users.get())
    assert "No keys yet" in text(client.get("/client/account"))


def services_admin() -> User:
    return User.objects.select_related("account__domain").get(username="admin", domain__path="/")


def test_generate_keys_replaces_them_and_they_work(user_ui, tenant_a, client, django_capture_on_commit_callbacks):
    response = user_ui.post("/client/account/keys")
    assert response.status_code == 302 and response["Location"] == "/client/account"
    tenant_a.user.refresh_from_db()
    api_key, secret = services.get_user_keys(tenant_a.user, tenant_a.user)
    assert api_key != tenant_a.api_key
    body = text(user_ui.get("/client/account"))
    assert api_key in body and secret in body and tenant_a.secret not in body
    assert "New API keys generated" in body
    assert Event.objects.filter(type="REGISTER.USER.KEY", user=tenant_a.user).exists()

    fresh = Tenant(account=tenant_a.account, user=tenant_a.user, api_key=api_key, secret=secret)
    api = ApiClient(client, fresh, django_capture_on_commit_callbacks)
    assert api("listAccounts").status == 200
    assert api.as_(tenant_a)("listAccounts").status == 401  # the old pair stopped working


def test_generate_keys_needs_post_and_csrf(tenant_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant_a.user)
    assert client.get("/client/account/keys").status_code == 405
    assert client.post("/client/account/keys").status_code == 403
    tenant_a.user.refresh_from_db()
    assert tenant_a.user.api_key == tenant_a.api_key
    # with the token from the page it works
    page = text(client.get("/client/account"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post("/client/account/keys", {"csrfmiddlewaretoken": token}).status_code == 302


# -- dashboard, events, jobs --------------------------------------------------------------------------
def _counts(body: str) -> dict[str, int]:
    return {label: int(n) for n, label in
            re.findall(r'nubo-card-number">(\d+)</span> <span class="nubo-card-label">(\w+)', body)}


def test_dashboard_counts_are_scoped(admin_ui, domain_admin_ui, tenant_a, domain_admin):
    make_account("corp-user", domain=domain_admin.domain)
    assert _counts(text(admin_ui.get("/client/"))) == {"Domains": 2, "Accounts": 4, "Users": 4}
    assert _counts(text(domain_admin_ui.get("/client/"))) == {"Domains": 1, "Accounts": 2, "Users": 2}


def test_tenant_dashboard_shows_only_its_account(user_ui, tenant_a, tenant_b):
    AsyncJob.objects.create(command="deleteAccount", user=tenant_b.user, account=tenant_b.account)
    mine = AsyncJob.objects.create(command="deleteAccount", user=tenant_a.user, account=tenant_a.account, progress=40)
    body = text(user_ui.get("/client/"))
    assert "Your account" in body and "tenant-a" in body
    assert "tenant-b" not in body
    assert "nubo-card-number" not in body
    assert str(mine.uuid) in body and body.count('aria-label="Progress of job') == 1


def test_events_are_scoped_newest_first_and_paginated(admin_ui, user_ui, tenant_a, tenant_b):
    for i in range(25):
        services.update_user(tenant_a.user, tenant_a.user, firstname=f"Name{i}")
    body = text(user_ui.get("/client/events"))
    assert "User tenant-a updated" in body
    assert "tenant-b" not in body
    assert "Page 1 of 2" in body and 'href="?page=2"' in body
    assert re.findall(r"<code>([A-Z.]+)</code>", body)[:20] == ["USER.UPDATE"] * 20  # newest first
    page2 = text(user_ui.get("/client/events?page=2"))
    assert "Page 2 of 2" in page2 and "ACCOUNT.CREATE" in page2
    assert user_ui.get("/client/events?page=999").status_code == 200
    assert "Account tenant-b created" in text(admin_ui.get("/client/events?page=2"))


def test_jobs_page_shows_status_and_reason(admin_ui, user_ui, api, tenant_a, tenant_b):
    done = api.job(api("deleteAccount", id=str(tenant_b.account.uuid)))
    assert done["jobstatus"] == 1
    failed = api.job(api("deleteAccount", id=str(api.tenant.account.uuid)))
    assert failed["jobstatus"] == 2
    body = text(admin_ui.get("/client/jobs"))
    assert "Succeeded" in body and "Failed" in body
    assert failed["jobresult"]["errortext"] in body
    assert AsyncJob.objects.filter(status=JobStatus.SUCCEEDED).count() == 1
    assert "deleteAccount" not in text(user_ui.get("/client/jobs"))
    assert "No jobs." in text(user_ui.get("/client/jobs"))
