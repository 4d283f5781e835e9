"""Resource limits on an account's page (updateResourceLimit by clicking): usage and limit per
type, a new limit through the form with the service's rules, 404 for plain users."""
from __future__ import annotations

import re

from accounts import limits
from portal.models import Event
from tests.factories import make_account, make_domain


def limit_cell(html: str, name: str) -> str:
    row = re.search(rf"<tr>\s*<td>{name}\b.*?</tr>", html, re.S)
    assert row, name
    return " ".join(re.sub(r"<[^>]+>", " ", row.group(0)).split())


def test_the_account_page_shows_and_sets_limits(admin_ui, tenant_a):
    page = admin_ui.get(f"/client/accounts/{tenant_a.account.uuid}").content.decode()
    assert "Resource limits" in page
    assert limit_cell(page, "user_vm").startswith("user_vm 0 20 (default)")
    answer = admin_ui.post(f"/client/accounts/{tenant_a.account.uuid}/limits/0", {"max": "3"}, follow=True)
    assert "Limit of user_vm for account tenant-a: 3." in answer.content.decode()
    assert limits.account_max(tenant_a.account, "user_vm") == 3
    assert limit_cell(answer.content.decode(), "user_vm").startswith("user_vm 0 3 ")
    assert Event.objects.filter(type="RESOURCE.LIMIT.UPDATE", account=tenant_a.account).exists()
    no_limit = admin_ui.post(f"/client/accounts/{tenant_a.account.uuid}/limits/11", {"max": "-1"}, follow=True)
    assert "for account tenant-a: no limit." in no_limit.content.decode()


def test_bad_limits_are_refused_in_place(admin_ui, tenant_a):
    for value, says in (("-5", "either &#x27;-1&#x27;"), ("many", "A limit is a whole number")):
        answer = admin_ui.post(f"/client/accounts/{tenant_a.account.uuid}/limits/0", {"max": value}, follow=True)
        assert answer.status_code == 200 and says in answer.content.decode(), value
    assert limits.account_max(tenant_a.account, "user_vm") == 20


def test_limits_are_for_admins_over_the_account(user_ui, tenant_a, tenant_b, cloud):
    assert user_ui.post(f"/client/accounts/{tenant_a.account.uuid}/limits/0", {"max": "1"}).status_code == 404
    other_admin = make_account("elsewhere-admin", domain=make_domain("elsewhere"), accounttype=2)
    from django.test import Client
    client = Client()
    client.force_login(other_admin.user)
    assert client.post(f"/client/accounts/{tenant_b.account.uuid}/limits/0", {"max": "1"}).status_code == 404
    assert limits.account_max(tenant_b.account, "user_vm") == 20
