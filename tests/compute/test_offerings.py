"""Service and disk offerings (compute.offerings, compute.commands_offerings): create, list,
update, delete for both kinds; CloudStack's customized-offering rules; who sees a
domain-specific offering (its domain and sub-domains); what a domain admin may do; the defaults
the bootstrap seeds; events; and every bad value answered with a sentence (431), never a crash."""
from __future__ import annotations

import pytest

from compute import offerings
from compute.models import DiskOffering, ServiceOffering
from portal.models import Event
from storage.images import builtin
from tests.factories import make_account, make_domain

FIXED = {"name": "fixed", "displaytext": "Fixed", "cpunumber": 2, "cpuspeed": 1000, "memory": 1024}


def _so(answer) -> dict:
    assert answer.status == 200, answer
    return answer.inner["serviceoffering"]


def _do(answer) -> dict:
    assert answer.status == 200, answer
    return answer.inner["diskoffering"]


def _ids(answer, key: str) -> set[str]:
    assert answer.status == 200, answer
    return {row["id"] for row in answer.inner.get(key, [])}


def _sentence(answer, status: int = 431) -> str:
    assert answer.status == status, answer
    text = answer.errortext
    assert text and "Traceback" not in text and "Exception" not in text, text
    return text


@pytest.fixture
def corp(cloud):
    return make_domain("corp")


@pytest.fixture
def corp_admin(corp):
    return make_account("corp-admin", domain=corp, accounttype=2)


@pytest.fixture
def corp_user(corp):
    return make_account("corp-user", domain=corp)


@pytest.fixture
def dev_user(corp):
    return make_account("dev-user", domain=make_domain("dev", parent=corp))


@pytest.fixture
def other_user(cloud):
    return make_account("other-user", domain=make_domain("other"))


# -- service offerings ----------------------------------------------------------------------------
def test_create_a_fixed_service_offering(api):
    so = _so(api("createServiceOffering", **FIXED, offerha=True, hosttags="ssd, fast,ssd", tags="gold"))
    assert so["name"] == "fixed" and so["displaytext"] == "Fixed"
    assert (so["cpunumber"], so["cpuspeed"], so["memory"]) == (2, 1000, 1024)
    assert so["iscustomized"] is False and so["offerha"] is True and so["limitcpuuse"] is False
    assert so["hosttags"] == "ssd,fast" and so["storagetags"] == "gold"
    assert so["storagetype"] == "shared" and so["provisioningtype"] == "thin" and so["cacheMode"] == "none"
    assert so["issystem"] is False and so["defaultuse"] is False and so["isvolatile"] is False
    assert "domainid" not in so and "serviceofferingdetails" not in so  # public, fixed
    assert so["created"].endswith("+0000")
    row = ServiceOffering.objects.get(uuid=so["id"])
    assert not row.customized and row.removed is None


def test_a_customized_offering_takes_cpu_and_memory_at_deployment(api):
    so = _so(api("createServiceOffering", name="custom", displaytext="Custom", cpuspeed=1000))
    assert so["iscustomized"] is True
    assert "cpunumber" not in so and "memory" not in so and "serviceofferingdetails" not in so


def test_a_constrained_customized_offering_shows_its_ranges(api):
    so = _so(api("createServiceOffering", name="bounded", displaytext="Bounded", customized=True, cpuspeed=1000,
                 mincpunumber=1, maxcpunumber=4, minmemory=512, maxmemory=4096))
    assert so["iscustomized"] is True
    assert so["serviceofferingdetails"] == {"mincpunumber": "1", "maxcpunumber": "4", "minmemory": "512",
                                            "maxmemory": "4096"}
    xml = api.xml()("listServiceOfferings", id=so["id"])
    assert xml.inner["serviceoffering"]["serviceofferingdetails"]["maxmemory"] == "4096"


