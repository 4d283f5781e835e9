"""Callers kept in process memory (accounts.auth.CALLERS) and role rules (accounts.access.ROLE_RULES)
against the ACCESS generation in Redis: what a signed request costs once its caller is kept, and
that every change to what authority is read from holds on the very next request — made through a
service, a bulk update, another process, or rolled back. (How the token reaches a process that
holds a lease, and what happens when its subscription breaks: test_generation_push.py.)

These tests commit (transactional_db), as production does: the cache keeps only rows read outside
a transaction, so inside the usual per-test transaction it keeps nothing. They need Redis, as the
rest of the suite does (make test starts it)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.access import ACCESS
from accounts.choices import AccountState, UserState
from accounts.models import Account, RolePermission, User
from portal import cache
from portal import generation_push as push
from portal.errors import InternalError
from tests.e2e.procs import REPO, database_url, subprocess_env
from tests.factories import ApiClient, admin_user, make_account, make_domain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant(cloud):
    return make_account("kept")


@pytest.fixture
def as_tenant(client, tenant) -> ApiClient:
    return ApiClient(client, tenant)


def caller_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "accounts_user" in q["sql"]]


def kept(call: ApiClient) -> None:
    """One request that reads the caller, then one that must be served from memory."""
    assert call("listCapabilities").status == 200
    with CaptureQueriesContext(connection) as captured:
        assert call("listCapabilities").status == 200
    assert caller_queries(captured.captured_queries) == []


def holder(timeout: float = 5.0) -> push.Subscriber:
    """This process's generation subscriber (a request started it), once it trusts its copy."""
    found = cache._holder()
    deadline = time.monotonic() + timeout
    while not found.trusted():
        assert time.monotonic() < deadline, "the generation subscriber did not get its lease"
        time.sleep(0.01)
    return found


# -- what the cache saves ----------------------------------------------------------------------------
def test_a_kept_caller_costs_no_query_and_no_redis_read_while_the_lease_holds(as_tenant, monkeypatch):
    kept(as_tenant)
    holder()
    reads = []
    real = cache._get
    monkeypatch.setattr(cache, "_get", lambda key: reads.append(key) or real(key))
    with CaptureQueriesContext(connection) as captured:
        assert as_tenant("listCapabilities").status == 200
    assert captured.captured_queries == []  # caller, role rules and settings all kept
    assert reads == []  # the token was pushed to this process


def test_without_push_a_kept_caller_costs_one_redis_read(as_tenant, monkeypatch, settings):
    settings.NUBO_GENERATION_PUSH = False
    kept(as_tenant)
    reads = []
    real = cache._get
    monkeypatch.setattr(cache, "_get", lambda key: reads.append(key) or real(key))
    with CaptureQueriesContext(connection) as captured:
        assert as_tenant("listCapabilities").status == 200
    assert captured.captured_queries == []
    assert reads == [ACCESS.key()]  # the caller and the role rules share one read per request


def test_callers_read_inside_a_transaction_are_not_kept(as_tenant):
    with transaction.atomic():
        assert as_tenant("listCapabilities").status == 200
    with CaptureQueriesContext(connection) as captured:
        assert as_tenant("listCapabilities").status == 200
    assert caller_queries(captured.captured_queries) != []


# -- every change holds on the next request ---------------------------------------------------------
def _disable_account(tenant):
    services.set_account_state(admin_user(), tenant.account, AccountState.DISABLED)


def _lock_account(tenant):
    services.set_account_state(admin_user(), tenant.account, AccountState.LOCKED)


def _disable_user(tenant):
    services.set_user_state(admin_user(), tenant.user, UserState.DISABLED)


def _lock_user(tenant):
    services.set_user_state(admin_user(), tenant.user, UserState.LOCKED)


def _delete_user(tenant):
    services.delete_user(admin_user(), User.objects.select_related("account__domain").get(pk=tenant.user.pk))


def _regenerate_keys(tenant):
    services.register_user_keys(admin_user(), User.objects.get(pk=tenant.user.pk))


