"""Primary storage through the API (JSON) on Simulator hosts (libvirt's test:///default), and
failure injection through fake hosts: create, list, update, delete, the host hooks, bad input,
roles, the periodic capacity refresh and listCapacity."""
from __future__ import annotations

import pytest

from compute import services as compute_services
from compute.choices import HostState
from compute.models import Host
from portal.models import Event
from storage import services
from storage.models import StoragePool
from tests.storage.conftest import add_sim_host, make_zone

SIM_POOL_BYTES = 100 * 2**30  # every pool of libvirt's test driver reports 100 GiB, none used


def create(api, infra, **overrides):
    params = {"zoneid": infra.zone.uuid, "podid": infra.pod.uuid, "clusterid": infra.cluster.uuid,
              "name": "primary1", "url": "file:///var/lib/nubo/primary-test"}
    params.update(overrides)
    return api("createStoragePool", **{k: v for k, v in params.items() if v is not None})


# -- create -------------------------------------------------------------------------------------
def test_create_file_pool(api, infra):
    answer = create(api, infra, tags="ssd, fast")
    assert answer.status == 200, answer
    pool = answer.inner["storagepool"]
    row = StoragePool.objects.get()
    assert pool["id"] == str(row.uuid)
    assert pool["name"] == "primary1"
    assert pool["type"] == "Filesystem"
    assert pool["scope"] == "CLUSTER"
    assert pool["state"] == "Up"
    assert pool["ipaddress"] == "localhost"
    assert pool["path"] == "/var/lib/nubo/primary-test"
    assert pool["url"] == "file:///var/lib/nubo/primary-test"
    assert (pool["zoneid"], pool["zonename"]) == (str(infra.zone.uuid), "z1")
    assert (pool["podid"], pool["podname"]) == (str(infra.pod.uuid), infra.pod.name)
    assert (pool["clusterid"], pool["clustername"]) == (str(infra.cluster.uuid), "c1")
    assert pool["disksizetotal"] == SIM_POOL_BYTES
    assert pool["disksizeused"] == 0
    assert pool["disksizeallocated"] == 0
    assert pool["tags"] == "ssd,fast"
    assert pool["provider"] == "DefaultPrimary"
    assert pool["hypervisor"] == "Simulator"
    assert pool["overprovisionfactor"] == "2.0"
    assert pool["created"].endswith("+0000")
    assert row.libvirt_name == f"nubo-{row.uuid}"
    event = Event.objects.get(type="STORAGE.POOL.CREATE")
    assert event.resource_uuid == str(row.uuid) and "primary1" in event.description


@pytest.mark.parametrize("url, path", [("/srv/primary/", "/srv/primary"),
                                       ("file://localhost/srv/a/../primary", "/srv/primary")])
def test_a_bare_absolute_path_or_localhost_url_is_a_directory(api, infra, url, path):
    answer = create(api, infra, url=url)
    assert answer.status == 200, answer
    assert answer.inner["storagepool"]["path"] == path
    assert answer.inner["storagepool"]["url"] == f"file://{path}"


def test_create_nfs_pool_mounts_under_a_per_pool_mount_point(api, infra, settings):
    answer = create(api, infra, url="nfs://NFS.example.org/export/primary/")
    assert answer.status == 200, answer
    pool = answer.inner["storagepool"]
    assert pool["type"] == "NetworkFilesystem"
    assert pool["ipaddress"] == "nfs.example.org"
    assert pool["path"] == "/export/primary"
    assert pool["url"] == "nfs://nfs.example.org/export/primary"
    row = StoragePool.objects.get()
    assert pool["mountpoint"] == row.local_path == f"{settings.NUBO_POOL_MOUNT_DIR}/{row.uuid}"
    spec = services.pool_spec(row)
    assert (spec.kind, spec.nfs_host, spec.nfs_export, spec.path) == ("netfs", "nfs.example.org", "/export/primary",
                                                                      row.local_path)