@pytest.mark.parametrize("params, words", [
    ({"cpunumber": 1}, "needs both cpunumber and memory"),
    ({"memory": 512}, "needs both cpunumber and memory"),
    ({"customized": True, "cpunumber": 1, "memory": 512}, "leave cpunumber and memory out"),
    ({"customized": True, "memory": 512}, "leave memory out"),
    ({"customized": True, "mincpunumber": 1, "maxcpunumber": 2}, "minmemory, maxmemory are missing"),
    ({"customized": True, "mincpunumber": 4, "maxcpunumber": 2, "minmemory": 512, "maxmemory": 1024},
     "mincpunumber (4) must not be greater than maxcpunumber (2)"),
    ({"customized": True, "mincpunumber": 1, "maxcpunumber": 2, "minmemory": 2048, "maxmemory": 1024},
     "minmemory (2048 MiB) must not be greater than maxmemory (1024 MiB)"),
    ({"customized": True, "mincpunumber": 0, "maxcpunumber": 2, "minmemory": 512, "maxmemory": 1024},
     "mincpunumber must be between 1"),
    ({"customized": True, "mincpunumber": 1, "maxcpunumber": 2, "minmemory": 16, "maxmemory": 1024},
     "minmemory must be between 32"),
    ({"cpunumber": 1, "memory": 512, "mincpunumber": 1}, "pass customized=true"),
    ({"customized": False}, "needs both cpunumber and memory"),
    ({"cpunumber": 0, "memory": 512}, "cpunumber must be between 1 and"),
    ({"cpunumber": -3, "memory": 512}, "cpunumber must be between 1 and"),
    ({"cpunumber": 1, "memory": 31}, "memory must be between 32 and"),
    ({"cpunumber": 1, "memory": 99999999999}, "memory must be between 32 and"),
    ({"cpunumber": 1, "memory": 512, "cpuspeed": 0}, "cpuspeed must be between 1 and"),
    ({"cpunumber": 1, "memory": 512, "limitcpuuse": True}, "give cpuspeed too"),
    ({"cpunumber": 1, "memory": 512, "rootdisksize": 0}, "rootdisksize must be between 1"),
    ({"cpunumber": 1, "memory": 512, "storagetype": "nvme"}, "storagetype must be shared or local, not nvme"),
    ({"cpunumber": 1, "memory": 512, "provisioningtype": "thick"}, "provisioningtype must be thin or sparse or fat"),
    ({"cpunumber": 1, "memory": 512, "issystem": True}, "System offerings are not supported"),
    ({"cpunumber": 1, "memory": 512, "zoneid": "00000000-0000-4000-8000-000000000000"}, "leave zoneid out"),
    ({"cpunumber": 1, "memory": 512, "domainid": "00000000-0000-4000-8000-000000000000"}, "entity does not exist"),
    ({"cpunumber": 1, "memory": 512, "domainid": "nope"}, "domainid"),
    ({"cpunumber": "two", "memory": 512}, "cpunumber"),
    ({"cpunumber": 1, "memory": 512, "name": "   "}, "name must not be empty"),
])
def test_bad_service_offerings_are_refused_with_a_sentence(api, params, words):
    answer = api("createServiceOffering", **{"name": "bad", "displaytext": "Bad", **params})
    assert words in _sentence(answer)
    assert not ServiceOffering.objects.filter(name="bad").exists()


def test_storage_type_and_provisioning_are_case_insensitive(api):
    so = _so(api("createServiceOffering", **FIXED, storagetype="LOCAL", provisioningtype="Fat"))
    assert (so["storagetype"], so["provisioningtype"]) == ("local", "fat")


def test_update_a_service_offering(api, corp):
    so = _so(api("createServiceOffering", **FIXED))
    changed = _so(api("updateServiceOffering", id=so["id"], name="renamed", displaytext="Renamed", sortkey=7,
                      hosttags="a,b", storagetags="gold", domainid=str(corp.uuid)))
    assert (changed["name"], changed["displaytext"], changed["hosttags"], changed["storagetags"]) == \
        ("renamed", "Renamed", "a,b", "gold")
    assert changed["domainid"] == str(corp.uuid) and changed["domain"] == "corp"
    assert changed["cpunumber"] == 2  # sizes never change
    row = ServiceOffering.objects.get(uuid=so["id"])
    assert row.sort_key == 7
    public = _so(api("updateServiceOffering", id=so["id"], domainid="public", zoneid="all"))
    assert "domainid" not in public
    assert "leave zoneid out" in _sentence(api("updateServiceOffering", id=so["id"],
                                               zoneid="00000000-0000-4000-8000-000000000000"))
    assert "must not be empty" in _sentence(api("updateServiceOffering", id=so["id"], name=" "))
    assert "sortkey" in _sentence(api("updateServiceOffering", id=so["id"], sortkey=99999999999))


