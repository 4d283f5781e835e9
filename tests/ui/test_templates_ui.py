"""Templates and ISOs pages: the lists per filter (tabs) with live progress, the register form, the
detail page with its zones and states, and its actions, for the root admin, a domain admin and
users; tenants see only what they may use (404 for anything else). Images are real files served
by a local HTTP server and downloaded for real into an image store directory of the test.

The Django test client covers every page and action; two real-browser runs (Debian's chromium
driven by Playwright) cover registering with a progress bar that follows the download live until
"Download Complete", a failed download and its Retry, and what each tenant sees before and after
sharing."""
from __future__ import annotations

import html
import http.server
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from django.test import Client, TestCase

from compute import services as compute_services
from compute.choices import AllocationState
from portal import config
from portal.models import AsyncJob, JobStatus
from storage import services as storage_services
from storage.images import services as images
from storage.models import DownloadState, ImageStore, OsType, Template, TemplatePermission, TemplateZone
from tests.factories import admin_user, bootstrap_cloud, make_account
from tests.images import ImageServer, make_iso, make_qcow2

from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS


def text(response) -> str:
    return response.content.decode()


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", text(response)))


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_zone(name: str, octet: int, store_dir: Path):
    """An enabled zone (tenants see enabled zones only) with one image store in `store_dir`."""
    admin = admin_user()
    zone = compute_services.create_zone(admin, name=name, dns1="8.8.8.8", internal_dns1="10.0.0.1",
                                        allocation_state=AllocationState.ENABLED)
    compute_services.create_pod(admin, zone=zone, name=f"{name}-p1", gateway=f"10.{octet}.0.1",
                                netmask="255.255.255.0", start_ip=f"10.{octet}.0.10", end_ip=f"10.{octet}.0.20")
    storage_services.add_image_store(admin, zone=zone, name=f"{name}-store", url=f"file://{store_dir}")
    return zone


@pytest.fixture(autouse=True)
def _private_mount_dirs(settings, tmp_path):
    settings.NUBO_POOL_MOUNT_DIR = str(tmp_path / "pool-mnt")
    settings.NUBO_SECONDARY_MOUNT_DIR = tmp_path / "secondary-mnt"


@pytest.fixture
def source(tmp_path):
    directory = tmp_path / "source"
    directory.mkdir()
    make_qcow2(directory / "tiny.qcow2")
    make_iso(directory / "tiny.iso")
    server = ImageServer(directory)
    yield server
    server.close()


@pytest.fixture
def env(cloud, tmp_path, source):
    """Zone z1 with secondary storage, the OS catalogue, 127.0.0.1 allowed as a download site."""
    config.set_value("secstorage.allowed.internal.sites", "127.0.0.0/8")
    storage_services.seed_os_types()
    zone = make_zone("z1", 1, tmp_path / "store-z1")
    return zone


def register(caller, source, name: str, *, file: str = "tiny.qcow2", zone=None, **extra) -> Template:
    """Through the service, its (eager) download run when it commits, as a worker would."""
    is_iso = file.endswith(".iso")
    kwargs = dict(is_iso=is_iso, name=name, url=source.url(file), zoneid=str(zone.uuid) if zone else "-1", **extra)
    if not is_iso:
        kwargs.update(format="QCOW2", hypervisor="KVM")
    with TestCase.captureOnCommitCallbacks(execute=True):
        rows = images.register(caller, **kwargs)
    return Template.objects.get(pk=rows[0].template_id)


def posted(client, capture, url: str, data: dict):
    """POST, running what the request's transaction committed (downloads, jobs) like a worker."""
    with capture(execute=True):
        return client.post(url, data)


def form_data(source, name="tiny", file="tiny.qcow2", **extra) -> dict:
    data = {"name": name, "display_text": f"{name} image", "url": source.url(file), "zone": "-1",
            "format": "QCOW2", "hypervisor": "KVM", "checksum": ""}
    data.update(extra)
    return data


# -- pages and who sees them ---------------------------------------------------------------------
def test_navigation_offers_templates_and_isos_to_everyone(env, tenant_a, admin_ui):
    for client in (logged_in(tenant_a.user), admin_ui):
        body = text(client.get("/client/"))
        assert '<a href="/client/templates">Templates</a>' in body
        assert '<a href="/client/isos">ISOs</a>' in body
    body = text(admin_ui.get("/client/templates/new"))
    assert '<a href="/client/templates" aria-current="page">Templates</a>' in body


