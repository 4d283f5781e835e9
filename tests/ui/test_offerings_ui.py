"""Offerings pages: everyone lists the offerings it may use (sortable, searchable, filtered);
admins create, change and delete them through compute.offerings (errors next to the field, an
event per change); a domain admin only for its subtree; plain users get 404 for the admin pages
and everyone gets 404 for an offering it may not see."""
from __future__ import annotations

import re

import pytest

from compute import offerings
from compute.models import DiskOffering, ServiceOffering
from portal.models import Event
from tests.factories import make_domain

from .conftest import logged_in
from .test_instances_ui import action_error, field_error, form_error, text, words


@pytest.fixture
def catalog(cloud, admin, domain_admin):
    """A public offering, one for ROOT/corp (the domain admin's) only and one for ROOT/other only."""
    public = offerings.create_service_offering(admin.user, name="Public S", display_text="for all", cpu_number=1,
                                               cpu_speed=500, memory=256)
    corp = domain_admin.account.domain
    other = make_domain("other")
    corp_only = offerings.create_service_offering(admin.user, name="Corp S", cpu_number=2, memory=512, domains=[corp])
    other_only = offerings.create_service_offering(admin.user, name="Other S", cpu_number=4, memory=1024,
                                                   domains=[other])
    disk = offerings.create_disk_offering(admin.user, name="Disk 10", disk_size=10)
    return public, corp_only, other_only, disk, corp, other


def names(response) -> list[str]:
    return re.findall(r'<td><a href="/client/offerings/(?:service|disk)/[0-9a-f-]+">([^<]+)</a></td>', text(response))


def create_data(**extra) -> dict:
    data = {"name": "Big", "display_text": "big one", "size": "fixed", "cpu_number": "4", "memory": "4096",
            "cpu_speed": "2000", "storage_type": "shared", "provisioning_type": "thin", "sort_key": "5"}
    data.update(extra)
    return data


# -- who sees what ---------------------------------------------------------------------------------
def test_everyone_lists_what_it_may_use(catalog, admin_ui, user_ui, domain_admin):
    # default order: sort key, then name
    assert names(admin_ui.get("/client/offerings/service")) == ["Corp S", "Other S", "Public S"]
    assert names(user_ui.get("/client/offerings/service")) == ["Public S"]
    corp_admin = logged_in(domain_admin.user)
    assert names(corp_admin.get("/client/offerings/service")) == ["Corp S", "Public S"]
    body = text(user_ui.get("/client/offerings/service"))
    assert "Add service offering" not in body
    assert '<a href="/client/offerings" aria-current="page">Offerings</a>' in body
    assert names(user_ui.get("/client/offerings/disk")) == ["Disk 10"]
    assert user_ui.get("/client/offerings").status_code == 302


def test_list_sorts_searches_and_filters(catalog, admin_ui):
    assert names(admin_ui.get("/client/offerings/service?sort=-memory")) == ["Other S", "Corp S", "Public S"]
    assert names(admin_ui.get("/client/offerings/service?sort=name")) == ["Corp S", "Other S", "Public S"]
    body = text(admin_ui.get("/client/offerings/service?sort=name"))
    assert 'aria-sort="ascending"' in body and 'href="?sort=-name"' in body
    # an unknown sort key or a bad page is tolerated, not an error
    assert names(admin_ui.get("/client/offerings/service?sort=nonsense&page=abc")) == ["Corp S", "Other S", "Public S"]
    assert names(admin_ui.get("/client/offerings/service?q=corp")) == ["Corp S"]
    assert names(admin_ui.get("/client/offerings/service?show=public")) == ["Public S"]
    assert names(admin_ui.get("/client/offerings/service?show=domain&sort=name")) == ["Corp S", "Other S"]
    bogus = admin_ui.get("/client/offerings/service?show=bogus&sort=-name")  # ignored and named
    assert names(bogus) == ["Public S", "Other S", "Corp S"] and "“bogus” is not a value of show: ignored." in text(bogus)
    assert admin_ui.get("/client/offerings/vm").status_code == 404


def test_another_domains_offering_is_not_found(catalog, user_ui, domain_admin):
    public, corp_only, other_only, *_ = catalog
    assert user_ui.get(f"/client/offerings/service/{corp_only.uuid}").status_code == 404
    assert logged_in(domain_admin.user).get(f"/client/offerings/service/{other_only.uuid}").status_code == 404
    page = words(user_ui.get(f"/client/offerings/service/{public.uuid}"))
    assert "Public S" in page and "Save changes" not in page and "Delete" not in page


def test_plain_user_gets_404_for_the_admin_pages(catalog, user_ui):
    public = catalog[0]
    assert user_ui.get("/client/offerings/service/new").status_code == 404
    assert user_ui.post("/client/offerings/service/new", create_data()).status_code == 404
    assert user_ui.post(f"/client/offerings/service/{public.uuid}", {"name": "Hacked"}).status_code == 404
    assert user_ui.post(f"/client/offerings/service/{public.uuid}/delete").status_code == 404
    public.refresh_from_db()
    assert public.name == "Public S" and public.removed is None


