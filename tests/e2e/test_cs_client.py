"""End to end: the real gunicorn server and RQ worker, driven over HTTP by the `cs` client
library (API keys, async jobs polled by cs itself, errors) and by `requests` (login session)."""
from __future__ import annotations

import uuid

import pytest
import requests
from cs import CloudStack, CloudStackApiException

from accounts import services
from tests.factories import admin_user, bootstrap_cloud, make_account

pytestmark = [pytest.mark.e2e]

POLL = 0.1  # seconds between cs's queryAsyncJobResult polls (default 2)


def client(server, key: str, secret: str, **kwargs) -> CloudStack:
    return CloudStack(endpoint=server.api_url, key=key, secret=secret, timeout=15, poll_interval=POLL, job_timeout=30,
                      fetch_result=True, **kwargs)


@pytest.fixture
def cloud(transactional_db):
    """Committed data (the server processes must see it): ROOT, admin and the admin's API keys."""
    return bootstrap_cloud()


@pytest.fixture
def cs_admin(server, cloud) -> CloudStack:
    return client(server, cloud.admin.api_key, cloud.admin.secret)


def test_keys_tenancy_and_async_delete(server, cloud, cs_admin):
    admin_post = client(server, cloud.admin.api_key, cloud.admin.secret, method="post")

    domain = cs_admin.createDomain(name="e2e-corp", networkdomain="corp.example")["domain"]
    assert domain["name"] == "e2e-corp" and domain["path"] == "ROOT/e2e-corp"

    # Passwords travel in a POST form body (as cmk does); cs signs the same way either way.
    account = admin_post.createAccount(username="alice", password="alice-pw-1", email="alice@example.org",
                                       firstname="Alice", lastname="Tester", domainid=domain["id"],
                                       accounttype=0)["account"]
    assert account["name"] == "alice" and account["domainid"] == domain["id"]
    user = admin_post.createUser(account="alice", domainid=domain["id"], username="bob", password="bob-pw-1",
                                 email="bob@example.org", firstname="Bob", lastname="Tester")["user"]
    assert user["account"] == "alice" and user["username"] == "bob"

    keys = cs_admin.registerUserKeys(id=user["id"])["userkeys"]
    assert len(keys["apikey"]) == 86 and len(keys["secretkey"]) == 86

    # Bob signs with his own new keys and sees his own account only, even asking for all.
    bob = client(server, keys["apikey"], keys["secretkey"])
    for kwargs in ({}, {"listall": True}):
        mine = bob.listAccounts(**kwargs)
        assert mine["count"] == 1, mine
        assert [a["name"] for a in mine["account"]] == ["alice"]
    assert bob.listDomains()["domain"][0]["id"] == domain["id"]
    # cs's paging mode (page/pagesize=500 until count) works against our count.
    assert [a["name"] for a in bob.listAccounts(fetch_list=True)] == ["alice"]
    # The admin sees both tenants.
    names = {a["name"] for a in cs_admin.listAccounts(listall=True, fetch_list=True)}
    assert {"admin", "alice"} <= names

    # Async delete, polled to completion by cs (fetch_result=True): cs returns the jobresult.
    result = cs_admin.deleteAccount(id=account["id"])
    assert result == {"success": True}, result
    assert cs_admin.listAccounts(id=account["id"], listall=True) == {}
    assert cs_admin.listUsers(username="bob", listall=True) == {}

    # The same job as the API records it (field names of spec §6), found via listAsyncJobs.
    jobs = cs_admin.listAsyncJobs(listall=True)["asyncjobs"]
    job = next(j for j in jobs if j["jobinstanceid"] == account["id"])
    assert job["jobstatus"] == 1 and job["jobresultcode"] == 0 and job["jobinstancetype"] == "Account"
    assert job["jobresult"] == {"success": True} and job["completed"]
    # (fetch_result=False: cs would otherwise poll this answer too, as it carries a jobid.)
    answer = cs_admin.queryAsyncJobResult(jobid=job["jobid"], fetch_result=False)
    assert answer["jobstatus"] == 1 and answer["jobresultcode"] == 0 and answer["jobresulttype"] == "object"

    # Bob's keys died with his account.
    with pytest.raises(CloudStackApiException) as excinfo:
        bob.listAccounts()
    assert excinfo.value.error["errorcode"] == 401
    server.check_alive()