def test_delete_a_service_offering_keeps_the_row(api):
    so = _so(api("createServiceOffering", **FIXED))
    answer = api("deleteServiceOffering", id=so["id"])
    assert answer.status == 200 and answer.inner["success"] is True
    row = ServiceOffering.objects.get(uuid=so["id"])
    assert row.removed is not None
    assert so["id"] not in _ids(api("listServiceOfferings"), "serviceoffering")
    assert "does not exist" in _sentence(api("deleteServiceOffering", id=so["id"]))
    assert "does not exist" in _sentence(api("updateServiceOffering", id=so["id"], name="back"))


def test_the_users_hooks_can_refuse_a_delete(api):
    so = _so(api("createServiceOffering", **FIXED))
    do = _do(api("createDiskOffering", name="d", displaytext="D", disksize=5))

    def hook(offering):
        return ["vm-1", "vm-2"] if isinstance(offering, ServiceOffering) else []

    offerings.OFFERING_USERS_HOOKS.append(hook)
    try:
        refused = api("deleteServiceOffering", id=so["id"])
        assert "in use by vm-1, vm-2" in _sentence(refused, 536)
        assert api("deleteDiskOffering", id=do["id"]).status == 200  # the hook answers [] for disk offerings
    finally:
        offerings.OFFERING_USERS_HOOKS.remove(hook)
    assert ServiceOffering.objects.get(uuid=so["id"]).removed is None


def test_list_filters(api):
    small = _so(api("createServiceOffering", name="small", displaytext="Small box", cpunumber=1, memory=512))
    big = _so(api("createServiceOffering", name="big", displaytext="Big box", cpunumber=8, memory=16384,
                  cpuspeed=2000))
    free = _so(api("createServiceOffering", name="free", displaytext="Any size"))
    ranged = _so(api("createServiceOffering", name="ranged", displaytext="Ranged", mincpunumber=2, maxcpunumber=4,
                     minmemory=1024, maxmemory=4096))
    key = "serviceoffering"
    assert _ids(api("listServiceOfferings", name="small"), key) == {small["id"]}
    assert _ids(api("listServiceOfferings", keyword="BOX"), key) == {small["id"], big["id"]}
    assert _ids(api("listServiceOfferings", cpunumber=8), key) == {big["id"], free["id"]}
    assert _ids(api("listServiceOfferings", cpunumber=3), key) == {free["id"], ranged["id"]}
    assert _ids(api("listServiceOfferings", memory=2048), key) == {free["id"], ranged["id"]}
    assert big["id"] in _ids(api("listServiceOfferings", cpuspeed=1500), key)
    assert _ids(api("listServiceOfferings", issystem=True), key) == set()
    assert _ids(api("listServiceOfferings", issystem=False), key) >= {small["id"], big["id"]}
    assert "cpunumber" in _sentence(api("listServiceOfferings", cpunumber=99999999999))
    vm = api("listServiceOfferings", virtualmachineid="00000000-0000-4000-8000-000000000000")
    assert _ids(vm, key) >= {small["id"], big["id"]}  # accepted, not applied until VMs exist
    listed = api("listServiceOfferings")
    assert listed.inner["count"] == len(listed.inner[key])