def test_zone_wide_pool_is_set_up_on_every_host_of_the_zone(api, infra, fake_hosts):
    admin = infra.admin
    other = compute_services.add_cluster(admin, zone=infra.zone, pod=infra.pod, name="c2", hypervisor="Simulator")
    add_sim_host(admin, infra.zone, infra.pod, other, "h2")
    answer = create(api, infra, scope="zone", podid=None, clusterid=None, hypervisor="Simulator")
    assert answer.status == 200, answer
    pool = answer.inner["storagepool"]
    assert pool["scope"] == "ZONE"
    assert "podid" not in pool and "clusterid" not in pool
    name = StoragePool.objects.get().libvirt_name
    assert name in fake_hosts["h1"].pools and name in fake_hosts["h2"].pools


def test_capacity_is_read_from_the_pool(api, infra, fake_hosts):
    fake_hosts["h1"].capacity, fake_hosts["h1"].allocation = 40 << 30, 3 << 30
    pool = create(api, infra).inner["storagepool"]
    assert (pool["disksizetotal"], pool["disksizeused"]) == (40 << 30, 3 << 30)


def test_capacitybytes_caps_what_is_counted(api, infra, fake_hosts):
    pool = create(api, infra, capacitybytes=10 << 30).inner["storagepool"]
    assert pool["disksizetotal"] == 10 << 30
    answer = create(api, infra, name="too-big", url="/srv/other", capacitybytes=60 << 30)
    assert answer.status == 431, answer
    assert "more than the" in answer.errortext and str(50 << 30) in answer.errortext
    assert StoragePool.objects.count() == 1
    assert list(fake_hosts["h1"].pools) == [StoragePool.objects.get().libvirt_name]  # the refused one was removed


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, says", [
    ("primary/relative", "is relative; give an absolute path"),
    ("file://primary/relative", "names 'primary' as a host"),
    ("iscsi://10.0.0.5/iqn.2024-01.org:disk/0", "scheme 'iscsi' is not supported"),
    ("http://example.org/x", "scheme 'http' is not supported"),
    ("nfs:///export", "names no NFS server"),
    ("nfs://server", "names no exported path"),
    ("nfs://server:2049/export", "gives a port"),
    ("file:///", "cannot be / itself"),
])
def test_bad_urls_are_refused_with_a_sentence(api, infra, url, says):
    answer = create(api, infra, url=url)
    assert answer.status == 431, answer
    assert answer.inner["errorcode"] == 431
    assert says in answer.errortext
    assert not StoragePool.objects.exists()


def test_unknown_ids_are_431(api, infra):
    for param in ("zoneid", "podid", "clusterid"):
        answer = create(api, infra, **{param: "00000000-0000-0000-0000-000000000000"})
        assert answer.status == 431, answer
        assert f"Invalid parameter {param}" in answer.errortext
    for command in ("updateStoragePool", "deleteStoragePool"):
        answer = api(command, id="00000000-0000-0000-0000-000000000000")
        assert answer.status == 431, answer
        assert "does not exist" in answer.errortext


def test_pod_of_another_zone_is_refused(api, infra):
    _zone2, pod2 = make_zone(infra.admin, "z2", octet=2)
    answer = create(api, infra, podid=pod2.uuid)
    assert answer.status == 431, answer
    assert f"Pod {pod2.name} is not in zone z1" in answer.errortext


def test_other_bad_values(api, infra):
    checks = [
        ({"scope": "region"}, "scope must be cluster or zone"),
        ({"clusterid": None}, "needs clusterid"),
        ({"hypervisor": "KVM"}, "is a Simulator cluster, not KVM"),
        ({"hypervisor": "VMware"}, "Hypervisor VMware is not supported"),
        ({"provider": "SolidFire"}, "Storage provider SolidFire is not supported"),
        ({"capacitybytes": 0}, "capacitybytes must be a positive number"),
        ({"managed": "true"}, "managed=true"),
        ({"name": "  "}, "must not be empty"),
    ]
    for overrides, says in checks:
        answer = create(api, infra, **overrides)
        assert answer.status == 431, (overrides, answer)
        assert says in answer.errortext, (overrides, answer.errortext)
    assert not StoragePool.objects.exists()