def _deny_rule_on_its_role(tenant):
    services.create_role_permission(admin_user(), role=tenant.account.role, rule="listCapabilities",
                                    permission="deny")


def _role_with_a_deny_rule(tenant):
    role = services.create_role(admin_user(), name="No capabilities", role_type="User")
    services.create_role_permission(admin_user(), role=role, rule="list*", permission="deny")
    services.update_account(admin_user(), tenant.account, role=role)


def _bulk_update_of_the_user(tenant):
    User.objects.filter(pk=tenant.user.pk).update(state=UserState.DISABLED)


def _bulk_update_of_the_account(tenant):
    Account.objects.filter(pk=tenant.account.pk).update(state=AccountState.LOCKED)


def _rule_added_by_bulk_create(tenant):
    RolePermission.objects.bulk_create([RolePermission(role=tenant.account.role, rule="list*", permission="deny")])


@pytest.mark.parametrize("change", [
    _disable_account, _lock_account, _disable_user, _lock_user, _delete_user, _regenerate_keys,
    _deny_rule_on_its_role, _role_with_a_deny_rule, _bulk_update_of_the_user, _bulk_update_of_the_account,
    _rule_added_by_bulk_create,
], ids=lambda f: f.__name__.strip("_"))
def test_a_change_is_refused_on_the_next_request(client, tenant, change):
    call = ApiClient(client, tenant)
    kept(call)
    change(tenant)
    refused = call("listCapabilities")
    assert refused.status == 401, refused


def test_a_rule_flipped_by_bulk_update_holds_on_the_next_request(client, tenant):
    perm = services.create_role_permission(admin_user(), role=tenant.account.role, rule="listCapabilities",
                                           permission="allow")
    call = ApiClient(client, tenant)
    kept(call)
    RolePermission.objects.filter(pk=perm.pk).update(permission="deny")
    assert call("listCapabilities").status == 401


def test_new_keys_work_at_once_and_the_old_ones_never_again(client, tenant):
    kept(ApiClient(client, tenant))
    api_key, secret = services.register_user_keys(admin_user(), User.objects.get(pk=tenant.user.pk))
    fresh = ApiClient(client, type(tenant)(account=tenant.account, user=tenant.user, api_key=api_key, secret=secret))
    assert fresh("listCapabilities").status == 200
    assert ApiClient(client, tenant)("listCapabilities").status == 401


