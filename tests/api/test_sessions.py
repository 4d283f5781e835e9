"""Session logins (spec §4): login/logout, the sessionkey, lockout, and disabled principals."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from accounts.choices import AccountState, UserState
from accounts.models import Account, User
from portal import config
from tests.api.helpers import BAD_CREDENTIALS, send, signed, uid
from tests.factories import make_account, make_domain

LOGIN_FIELDS = {"username", "userid", "domainid", "timeout", "account", "firstname", "lastname", "type", "timezone",
                "timezoneoffset", "registered", "sessionkey", "is2faenabled", "is2faverified"}


def login(client, username="admin", password="admin-pw-1", *, how="form", fmt="json", **extra):
    params = {"command": "login", "username": username, "password": password, **extra}
    if fmt == "json":
        params["response"] = "json"
    if how == "form":
        return send(client, params, method="POST")
    if how == "query":  # CloudMonkey 5.3: POST with the parameters in the query string
        return send(client, {}, method="POST", query=params)
    return send(client, params, method="GET")


def failed_login_text(username, where="/"):
    return f"Failed to authenticate user {username} in domain {where}; please provide valid credentials"


# -- login ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_login_must_be_post(client, cloud, fmt):
    answer = login(client, how="get", fmt=fmt)
    assert answer.status == 405
    assert answer.name == "loginresponse"
    assert answer.errortext == "Please use HTTP POST to authenticate using this API"
    assert "sessionkey" not in client.cookies


@pytest.mark.parametrize("how", ["form", "query"])
def test_login_response_fields(client, cloud, how):
    answer = login(client, how=how)
    assert answer.status == 200, answer
    assert answer["Content-Type"] == "application/json; charset=UTF-8"
    body = answer.inner
    assert LOGIN_FIELDS <= set(body), LOGIN_FIELDS - set(body)
    for key, value in body.items():
        if key == "timeout":
            assert value == 1800 and type(value) is int
        elif key == "passwordchangerequired":  # newer servers: a JSON boolean (spec §4)
            assert isinstance(value, bool)
        else:
            assert isinstance(value, str), (key, value)
    admin = User.objects.get(username="admin", domain__path="/")
    assert body["username"] == "admin"
    assert body["userid"] == uid(admin)
    assert body["domainid"] == uid(admin.domain)
    assert body["account"] == "admin"
    assert body["type"] == "1"
    assert body["registered"] == "false"
    assert re.fullmatch(r"[A-Za-z0-9_-]{27}", body["sessionkey"])


def test_login_is_audited(client, cloud):
    from portal.models import Event

    login(client, password="wrong")
    assert not Event.objects.filter(type="USER.LOGIN").exists()
    login(client)
    event = Event.objects.get(type="USER.LOGIN")
    assert (event.username, event.account_name, event.state) == ("admin", "admin", "Completed")


def test_login_type_is_the_account_type_as_a_string(client, cloud):
    corp = make_domain("corp")
    make_account("boss", domain=corp, accounttype=2)
    make_account("worker")
    assert login(client, "boss", "secret-pw-1", domain="/corp/").inner["type"] == "2"
    assert login(client, "worker", "secret-pw-1").inner["type"] == "0"


def test_login_xml_is_flat(client, cloud):
    answer = login(client, fmt="xml")
    assert answer.status == 200
    assert answer["Content-Type"] == "text/xml; charset=UTF-8"
    assert answer.inner["timeout"] == "1800"
    assert answer.inner["username"] == "admin"
    assert "<loginresponse " in answer.text and "<sessionkey>" in answer.text


def test_login_sets_cookies(client, cloud):
    answer = login(client)
    cookies = answer.response.cookies
    assert cookies["sessionkey"].value == answer.inner["sessionkey"]
    assert cookies["sessionkey"]["httponly"]
    assert cookies["JSESSIONID"].value
    assert cookies["JSESSIONID"]["httponly"]
    assert cookies["csrftoken"].value  # login rotates the UI's CSRF token, as Django's login does


def test_login_starts_a_new_session(client, cloud):
    first = login(client).response.cookies["JSESSIONID"].value
    second = login(client).response.cookies["JSESSIONID"].value
    assert first != second


# -- using the session ------------------------------------------------------------------------------
def session_call(client, sessionkey=None, command="listUsers", **params):
    data = {"command": command, "response": "json", **params}
    if sessionkey is not None:
        data["sessionkey"] = sessionkey
    return send(client, data)


def test_session_calls_need_the_sessionkey_parameter(client, cloud):
    key = login(client).inner["sessionkey"]
    ok = session_call(client, key)
    assert ok.status == 200, ok
    assert "admin" in [u["username"] for u in ok.inner["user"]]
    missing = session_call(client)
    assert missing.status == 401
    assert missing.name == "listusersresponse"
    assert missing.errortext.startswith("unable to verify user credentials")
    wrong = session_call(client, key[:-1] + ("a" if key[-1] != "a" else "b"))
    assert wrong.status == 401
    assert wrong.errortext.startswith("unable to verify user credentials")


def test_sessionkey_parameter_name_is_case_insensitive(client, cloud):
    key = login(client).inner["sessionkey"]
    assert session_call(client, SessionKey=key).status == 200


def test_sessionkey_cookie_must_match_the_parameter(client, cloud):
    key = login(client).inner["sessionkey"]
    client.cookies["sessionkey"] = "someone-elses-key"
    assert session_call(client, key).status == 401


def test_sessionkey_alone_without_the_session_cookie_is_refused(client, cloud):
    key = login(client).inner["sessionkey"]
    del client.cookies["JSESSIONID"]
    answer = session_call(client, key)
    assert answer.status == 401
    assert answer.errortext == BAD_CREDENTIALS


def test_session_call_by_post_form(client, cloud):
    key = login(client).inner["sessionkey"]
    answer = send(client, {"command": "createDomain", "name": "via-session", "response": "json", "sessionkey": key},
                  method="POST")
    assert answer.status == 200, answer
    assert answer.inner["domain"]["path"] == "ROOT/via-session"


def test_session_acts_as_the_logged_in_user(client, cloud, tenant_a):
    key = login(client, "tenant-a", tenant_a.password).inner["sessionkey"]
    answer = session_call(client, key, "listAccounts", listall="true")
    assert [a["name"] for a in answer.inner["account"]] == ["tenant-a"]
    assert session_call(client, key, "createDomain", name="x").status == 401


def test_logout_ends_the_session(client, cloud):
    key = login(client).inner["sessionkey"]
    answer = send(client, {"command": "logout", "response": "json", "sessionkey": key})
    assert answer.status == 200
    assert answer.body == {"logoutresponse": {"description": "success"}}
    cleared = answer.response.cookies
    assert cleared["sessionkey"].value == "" and cleared["sessionkey"]["max-age"] == 0
    assert cleared["JSESSIONID"].value == ""
    after = session_call(client, key)
    assert after.status == 401


def test_a_session_of_a_user_disabled_later_is_refused(client, cloud, tenant_a):
    key = login(client, "tenant-a", tenant_a.password).inner["sessionkey"]
    User.objects.filter(pk=tenant_a.user.pk).update(state=UserState.DISABLED)
    assert session_call(client, key).status == 401


# -- failed logins ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_password(client, cloud, fmt):
    answer = login(client, password="wrong", fmt=fmt)
    assert answer.status == 531
    assert answer.name == "loginresponse"
    assert answer.errortext == failed_login_text("admin")
    assert "cserrorcode" not in answer.inner
    assert str(answer.inner["errorcode"]) == "531"
    assert answer["X-Description"] == answer.errortext


def test_unknown_user_gets_the_same_answer(client, cloud):
    answer = login(client, username="ghost", password="x")
    assert answer.status == 531
    assert answer.errortext == failed_login_text("ghost")


def test_system_account_cannot_log_in(client, cloud):
    assert login(client, username="system", password="").status in (531, 431)
    assert login(client, username="system", password="password").status == 531


def test_missing_username(client, cloud):
    answer = send(client, {"command": "login", "password": "x", "response": "json"}, method="POST")
    assert answer.status == 431
    assert answer.errortext == "Unable to execute API command login due to missing parameter username"


def test_five_failures_lock_logins_for_a_while(client, cloud):
    for _ in range(5):
        assert login(client, password="wrong").status == 531
    locked = login(client)  # even the right password is refused now
    assert locked.status == 531
    assert "try again in" in locked.errortext
    assert re.search(r"\d+ seconds", locked.errortext)
    assert "sessionkey" not in locked.inner
    # the lock expires
    User.objects.filter(username="admin").update(login_locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert login(client).status == 200


def test_lockout_uses_the_configured_duration(client, cloud):
    config.set_value("login.lockout.seconds", "1")
    for _ in range(5):
        login(client, password="wrong")
    user = User.objects.get(username="admin", domain__path="/")
    remaining = (user.login_locked_until - timezone.now()).total_seconds()
    assert 0 < remaining <= 1.5
    assert "try again in" in login(client).errortext


def test_a_success_resets_the_failure_count(client, cloud):
    for _ in range(4):
        login(client, password="wrong")
    assert login(client).status == 200
    for _ in range(4):
        login(client, password="wrong")
    assert login(client).status == 200


def test_lockout_is_per_user(client, cloud, tenant_a):
    for _ in range(5):
        login(client, password="wrong")
    assert login(client, "tenant-a", tenant_a.password).status == 200


def test_configured_attempts(client, cloud):
    config.set_value("incorrect.login.attempts.allowed", "2")
    login(client, password="wrong")
    login(client, password="wrong")
    assert "try again in" in login(client).errortext


# -- disabled and locked principals --------------------------------------------------------------
def _disable(tenant, what, state):
    if what == "user":
        User.objects.filter(pk=tenant.user.pk).update(state=state)
    else:
        Account.objects.filter(pk=tenant.account.pk).update(state=state)


@pytest.mark.parametrize("what", ["user", "account"])
@pytest.mark.parametrize("state", ["disabled", "locked"])
def test_disabled_or_locked_cannot_log_in_nor_use_keys(client, cloud, tenant_a, what, state):
    assert state in (UserState.DISABLED, UserState.LOCKED, AccountState.DISABLED, AccountState.LOCKED)
    _disable(tenant_a, what, state)
    answer = login(client, "tenant-a", tenant_a.password)
    assert answer.status == 531
    assert "sessionkey" not in answer.inner
    assert state in answer.errortext  # says why, so the user knows whom to ask
    keyed = send(client, signed(tenant_a, "listUsers"))
    assert keyed.status == 401
    assert keyed.errortext == BAD_CREDENTIALS


def test_disabled_user_with_wrong_password_learns_nothing(client, cloud, tenant_a):
    _disable(tenant_a, "user", "disabled")
    answer = login(client, "tenant-a", "wrong")
    assert answer.errortext == failed_login_text("tenant-a")


# -- domains ---------------------------------------------------------------------------------------
@pytest.fixture
def corp_user(cloud):
    corp = make_domain("corp")
    return make_account("alice", domain=corp, password="corp-pw-1")


@pytest.mark.parametrize("domain", ["/corp/", "/corp", "corp", "corp/", "ROOT/corp"])
def test_login_with_a_domain_path(client, corp_user, domain):
    answer = login(client, "alice", "corp-pw-1", domain=domain)
    assert answer.status == 200, answer
    assert answer.inner["domainid"] == uid(corp_user.domain)


def test_login_with_domainid(client, corp_user):
    answer = login(client, "alice", "corp-pw-1", domainid=uid(corp_user.domain))
    assert answer.status == 200, answer
    assert answer.inner["userid"] == uid(corp_user.user)


def test_domainid_wins_over_domain(client, corp_user):
    answer = login(client, "alice", "corp-pw-1", domain="/", domainid=uid(corp_user.domain))
    assert answer.status == 200, answer


def test_user_is_looked_up_in_the_given_domain_only(client, corp_user):
    assert login(client, "alice", "corp-pw-1").status == 531  # default domain is ROOT
    answer = login(client, "alice", "corp-pw-1", domain="/nowhere/")
    assert answer.status == 531
    assert answer.errortext == failed_login_text("alice", "/nowhere/")
    assert login(client, "alice", "corp-pw-1", domainid="not-a-uuid").status == 531


def test_same_username_in_two_domains(client, corp_user, cloud):
    root_alice = make_account("alice", password="root-pw-1")
    assert login(client, "alice", "root-pw-1").inner["userid"] == uid(root_alice.user)
    assert login(client, "alice", "corp-pw-1", domain="/corp/").inner["userid"] == uid(corp_user.user)
    assert login(client, "alice", "root-pw-1", domain="/corp/").status == 531