@pytest.mark.parametrize("who", ["admin", "domain_admin", "user"])
def test_every_page_answers_its_users(env, who, admin, domain_admin, tenant_a, source):
    user = {"admin": admin, "domain_admin": domain_admin, "user": tenant_a}[who].user
    client = logged_in(user)
    template = register(user, source, f"{who}-tpl", zone=env)
    iso = register(user, source, f"{who}-iso", file="tiny.iso", zone=env)
    tabs = ["featured", "community", "self", "sharedexecutable"] + (["all"] if who != "user" else [])
    for kind in ("templates", "isos"):
        assert client.get(f"/client/{kind}").status_code == 200
        for tab in tabs:
            response = client.get(f"/client/{kind}?filter={tab}&q=tpl&page=2")
            assert response.status_code == 200, (kind, tab)
            assert client.get(f"/client/{kind}/rows?filter={tab}").status_code == 200
        assert client.get(f"/client/{kind}/new").status_code == 200
    body = page_text(client.get("/client/templates?filter=self"))
    assert f"{who}-tpl" in body and f"{who}-iso" not in body and "Download Complete" in body
    body = page_text(client.get("/client/isos?filter=self"))
    assert f"{who}-iso" in body and f"{who}-tpl" not in body
    for kind, image in (("templates", template), ("isos", iso)):
        response = client.get(f"/client/{kind}/{image.uuid}")
        assert response.status_code == 200
        body = page_text(response)
        assert "Download Complete" in body and "Delete" in body and "Permissions" in body
        assert client.get(f"/client/{kind}/{image.uuid}/zones").status_code == 200
    # a template is not an ISO, and the other way round
    assert client.get(f"/client/isos/{template.uuid}").status_code == 404
    assert client.get(f"/client/templates/{iso.uuid}").status_code == 404
    # the image store and the primary storage copies are for root admins
    body = page_text(client.get(f"/client/templates/{template.uuid}"))
    assert ("z1-store" in body) == (who == "admin")
    assert ("Primary storage copies" in body) == (who == "admin")


def test_anonymous_is_sent_to_the_login_page(env):
    response = Client().get("/client/templates")
    assert response.status_code == 302 and "/client/login" in response["Location"]


def test_a_user_has_no_all_tab(env, tenant_a, user_ui):
    body = text(user_ui.get("/client/templates"))
    assert "Shared with me" in body and "filter=all" not in body
    for value in ("all", "nonsense"):  # ignored (the first tab is shown) and named
        response = user_ui.get(f"/client/templates?filter={value}")
        assert response.status_code == 200 and f"“{value}” is not a value of filter: ignored." in text(response)
        assert re.search(r'href="/client/templates\?filter=featured" aria-current="page"', text(response)), value


def test_tenants_see_only_what_they_may_use(env, source, tenant_a, tenant_b, domain_admin, admin):
    private = register(tenant_a.user, source, "a-private", zone=env)
    featured = register(admin.user, source, "featured-one", zone=env, is_public=True, is_featured=True)
    community = register(tenant_a.user, source, "a-community", zone=env, is_public=True)
    corp_user = make_account("corp-user", domain=domain_admin.domain)
    corp = register(corp_user.user, source, "corp-private", zone=env)
    b = logged_in(tenant_b.user)
    for tab in ("featured", "community", "self", "sharedexecutable"):
        assert "a-private" not in text(b.get(f"/client/templates?filter={tab}"))
    assert b.get(f"/client/templates/{private.uuid}").status_code == 404
    assert b.get(f"/client/templates/{private.uuid}/zones").status_code == 404
    assert b.post(f"/client/templates/{private.uuid}/delete").status_code == 404
    assert "featured-one" in text(b.get("/client/templates?filter=featured"))
    assert "featured-one" not in text(b.get("/client/templates?filter=community"))
    assert "a-community" in text(b.get("/client/templates?filter=community"))
    # a public template of someone else: visible, no actions but extract (when extractable)
    body = page_text(b.get(f"/client/templates/{featured.uuid}"))
    assert "Download Complete" in body and "Delete" not in body and "Permissions" not in body
    # shared with B: under "Shared with me"
    images.update_permissions(tenant_a.user, private, op="add", accounts=["tenant-b"])
    assert "a-private" in text(b.get("/client/templates?filter=sharedexecutable"))
    assert b.get(f"/client/templates/{private.uuid}").status_code == 200
    # the domain admin's All: its domain's templates and the public ones, not tenant-a's private one
    body = text(logged_in(domain_admin.user).get("/client/templates?filter=all"))
    assert "corp-private" in body and "featured-one" in body and "a-community" in body and "a-private" not in body
    # the root admin's All: everything, with the owner
    body = page_text(logged_in(admin.user).get("/client/templates"))
    for name in ("a-private", "featured-one", "a-community", "corp-private"):
        assert name in body
    assert "corp-user" in body and "ROOT/corp" in body
    assert corp.uuid and community.uuid