def test_enabling_again_holds_on_the_next_request_too(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    _disable_account(tenant)
    assert call("listCapabilities").status == 401
    services.set_account_state(admin_user(), Account.objects.get(pk=tenant.account.pk), AccountState.ENABLED)
    assert call("listCapabilities").status == 200


def test_a_renamed_domain_is_the_kept_domain_admins_scope_at_once(client, cloud):
    corp = make_domain("corp")
    boss = make_account("corp-boss", domain=corp, accounttype=2)
    make_account("corp-worker", domain=corp)
    call = ApiClient(client, boss)
    kept(call)
    services.update_domain(admin_user(), corp, name="renamed")
    listed = call("listAccounts")
    assert listed.status == 200
    assert {a["domainpath"] for a in listed.inner["account"]} == {"ROOT/renamed"}


def test_login_bookkeeping_does_not_drop_kept_callers(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    User.objects.filter(pk=tenant.user.pk).update(failed_login_attempts=2)  # what a failed password login writes
    with CaptureQueriesContext(connection) as captured:
        assert call("listCapabilities").status == 200
    assert caller_queries(captured.captured_queries) == []


# -- rolled back, and in another process ----------------------------------------------------------------
def test_a_rolled_back_disable_is_not_kept(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    with pytest.raises(RuntimeError), transaction.atomic():
        _disable_account(tenant)
        assert call("listCapabilities").status == 401  # this transaction sees its own change
        raise RuntimeError("roll back")
    assert call("listCapabilities").status == 200


def test_keys_of_a_rolled_back_registration_never_work(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    with pytest.raises(RuntimeError), transaction.atomic():
        api_key, secret = services.register_user_keys(admin_user(), User.objects.get(pk=tenant.user.pk))
        rolled_back = ApiClient(client, type(tenant)(account=tenant.account, user=tenant.user, api_key=api_key,
                                                     secret=secret))
        assert rolled_back("listCapabilities").status == 200
        raise RuntimeError("roll back")
    assert rolled_back("listCapabilities").status == 401
    assert call("listCapabilities").status == 200


def run_elsewhere(code: str) -> None:
    """`code` in a new Python process on the same database, Redis and secrets (django set up,
    `services`, `admin` and the models imported)."""
    url = database_url(connection.settings_dict)
    if url is None:
        pytest.skip("needs a database another process can open")
    env = subprocess_env(database_url=url, redis_url=settings.REDIS_URL, var_dir=REPO / "var",
                         secret_key=settings.SECRET_KEY)
    prelude = textwrap.dedent("""
        import django
        django.setup()
        from accounts import services
        from accounts.models import Account, Role, User
        admin = User.objects.select_related("account__domain", "account__role").get(username="admin", domain__path="/")
    """)
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_change_made_by_another_process_holds_on_the_next_request(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    run_elsewhere(f"""
        services.set_account_state(admin, Account.objects.get(pk={tenant.account.pk}), "disabled")
    """)
    assert call("listCapabilities").status == 401


def test_a_rule_added_by_another_process_holds_on_the_next_request(client, tenant):
    call = ApiClient(client, tenant)
    kept(call)
    run_elsewhere(f"""
        services.create_role_permission(admin, role=Role.objects.get(pk={tenant.account.role_id}),
                                        rule="listCapabilities", permission="deny")
    """)
    refused = call("listCapabilities")
    assert refused.status == 401 and "not available for user" in refused.errortext


# -- without Redis ---------------------------------------------------------------------------------------
def test_without_redis_callers_are_read_every_time_and_changes_are_refused(client, tenant, settings):
    call = ApiClient(client, tenant)
    kept(call)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    with CaptureQueriesContext(connection) as captured:
        assert call("listCapabilities").status == 200
    assert caller_queries(captured.captured_queries) != []
    with pytest.raises(InternalError):
        _disable_account(tenant)
    assert Account.objects.get(pk=tenant.account.pk).state == AccountState.ENABLED
    assert call("listCapabilities").status == 200


@pytest.mark.parametrize("restarted", [True, False], ids=["restarted", "flushed"])
def test_a_redis_that_lost_its_data_trusts_nothing_kept_before(client, tenant, restarted):
    """A Redis that lost its data must not revive old tokens: restarted without persistence (its
    connections drop: the subscriber notices at once) or flushed (its lease is gone: noticed at
    its next renewal). Either way it subscribes anew and reads a fresh token."""
    call = ApiClient(client, tenant)
    kept(call)
    found = holder()
    sessions = found.sessions
    names = push.Names(cache.namespace())
    redis = cache._redis()
    redis.delete(ACCESS.key(), names.seq, names.registry, *redis.keys(names.lease_prefix + "*"))
    if restarted:
        redis.execute_command("CLIENT", "KILL", "ID", found.connection_id)
    deadline = time.monotonic() + push.RENEW_SECONDS + 5
    while found.sessions == sessions:
        assert time.monotonic() < deadline, "the subscriber did not notice"
        time.sleep(0.01)
    with CaptureQueriesContext(connection) as captured:
        assert call("listCapabilities").status == 200
    assert caller_queries(captured.captured_queries) != []
    kept(call)


def test_a_forked_child_reads_on_a_connection_of_its_own(tenant):
    """RQ runs each job in a forked child: it must not share its parent's connection (a read in
    each would take the other's answer)."""
    import os

    token = ACCESS.current()  # the parent's thread now holds a connection
    parent_connection = next(iter(cache._THREAD.connections.values()))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it read the token on a connection of its own
        try:
            ok = ACCESS.current() == token and next(iter(cache._THREAD.connections.values())) is not parent_connection
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert ACCESS.current() == token