def test_delete_domain_with_cleanup_and_async_failure(server, cloud, cs_admin):
    domain = cs_admin.createDomain(name="e2e-tmp")["domain"]
    sub = cs_admin.createDomain(name="child", parentdomainid=domain["id"])["domain"]
    cs_admin.createAccount(username="carol", password="carol-pw-1", email="carol@example.org", firstname="Carol",
                        lastname="Tester", domainid=sub["id"])

    # Without cleanup the job fails; cs raises with the job's error (errorcode + errortext).
    with pytest.raises(CloudStackApiException) as excinfo:
        cs_admin.deleteDomain(id=domain["id"])
    error = excinfo.value.error
    assert error["errorcode"] >= 400 and "cleanup" in error["errortext"], error
    assert cs_admin.listDomains(id=domain["id"])["count"] == 1

    assert cs_admin.deleteDomain(id=domain["id"], cleanup=True) == {"success": True}
    assert cs_admin.listDomains(name="e2e-tmp", listall=True) == {}
    assert cs_admin.listDomains(name="child", listall=True) == {}
    assert cs_admin.listAccounts(name="carol", listall=True) == {}
    server.check_alive()


def test_cs_sees_api_errors(server, cloud, cs_admin):
    missing = str(uuid.uuid4())
    for call in (lambda: cs_admin.deleteAccount(id=missing),
                 lambda: cs_admin.updateDomain(id=missing, name="x"),
                 lambda: cs_admin.deleteAccount(id="not-a-uuid")):
        with pytest.raises(CloudStackApiException) as excinfo:
            call()
        exc = excinfo.value
        assert exc.response.status_code == 431
        assert exc.error["errorcode"] == 431, exc.error
        assert exc.error["errortext"] and "cserrorcode" in exc.error

    # An unknown command, a bad signature and a missing required parameter, as cs sees them.
    with pytest.raises(CloudStackApiException) as excinfo:
        cs_admin.noSuchCommand()
    assert excinfo.value.error["errorcode"] == 432
    forged = client(server, cloud.admin.api_key, "x" * 86)
    with pytest.raises(CloudStackApiException) as excinfo:
        forged.listAccounts()
    assert excinfo.value.error["errorcode"] == 401
    assert excinfo.value.error["errortext"] == "unable to verify user credentials and/or request signature"
    with pytest.raises(CloudStackApiException) as excinfo:
        cs_admin.createDomain()
    assert excinfo.value.error["errorcode"] == 431


def test_access_changes_hold_on_the_servers_next_request(server, cloud, cs_admin):
    """The web process keeps its callers; a change made by this process (a role rule, a key) and
    one made by the RQ worker (disableAccount is a job) each hold on its next request."""
    tenant = make_account("e2e-kept")
    cs_tenant = client(server, tenant.api_key, tenant.secret)

    def refused() -> str:
        with pytest.raises(CloudStackApiException) as excinfo:
            cs_tenant.listCapabilities()
        assert excinfo.value.error["errorcode"] == 401, excinfo.value.error
        return excinfo.value.error["errortext"]

    for _ in range(3):  # both gunicorn threads that may answer have read the caller by now
        assert "capability" in cs_tenant.listCapabilities()
    rule = services.create_role_permission(admin_user(), role=tenant.account.role, rule="listCapabilities",
                                           permission="deny")
    assert "not available for user" in refused()
    services.delete_role_permission(admin_user(), rule)
    assert "capability" in cs_tenant.listCapabilities()

    api_key, secret = services.register_user_keys(admin_user(), tenant.user)
    assert refused() == "unable to verify user credentials and/or request signature"
    cs_tenant = client(server, api_key, secret)
    assert "capability" in cs_tenant.listCapabilities()

    job = cs_admin.disableAccount(id=str(tenant.account.uuid), lock=False)  # run by the worker process
    assert job["account"]["state"] == "disabled"
    refused()
    server.check_alive()