def test_search_and_pagination(env, source, tenant_a, user_ui):
    template = register(tenant_a.user, source, "findme", zone=env)  # before the bulk: 20 templates is the limit
    for i in range(22):
        Template.objects.create(name=f"bulk-{i:02d}", format="QCOW2", hypervisor="KVM", account=tenant_a.account,
                                url="http://127.0.0.1/x.qcow2")
    for t in Template.objects.filter(name__startswith="bulk-"):
        TemplateZone.objects.create(template=t, zone=env, store=ImageStore.objects.get(zone=env))
    body = page_text(user_ui.get("/client/templates?filter=self"))
    assert "Page 1 of 2" in body and "23 in total" in body
    body = page_text(user_ui.get("/client/templates?filter=self&page=2"))
    assert "Page 2 of 2" in body and "findme" in body
    body = page_text(user_ui.get("/client/templates?filter=self&q=findme"))
    assert "findme" in body and "bulk-01" not in body and "1 in total" in body
    assert "No template matches “nothing”" in page_text(user_ui.get("/client/templates?filter=self&q=nothing"))
    assert template.pk


def test_a_list_page_costs_the_same_queries_for_any_number_of_rows(env, tenant_a, user_ui):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    store = ImageStore.objects.get(zone=env)

    def add(n: int) -> None:
        for i in range(n):
            template = Template.objects.create(name=f"t-{Template.objects.count()}", format="QCOW2", hypervisor="KVM",
                                               account=tenant_a.account, url="http://127.0.0.1/x.qcow2")
            TemplateZone.objects.create(template=template, zone=env, store=store, state=DownloadState.DOWNLOADED)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert user_ui.get("/client/templates?filter=self").status_code == 200
        return len(captured)

    add(1)
    queries()  # the first page fills the process's settings cache (default.ui.page.size)
    few = queries()
    add(15)
    assert queries() == few


# -- the register form ----------------------------------------------------------------------------
def test_register_form_downloads_and_redirects_to_the_detail_page(env, source, tenant_a, user_ui,
                                                                 django_capture_on_commit_callbacks):
    debian = OsType.objects.get(description="Debian GNU/Linux 12 (64-bit)")
    body = text(user_ui.get("/client/templates/new"))
    assert f'<option value="{env.uuid}">z1</option>' in body and '<option value="-1"' in body
    assert "Featured" not in body  # root admins only
    response = posted(user_ui, django_capture_on_commit_callbacks, "/client/templates/new",
                      form_data(source, "web-tiny", zone=str(env.uuid), os_type=str(debian.uuid),
                                password_enabled="on", is_extractable="on"))
    template = Template.objects.get(name="web-tiny")
    assert response.status_code == 302 and response["Location"] == f"/client/templates/{template.uuid}"
    assert template.os_type == debian and template.password_enabled and template.is_extractable
    assert template.account == tenant_a.account and not template.is_public
    body = page_text(user_ui.get(response["Location"]))
    assert "Template web-tiny registered: downloading." in body
    assert "Download Complete" in body and "Ready" in body and "16.0 MiB" in body
    assert 'data-live="false"' in body and "hx-trigger" not in body