# -- visibility -----------------------------------------------------------------------------------
def test_a_domain_specific_offering_is_seen_in_its_domain_and_subdomains_only(api, corp, corp_user, dev_user,
                                                                              other_user):
    mine = _so(api("createServiceOffering", **FIXED, domainid=str(corp.uuid)))
    public = _so(api("createServiceOffering", **{**FIXED, "name": "public"}))
    disk = _do(api("createDiskOffering", name="corp-disk", displaytext="Corp disk", disksize=5,
                   domainid=str(corp.uuid)))
    assert mine["domainid"] == str(corp.uuid) and mine["domain"] == "corp"
    for tenant in (corp_user, dev_user):
        assert _ids(api.as_(tenant)("listServiceOfferings"), "serviceoffering") == {mine["id"], public["id"]}
        assert _ids(api.as_(tenant)("listDiskOfferings"), "diskoffering") == {disk["id"]}
    assert _ids(api.as_(other_user)("listServiceOfferings"), "serviceoffering") == {public["id"]}
    assert api.as_(other_user)("listServiceOfferings", id=mine["id"]).inner == {}
    assert api.as_(other_user)("listDiskOfferings", id=disk["id"]).inner == {}
    # users may name their own domain or an ancestor, not another one
    assert _ids(api.as_(dev_user)("listServiceOfferings", domainid=str(corp.uuid)), "serviceoffering") == \
        {mine["id"]}
    assert "does not exist" in _sentence(api.as_(other_user)("listServiceOfferings", domainid=str(corp.uuid)))


def test_root_admin_lists_everything_and_filters_by_domain(api, corp):
    dev = make_domain("dev", parent=corp)
    on_corp = _so(api("createServiceOffering", **FIXED, domainid=str(corp.uuid)))
    on_dev = _so(api("createServiceOffering", **{**FIXED, "name": "dev"}, domainid=str(dev.uuid)))
    public = _so(api("createServiceOffering", **{**FIXED, "name": "pub"}))
    assert _ids(api("listServiceOfferings"), "serviceoffering") >= {on_corp["id"], on_dev["id"], public["id"]}
    assert _ids(api("listServiceOfferings", domainid=str(corp.uuid)), "serviceoffering") == {on_corp["id"]}
    assert _ids(api("listServiceOfferings", domainid=str(corp.uuid), isrecursive=True), "serviceoffering") == \
        {on_corp["id"], on_dev["id"]}


def test_an_offering_for_several_domains(api, corp):
    other = make_domain("other")
    so = _so(api("createServiceOffering", **FIXED, domainid=f"{corp.uuid},{other.uuid}"))
    assert set(so["domainid"].split(",")) == {str(corp.uuid), str(other.uuid)}
    assert set(so["domain"].split(",")) == {"corp", "other"}


def test_usable_by_is_what_an_account_may_deploy_with(cloud, corp, corp_admin, dev_user):
    """A domain admin sees (and manages) the offerings of its subtree, but its own account may only
    use those of its domain and above: usable_by answers for an account or a caller."""
    admin = cloud.admin.user
    dev = dev_user.account.domain
    for_dev = offerings.create_service_offering(admin, name="dev", cpu_number=1, memory=128, domains=[dev])
    for_corp = offerings.create_service_offering(admin, name="corp", cpu_number=1, memory=128, domains=[corp])
    public = offerings.create_service_offering(admin, name="public", cpu_number=1, memory=128)
    assert set(ServiceOffering.objects.visible_to(corp_admin.user)) == {for_dev, for_corp, public}
    assert set(ServiceOffering.objects.usable_by(corp_admin.user)) == {for_corp, public}
    assert set(ServiceOffering.objects.usable_by(dev_user.account)) == {for_dev, for_corp, public}
    assert set(ServiceOffering.objects.visible_to(dev_user.user)) == {for_dev, for_corp, public}
    offerings.delete_service_offering(admin, for_dev)
    assert for_dev not in ServiceOffering.objects.usable_by(dev_user.account)
    assert for_dev not in ServiceOffering.objects.visible_to(admin)


