"""Resource limits: listing every type with its effective value, updating by root and domain
admins (not users, not one's own account or domain), the check allocations make (CloudStack's
sentence), counts that always equal a recount from rows, and concurrent allocations that cannot
overshoot a limit because the check locks the account row."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from accounts import limits
from accounts.models import Account, Domain, ResourceLimit
from portal import config
from portal.errors import ResourceLimitExceeded
from storage.models import Template
from tests.factories import make_account, make_domain


def rows(result, key: str) -> list[dict]:
    value = result.inner.get(key, [])
    return value if isinstance(value, list) else [value]


def by_name(result, key: str = "resourcelimit") -> dict[str, dict]:
    return {row["resourcetypename"]: row for row in rows(result, key)}


def add_templates(account: Account, n: int) -> None:
    for i in range(n):
        Template.objects.create(name=f"t-{account.name}-{Template.objects.count()}-{i}", format="QCOW2",
                                account=account, url="http://images.example/t.qcow2")


DEFAULTS = {"user_vm": 20, "public_ip": 20, "volume": 20, "snapshot": 20, "template": 20, "project": 10,
            "network": 20, "vpc": 20, "cpu": 40, "memory": 40960, "primary_storage": 200, "secondary_storage": 400}


# -- listing -------------------------------------------------------------------------------------------
def test_a_user_lists_every_type_with_cloudstacks_defaults(api, tenant_a):
    answer = api.as_(tenant_a)("listResourceLimits")
    assert answer.status == 200, answer
    listed = by_name(answer)
    assert answer.inner["count"] == 12
    assert {name: row["max"] for name, row in listed.items()} == DEFAULTS
    assert [row["resourcetype"] for row in rows(answer, "resourcelimit")] == [str(n) for n in range(12)]
    assert {row["account"] for row in listed.values()} == {"tenant-a"}
    assert listed["cpu"]["domainid"] == str(tenant_a.account.domain.uuid)
    one = api.as_(tenant_a)("listResourceLimits", resourcetype="9")
    assert [(r["resourcetypename"], r["max"]) for r in rows(one, "resourcelimit")] == [("memory", 40960)]
    named = api.as_(tenant_a)("listResourceLimits", resourcetypename="secondary_storage")
    assert [r["resourcetype"] for r in rows(named, "resourcelimit")] == ["11"]


def test_root_admin_accounts_are_unlimited(api, admin):
    assert {row["max"] for row in by_name(api("listResourceLimits")).values()} == {-1}


def test_defaults_follow_settings_and_account_scoped_values(api, tenant_a, tenant_b):
    config.set_value("max.account.cpus", "8")
    config.set_value("max.account.secondary.storage", "5", scope="account", scope_uuid=str(tenant_a.account.uuid))
    a = by_name(api.as_(tenant_a)("listResourceLimits"))
    b = by_name(api.as_(tenant_b)("listResourceLimits"))
    assert (a["cpu"]["max"], a["secondary_storage"]["max"]) == (8, 5)
    assert (b["cpu"]["max"], b["secondary_storage"]["max"]) == (8, 400)


def test_a_user_cannot_list_another_accounts_limits(api, tenant_a, tenant_b, domain_admin):
    answer = api.as_(tenant_a)("listResourceLimits", account="tenant-b", domainid=str(tenant_b.domain.uuid))
    assert answer.status == 431 and "Unable to find account tenant-b" in answer.errortext
    outside = api.as_(domain_admin)("listResourceLimits", domainid=str(tenant_a.domain.uuid))
    assert outside.status == 431 and "does not exist" in outside.errortext


# -- updating ------------------------------------------------------------------------------------------
def test_root_admin_sets_and_resets_an_account_limit(api, tenant_a):
    root = str(tenant_a.account.domain.uuid)
    answer = api("updateResourceLimit", resourcetype="0", max="3", account="tenant-a", domainid=root)
    assert answer.status == 200, answer
    limit = answer.inner["resourcelimit"]
    assert (limit["resourcetype"], limit["resourcetypename"], limit["max"], limit["account"]) == ("0", "user_vm", 3,
                                                                                                  "tenant-a")
    assert by_name(api.as_(tenant_a)("listResourceLimits"))["user_vm"]["max"] == 3
    assert limits.limit_for(tenant_a.account, "user_vm") == 3
    unlimited = api("updateResourceLimit", resourcetype="0", account="tenant-a", domainid=root)  # no max: -1
    assert unlimited.inner["resourcelimit"]["max"] == -1
    assert limits.limit_for(tenant_a.account, 0) is None
    assert ResourceLimit.objects.filter(account=tenant_a.account).count() == 1


def test_storage_limits_are_gib_and_memory_mib(api, tenant_a):
    root = str(tenant_a.account.domain.uuid)
    api("updateResourceLimit", resourcetype="10", max="2", account="tenant-a", domainid=root)
    api("updateResourceLimit", resourcetype="9", max="512", account="tenant-a", domainid=root)
    assert limits.limit_for(tenant_a.account, "primary_storage") == 2 << 30
    assert limits.limit_for(tenant_a.account, "memory") == 512


def test_refusals(api, admin, tenant_a):
    root = str(tenant_a.account.domain.uuid)
    low = api("updateResourceLimit", resourcetype="0", max="-2", account="tenant-a", domainid=root)
    assert low.status == 431
    assert low.errortext == "Please specify either '-1' for an infinite limit, or a limit that is at least '0'."
    own_admin = api("updateResourceLimit", resourcetype="0", max="5", account="admin", domainid=root)
    assert own_admin.status == 431 and "Only -1 limit is supported for Root Admin accounts" in own_admin.errortext
    system = api("updateResourceLimit", resourcetype="0", max="5", account="system", domainid=root)
    assert system.status == 431
    rootdomain = api("updateResourceLimit", resourcetype="0", max="5", domainid=root)
    assert rootdomain.status == 531 and "ROOT domain" in rootdomain.errortext
    nothing = api("updateResourceLimit", resourcetype="0", max="5")
    assert nothing.status == 431
    bad_type = api("updateResourceLimit", resourcetype="12", max="5", account="tenant-a", domainid=root)
    assert bad_type.status == 431 and "resourcetype" in bad_type.errortext
    user = api.as_(tenant_a)("updateResourceLimit", resourcetype="0", max="99", account="tenant-a", domainid=root)
    assert user.status == 401
    assert not ResourceLimit.objects.exists()


def test_domain_admins_manage_accounts_and_sub_domains_below_them(api, domain_admin):
    corp = domain_admin.domain
    dev = make_domain("dev", parent=corp)
    make_account("corp-user", domain=corp)
    other = make_domain("other")
    make_account("other-user", domain=other)
    admin = api.as_(domain_admin)
    corp_id, dev_id = str(corp.uuid), str(dev.uuid)
    assert admin("updateResourceLimit", resourcetype="8", max="4", account="corp-user", domainid=corp_id).status == 200
    assert admin("updateResourceLimit", resourcetype="8", max="16", domainid=dev_id).status == 200
    own_account = admin("updateResourceLimit", resourcetype="8", max="100", account="corp-admin", domainid=corp_id)
    assert own_account.status == 531
    own_domain = admin("updateResourceLimit", resourcetype="8", max="100", domainid=corp_id)
    assert own_domain.status == 531 and "own domain" in own_domain.errortext
    outside = admin("updateResourceLimit", resourcetype="8", max="1", account="other-user", domainid=str(other.uuid))
    assert outside.status == 431 and "does not exist" in outside.errortext
    # the domain's limits, as listed by its admin
    listed = by_name(admin("listResourceLimits", domainid=dev_id))
    assert listed["cpu"]["max"] == 16 and "account" not in listed["cpu"]
    assert listed["user_vm"]["max"] == 40  # max.domain.user.vms
    assert by_name(admin("listResourceLimits", domainid=corp_id))["cpu"]["max"] == 80
    assert {(r.account_id is None, r.max) for r in ResourceLimit.objects.all()} == {(False, 4), (True, 16)}


def test_a_domain_limit_may_not_exceed_its_parents(api, domain_admin):
    corp = domain_admin.domain
    dev = make_domain("dev", parent=corp)
    assert api("updateResourceLimit", resourcetype="4", max="5", domainid=str(corp.uuid)).status == 200
    too_high = api("updateResourceLimit", resourcetype="4", max="6", domainid=str(dev.uuid))
    assert too_high.status == 431 and "less than or equal to 5" in too_high.errortext
    assert api("updateResourceLimit", resourcetype="4", max="5", domainid=str(dev.uuid)).status == 200
    # without its own row, a sub-domain inherits the nearest parent's
    qa = make_domain("qa", parent=corp)
    assert limits.domain_max(qa, "template") == 5


# -- the check --------------------------------------------------------------------------------------------
def test_check_refuses_with_cloudstacks_sentence(cloud, tenant_a):
    ResourceLimit.objects.create(account=tenant_a.account, resource_type=4, max=2)
    add_templates(tenant_a.account, 2)
    with pytest.raises(ResourceLimitExceeded) as refused, transaction.atomic():
        limits.check(tenant_a.account, "template")
    domain = Domain.objects.get(pk=tenant_a.account.domain_id)
    assert refused.value.message == (f"Maximum number of resources of type 'template' for account name=tenant-a in "
                                     f"domain id={domain.uuid} has been exceeded.")
    assert (refused.value.errorcode, refused.value.cserrorcode) == (535, 4370)  # ResourceAllocationException
    with transaction.atomic():
        limits.check(tenant_a.account, "template", 0)  # nothing more: fine
    ResourceLimit.objects.filter(account=tenant_a.account).update(max=3)
    with transaction.atomic():
        limits.check(tenant_a.account, "template")


def test_check_counts_amounts_in_count_units(cloud, tenant_a):
    config.set_value("max.account.secondary.storage", "1", scope="account", scope_uuid=str(tenant_a.account.uuid))
    with transaction.atomic():
        limits.check(tenant_a.account, "secondary_storage", 1 << 30)
    with pytest.raises(ResourceLimitExceeded, match="'secondary_storage'"), transaction.atomic():
        limits.check(tenant_a.account, "secondary_storage", (1 << 30) + 1)


def test_check_needs_the_allocating_transaction(cloud, tenant_a):
    from unittest import mock

    with mock.patch.object(connection, "in_atomic_block", False), pytest.raises(RuntimeError):
        limits.check(tenant_a.account, "user_vm")


def test_root_admins_are_never_limited(cloud, admin):
    config.set_value("max.account.templates", "0")
    add_templates(admin.account, 3)
    with transaction.atomic():
        limits.check(admin.account, "template")


def test_a_domain_limit_caps_its_accounts_together(cloud, domain_admin):
    corp = domain_admin.domain
    dev = make_domain("dev", parent=corp)
    one, two = make_account("one", domain=corp), make_account("two", domain=dev)
    ResourceLimit.objects.create(domain=corp, resource_type=4, max=2)
    add_templates(one.account, 1)
    add_templates(two.account, 1)
    with pytest.raises(ResourceLimitExceeded) as refused, transaction.atomic():
        limits.check(two.account, "template")  # its own limit (20) is far away
    assert refused.value.message == (f"Maximum number of resources of type 'template' for domain id={corp.uuid} "
                                     f"has been exceeded.")
    config.set_value("max.domain.templates", "1")  # a default does not override the row
    ResourceLimit.objects.filter(domain=corp).update(max=3)
    with transaction.atomic():
        limits.check(two.account, "template")
    ResourceLimit.objects.filter(domain=corp).delete()  # without rows, the max.domain.* default applies
    with pytest.raises(ResourceLimitExceeded), transaction.atomic():
        limits.check(one.account, "template")


# -- counts -------------------------------------------------------------------------------------------------
def test_recount_equals_rows(api, domain_admin):
    corp = domain_admin.domain
    dev = make_domain("dev", parent=corp)
    one, two = make_account("one", domain=corp), make_account("two", domain=dev)
    add_templates(one.account, 2)
    add_templates(two.account, 3)
    first = Template.objects.filter(account=two.account).order_by("id").first()
    Template.objects.filter(pk=first.pk).update(removed=timezone.now())  # removed ones do not count
    admin = api.as_(domain_admin)
    account_counts = admin("updateResourceCount", domainid=str(dev.uuid), account="two")
    assert account_counts.status == 200, account_counts
    counted = by_name(account_counts, "resourcecount")
    assert len(counted) == 12 and counted["template"]["resourcecount"] == 2 == Template.objects.filter(
        account=two.account, removed__isnull=True).count()
    assert counted["template"]["account"] == "two" and counted["template"]["resourcetype"] == "4"
    whole = by_name(admin("updateResourceCount", domainid=str(corp.uuid), resourcetype="4"), "resourcecount")
    assert list(whole) == ["template"] and whole["template"]["resourcecount"] == 4
    assert "account" not in whole["template"]
    assert limits.count(one.account, "template") == 2
    assert limits.domain_count(corp, 4) == 4
    from storage.images.services import secondary_storage_used

    assert limits.count(two.account, "secondary_storage") == secondary_storage_used(two.account)


def test_recount_is_for_admins_of_the_domain(api, tenant_a, domain_admin):
    root_id = str(tenant_a.account.domain.uuid)
    assert api.as_(tenant_a)("updateResourceCount", domainid=root_id).status == 401
    assert api.as_(domain_admin)("updateResourceCount", domainid=root_id).status == 431


def test_counters_are_added_up_and_replaced_by_key(cloud, tenant_a):
    key = "tests.extra-vpcs"
    try:
        limits.register_counter("vpc", lambda ids: {pk: 2 for pk in ids}, key=key)
        limits.register_counter(7, lambda ids: {pk: 5 for pk in ids}, key=key)  # replaces
        limits.register_counter("vpc", lambda ids: {pk: 1 for pk in ids}, key=key + "-2")
        assert limits.count(tenant_a.account, "vpc") == 6
    finally:
        limits.unregister_counter("vpc", key)
        limits.unregister_counter("vpc", key + "-2")
    assert limits.count(tenant_a.account, "vpc") == 0


# -- concurrency ---------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_concurrent_allocations_never_overshoot(cloud, tenant_a):
    """Eight allocations race for a limit of three: the check locks the account row, so each one
    counts what the previous ones committed, and exactly three get through."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    account = tenant_a.account
    ResourceLimit.objects.create(account=account, resource_type=4, max=3)
    start = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def allocate(i: int) -> None:
        close_old_connections()
        try:
            start.wait()
            with transaction.atomic():
                limits.check(account, "template")
                time.sleep(0.05)  # widen the window between counting and writing
                Template.objects.create(name=f"race-{i}", format="QCOW2", account=account, url="http://x/t.qcow2")
            outcome = "made"
        except ResourceLimitExceeded:
            outcome = "refused"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=allocate, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["made"] * 3 + ["refused"] * 5
    assert Template.objects.filter(account=account).count() == 3 == limits.count(account, "template")