def test_register_iso_form(env, source, admin, admin_ui, django_capture_on_commit_callbacks):
    body = text(admin_ui.get("/client/isos/new"))
    assert "Bootable" in body and "Hypervisor" not in body and "Featured" in body
    response = posted(admin_ui, django_capture_on_commit_callbacks, "/client/isos/new",
                      {"name": "web-iso", "url": source.url("tiny.iso"), "zone": "-1", "bootable": "on",
                       "is_public": "on", "is_featured": "on"})
    iso = Template.objects.get(name="web-iso")
    assert response.status_code == 302 and response["Location"] == f"/client/isos/{iso.uuid}"
    assert iso.is_iso and iso.bootable and iso.is_featured and iso.cross_zones
    assert "Download Complete" in page_text(admin_ui.get(response["Location"]))


@pytest.mark.parametrize("data, field, sentence", [
    ({"name": ""}, "id_name", "This field is required."),
    ({"url": "ftp://example.org/x.qcow2"}, "id_url", "ftp"),
    ({"checksum": "{SHA-256}nothex"}, "id_checksum", "checksum"),
    ({"url": "http://10.1.2.3/x.qcow2"}, "id_url", "10.1.2.3"),
    ({"zone": "00000000-0000-0000-0000-000000000000"}, "id_zone", "Select a valid choice"),
])
def test_register_form_shows_the_sentence_next_to_the_field(env, source, user_ui, data, field, sentence):
    response = user_ui.post("/client/templates/new", form_data(source, **data))
    assert response.status_code == 200
    match = re.search(rf'<small id="{field}_error" class="nubo-field-error">([^<]*)</small>', text(response))
    assert match, text(response)[:3000]
    assert sentence.lower() in html.unescape(match.group(1)).lower()
    assert not Template.objects.filter(name="tiny").exists()


def test_register_form_refuses_public_for_users_when_not_allowed(env, source, user_ui):
    config.set_value("allow.public.user.templates", "false")
    response = user_ui.post("/client/templates/new", form_data(source, is_public="on"))
    assert response.status_code == 200
    assert "Only private templates/ISO can be created" in page_text(response)


def test_a_user_cannot_make_featured_even_by_posting_it(env, source, user_ui, django_capture_on_commit_callbacks):
    response = posted(user_ui, django_capture_on_commit_callbacks, "/client/templates/new",
                      form_data(source, is_featured="on"))
    assert response.status_code == 302
    assert not Template.objects.get(name="tiny").is_featured  # the field is not offered: ignored


# -- live progress ---------------------------------------------------------------------------------
def test_rows_in_progress_show_a_bar_and_poll_until_done(env, source, tenant_a, user_ui):
    template = register(tenant_a.user, source, "slow", zone=env)
    row = TemplateZone.objects.get(template=template)
    TemplateZone.objects.filter(pk=row.pk).update(state=DownloadState.DOWNLOAD_IN_PROGRESS, percent=37,
                                                  status_text="37% Downloaded", bytes_done=37 << 20,
                                                  bytes_total=100 << 20, rate_bps=5 << 20)
    list_body = text(user_ui.get("/client/templates?filter=self"))
    assert '<progress value="37" max="100"' in list_body and "37% Downloaded" in list_body
    match = re.search(r'<tbody id="image-rows" hx-get="([^"]+)" hx-trigger="every 2s"', list_body)
    assert match, list_body
    poll = html.unescape(match.group(1))
    assert user_ui.get(poll).status_code == 204  # nothing changed since
    detail = text(user_ui.get(f"/client/templates/{template.uuid}"))
    assert '<progress value="37" max="100"' in detail and "37.0 MiB of 100.0 MiB at 5.0 MiB/s" in detail
    zones_poll = html.unescape(re.search(r'<div id="image-zones" class="nubo-live" hx-get="([^"]+)"', detail).group(1))
    assert user_ui.get(zones_poll).status_code == 204
    # the download ends: the next poll answers the final rows, which poll no more
    TemplateZone.objects.filter(pk=row.pk).update(state=DownloadState.DOWNLOADED, percent=100,
                                                  status_text="Download Complete")
    rows = text(user_ui.get(poll))
    assert "Download Complete" in rows and "hx-trigger" not in rows and "<progress" not in rows
    zones = text(user_ui.get(zones_poll))
    assert "Download Complete" in zones and "hx-trigger" not in zones