def test_duplicate_name_or_location_in_the_zone_is_431(api, infra):
    assert create(api, infra).status == 200
    again = create(api, infra, name="PRIMARY1", url="/srv/elsewhere")
    assert again.status == 431 and "Primary storage named PRIMARY1 already exists in zone z1" in again.errortext
    same_place = create(api, infra, name="primary2")
    assert same_place.status == 431 and "primary1 already uses file:///var/lib/nubo/primary-test" in same_place.errortext


def test_no_host_up_means_add_a_host_first(api, infra):
    empty = compute_services.add_cluster(infra.admin, zone=infra.zone, pod=infra.pod, name="empty", hypervisor="Simulator")
    answer = create(api, infra, clusterid=empty.uuid)
    assert answer.status == 534, answer
    assert "No host is Up in cluster empty" in answer.errortext and "add a host to the cluster first" in answer.errortext
    Host.objects.filter(pk=infra.host.pk).update(state=HostState.DISCONNECTED)
    answer = create(api, infra)
    assert answer.status == 534, answer
    assert "h1 is Disconnected" in answer.errortext
    assert not StoragePool.objects.exists()


# -- failures leave nothing behind ----------------------------------------------------------------
def test_a_host_that_fails_undoes_the_pools_already_made(api, infra, fake_hosts):
    add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    fake_hosts["h2"].fail_ensure = ("Cannot set up storage pool x (directory /srv/p) on fake://h2: cannot create path "
                                    "'/srv/p': Permission denied")
    answer = create(api, infra, url="/srv/p")
    assert answer.status == 534, answer
    assert answer.errortext.startswith("Cannot set up primary storage primary1 on host h2: ")
    assert "cannot create path '/srv/p': Permission denied" in answer.errortext
    assert not StoragePool.objects.exists()
    assert not Event.objects.filter(type="STORAGE.POOL.CREATE").exists()
    assert fake_hosts["h1"].pools == {} and fake_hosts["h2"].pools == {}
    assert [c[0] for c in fake_hosts["h1"].calls] == ["ensure", "delete"]


def test_an_unreachable_host_fails_the_create(api, infra, fake_hosts):
    fake_hosts["h1"].unreachable = True
    answer = create(api, infra)
    assert answer.status == 534, answer
    assert "on host h1: Cannot connect to fake://h1" in answer.errortext
    assert not StoragePool.objects.exists()


# -- list ---------------------------------------------------------------------------------------
def test_list_filters_and_pages(api, infra):
    a = create(api, infra, name="alpha", url="/srv/alpha").inner["storagepool"]
    b = create(api, infra, name="beta", url="nfs://10.0.0.9/export/beta").inner["storagepool"]
    c = create(api, infra, name="gamma", url="/srv/gamma", scope="zone", podid=None, clusterid=None).inner["storagepool"]

    def ids(**params):
        answer = api("listStoragePools", **params)
        assert answer.status == 200, answer
        return [p["id"] for p in answer.inner.get("storagepool", [])]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert api("listStoragePools").inner["count"] == 3
    assert ids(id=b["id"]) == [b["id"]]
    assert ids(name="alpha") == [a["id"]]
    assert ids(zoneid=infra.zone.uuid) == [a["id"], b["id"], c["id"]]
    assert ids(clusterid=infra.cluster.uuid) == [a["id"], b["id"]]
    assert ids(podid=infra.pod.uuid) == [a["id"], b["id"]]
    assert ids(scope="zone") == [c["id"]]
    assert ids(ipaddress="10.0.0.9") == [b["id"]]
    assert ids(path="/srv/alpha") == [a["id"]]
    assert ids(keyword="AMM") == [c["id"]]
    assert ids(page=2, pagesize=2) == [c["id"]]
    assert api("listStoragePools", page=2, pagesize=2).inner["count"] == 3
    zone2, _ = make_zone(infra.admin, "z2", octet=2)
    assert ids(zoneid=zone2.uuid) == []


def test_list_costs_a_constant_number_of_queries(api, infra):
    for i in range(6):
        assert create(api, infra, name=f"p{i}", url=f"/srv/p{i}").status == 200
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        api("listStoragePools", pagesize=2, page=1)
    with CaptureQueriesContext(connection) as many:
        api("listStoragePools")
    assert len(many) == len(few)


