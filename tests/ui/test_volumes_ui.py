"""The volumes page (everyone, scoped as listVolumes: a user its account's, an admin its
subtree's): searched by name or VM, filtered by type, zone and state, sorted, each row linking to
its VM; another tenant's volumes never listed; a constant number of queries however many rows."""
from __future__ import annotations

import re

import pytest

from storage.models import Volume
from tests.factories import make_account

from .conftest import logged_in
from .test_events_jobs_ui import ignored_note, queries
from .test_instances_ui import build_sim, deploy, text, words


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


# -- volumes --------------------------------------------------------------------------------------
def volume_names(response) -> list[str]:
    return re.findall(r"<tr>\s*<td>([^<]+)</td>\s*<td>(?:ROOT|DATADISK)", text(response))


def data_disk(vm, name: str, size_gib: int) -> Volume:
    return Volume.objects.create(name=name, account=vm.account, zone=vm.zone, virtual_machine=vm, type="DATADISK",
                                 device_id=1, size=size_gib << 30, state="Ready")


@pytest.fixture
def disks(sim, tenant_a, tenant_b, domain_admin, django_capture_on_commit_callbacks):
    """tenant-a: VMs web-1 (a data disk "DATA-web") and db-1; tenant-b: theirs-1; a corp user: corp-1."""
    capture = django_capture_on_commit_callbacks
    web = deploy(tenant_a.user, sim, capture, "web-1")
    db = deploy(tenant_a.user, sim, capture, "db-1")
    theirs = deploy(tenant_b.user, sim, capture, "theirs-1")
    corp = deploy(make_account("corp-user", domain=domain_admin.domain).user, sim, capture, "corp-1")
    data_disk(web, "DATA-web", 5)
    return web, db, theirs, corp


def root_name(vm) -> str:
    return Volume.objects.get(virtual_machine=vm, type="ROOT").name


def test_everyone_sees_the_volumes_it_may_see(disks, user_ui, domain_admin_ui, admin_ui):
    web, db, theirs, corp = disks
    body = text(user_ui.get("/client/volumes"))
    assert '<a href="/client/volumes" aria-current="page">Volumes</a>' in body
    assert sorted(volume_names(user_ui.get("/client/volumes"))) == sorted(
        [root_name(web), "DATA-web", root_name(db)])
    assert f'<a href="/client/instances/{web.uuid}">web-1</a>' in body  # each row links to its VM
    assert "theirs-1" not in body and "tenant-b" not in body
    assert volume_names(domain_admin_ui.get("/client/volumes")) == [root_name(corp)]
    assert len(volume_names(admin_ui.get("/client/volumes"))) == 5
    assert "corp-user" in words(admin_ui.get("/client/volumes"))  # admins see the owner
    for url in ("/client/volumes?q=theirs", "/client/volumes?q=tenant-b", f"/client/volumes?zone={web.zone.uuid}"):
        assert f"/client/instances/{theirs.uuid}" not in text(user_ui.get(url)), url
        assert root_name(theirs) not in volume_names(user_ui.get(url)), url


def test_volumes_are_searched_filtered_and_sorted(disks, user_ui, sim):
    web, db, *_ = disks
    assert volume_names(user_ui.get("/client/volumes?type=DATADISK")) == ["DATA-web"]
    assert sorted(volume_names(user_ui.get("/client/volumes?type=ROOT"))) == sorted([root_name(web), root_name(db)])
    assert volume_names(user_ui.get("/client/volumes?q=db-1")) == [root_name(db)]  # by VM name
    assert volume_names(user_ui.get("/client/volumes?q=data-")) == ["DATA-web"]
    assert len(volume_names(user_ui.get(f"/client/volumes?zone={sim.zone.uuid}"))) == 3
    assert volume_names(user_ui.get("/client/volumes?state=Allocated")) == []
    Volume.objects.filter(name="DATA-web").update(state="Allocated")
    assert volume_names(user_ui.get("/client/volumes?state=Allocated")) == ["DATA-web"]
    assert volume_names(user_ui.get("/client/volumes?sort=-size"))[0] == "DATA-web"
    assert volume_names(user_ui.get("/client/volumes?sort=vm"))[0] == root_name(db)
    body = text(user_ui.get("/client/volumes"))
    assert f'<a href="?zone={sim.zone.uuid}">z1</a>' in body and ">Data disks</a>" in body
    for query in ("type=SWAP", "zone=nowhere", "state=Melted", "sort=owner&page=x"):
        response = user_ui.get(f"/client/volumes?{query}")
        assert response.status_code == 200 and len(volume_names(response)) == 3, query
    assert "“SWAP” is not a value of type: ignored." in ignored_note(user_ui.get("/client/volumes?type=SWAP"))


def test_the_volumes_page_costs_the_same_queries_for_any_number_of_rows(disks, tenant_a, admin_ui):
    web, *_ = disks
    user = logged_in(tenant_a.user)
    url = "/client/volumes?type=DATADISK&sort=vm"
    few_user, few_admin = queries(user, url), queries(admin_ui, url)
    for i in range(40):
        data_disk(web, f"DATA-{i}", 1 + i)
    assert queries(user, url) == few_user and queries(admin_ui, url) == few_admin