def test_login_session_flow(server, cloud):
    api = server.api_url
    session = requests.Session()
    r = session.get(api, params={"command": "login", "username": "admin", "password": "admin-pw-1",
                                 "response": "json"}, timeout=10)
    assert r.status_code == 405, r.text

    r = session.post(api, data={"command": "login", "username": "admin", "password": "wrong", "domain": "/",
                                "response": "json"}, timeout=10)
    assert r.status_code == 531 and r.json()["loginresponse"]["errorcode"] == 531

    r = session.post(api, data={"command": "login", "username": "admin", "password": "admin-pw-1", "domain": "/",
                                "response": "json"}, timeout=10)
    assert r.status_code == 200, r.text
    login = r.json()["loginresponse"]
    key = login["sessionkey"]
    assert login["username"] == "admin" and login["account"] == "admin" and login["type"] == "1"
    assert login["timeout"] == 1800 and len(key) == 27
    assert session.cookies.get("sessionkey") == key and session.cookies.get("JSESSIONID")

    r = session.get(api, params={"command": "listDomains", "response": "json", "sessionkey": key}, timeout=10)
    assert r.status_code == 200, r.text
    assert [d["name"] for d in r.json()["listdomainsresponse"]["domain"]] == ["ROOT"]
    # POST with a form body works the same.
    r = session.post(api, data={"command": "listAccounts", "response": "json", "sessionkey": key}, timeout=10)
    assert r.status_code == 200 and r.json()["listaccountsresponse"]["account"][0]["name"] == "admin", r.text
    # The cookie alone is not enough: the sessionkey parameter is required (CSRF protection).
    r = session.get(api, params={"command": "listDomains", "response": "json"}, timeout=10)
    assert r.status_code == 401, r.text
    wrong = ("y" if key[0] == "x" else "x") + key[1:]
    r = session.get(api, params={"command": "listDomains", "response": "json", "sessionkey": wrong}, timeout=10)
    assert r.status_code == 401, r.text

    # (CloudStack also invalidates the session after a bad key, spec §4; the session API tests
    # own that detail.) A fresh login gives a working session; logout ends it server-side.
    r = session.post(api, data={"command": "login", "username": "admin", "password": "admin-pw-1",
                                "response": "json"}, timeout=10)
    key = r.json()["loginresponse"]["sessionkey"]
    cookies = session.cookies.copy()
    r = session.get(api, params={"command": "logout", "response": "json", "sessionkey": key}, timeout=10)
    assert r.status_code == 200 and r.json() == {"logoutresponse": {"description": "success"}}, r.text
    assert not session.cookies.get("sessionkey")

    # The old cookies and key no longer open anything.
    r = requests.get(api, params={"command": "listDomains", "response": "json", "sessionkey": key},
                     cookies=cookies, timeout=10)
    assert r.status_code == 401, r.text
    server.check_alive()


def test_a_template_is_downloaded_by_the_worker_and_extracted(server, cloud, cs_admin, tmp_path):
    """registerTemplate answers at once; the real RQ worker downloads the image from a local HTTP
    server while listTemplates shows the status; extract gives a URL that serves the same bytes."""
    import time

    from tests.images import ImageServer, make_qcow2

    source = tmp_path / "source"
    source.mkdir()
    image = make_qcow2(source / "tiny.qcow2")
    images = ImageServer(source)
    try:
        cs_admin.updateConfiguration(name="secstorage.allowed.internal.sites", value="127.0.0.0/8")
        cs_admin.updateConfiguration(name="endpointe.url", value=server.api_url)
        zone = cs_admin.createZone(name="e2e-images", dns1="8.8.8.8", internaldns1="10.0.0.2",
                                   networktype="Basic")["zone"]
        cs_admin.addImageStore(provider="NFS", zoneid=zone["id"], url=f"file://{tmp_path}/secondary")
        registered = cs_admin.registerTemplate(name="e2e-tiny", displaytext="e2e", url=images.url("tiny.qcow2"),
                                               format="QCOW2", hypervisor="KVM", zoneid=zone["id"])["template"]
        template_id = registered[0]["id"]
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            item = cs_admin.listTemplates(templatefilter="self", id=template_id)["template"][0]
            seen.append(item["status"])
            if item["isready"]:
                break
            time.sleep(0.2)
        assert item["isready"] and item["status"] == "Download Complete", seen
        extracted = cs_admin.extractTemplate(id=template_id, mode="HTTP_DOWNLOAD")["template"]
        assert extracted["url"].startswith(server.api_url.rsplit("/client/api", 1)[0] + "/client/extract/")
        body = requests.get(extracted["url"], timeout=15)
        assert body.status_code == 200 and body.content == image.read_bytes()
        assert cs_admin.deleteTemplate(id=template_id) == {"success": True}
        assert requests.get(extracted["url"], timeout=15).status_code == 404
    finally:
        images.close()