# -- update -------------------------------------------------------------------------------------
def test_update_name_tags_state_and_capacity(api, infra):
    pool_id = create(api, infra).inner["storagepool"]["id"]
    answer = api("updateStoragePool", id=pool_id, name="renamed", tags="a,b", enabled="false", capacitybytes=5 << 30)
    assert answer.status == 200, answer
    pool = answer.inner["storagepool"]
    assert (pool["name"], pool["tags"], pool["state"], pool["disksizetotal"]) == ("renamed", "a,b", "Disabled", 5 << 30)
    assert api("updateStoragePool", id=pool_id, enabled="true").inner["storagepool"]["state"] == "Up"
    assert Event.objects.filter(type="STORAGE.POOL.UPDATE").count() == 2
    too_big = api("updateStoragePool", id=pool_id, capacitybytes=SIM_POOL_BYTES + 1)
    assert too_big.status == 431 and f"give at most {SIM_POOL_BYTES}" in too_big.errortext
    create(api, infra, name="other", url="/srv/other")
    clash = api("updateStoragePool", id=pool_id, name="OTHER")
    assert clash.status == 431 and "already exists" in clash.errortext
    assert StoragePool.objects.get(uuid=pool_id).name == "renamed"


# -- delete -------------------------------------------------------------------------------------
def test_delete_removes_the_pool_from_every_host(api, infra, fake_hosts):
    add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    pool_id = create(api, infra).inner["storagepool"]["id"]
    name = StoragePool.objects.get().libvirt_name
    assert name in fake_hosts["h1"].pools and name in fake_hosts["h2"].pools
    answer = api("deleteStoragePool", id=pool_id)
    assert answer.status == 200, answer
    assert answer.inner["success"] is True
    assert not StoragePool.objects.exists()
    assert fake_hosts["h1"].pools == {} and fake_hosts["h2"].pools == {}
    assert Event.objects.filter(type="STORAGE.POOL.DELETE").exists()


def test_delete_refuses_while_a_host_holds_volumes_unless_forced(api, infra, fake_hosts):
    add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    pool_id = create(api, infra).inner["storagepool"]["id"]
    name = StoragePool.objects.get().libvirt_name
    fake_hosts["h2"].volumes[name] = ["root-42.qcow2"]
    answer = api("deleteStoragePool", id=pool_id)
    assert answer.status == 536, answer
    assert "Cannot delete primary storage primary1" in answer.errortext and "root-42.qcow2" in answer.errortext
    assert StoragePool.objects.exists()
    assert name in fake_hosts["h1"].pools  # removed from h1 first, then put back
    assert fake_hosts["h1"].calls[-1] == ("ensure", name)
    assert api("deleteStoragePool", id=pool_id, forced="true").status == 200
    assert not StoragePool.objects.exists()


def test_delete_with_an_unreachable_host_needs_forced(api, infra, fake_hosts):
    pool_id = create(api, infra).inner["storagepool"]["id"]
    fake_hosts["h1"].unreachable = True
    answer = api("deleteStoragePool", id=pool_id)
    assert answer.status == 534, answer
    assert "bring the host back, or pass forced=true" in answer.errortext
    assert api("deleteStoragePool", id=pool_id, forced="true").status == 200
    assert not StoragePool.objects.exists()


# -- the host hooks -----------------------------------------------------------------------------
def test_a_new_host_gets_the_pools_of_its_cluster_and_zone(api, infra, fake_hosts):
    create(api, infra, name="cluster-pool", url="/srv/c")
    create(api, infra, name="zone-pool", url="/srv/z", scope="zone", podid=None, clusterid=None)
    create(api, infra, name="kvm-zone-pool", url="/srv/k", scope="zone", podid=None, clusterid=None, hypervisor="KVM")
    host = add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    expected = {p.libvirt_name for p in StoragePool.objects.exclude(name="kvm-zone-pool")}
    assert set(fake_hosts["h2"].pools) == expected
    compute_services.reconnect_host(infra.admin, host)  # idempotent
    assert set(fake_hosts["h2"].pools) == expected