def test_a_failed_download_shows_the_reason_and_retry_starts_it_again(env, source, tenant_a, user_ui, tmp_path,
                                                                     django_capture_on_commit_callbacks):
    response = posted(user_ui, django_capture_on_commit_callbacks, "/client/templates/new",
                      form_data(source, "later", file="later.qcow2", zone=str(env.uuid)))
    template = Template.objects.get(name="later")
    body = page_text(user_ui.get(response["Location"]))
    assert "answered 404" in body and "Failed" in body and ">Retry</button>" in body
    make_qcow2(Path(source.directory) / "later.qcow2")
    response = posted(user_ui, django_capture_on_commit_callbacks, f"/client/templates/{template.uuid}/retry",
                      {"zone": str(env.uuid)})
    assert response.status_code == 302
    body = page_text(user_ui.get(response["Location"]))
    assert "Download Complete" in body and ">Retry</button>" not in body
    # retrying what did not fail: the service's sentence, in place
    response = user_ui.post(f"/client/templates/{template.uuid}/retry", {"zone": str(env.uuid)})
    assert response.status_code == 200 and "only a failed download can be retried" in page_text(response)


# -- actions ---------------------------------------------------------------------------------------
def test_delete_from_one_zone_then_from_all(env, source, tenant_a, user_ui, tmp_path,
                                            django_capture_on_commit_callbacks):
    z2 = make_zone("z2", 2, tmp_path / "store-z2")
    template = register(tenant_a.user, source, "two-zones", zone=None)
    assert TemplateZone.objects.filter(template=template).count() == 2
    body = page_text(user_ui.get(f"/client/templates/{template.uuid}"))
    assert "Delete from zone" in body and "Delete from all zones" in body
    response = posted(user_ui, django_capture_on_commit_callbacks, f"/client/templates/{template.uuid}/delete",
                      {"zone": str(z2.uuid)})
    assert response.status_code == 302 and response["Location"] == f"/client/templates/{template.uuid}"
    assert list(TemplateZone.objects.filter(template=template).values_list("zone__name", flat=True)) == ["z1"]
    assert "deleted from zone z2" in page_text(user_ui.get(response["Location"]))
    response = posted(user_ui, django_capture_on_commit_callbacks, f"/client/templates/{template.uuid}/delete", {})
    assert response.status_code == 302 and response["Location"] == "/client/templates"
    template.refresh_from_db()
    assert template.removed is not None
    assert user_ui.get(f"/client/templates/{template.uuid}").status_code == 404


def test_copy_to_another_zone_runs_as_a_job(env, source, tenant_a, user_ui, tmp_path,
                                           django_capture_on_commit_callbacks):
    template = register(tenant_a.user, source, "copy-me", zone=env)
    z2 = make_zone("z2", 2, tmp_path / "store-z2")
    body = text(user_ui.get(f"/client/templates/{template.uuid}"))
    assert f'<option value="{z2.uuid}">z2</option>' in body and f'<option value="{env.uuid}">' not in body
    response = posted(user_ui, django_capture_on_commit_callbacks, f"/client/templates/{template.uuid}/copy",
                      {"zone": str(z2.uuid)})
    assert response.status_code == 302
    job = AsyncJob.objects.get(command="copyTemplate")
    assert job.status == JobStatus.SUCCEEDED and job.instance_uuid == str(template.uuid)
    assert TemplateZone.objects.get(template=template, zone=z2).state == DownloadState.DOWNLOADED
    body = page_text(user_ui.get(response["Location"]))
    assert "Copying template copy-me to zone z2" in body and "copyTemplate succeeded" in body
    assert "No other zone with secondary storage to copy it to." in body
    # a zone the form does not offer
    response = user_ui.post(f"/client/templates/{template.uuid}/copy", {"zone": str(env.uuid)})
    assert response.status_code == 200 and "Choose a zone to copy to." in page_text(response)


def test_a_failed_copy_job_shows_its_sentence(env, source, tenant_a, user_ui, tmp_path,
                                              django_capture_on_commit_callbacks):
    response = posted(user_ui, django_capture_on_commit_callbacks, "/client/templates/new",
                      form_data(source, "broken", file="missing.qcow2", zone=str(env.uuid)))
    template = Template.objects.get(name="broken")
    z2 = make_zone("z2", 2, tmp_path / "store-z2")
    response = posted(user_ui, django_capture_on_commit_callbacks, f"/client/templates/{template.uuid}/copy",
                      {"zone": str(z2.uuid)})
    body = page_text(user_ui.get(response["Location"]))
    assert "copyTemplate failed" in body and "is not ready" in body