def test_hidden_disk_offerings_are_not_listed_to_users(api, corp_user):
    hidden = _do(api("createDiskOffering", name="hidden", displaytext="Hidden", disksize=5, displayoffering=False))
    assert hidden["displayoffering"] is False
    assert hidden["id"] in _ids(api("listDiskOfferings"), "diskoffering")
    assert hidden["id"] not in _ids(api.as_(corp_user)("listDiskOfferings"), "diskoffering")


# -- domain admins --------------------------------------------------------------------------------
def test_a_domain_admin_manages_offerings_of_its_subtree_only(api, corp, corp_admin):
    dev = make_domain("dev", parent=corp)
    other = make_domain("other")
    admin = api.as_(corp_admin)
    for_corp = _so(admin("createServiceOffering", **FIXED, domainid=str(corp.uuid)))
    for_dev = _do(admin("createDiskOffering", name="dev-disk", displaytext="Dev disk", disksize=5,
                        domainid=str(dev.uuid)))
    assert "may not create a public service offering" in _sentence(admin("createServiceOffering", **FIXED), 531)
    assert "may not create a public disk offering" in _sentence(
        admin("createDiskOffering", name="x", displaytext="X", disksize=5), 531)
    assert "does not exist" in _sentence(admin("createServiceOffering", **FIXED, domainid=str(other.uuid)))
    root_domain = str(corp.parent.uuid)
    assert "does not exist" in _sentence(admin("createServiceOffering", **FIXED, domainid=root_domain))
    # its own offerings: update and delete
    assert _so(admin("updateServiceOffering", id=for_corp["id"], name="corp-box"))["name"] == "corp-box"
    assert _so(admin("updateServiceOffering", id=for_corp["id"], domainid=str(dev.uuid)))["domain"] == "dev"
    assert "Only a root admin may make a service offering public" in _sentence(
        admin("updateServiceOffering", id=for_corp["id"], domainid="public"), 531)
    assert "does not exist" in _sentence(admin("updateServiceOffering", id=for_corp["id"], domainid=str(other.uuid)))
    # the subtree's offerings are listed with isrecursive
    assert for_dev["id"] not in _ids(admin("listDiskOfferings"), "diskoffering")
    assert for_dev["id"] in _ids(admin("listDiskOfferings", isrecursive=True), "diskoffering")
    assert admin("deleteDiskOffering", id=for_dev["id"]).status == 200
    # public offerings: seen, not changed
    public = _so(api("createServiceOffering", **{**FIXED, "name": "public"}))
    assert public["id"] in _ids(admin("listServiceOfferings"), "serviceoffering")
    assert "Only a root admin may change the public service offering" in _sentence(
        admin("updateServiceOffering", id=public["id"], name="mine"), 531)
    assert "Only a root admin may delete the public service offering" in _sentence(
        admin("deleteServiceOffering", id=public["id"]), 531)
    # an offering also for a domain outside the subtree
    shared = _so(api("createServiceOffering", **{**FIXED, "name": "shared"}, domainid=f"{corp.uuid},{other.uuid}"))
    assert "outside your subtree" in _sentence(admin("deleteServiceOffering", id=shared["id"]), 531)
    assert ServiceOffering.objects.get(uuid=shared["id"]).removed is None


def test_users_may_only_list(api, corp_user):
    so = _so(api("createServiceOffering", **FIXED))
    user = api.as_(corp_user)
    for command, params in (("createServiceOffering", FIXED), ("updateServiceOffering", {"id": so["id"]}),
                            ("deleteServiceOffering", {"id": so["id"]}),
                            ("createDiskOffering", {"name": "d", "displaytext": "D", "disksize": 5})):
        assert user(command, **params).status == 401
    assert so["id"] in _ids(user("listServiceOfferings"), "serviceoffering")


def test_the_service_refuses_users_and_other_subtrees(cloud, corp, corp_admin, corp_user):
    """The service checks the caller itself (not only the command's roles and parameters)."""
    from portal.errors import PermissionDenied

    other = make_domain("other")
    with pytest.raises(PermissionDenied):
        offerings.create_service_offering(corp_user.user, name="x", cpu_number=1, memory=128)
    with pytest.raises(PermissionDenied):
        offerings.create_disk_offering(corp_admin.user, name="x", disk_size=1, domains=[other])
    so = offerings.create_service_offering(cloud.admin.user, name="x", cpu_number=1, memory=128, domains=[other])
    with pytest.raises(PermissionDenied):
        offerings.delete_service_offering(corp_admin.user, so)


