"""End to end: two gunicorn servers (one worker each, so each address is one process) on the same
database and Redis keep callers against the pushed access generation. A change made through the
API in one of them, or by this test process, is refused on the very next request of the other —
which answered its earlier requests without reading Redis — also right after every subscription
was killed in Redis."""
from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import redis as redis_lib
import requests

from accounts import services
from accounts.choices import AccountState
from accounts.models import Account
from portal import generation_push as push
from portal.api import signing
from portal.cache import namespace
from tests.factories import Tenant, admin_user, bootstrap_cloud, make_account

from .procs import BIN, Proc, Stack, descendants, free_port, wait_http

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def cloud(transactional_db):
    """Committed data (the server processes must see it)."""
    return bootstrap_cloud()


@pytest.fixture(scope="module")
def servers(backing):
    """Servers A and B: gunicorn, one worker with two threads each."""
    stacks = []
    try:
        for name in ("a", "b"):
            port = free_port()
            stack = Stack(base_url=f"http://127.0.0.1:{port}")
            stack.procs.append(Proc(f"web-{name}", [str(BIN / "gunicorn"), "portal.wsgi:application", "--bind",
                                                    f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"],
                                    env=backing.env, log_dir=backing.work_dir))
            stacks.append(stack)
            wait_http(f"{stack.base_url}/client/login", stack.procs)
        yield stacks
    finally:
        for stack in stacks:
            for proc in stack.procs:
                proc.stop()


@pytest.fixture
def redis(backing):
    client = redis_lib.Redis.from_url(backing.redis_url)
    yield client
    client.close()


def call(stack: Stack, tenant: Tenant, command: str = "listCapabilities", **params: str) -> tuple[int, dict]:
    """One signed request on a new connection (no keep-alive between calls)."""
    data = {**params, "command": command, "apiKey": tenant.api_key, "response": "json", "signatureVersion": "3",
            "expires": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() + 600))}
    data["signature"] = signing.sign(data, tenant.secret)
    answer = requests.get(f"{stack.api_url}?{urlencode(data)}", timeout=15)
    return answer.status_code, next(iter(answer.json().values()))


def worker_pid(stack: Stack) -> int:
    (pid,) = descendants(stack.procs[0].pid)
    return pid


def leases(redis, pid: int) -> list[bytes]:
    """The lease ids process `pid` holds (a lease id is host:pid:random)."""
    return [m for m in redis.smembers(push.Names(namespace()).registry) if m.split(b":")[1] == str(pid).encode()]


def held(redis, stacks: list[Stack], tenant: Tenant) -> None:
    """Each server has kept the tenant's caller and holds a lease."""
    deadline = time.monotonic() + 20
    for stack in stacks:
        pid = worker_pid(stack)
        while not leases(redis, pid):
            assert time.monotonic() < deadline, f"server {stack.base_url} holds no lease"
            assert call(stack, tenant)[0] == 200
            time.sleep(0.05)
        for _ in range(3):  # both threads have read the caller by now (and the lease is renewed)
            assert call(stack, tenant)[0] == 200
    time.sleep(push.RENEW_SECONDS)  # past the first renewal: each trusts its copy


def gets(redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def test_a_change_in_one_server_is_refused_on_the_next_request_of_the_other(servers, cloud, redis):
    a, b = servers
    tenant = make_account("push-e2e")
    admin = cloud.admin
    held(redis, servers, tenant)

    before = gets(redis)
    for _ in range(20):
        assert call(b, tenant)[0] == 200
    assert gets(redis) - before <= 2  # B answered from its pushed copy of the token, not by reading it

    # A deny rule added through server A holds on server B's next request.
    status, body = call(a, admin, "createRolePermission", roleid=str(tenant.account.role.uuid),
                        rule="listCapabilities", permission="deny")
    assert status == 200, body
    status, body = call(b, tenant)
    assert status == 401 and "not available for user" in body["errortext"], body

    # Removed by this process (a service): both serve the tenant again.
    services.delete_role_permission(admin_user(), tenant.account.role.permissions.get(rule="listCapabilities"))
    assert call(a, tenant)[0] == 200 and call(b, tenant)[0] == 200

    # New keys registered through server B: the old ones are refused by server A at once.
    status, body = call(b, admin, "registerUserKeys", id=str(tenant.user.uuid))
    assert status == 200, body
    status, body = call(a, tenant)
    assert status == 401, body
    for stack in servers:
        assert stack.procs[0].alive()


def test_right_after_every_subscription_is_killed_a_change_still_holds(servers, cloud, redis):
    a, b = servers
    tenant = make_account("push-killed")
    held(redis, servers, tenant)
    killed = redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 2  # A's and B's subscriptions (and this process's, if it had one)
    services.set_account_state(admin_user(), Account.objects.get(pk=tenant.account.pk), AccountState.DISABLED)
    assert call(a, tenant)[0] == 401
    assert call(b, tenant)[0] == 401
    services.set_account_state(admin_user(), Account.objects.get(pk=tenant.account.pk), AccountState.ENABLED)
    assert call(a, tenant)[0] == 200 and call(b, tenant)[0] == 200
    held(redis, servers, tenant)  # both subscribed again
