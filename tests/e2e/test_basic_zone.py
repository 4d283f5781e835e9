"""End to end: the whole basic-zone set-up through the API with the `cs` client, against the real
gunicorn server and RQ worker (async jobs polled by cs itself), with this machine's libvirtd as
the KVM host and directories under a tmp dir as primary and secondary storage — then torn down
again in reverse order, leaving nothing in libvirt."""
from __future__ import annotations

import pytest
from cs import CloudStack, CloudStackApiException

from compute.drivers import get_driver
from tests.factories import bootstrap_cloud

pytestmark = [pytest.mark.e2e]

POLL = 0.1
HOST_URI = "qemu:///system"


def client(server, key: str, secret: str) -> CloudStack:
    return CloudStack(endpoint=server.api_url, key=key, secret=secret, timeout=60, poll_interval=POLL,
                      job_timeout=60, fetch_result=True)


@pytest.fixture
def cloud(transactional_db):
    """Committed data (the server processes must see it): ROOT, admin and the admin's API keys."""
    return bootstrap_cloud()


@pytest.fixture
def cs_admin(server, cloud) -> CloudStack:
    return client(server, cloud.admin.api_key, cloud.admin.secret)


def _remove_pools_under(directory: str) -> list[str]:
    """Whatever libvirt pool a failed run left on this machine under `directory`."""
    removed = []
    with get_driver(HOST_URI) as driver:
        for pool in driver.list_pools():
            if pool.spec.path.startswith(directory):
                driver.delete_pool(pool.spec.name, force=True)
                removed.append(pool.spec.name)
    return removed


def test_basic_zone_setup_and_teardown(server, cs_admin, tmp_path):
    primary, secondary = tmp_path / "primary", tmp_path / "secondary"
    cs = cs_admin
    try:
        zone = cs.createZone(name="e2e-basic", networktype="Basic", dns1="8.8.8.8", internaldns1="10.0.0.1",
                             guestcidraddress="10.1.1.0/24")["zone"]
        assert zone["allocationstate"] == "Disabled" and zone["networktype"] == "Basic"
        pod = cs.createPod(zoneid=zone["id"], name="pod-1", gateway="192.168.100.1", netmask="255.255.255.0",
                           startip="192.168.100.10", endip="192.168.100.20")["pod"]
        assert pod["startip"] == ["192.168.100.10"] and pod["endip"] == ["192.168.100.20"]
        vlan = cs.createVlanIpRange(zoneid=zone["id"], podid=pod["id"], gateway="192.168.100.1",
                                    netmask="255.255.255.0", startip="192.168.100.100", endip="192.168.100.199",
                                    forvirtualnetwork=False)["vlan"]
        assert vlan["podid"] == pod["id"] and vlan["endip"] == "192.168.100.199"
        added = cs.addCluster(zoneid=zone["id"], podid=pod["id"], clustername="kvm-1", clustertype="CloudManaged",
                              hypervisor="KVM")
        assert added["count"] == 1
        cluster = added["cluster"][0]

        # A bad step first: a host nothing answers for is refused with the reason, nothing stays.
        with pytest.raises(CloudStackApiException) as excinfo:
            cs.addHost(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], hypervisor="KVM",
                       url="qemu+tcp://127.0.0.1:1/system")
        assert excinfo.value.error["errorcode"] in (431, 534)
        assert "Connection refused" in excinfo.value.error["errortext"]
        assert cs.listHosts(zoneid=zone["id"]) == {}

        # CloudStack's UI always sends a username and password; a local libvirtd needs neither.
        added = cs.addHost(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], hypervisor="KVM",
                           url=HOST_URI, username="root", password="not-needed")
        assert added["count"] == 1
        host = added["host"][0]
        assert host["state"] == "Up" and host["hypervisor"] == "KVM" and host["cpunumber"] > 0

        pool = cs.createStoragePool(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], name="primary-1",
                                    url=f"file://{primary}", scope="cluster")["storagepool"]
        assert pool["state"] == "Up" and pool["disksizetotal"] > 0 and primary.is_dir()
        store = cs.addImageStore(provider="NFS", name="secondary-1", url=f"file://{secondary}",
                                 zoneid=zone["id"])["imagestore"]
        assert store["zoneid"] == zone["id"] and (secondary / "template").is_dir()

        cs.updateZone(id=zone["id"], allocationstate="Enabled")

        # The result: an enabled zone whose host is Up.
        [listed_zone] = cs.listZones(id=zone["id"])["zone"]
        assert listed_zone["allocationstate"] == "Enabled"
        [listed_host] = cs.listHosts(zoneid=zone["id"])["host"]
        assert listed_host["id"] == host["id"] and listed_host["state"] == "Up"
        assert listed_host["resourcestate"] == "Enabled"
        assert [p["id"] for p in cs.listStoragePools(zoneid=zone["id"])["storagepool"]] == [pool["id"]]
        assert [s["id"] for s in cs.listImageStores(zoneid=zone["id"])["imagestore"]] == [store["id"]]
        capacity = {c["type"]: c for c in cs.listCapacity(zoneid=zone["id"])["capacity"]}
        assert capacity[0]["capacitytotal"] > 0 and capacity[8]["capacitytotal"] == 100
        with get_driver(HOST_URI) as driver:
            assert any(p.spec.path == str(primary) and p.active for p in driver.list_pools())

        # Down again, in reverse order (a host in use leaves through maintenance).
        assert cs.deleteImageStore(id=store["id"]) == {"success": True}
        assert cs.deleteStoragePool(id=pool["id"]) == {"success": True}
        with pytest.raises(CloudStackApiException) as excinfo:
            cs.deleteHost(id=host["id"])
        assert excinfo.value.error["errorcode"] == 431 and "maintenance" in excinfo.value.error["errortext"]
        result = cs.prepareHostForMaintenance(id=host["id"])  # async: cs polled the job to its end
        assert result["host"]["resourcestate"] == "Maintenance", result
        assert cs.deleteHost(id=host["id"]) == {"success": True}
        assert cs.deleteCluster(id=cluster["id"]) == {"success": True}
        assert cs.deleteVlanIpRange(id=vlan["id"]) == {"success": True}
        assert cs.deletePod(id=pod["id"]) == {"success": True}
        assert cs.deleteZone(id=zone["id"]) == {"success": True}
        assert cs.listZones(name="e2e-basic") == {}
        events = {e["type"] for e in cs.listEvents(listall=True, pagesize=500, page=1)["event"]}
        assert {"ZONE.CREATE", "POD.CREATE", "VLAN.IP.RANGE.CREATE", "CLUSTER.CREATE", "HOST.ADD",
                "STORAGE.POOL.CREATE", "IMAGE.STORE.ADD", "ZONE.EDIT", "MAINT.PREPARE", "HOST.DELETE",
                "ZONE.DELETE"} <= events, events
        server.check_alive()
    finally:
        left = _remove_pools_under(str(tmp_path))
    assert not left, f"libvirt pools left behind: {left}"