# -- disk offerings -------------------------------------------------------------------------------
def test_disk_offerings(api, corp):
    fixed = _do(api("createDiskOffering", name="ten", displaytext="Ten", disksize=10, tags="ssd", storagetype="local"))
    assert (fixed["disksize"], fixed["iscustomized"], fixed["tags"], fixed["storagetype"]) == \
        (10, False, "ssd", "local")
    assert fixed["provisioningtype"] == "thin" and fixed["displayoffering"] is True and fixed["cacheMode"] == "none"
    custom = _do(api("createDiskOffering", name="any", displaytext="Any size", customized=True))
    assert custom["iscustomized"] is True and custom["disksize"] == 0
    row = DiskOffering.objects.get(uuid=custom["id"])
    assert (row.min_size, row.max_size) == (1, 1024)  # listCapabilities' customdiskofferingmin/maxsize
    assert _do(api("createDiskOffering", name="implicit", displaytext="Implicit"))["iscustomized"] is True
    changed = _do(api("updateDiskOffering", id=fixed["id"], name="ten-gib", tags="ssd,nvme", displayoffering=False,
                      domainid=str(corp.uuid), sortkey=3))
    assert (changed["name"], changed["tags"], changed["displayoffering"], changed["domain"]) == \
        ("ten-gib", "ssd,nvme", False, "corp")
    assert changed["disksize"] == 10
    assert api("deleteDiskOffering", id=fixed["id"]).status == 200
    assert DiskOffering.objects.get(uuid=fixed["id"]).removed is not None
    assert fixed["id"] not in _ids(api("listDiskOfferings"), "diskoffering")
    assert _ids(api("listDiskOfferings", keyword="any"), "diskoffering") == {custom["id"]}


@pytest.mark.parametrize("params, words", [
    ({"customized": False}, "needs disksize"),
    ({"customized": True, "disksize": 5}, "leave disksize out"),
    ({"disksize": 0}, "disksize must be between 1 and 1048576 GiB"),
    ({"disksize": -5}, "disksize must be between 1"),
    ({"disksize": 99999999999999}, "disksize must be between 1"),
    ({"disksize": "big"}, "disksize"),
    ({"disksize": 5, "storagetype": "tape"}, "storagetype must be shared or local"),
    ({"disksize": 5, "provisioningtype": "x"}, "provisioningtype must be"),
    ({"disksize": 5, "zoneid": "00000000-0000-4000-8000-000000000000"}, "leave zoneid out"),
    ({"disksize": 5, "domainid": "00000000-0000-4000-8000-000000000000"}, "entity does not exist"),
    ({"disksize": 5, "customized": "perhaps"}, "customized"),
])
def test_bad_disk_offerings_are_refused_with_a_sentence(api, params, words):
    answer = api("createDiskOffering", **{"name": "bad", "displaytext": "Bad", **params})
    assert words in _sentence(answer)
    assert not DiskOffering.objects.filter(name="bad").exists()


