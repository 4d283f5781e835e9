"""List pages rendered from .values() rows (ResponseSerializer.values_rows) answer exactly the bytes
the model-instance path answers: listAccounts (with its nested users) and listUsers, JSON and
XML, over accounts of every type, nested domains, network domains set, blank and absent, users
with and without API keys, accounts with no or several users, and as each kind of caller."""
from __future__ import annotations

import pytest

from accounts import services
from accounts.models import Account, Domain, User
from accounts.responses import AccountResponse, UserResponse
from portal.api.responses import NotValuesRenderable, ResponseSerializer, use_values
from tests.factories import ApiClient, admin_user, make_account, make_domain


@pytest.fixture
def varied(cloud):
    corp = make_domain("corp")
    dev = make_domain("dev", parent=corp)
    boss = make_account("corp-boss", domain=corp, accounttype=2)
    worker = make_account("dev-worker", domain=dev)
    make_account("root-user")
    make_account("second-admin", accounttype=1)
    services.update_account(admin_user(), Account.objects.get(pk=worker.account.pk), network_domain="dev.example.org")
    Account.objects.filter(pk=boss.account.pk).update(network_domain="")  # blank: omitted like an absent one
    services.create_user(admin_user(), account=Account.objects.get(pk=worker.account.pk), username="no-keys",
                         password="secret-pw-1", email="nk@example.org", firstname="Ünïcode", lastname="<&\"'>")
    services.set_account_state(admin_user(), Account.objects.get(name="root-user"), "locked")
    return {"boss": boss, "worker": worker, "dev": Domain.objects.get(pk=dev.pk)}


def both_ways(call, monkeypatch, command: str, **params) -> tuple[str, str]:
    fast = call(command, **params)
    assert fast.status == 200, fast
    with monkeypatch.context() as off:
        off.setattr(AccountResponse, "values_rows", False)
        off.setattr(UserResponse, "values_rows", False)
        slow = call(command, **params)
    return fast.text, slow.text


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("command,params", [
    ("listAccounts", {}),
    ("listAccounts", {"page": 1, "pagesize": 3}),
    ("listAccounts", {"page": 2, "pagesize": 3}),
    ("listAccounts", {"listall": True, "isrecursive": True}),
    ("listAccounts", {"keyword": "dev"}),
    ("listUsers", {}),
    ("listUsers", {"page": 2, "pagesize": 2}),
], ids=lambda v: v if isinstance(v, str) else "&".join(f"{k}={w}" for k, w in v.items()) or "all")
def test_values_rows_answer_the_same_bytes(client, admin, varied, monkeypatch, command, params, fmt):
    call = ApiClient(client, admin, fmt=fmt)
    fast, slow = both_ways(call, monkeypatch, command, **params)
    assert fast == slow
    assert "count" in fast and "native" in fast  # a page with rows (users), not two empty answers


@pytest.mark.parametrize("who", ["boss", "worker"])
def test_values_rows_answer_the_same_bytes_to_a_domain_admin_and_a_user(client, varied, monkeypatch, who):
    call = ApiClient(client, varied[who])
    for command in ("listAccounts", "listUsers"):
        fast, slow = both_ways(call, monkeypatch, command)
        assert fast == slow
        assert varied[who].account.name in fast


def test_an_account_filtered_by_id_and_a_page_without_rows(client, admin, varied, monkeypatch):
    call = ApiClient(client, admin)
    fast, slow = both_ways(call, monkeypatch, "listAccounts", id=str(varied["worker"].account.uuid))
    assert fast == slow and fast.count('"username"') == 2  # its own user and "no-keys"
    fast, slow = both_ways(call, monkeypatch, "listAccounts", page=9, pagesize=50)
    assert fast == slow and '"account"' not in fast


def test_a_field_no_column_answers_is_refused_when_the_plan_is_made():
    from rest_framework import serializers as drf

    class Unrenderable(ResponseSerializer):
        values_rows = True
        name = drf.CharField()
        shown = drf.SerializerMethodField()

        def get_shown(self, obj):
            return obj.display_path

    with pytest.raises(NotValuesRenderable, match="method field"):
        use_values(Unrenderable(), Domain)

    class ByProperty(ResponseSerializer):
        values_rows = True
        owner = drf.CharField(source="account.domain.is_root")

    with pytest.raises(NotValuesRenderable, match="VALUES_DERIVED"):
        use_values(ByProperty(), User)
