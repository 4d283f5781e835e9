"""The access generation pushed to lease holders (portal.generation_push), with real processes:
a writer returns only once every holder has read its change, does not wait longer than a lease
for a holder that died, and a holder whose subscription is killed reads the token from Redis
again and never serves what another process changed.

These tests commit (transactional_db), as production does; they need Redis (make test starts it)."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.access import ACCESS
from accounts.choices import AccountState
from accounts.models import Account
from portal import cache
from portal import generation_push as push
from tests.accounts.test_caller_cache import caller_queries, holder, kept, run_elsewhere
from tests.e2e.procs import REPO, database_url, subprocess_env
from tests.factories import ApiClient, admin_user, make_account

pytestmark = pytest.mark.django_db(transaction=True)

REAL_SESSION = push.Subscriber._session

# A process that answers "requests" the way a web worker does: it holds a lease once its first
# request started the subscriber, prints its lease id, then for each line on stdin prints the
# token a request would use now (the pushed copy, or "-" when it would read Redis).
HOLDER = """
import sys, threading, time
import django
django.setup()
from portal import cache
from portal import generation_push as push
from accounts.access import ACCESS
SLOW = {slow!r}
if SLOW:  # read each pushed change SLOW seconds late
    real_apply = push.Subscriber.apply
    def apply(self, seq, key, token):
        if threading.current_thread() is self._thread:
            time.sleep(SLOW)
        real_apply(self, seq, key, token)
    push.Subscriber.apply = apply
with cache.one_read_per_request():
    ACCESS.current()
found = cache._holder()
while not found.trusted():
    time.sleep(0.01)
print(found.lease_id, flush=True)
for line in sys.stdin:
    token = found.token(ACCESS.key())
    print("-" if token is push.MISSING else token.decode(), flush=True)
"""


class Holder:
    """Another process holding a lease on this test's database and Redis."""

    def __init__(self, slow: float = 0.0):
        url = database_url(connection.settings_dict)
        if url is None:
            pytest.skip("needs a database another process can open")
        env = subprocess_env(database_url=url, redis_url=settings.REDIS_URL, var_dir=REPO / "var",
                             secret_key=settings.SECRET_KEY)
        self.proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER.format(slow=slow))], cwd=REPO,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.lease_id = self._line(timeout=30)

    def _line(self, timeout: float) -> str:
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise AssertionError("the holder process did not answer")
        line = self.proc.stdout.readline().strip()
        assert line, f"the holder process exited ({self.proc.poll()})"
        return line

    def token(self) -> str:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return self._line(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no goodbye, its lease stays in Redis until it expires."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def registry() -> set[str]:
    return {m.decode() for m in cache._redis().smembers(push.Names(cache.namespace()).registry)}


def redis_token() -> str:
    return cache._get(ACCESS.key()).decode()


def _disable(tenant) -> None:
    services.set_account_state(admin_user(), Account.objects.get(pk=tenant.account.pk), AccountState.DISABLED)


def _enable(tenant) -> None:
    services.set_account_state(admin_user(), Account.objects.get(pk=tenant.account.pk), AccountState.ENABLED)


@pytest.fixture
def tenant(cloud):
    return make_account("pushed")


def test_a_holder_uses_the_pushed_token_and_a_change_reaches_it_before_the_writer_returns(tenant):
    other = Holder(slow=0.3)
    try:
        assert other.lease_id in registry()
        assert other.token() == redis_token()
        started = time.monotonic()
        _disable(tenant)  # committed in this process: returns once `other` has read it
        took = time.monotonic() - started
        assert took >= 0.3, f"the writer did not wait for the holder's acknowledgement ({took:.3f} s)"
        assert other.token() == redis_token()
    finally:
        other.stop()
    assert other.lease_id not in registry()  # a holder that exits gives its lease up


def test_a_writer_waits_for_a_dead_holder_only_until_its_lease_expires(tenant):
    dead = Holder()
    dead.kill()
    killed = time.monotonic()
    assert dead.lease_id in registry()
    _disable(tenant)
    waited = time.monotonic() - killed
    # Its last renewal was at most RENEW_SECONDS before the kill, so the lease outlived it by
    # LEASE_SECONDS - RENEW_SECONDS at least: the writer did wait, and no longer than a lease.
    assert push.LEASE_SECONDS - push.RENEW_SECONDS - 0.2 <= waited <= push.WAIT_SECONDS + 0.5, waited
    assert dead.lease_id not in registry()  # forgotten: the next writer does not wait for it
    started = time.monotonic()
    _enable(tenant)
    assert time.monotonic() - started < 0.5


def test_a_killed_subscription_falls_back_to_reads_and_never_serves_stale(client, tenant, monkeypatch):
    call = ApiClient(client, tenant)
    kept(call)
    found = holder()

    def refused(self):  # keep it from subscribing again, so the fallback can be watched
        raise ConnectionError("test: no subscriptions for now")

    monkeypatch.setattr(push.Subscriber, "_session", refused)
    cache._redis().execute_command("CLIENT", "KILL", "ID", found.connection_id)
    deadline = time.monotonic() + 5
    while found.trusted():
        assert time.monotonic() < deadline, "the subscriber did not notice its connection was killed"
        time.sleep(0.01)
    assert found.lease_id is None  # given up, so no writer waits for it
    reads = []
    real_get = cache._get
    monkeypatch.setattr(cache, "_get", lambda key: reads.append(key) or real_get(key))
    with CaptureQueriesContext(connection) as captured:
        assert call("listCapabilities").status == 200
    assert reads == [ACCESS.key()]  # one read of the token instead of the pushed copy
    assert caller_queries(captured.captured_queries) == []  # the token did not change: still kept

    run_elsewhere(f"""
        services.set_account_state(admin, Account.objects.get(pk={tenant.account.pk}), "disabled")
    """)
    assert call("listCapabilities").status == 401

    monkeypatch.setattr(push.Subscriber, "_session", REAL_SESSION)
    holder(timeout=push.LEASE_SECONDS + 5)  # subscribed again (its back-off is at most 2 s)
    reads.clear()
    assert call("listCapabilities").status == 401
    assert reads == []
    run_elsewhere(f"""
        services.set_account_state(admin, Account.objects.get(pk={tenant.account.pk}), "enabled")
    """)
    assert call("listCapabilities").status == 200


def test_without_redis_an_access_change_is_refused_with_530(client, cloud, tenant, settings):
    admin = ApiClient(client, cloud.admin)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    answer = admin("createRolePermission", roleid=str(tenant.account.role.uuid), rule="listCapabilities",
                   permission="deny")
    assert answer.status == 530, answer
    assert "Redis did not answer" in answer.errortext