def test_bad_updates_and_lists_are_refused_with_a_sentence(api):
    so = _so(api("createServiceOffering", **FIXED))
    do = _do(api("createDiskOffering", name="d", displaytext="D", disksize=5))
    for command, params in (
        ("updateServiceOffering", {"id": so["id"], "domainid": ","}),
        ("updateServiceOffering", {"id": so["id"], "domainid": "nope"}),
        ("updateServiceOffering", {"id": so["id"], "displaytext": "  "}),
        ("updateServiceOffering", {"id": "not-a-uuid"}),
        ("updateDiskOffering", {"id": do["id"], "sortkey": "x"}),
        ("updateDiskOffering", {"id": do["id"], "displayoffering": "sometimes"}),
        ("updateDiskOffering", {"id": do["id"], "zoneid": "everywhere"}),
        ("deleteDiskOffering", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("listServiceOfferings", {"domainid": "00000000-0000-4000-8000-000000000000"}),
        ("listServiceOfferings", {"zoneid": "00000000-0000-4000-8000-000000000000"}),
        ("listDiskOfferings", {"domainid": "ROOT"}),
        ("listServiceOfferings", {"memory": -1}),
    ):
        _sentence(api(command, **params))


# -- events ---------------------------------------------------------------------------------------
def test_every_change_writes_an_event(api):
    def count(event_type: str) -> int:
        return Event.objects.filter(type=event_type).count()

    kinds = ("SERVICE.OFFERING", "DISK.OFFERING")
    before = {f"{k}.{a}": count(f"{k}.{a}") for k in kinds for a in ("CREATE", "EDIT", "DELETE")}
    so = _so(api("createServiceOffering", **FIXED))
    api("updateServiceOffering", id=so["id"], name="x")
    api("deleteServiceOffering", id=so["id"])
    do = _do(api("createDiskOffering", name="d", displaytext="D", disksize=5))
    api("updateDiskOffering", id=do["id"], name="x")
    api("deleteDiskOffering", id=do["id"])
    for event_type, n in before.items():
        assert count(event_type) == n + 1, event_type
    event = Event.objects.filter(type="SERVICE.OFFERING.CREATE").latest("id")
    assert event.resource_uuid == so["id"] and "fixed" in event.description
    refused = api("createServiceOffering", **{**FIXED, "memory": 1})
    assert refused.status == 431 and count("SERVICE.OFFERING.CREATE") == before["SERVICE.OFFERING.CREATE"] + 1


# -- the defaults ---------------------------------------------------------------------------------
def test_the_defaults_are_seeded_once(cloud):
    assert not ServiceOffering.objects.exists()  # tests.factories.bootstrap_cloud seeds none
    done = offerings.seed_default_offerings()
    assert done == ["service offering Tiny", "service offering Small", "service offering Medium",
                    "disk offering Small", "disk offering Medium", "disk offering Custom"]
    assert offerings.seed_default_offerings() == []
    assert ServiceOffering.objects.count() == 3 and DiskOffering.objects.count() == 3
    tiny = ServiceOffering.objects.get(name="Tiny")
    assert (tiny.cpu_number, tiny.cpu_speed, tiny.memory) == (1, 500, 128)
    assert tiny.memory >= builtin.MIN_MEMORY_MIB  # fit for the built-in Tiny Linux
    assert not tiny.domains.exists() and not tiny.customized
    assert DiskOffering.objects.get(name="Custom").customized
    assert list(ServiceOffering.objects.values_list("name", flat=True)) == ["Tiny", "Small", "Medium"]
    # an offering the admin deleted or renamed is not brought back
    offerings.delete_service_offering(cloud.admin.user, tiny)
    offerings.update_disk_offering(cloud.admin.user, DiskOffering.objects.get(name="Small"), name="Five")
    assert offerings.seed_default_offerings() == []
    assert not ServiceOffering.objects.visible_to(cloud.admin.user).filter(name="Tiny").exists()


def test_the_defaults_are_listed_to_everyone(api, cloud, other_user):
    offerings.seed_default_offerings()
    names = [row["name"] for row in api.as_(other_user)("listServiceOfferings").inner["serviceoffering"]]
    assert names == ["Tiny", "Small", "Medium"]
    disks = api.as_(other_user)("listDiskOfferings").inner["diskoffering"]
    assert [(d["name"], d["disksize"], d["iscustomized"]) for d in disks] == \
        [("Small", 5, False), ("Medium", 20, False), ("Custom", 0, True)]


def test_bootstrap_seeds_the_defaults(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("bootstrap", "--skip-images", stdout=out)
    assert "bootstrap: created service offering Tiny" in out.getvalue()
    again = StringIO()
    call_command("bootstrap", "--skip-images", stdout=again)
    assert "offering" not in again.getvalue()