# -- create, change, delete ------------------------------------------------------------------------
def test_admin_creates_a_service_offering(cloud, admin_ui):
    response = admin_ui.post("/client/offerings/service/new", create_data())
    offering = ServiceOffering.objects.get(name="Big")
    assert response.status_code == 302 and response["Location"] == f"/client/offerings/service/{offering.uuid}"
    assert (offering.cpu_number, offering.memory, offering.cpu_speed, offering.sort_key) == (4, 4096, 2000, 5)
    assert Event.objects.filter(type="SERVICE.OFFERING.CREATE", resource_uuid=str(offering.uuid)).exists()
    page = words(admin_ui.get(response["Location"]))
    assert "Service offering Big created." in page and "4.0 GiB" in page and "SERVICE.OFFERING.CREATE" in page


def test_create_errors_are_shown_next_to_the_field(cloud, admin_ui):
    response = admin_ui.post("/client/offerings/service/new", create_data(memory="16"))
    assert response.status_code == 200
    assert "memory must be between 32" in field_error(response, "id_memory")
    response = admin_ui.post("/client/offerings/service/new", create_data(cpu_number="many"))
    assert field_error(response, "id_cpu_number") == "Enter a whole number."
    response = admin_ui.post("/client/offerings/service/new", create_data(size="custom"))
    assert "leave cpunumber and memory out" in field_error(response, "id_memory")
    response = admin_ui.post("/client/offerings/service/new", create_data(
        size="custom", cpu_number="", memory="", min_cpu_number="1"))
    assert "maxcpunumber" in field_error(response, "id_min_cpu_number")
    response = admin_ui.post("/client/offerings/service/new", create_data(name=" "))
    assert field_error(response, "id_name") == "This field is required."
    response = admin_ui.post("/client/offerings/disk/new", {"name": "D", "size": "fixed", "storage_type": "shared",
                                                            "provisioning_type": "thin"})
    assert "needs disksize" in field_error(response, "id_disk_size")
    response = admin_ui.post("/client/offerings/disk/new", {"name": "D", "size": "fixed", "disk_size": "99999999",
                                                            "storage_type": "shared", "provisioning_type": "thin"})
    assert "disksize must be between" in field_error(response, "id_disk_size")
    assert not ServiceOffering.objects.filter(name="Big").exists() and not DiskOffering.objects.filter(name="D").exists()


def test_domain_admin_creates_only_for_its_subtree(domain_admin):
    client = logged_in(domain_admin.user)
    form = text(client.get("/client/offerings/service/new"))
    assert "ROOT/corp" in form and "ROOT/other" not in form
    response = client.post("/client/offerings/service/new", create_data())  # no domain: public
    assert "may not create a public service offering" in field_error(response, "id_domains")
    corp = domain_admin.account.domain
    response = client.post("/client/offerings/service/new", create_data(domains=[str(corp.uuid)]))
    assert response.status_code == 302
    assert list(ServiceOffering.objects.get(name="Big").domains.all()) == [corp]


def test_admin_changes_and_deletes_an_offering(catalog, admin_ui, user_ui):
    public = catalog[0]
    url = f"/client/offerings/service/{public.uuid}"
    response = admin_ui.post(url, {"name": "Public M", "display_text": "renamed", "sort_key": "3", "tags": "ssd, ssd",
                                   "host_tags": "", "domains": []})
    assert response.status_code == 302
    public.refresh_from_db()
    assert (public.name, public.display_text, public.sort_key, public.tags) == ("Public M", "renamed", 3, "ssd")
    assert Event.objects.filter(type="SERVICE.OFFERING.EDIT", resource_uuid=str(public.uuid)).exists()
    response = admin_ui.post(url, {"name": "Public M", "display_text": " ", "domains": []})
    assert "must not be empty" in field_error(response, "id_display_text")
    response = admin_ui.post(url + "/delete")
    assert response.status_code == 302 and response["Location"] == "/client/offerings/service"
    public.refresh_from_db()
    assert public.removed is not None
    assert Event.objects.filter(type="SERVICE.OFFERING.DELETE", resource_uuid=str(public.uuid)).exists()
    assert user_ui.get(url).status_code == 404  # a deleted offering is visible to nobody
    assert admin_ui.get(url).status_code == 404


def test_domain_admin_may_not_change_a_public_offering(catalog, domain_admin):
    public = catalog[0]
    client = logged_in(domain_admin.user)
    page = text(client.get(f"/client/offerings/service/{public.uuid}"))
    assert "Save changes" not in page
    response = client.post(f"/client/offerings/service/{public.uuid}/delete")
    assert "Only a root admin may delete the public service offering" in action_error(response)
    response = client.post(f"/client/offerings/service/{public.uuid}", {"name": "Mine", "display_text": "x"})
    assert "Only a root admin may change" in form_error(response)
    public.refresh_from_db()
    assert public.name == "Public S" and public.removed is None


def test_disk_offering_lifecycle(cloud, admin_ui):
    response = admin_ui.post("/client/offerings/disk/new", {"name": "Scratch", "size": "custom", "storage_type": "local",
                                                            "provisioning_type": "sparse", "display_offering": "on"})
    offering = DiskOffering.objects.get(name="Scratch")
    assert response.status_code == 302 and offering.customized and offering.storage_type == "local"
    assert "chosen at creation (1–1024 GiB)" in words(admin_ui.get(f"/client/offerings/disk/{offering.uuid}"))
    assert admin_ui.post(f"/client/offerings/disk/{offering.uuid}/delete").status_code == 302
    assert Event.objects.filter(type="DISK.OFFERING.DELETE", resource_uuid=str(offering.uuid)).exists()