def test_a_host_whose_pool_fails_is_not_added(api, infra, fake_hosts):
    create(api, infra, name="cluster-pool", url="/srv/c")
    create(api, infra, name="zone-pool", url="/srv/z", scope="zone", podid=None, clusterid=None)
    fake_hosts["h2"].fail_ensure = "Cannot set up storage pool: mount failed"
    answer = api("addHost", zoneid=infra.zone.uuid, podid=infra.pod.uuid, clusterid=infra.cluster.uuid,
                 url="http://sim/c1/h2", hypervisor="Simulator")
    assert answer.status == 534, answer
    assert "Cannot set up primary storage cluster-pool on host h2: Cannot set up storage pool: mount failed" \
        in answer.errortext
    assert not Host.objects.filter(name="h2").exists()
    assert fake_hosts["h2"].pools == {}


def test_a_failed_reconnect_keeps_the_pools_that_were_there(api, infra, fake_hosts):
    create(api, infra, name="one", url="/srv/one")
    first = StoragePool.objects.get().libvirt_name
    create(api, infra, name="two", url="/srv/two")
    fake_hosts["h1"].pools.pop(StoragePool.objects.get(name="two").libvirt_name)
    fake_hosts["h1"].fail_ensure = "Cannot set up storage pool: boom"
    with pytest.raises(Exception, match="Cannot set up primary storage one on host h1"):
        compute_services.reconnect_host(infra.admin, infra.host)
    assert first in fake_hosts["h1"].pools  # it existed before: not removed by the undo


def test_deleting_a_host_removes_its_pools_keeping_shared_ones(api, infra, fake_hosts):
    create(api, infra)
    name = StoragePool.objects.get().libvirt_name
    compute_services.prepare_host_for_maintenance(infra.admin, infra.host)
    compute_services.delete_host(infra.admin, infra.host)
    assert name not in fake_hosts["h1"].pools
    assert ("delete", name) in fake_hosts["h1"].calls


def test_hosts_sharing_a_libvirtd_keep_the_pool_when_one_goes(api, infra, monkeypatch, fake_hosts):
    monkeypatch.setattr(services, "_host_uri", lambda host: "fake://shared")
    h2 = add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    create(api, infra)
    name = StoragePool.objects.get().libvirt_name
    compute_services.delete_host(infra.admin, h2, forced=True)
    assert name in fake_hosts["shared"].pools  # h1 still uses it
    compute_services.delete_host(infra.admin, infra.host, forced=True)
    assert name not in fake_hosts["shared"].pools


def test_deleting_an_unreachable_host(api, infra, fake_hosts):
    create(api, infra)
    fake_hosts["h1"].unreachable = True
    with pytest.raises(Exception, match="pass forced=true to delete the host anyway"):
        services.disconnect_host_pools(infra.host)
    services.disconnect_host_pools(infra.host, forced=True)  # logged, not raised
    Host.objects.filter(pk=infra.host.pk).update(state=HostState.ALERT)
    infra.host.refresh_from_db()
    services.disconnect_host_pools(infra.host)  # a host that is gone does not block


def test_real_simulator_hosts_add_and_delete(api, infra):
    """No fakes: two Simulator hosts share test:///default; pools come and go without errors."""
    h2 = add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h2")
    pool_id = create(api, infra, url="nfs://10.9.9.9/export").inner["storagepool"]["id"]
    h3 = add_sim_host(infra.admin, infra.zone, infra.pod, infra.cluster, "h3")
    compute_services.delete_host(infra.admin, h3, forced=True)
    compute_services.delete_host(infra.admin, h2, forced=True)
    assert api("deleteStoragePool", id=pool_id).status == 200


# -- capacity -----------------------------------------------------------------------------------
def _capacity(api, kind: int, **params) -> list[dict]:
    answer = api("listCapacity", type=kind, **params)
    assert answer.status == 200, answer
    return answer.inner.get("capacity", [])


