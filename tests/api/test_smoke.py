def test_admin_lists_itself(api):
    r = api("listAccounts")
    assert r.status == 200
    assert r.inner["count"] == 1
    assert r.inner["account"][0]["name"] == "admin"


def test_delete_account_async(api, tenant_a):
    r = api("deleteAccount", id=str(tenant_a.account.uuid))
    job = api.job(r)
    assert job["jobstatus"] == 1, job
    assert job["jobresult"] == {"success": True}
    assert api("listAccounts", name="tenant-a").inner == {}