def test_cs_deploys_lists_stops_and_destroys_a_vm(server, cloud, cs_admin, tmp_path):
    """The whole path a CloudStack client takes, through the real web server and RQ worker, on a
    Simulator host: register a template, deploy (async create: id + job), list, stop, destroy."""
    import time

    from compute.models import ServiceOffering
    from tests.images import ImageServer, make_qcow2

    source = tmp_path / "source"
    source.mkdir()
    make_qcow2(source / "tiny.qcow2")
    images = ImageServer(source)
    try:
        cs_admin.updateConfiguration(name="secstorage.allowed.internal.sites", value="127.0.0.0/8")
        zone = cs_admin.createZone(name="e2e-vms", dns1="8.8.8.8", internaldns1="10.0.0.2", networktype="Basic")["zone"]
        pod = cs_admin.createPod(zoneid=zone["id"], name="p1", gateway="10.7.0.1", netmask="255.255.255.0",
                                 startip="10.7.0.10", endip="10.7.0.20")["pod"]
        cs_admin.createVlanIpRange(podid=pod["id"], gateway="10.7.0.1", netmask="255.255.255.0",
                                   startip="10.7.0.50", endip="10.7.0.59", forvirtualnetwork=False)
        cluster = cs_admin.addCluster(zoneid=zone["id"], podid=pod["id"], clustername="c1", hypervisor="Simulator",
                                      clustertype="CloudManaged")["cluster"][0]
        cs_admin.addHost(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], hypervisor="Simulator",
                         url="http://sim/e2e/h1", username="root", password="x")
        cs_admin.createStoragePool(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], name="pool",
                                   url=f"file://{tmp_path}/primary")
        cs_admin.addImageStore(provider="NFS", zoneid=zone["id"], url=f"file://{tmp_path}/secondary")
        cs_admin.updateZone(id=zone["id"], allocationstate="Enabled")
        template = cs_admin.registerTemplate(name="tiny", displaytext="tiny", url=images.url("tiny.qcow2"),
                                             format="QCOW2", hypervisor="KVM", zoneid=zone["id"])["template"][0]
        deadline = time.monotonic() + 60
        while not cs_admin.listTemplates(templatefilter="self", id=template["id"])["template"][0]["isready"]:
            assert time.monotonic() < deadline, "the template did not become ready"
            time.sleep(0.2)
        offering = ServiceOffering.objects.create(name="e2e-tiny", display_text="tiny", cpu_number=1, cpu_speed=500,
                                                  memory=128)

        vm = cs_admin.deployVirtualMachine(zoneid=zone["id"], serviceofferingid=str(offering.uuid),
                                           templateid=template["id"], name="e2e-vm")["virtualmachine"]
        assert vm["state"] == "Running" and vm["nic"][0]["ipaddress"].startswith("10.7.0.5")
        listed = cs_admin.listVirtualMachines(id=vm["id"])["virtualmachine"]
        assert [v["name"] for v in listed] == ["e2e-vm"]
        assert cs_admin.stopVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Stopped"
        destroyed = cs_admin.destroyVirtualMachine(id=vm["id"], expunge=True)["virtualmachine"]
        assert destroyed["state"] == "Expunging"
        assert cs_admin.listVirtualMachines(id=vm["id"]) == {}
    finally:
        images.close()