def test_refresh_pool_stats_reads_every_pool_again(api, infra, fake_hosts):
    create(api, infra)
    fake_hosts["h1"].pools.clear()  # the host lost it (test:///default forgets pools between connections)
    fake_hosts["h1"].capacity, fake_hosts["h1"].allocation = 70 << 30, 7 << 30
    from storage import jobs

    counts = jobs.refresh_pool_stats()
    assert counts["pools"] == 1 and counts["pools_unreadable"] == 0
    pool = StoragePool.objects.get()
    assert (pool.capacity_bytes, pool.used_bytes) == (70 << 30, 7 << 30)
    assert pool.libvirt_name in fake_hosts["h1"].pools  # set up again
    fake_hosts["h1"].unreachable = True
    assert jobs.refresh_pool_stats()["pools_unreadable"] == 1
    assert StoragePool.objects.get().capacity_bytes == 70 << 30  # kept as last read


def test_refresh_with_real_simulator_hosts(api, infra):
    create(api, infra)
    StoragePool.objects.update(capacity_bytes=0, reported_capacity_bytes=0)
    assert services.refresh_pool_stats()["pools"] == 1
    assert StoragePool.objects.get().capacity_bytes == SIM_POOL_BYTES


def test_cron_registers_the_refresh_every_minute_and_the_download_recovery(monkeypatch):
    import importlib

    import storage.cron
    from rq import cron

    seen = []
    monkeypatch.setattr(cron, "register", lambda func, **kw: seen.append((func, kw)))
    importlib.reload(storage.cron)
    jobs = {kw["name"]: (func, kw) for func, kw in seen}
    assert sorted(jobs) == ["recover_lost_downloads", "refresh_pool_stats"]
    func, kw = jobs["refresh_pool_stats"]
    assert func.__module__ == "storage.jobs" and func.__name__ == "refresh_pool_stats"
    assert kw == {"queue_name": "default", "interval": 60, "name": "refresh_pool_stats"}
    func, kw = jobs["recover_lost_downloads"]
    assert func.__module__ == "storage.jobs" and kw["interval"] == 120


def test_list_capacity_storage_rows_follow_adds_and_deletes(api, infra, fake_hosts):
    assert _capacity(api, 2) == []
    fake_hosts["h1"].capacity, fake_hosts["h1"].allocation = 40 << 30, 4 << 30
    first = create(api, infra, name="a", url="/srv/a").inner["storagepool"]
    fake_hosts["h1"].capacity, fake_hosts["h1"].allocation = 60 << 30, 6 << 30
    second = create(api, infra, name="b", url="/srv/b").inner["storagepool"]
    (row,) = _capacity(api, 2, zoneid=infra.zone.uuid)
    pools = StoragePool.objects.all()
    assert row["capacitytotal"] == sum(p.capacity_bytes for p in pools) == 100 << 30
    assert row["capacityused"] == sum(p.used_bytes for p in pools) == 10 << 30
    (allocated,) = _capacity(api, 3)
    assert allocated["capacitytotal"] == 2 * (100 << 30)  # storage.overprovisioning.factor 2
    assert api("deleteStoragePool", id=first["id"]).status == 200
    (row,) = _capacity(api, 2)
    assert (row["capacitytotal"], row["capacityused"]) == (60 << 30, 6 << 30)
    assert api("deleteStoragePool", id=second["id"]).status == 200
    assert _capacity(api, 2) == []


# -- roles --------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["createStoragePool", "listStoragePools", "updateStoragePool",
                                     "deleteStoragePool"])
@pytest.mark.parametrize("who", ["tenant_a", "domain_admin"])
def test_other_roles_get_401(api, infra, request, command, who):
    pool_id = create(api, infra).inner["storagepool"]["id"]
    tenant = request.getfixturevalue(who)
    params = {"createStoragePool": {"zoneid": infra.zone.uuid, "clusterid": infra.cluster.uuid, "name": "x",
                                    "url": "/srv/x"},
              "listStoragePools": {}, "updateStoragePool": {"id": pool_id, "name": "y"},
              "deleteStoragePool": {"id": pool_id}}[command]
    answer = api.as_(tenant)(command, **params)
    assert answer.status == 401, answer
    assert StoragePool.objects.get().name == "primary1"


def test_services_refuse_non_root_callers(infra, tenant_a):
    from portal.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.create_storage_pool(tenant_a.user, zone=infra.zone, cluster=infra.cluster, name="x", url="/srv/x")