def test_extract_shows_the_download_url(env, source, tenant_a, tenant_b, user_ui):
    template = register(tenant_a.user, source, "extract-me", zone=env, is_public=True, is_extractable=True)
    response = user_ui.post(f"/client/templates/{template.uuid}/extract")
    assert response.status_code == 200
    body = page_text(response)
    match = re.search(r'<a href="([^"]+)" class="nubo-key">', body)
    assert match and "/client/extract/" in match.group(1) and "token=" in match.group(1)
    assert response["Cache-Control"] == "no-store"
    # not extractable: only an admin managing it may extract it; others get no button, and the
    # service's sentence if they post it anyway
    images.update_permissions(tenant_a.user, template, is_extractable=False)
    assert ">Extract</button>" not in text(user_ui.get(f"/client/templates/{template.uuid}"))
    assert ">Extract</button>" in text(logged_in(admin_user()).get(f"/client/templates/{template.uuid}"))
    b = logged_in(tenant_b.user)
    assert ">Extract</button>" not in text(b.get(f"/client/templates/{template.uuid}"))
    response = b.post(f"/client/templates/{template.uuid}/extract")
    assert response.status_code == 200 and "is not extractable" in page_text(response)


def test_permissions_form_and_sharing(env, source, tenant_a, tenant_b, user_ui, domain_admin):
    template = register(tenant_a.user, source, "share-me", zone=env)
    response = user_ui.post(f"/client/templates/{template.uuid}/share", {"op": "add", "accounts": "tenant-b"})
    assert response.status_code == 302
    assert TemplatePermission.objects.filter(template=template, account=tenant_b.account).exists()
    body = page_text(user_ui.get(response["Location"]))
    assert "Template share-me shared with tenant-b." in body and "Stop sharing with tenant-b" in body
    # an account of another domain: the service's sentence, in the permissions section
    response = user_ui.post(f"/client/templates/{template.uuid}/share", {"op": "add", "accounts": "corp-admin"})
    assert response.status_code == 200
    assert "Unable to find account corp-admin" in page_text(response)
    response = user_ui.post(f"/client/templates/{template.uuid}/share", {"op": "remove", "accounts": "tenant-b"})
    assert response.status_code == 302 and not TemplatePermission.objects.filter(template=template).exists()
    response = user_ui.post(f"/client/templates/{template.uuid}/visibility",
                            {"is_public": "on", "is_extractable": "on", "is_featured": "on"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.is_public and template.is_extractable and not template.is_featured  # featured: root only
    body = text(user_ui.get(f"/client/templates/{template.uuid}"))
    assert 'id="id_perm_is_featured"' not in body
    # the root admin may feature it
    response = logged_in(admin_user()).post(f"/client/templates/{template.uuid}/visibility",
                                            {"is_public": "on", "is_featured": "on"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.is_featured and not template.is_extractable


def test_edit_form(env, source, tenant_a, user_ui):
    template = register(tenant_a.user, source, "edit-me", zone=env)
    response = user_ui.post(f"/client/templates/{template.uuid}/edit",
                            {"name": "edited", "display_text": "", "sshkey_enabled": "on"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.name == "edited" and template.sshkey_enabled and template.display_text == "edited"
    response = user_ui.post(f"/client/templates/{template.uuid}/edit", {"name": ""})
    assert response.status_code == 200 and "This field is required." in page_text(response)


def test_someone_who_may_not_manage_gets_the_sentence(env, source, admin, tenant_b):
    template = register(admin.user, source, "public-one", zone=env, is_public=True)
    b = logged_in(tenant_b.user)
    response = b.post(f"/client/templates/{template.uuid}/delete")
    assert response.status_code == 200
    assert "Only the owner of template public-one or an administrator of its domain may delete it" in page_text(response)
    assert b.post(f"/client/templates/{template.uuid}/nonsense").status_code == 404
    assert b.get(f"/client/templates/{template.uuid}/delete").status_code == 405


# -- in a real browser -----------------------------------------------------------------------------
class _Slow(http.server.SimpleHTTPRequestHandler):
    """Serves files in small pieces, so a download takes a few seconds and shows its progress."""

    def log_message(self, *args) -> None:
        pass

    def copyfile(self, source, outputfile) -> None:
        while chunk := source.read(16 << 10):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(0.2)


def slow_server(directory: Path) -> ImageServer:
    server = ImageServer(directory)
    server.httpd.shutdown()
    server.httpd.server_close()
    import functools

    server.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Slow, directory=str(directory)))
    server.httpd.daemon_threads = True
    server.thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    server.thread.start()
    return server


def _chromium():
    from playwright import sync_api  # a dev dependency: a missing one is a failure, never a skip

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium, or make deps)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return sync_api


def _login(browser, base_url: str, username: str, password: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(10_000)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(base_url + "/client/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    return page


@pytest.mark.browser
def test_register_and_follow_the_download_in_the_browser(live_server, transactional_db, tmp_path, settings,
                                                         monkeypatch):
    sync_api = _chromium()
    settings.NUBO_SECONDARY_MOUNT_DIR = tmp_path / "secondary-mnt"
    bootstrap_cloud()
    storage_services.seed_os_types()
    config.set_value("secstorage.allowed.internal.sites", "127.0.0.0/8")
    make_account("tenant-a")
    zone = make_zone("z1", 1, tmp_path / "store")
    directory = tmp_path / "source"
    directory.mkdir()
    make_qcow2(directory / "tiny.qcow2")
    server = slow_server(directory)
    # Downloads run in a worker, not in the request: here a thread, as an RQ worker would.
    workers: list[threading.Thread] = []

    def worker(func_path, *args, task_id, **_):
        from django.db import connection
        from django.utils.module_loading import import_string

        def run():
            try:
                import_string(func_path)(*args)
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        workers.append(thread)
        thread.start()

    monkeypatch.setattr(images, "enqueue_task", worker)
    expect = sync_api.expect
    expect.set_options(timeout=15_000)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = _login(browser, live_server.url, "tenant-a", "secret-pw-1")
                page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
                expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
                page.get_by_role("link", name="Register template").click()
                page.get_by_role("textbox", name="Name", exact=True).fill("browser-tiny")
                page.get_by_label("URL").fill(server.url("tiny.qcow2"))
                page.get_by_label("Zone").select_option(label="z1")
                page.get_by_label("OS type").select_option(label="Debian GNU/Linux 12 (64-bit)")
                page.get_by_role("button", name="Register template").click()

                expect(page.get_by_role("heading", name="Template browser-tiny")).to_be_visible()
                # the bar follows the download without reloading the page, then the state is final
                expect(page.locator("#image-zones progress")).to_be_visible()
                page.screenshot(path=str(ARTIFACTS / "template-downloading.png"), full_page=True)
                expect(page.locator("#image-zones")).to_contain_text("Download Complete")
                expect(page.locator("#image-zones")).to_have_attribute("data-live", "false")
                expect(page.locator("#image-zones progress")).to_have_count(0)
                page.screenshot(path=str(ARTIFACTS / "template-ready.png"), full_page=True)

                # a URL that answers 404: the reason, and Retry once the file is there
                page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
                page.get_by_role("link", name="Mine").click()
                expect(page.locator("#image-rows")).to_contain_text("browser-tiny")
                page.get_by_role("link", name="Register template").click()
                page.get_by_role("textbox", name="Name", exact=True).fill("browser-later")
                page.get_by_label("URL").fill(server.url("later.qcow2"))
                page.get_by_role("button", name="Register template").click()
                expect(page.locator("#image-zones")).to_contain_text("answered 404", timeout=10_000)
                retry = page.get_by_role("button", name="Retry the download in zone z1")
                expect(retry).to_be_visible()
                shutil.copy(directory / "tiny.qcow2", directory / "later.qcow2")
                retry.click()
                expect(page.get_by_text("Downloading template browser-later into zone z1 again")).to_be_visible()
                # the list follows it too: its table body polls while a row downloads
                page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
                page.get_by_role("link", name="Mine").click()
                rows = page.locator("#image-rows")
                expect(rows.locator("progress")).to_have_count(1)
                expect(rows).to_have_attribute("data-live", "false")
                expect(rows.get_by_text("Download Complete")).to_have_count(2)
                expect(rows.locator("progress")).to_have_count(0)
            finally:
                browser.close()
    finally:
        for thread in workers:
            thread.join(30)
        server.close()
    assert zone.pk


@pytest.mark.browser
def test_who_sees_what_and_sharing_in_the_browser(live_server, transactional_db, tmp_path, settings):
    sync_api = _chromium()
    settings.NUBO_SECONDARY_MOUNT_DIR = tmp_path / "secondary-mnt"
    cloud = bootstrap_cloud()
    config.set_value("secstorage.allowed.internal.sites", "127.0.0.0/8")
    a, b = make_account("tenant-a"), make_account("tenant-b")
    zone = make_zone("z1", 1, tmp_path / "store")
    directory = tmp_path / "source"
    directory.mkdir()
    make_qcow2(directory / "tiny.qcow2")
    server = ImageServer(directory)
    try:
        private = register(a.user, server, "a-private", zone=zone)
        register(cloud.admin.user, server, "golden-image", zone=zone, is_public=True, is_featured=True)
    finally:
        server.close()
    expect = sync_api.expect
    expect.set_options(timeout=10_000)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page_b = _login(browser, live_server.url, "tenant-b", "secret-pw-1")
            page_b.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
            tabs = page_b.get_by_role("navigation", name="Templates to show")
            expect(tabs.get_by_role("link", name="All")).to_have_count(0)
            # featured: the admin's featured public template
            tabs.get_by_role("link", name="Featured").click()
            expect(page_b.locator("#image-rows")).to_contain_text("golden-image")
            for tab in ("Featured", "Community", "Mine", "Shared with me"):
                tabs.get_by_role("link", name=tab).click()
                expect(tabs.get_by_role("link", name=tab)).to_have_attribute("aria-current", "page")
                expect(page_b.locator("#image-rows")).not_to_contain_text("a-private")
            response = page_b.goto(f"{live_server.url}/client/templates/{private.uuid}")
            assert response.status == 404

            # A shares it with B on the permissions form
            page_a = _login(browser, live_server.url, "tenant-a", "secret-pw-1")
            page_a.goto(f"{live_server.url}/client/templates/{private.uuid}")
            page_a.get_by_label("Account names").fill("tenant-b")
            page_a.get_by_role("button", name="Share", exact=True).click()
            expect(page_a.get_by_text("Template a-private shared with tenant-b.")).to_be_visible()
            expect(page_a.locator("#shared-with")).to_contain_text("tenant-b")

            page_b.goto(f"{live_server.url}/client/templates")
            page_b.get_by_role("navigation", name="Templates to show").get_by_role("link", name="Shared with me").click()
            expect(page_b.locator("#image-rows")).to_contain_text("a-private")
            page_b.get_by_role("link", name="a-private").click()
            expect(page_b.get_by_role("heading", name="Template a-private")).to_be_visible()
            expect(page_b.get_by_role("heading", name="Permissions")).to_have_count(0)

            # the admin's All tab: both, with their owners
            page_admin = _login(browser, live_server.url, "admin", "admin-pw-1")
            page_admin.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
            all_tab = page_admin.get_by_role("navigation", name="Templates to show").get_by_role("link", name="All")
            expect(all_tab).to_have_attribute("aria-current", "page")
            rows = page_admin.locator("#image-rows")
            expect(rows).to_contain_text("a-private")
            expect(rows).to_contain_text("golden-image")
            expect(rows).to_contain_text("tenant-a")
            page_admin.screenshot(path=str(ARTIFACTS / "templates-all.png"), full_page=True)
        finally:
            browser.close()
    assert b.user.pk


def test_tabs_keep_the_search_and_the_order(env, tenant_a, user_ui):
    body = html.unescape(text(user_ui.get("/client/templates?filter=featured&q=tiny%20os&sort=-size&page=3")))
    tabs = re.findall(r'<li><a href="(/client/templates\?filter=[^"]+)"', body)
    assert tabs and all(tab.endswith("&q=tiny+os&sort=-size") for tab in tabs), tabs  # back to page 1
    assert "/client/templates?filter=self&q=tiny+os&sort=-size" in tabs
    plain = html.unescape(text(user_ui.get("/client/isos?filter=self")))
    assert '<li><a href="/client/isos?filter=community"' in plain  # nothing to keep: just the tab
