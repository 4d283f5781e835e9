"""Templates and ISOs through the API, downloaded for real from a local HTTP server into a real
image store directory: registration to Ready with progress, the failures that must end in an
error state with nothing left behind, filters and visibility, permissions, extract, copy,
delete, quotas, cross-zone and built-in registration."""
from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from portal import config
from portal.models import Event
from compute.models import Zone
from storage import services as storage_services
from storage.images import services as images
from storage.models import DownloadState, Template, TemplateZone
from tests.images import ImageServer, make_iso, make_qcow2
from tests.storage.conftest import make_zone


@pytest.fixture
def source(tmp_path):
    """A directory of real images served over HTTP on 127.0.0.1 (allowed as an internal site)."""
    directory = tmp_path / "source"
    directory.mkdir()
    make_qcow2(directory / "tiny.qcow2")
    make_iso(directory / "tiny.iso")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(directory / "disk.raw"), "8M"], check=True)
    make_qcow2(directory / "base.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(directory / "base.qcow2"), "-F", "qcow2",
                    str(directory / "backed.qcow2")], check=True)
    (directory / "page.qcow2").write_text("<html>not an image</html>\n" * 100)
    server = ImageServer(directory)
    config.set_value("secstorage.allowed.internal.sites", "127.0.0.0/8")
    yield server
    server.close()


@pytest.fixture
def zone(infra, tmp_path):
    """The infra zone, enabled (tenants see only enabled zones), with secondary storage."""
    Zone.objects.filter(pk=infra.zone.pk).update(allocation_state="Enabled")
    store = storage_services.add_image_store(infra.admin, zone=infra.zone, name="store-1",
                                             url=f"file://{tmp_path}/store-1")
    infra.store = store
    return infra


def register(api, source, name="tiny", file="tiny.qcow2", **extra):
    params = dict(name=name, displaytext=f"{name} template", url=source.url(file), format="QCOW2",
                  hypervisor="KVM", zoneid=str(extra.pop("zone").zone.uuid))
    params.update(extra)
    return api("registerTemplate", **params)


def row_of(answer) -> TemplateZone:
    item = answer.inner["template"][0] if "template" in answer.inner else answer.inner["iso"][0]
    return TemplateZone.objects.get(template__uuid=item["id"])


def store_files(zone) -> list[str]:
    root = Path(zone.store.mount_path)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- registration to Ready ----------------------------------------------------------------------
def test_register_downloads_verifies_and_becomes_ready(api, zone, source):
    answer = register(api, source, zone=zone, checksum="")
    assert answer.status == 200, answer
    assert answer.inner["count"] == 1
    item = answer.inner["template"][0]
    assert item["name"] == "tiny" and item["format"] == "QCOW2" and item["hypervisor"] == "KVM"
    assert item["zoneid"] == str(zone.zone.uuid)
    listed = api("listTemplates", templatefilter="self", id=item["id"]).inner["template"][0]
    assert listed["isready"] is True
    assert listed["status"] == "Download Complete"
    assert listed["size"] == 16 << 20  # the virtual size qemu-img reports
    assert 0 < listed["physicalsize"] < 1 << 20
    assert listed["downloaddetails"][0]["downloadPercent"] == "100"
    files = store_files(zone)
    assert len(files) == 1 and files[0].startswith("template/tmpl/") and files[0].endswith(".qcow2")
    assert Event.objects.filter(type="TEMPLATE.DOWNLOAD.SUCCESS").exists()


def test_an_iso_is_registered_and_listed_as_iso(api, zone, source):
    answer = api("registerIso", name="live", displaytext="a live ISO", url=source.url("tiny.iso"),
                 zoneid=str(zone.zone.uuid), bootable="true")
    assert answer.status == 200, answer
    iso = api("listIsos", isofilter="self").inner["iso"][0]
    assert iso["isready"] is True and iso["format"] == "ISO" and iso["bootable"] is True
    assert "hypervisor" not in iso
    assert store_files(zone)[0].startswith("iso/")
    assert api("listTemplates", templatefilter="self").inner == {}


@pytest.mark.django_db(transaction=True)
def test_progress_goes_up_monotonically_while_downloading(cloud, zone, source, tmp_path, monkeypatch):
    """A slow server: another connection (what the UI and listTemplates read) sees the row's
    percentage climb while the job runs, then Download Complete."""
    monkeypatch.setattr(images, "enqueue_task", lambda *args, **kwargs: None)  # the job runs below, watched
    big = tmp_path / "source" / "big.raw"
    with open(big, "wb") as handle:
        handle.write(os.urandom(6 << 20))
    slow = SlowServer(big, chunk=512 << 10, pause=0.4)
    try:
        row, = images.register(zone.admin, is_iso=False, name="big", url=slow.url, zoneid=str(zone.zone.uuid),
                               format="RAW", hypervisor="KVM")
        seen: list[tuple[int, int]] = []
        watcher = threading.Thread(target=_watch, args=(row.pk, seen), daemon=True)
        watcher.start()
        images.run_download(row.pk)
        watcher.join(timeout=5)
    finally:
        slow.close()
    row.refresh_from_db()
    assert row.state == DownloadState.DOWNLOADED, row.status_text
    percents = [p for p, _ in seen]
    assert len(set(percents)) >= 3, seen
    assert percents == sorted(percents)
    done = [b for _, b in seen]
    assert done == sorted(done)
    assert row.percent == 100 and row.status_text == "Download Complete"


def _watch(pk: int, seen: list) -> None:
    from django.db import connection

    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            row = TemplateZone.objects.filter(pk=pk).values("state", "percent", "bytes_done").first()
            if row is None:
                break
            if row["state"] == DownloadState.DOWNLOAD_IN_PROGRESS:
                seen.append((row["percent"], row["bytes_done"]))
            if row["state"] in (DownloadState.DOWNLOADED, DownloadState.DOWNLOAD_ERROR):
                break
            time.sleep(0.02)
    finally:
        connection.close()


class SlowServer:
    """Serves one file slowly (chunk, pause) so progress can be watched."""

    def __init__(self, path: Path, *, chunk: int, pause: float) -> None:
        data = path.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for start in range(0, len(data), chunk):
                    self.wfile.write(data[start:start + chunk])
                    self.wfile.flush()
                    time.sleep(pause)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{path.name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- failures: error state with the reason, nothing left on the store ------------------------------
@pytest.mark.parametrize("file, extra, says", [
    ("missing.qcow2", {}, "404"),
    ("tiny.qcow2", {"checksum": "{SHA-256}" + "0" * 64}, "checksum"),
    ("backed.qcow2", {}, "backing file"),
    ("page.qcow2", {}, "not a QCOW2 image"),
    ("disk.raw", {}, "not a QCOW2 image"),
])
def test_failed_downloads_end_in_error_with_the_reason_and_leave_nothing(api, zone, source, file, extra, says):
    before = store_files(zone)
    answer = register(api, source, zone=zone, file=file, **extra)
    assert answer.status == 200, answer
    row = row_of(answer)
    assert row.state == DownloadState.DOWNLOAD_ERROR
    assert says in row.status_text, row.status_text
    listed = api("listTemplates", templatefilter="self", id=str(row.template.uuid)).inner["template"][0]
    assert listed["isready"] is False and says in listed["status"]
    assert store_files(zone) == before  # the partial file is gone
    assert Event.objects.filter(type="TEMPLATE.DOWNLOAD.FAILED", level="ERROR").exists()


def test_a_truncated_download_fails_and_leaves_nothing(api, zone, source, tmp_path):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(4 << 20))
            self.end_headers()
            self.wfile.write(b"\0" * (1 << 20))
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    config.set_value("template.download.retries", "1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        answer = api("registerTemplate", name="cut", displaytext="cut", format="RAW", hypervisor="KVM",
                     zoneid=str(zone.zone.uuid), url=f"http://127.0.0.1:{httpd.server_address[1]}/cut.raw")
    finally:
        httpd.shutdown()
        httpd.server_close()
    row = row_of(answer)
    assert row.state == DownloadState.DOWNLOAD_ERROR, row.status_text
    assert store_files(zone) == []


def test_retry_after_a_failure(api, zone, source):
    from portal.errors import InvalidParameterValue

    answer = register(api, source, zone=zone, file="later.qcow2")
    row = row_of(answer)
    assert row.state == DownloadState.DOWNLOAD_ERROR and "404" in row.status_text
    (source.directory / "later.qcow2").write_bytes((source.directory / "tiny.qcow2").read_bytes())
    with api.capture(execute=True):
        images.retry_download(zone.admin, row)
    row.refresh_from_db()
    assert row.state == DownloadState.DOWNLOADED, row.status_text
    with pytest.raises(InvalidParameterValue, match="has not failed"):
        images.retry_download(zone.admin, row)


@pytest.mark.parametrize("url, says", [
    ("ftp://example.org/x.qcow2", "ftp"),
    ("http://127.0.0.1:1/x.qcow2", "127.0.0.1"),
    ("http://169.254.169.254/latest", "169.254.169.254"),
    ("http://10.1.2.3/x.qcow2", "10.1.2.3"),
])
def test_urls_refused_at_registration(api, zone, url, says):
    answer = api("registerTemplate", name="x", displaytext="x", url=url, format="QCOW2", hypervisor="KVM",
                 zoneid=str(zone.zone.uuid))
    assert answer.status == 431, answer
    assert says in answer.errortext
    assert not Template.objects.exists()


def test_loopback_is_refused_unless_allowed(api, zone, source):
    config.set_value("secstorage.allowed.internal.sites", "")
    answer = register(api, source, zone=zone)
    assert answer.status == 431 and "secstorage.allowed.internal.sites" in answer.errortext


def test_file_urls_only_for_root_admins(api, zone, source, tenant_a):
    path = source.directory / "tiny.qcow2"
    user = api.as_(tenant_a)("registerTemplate", name="f", displaytext="f", url=path.as_uri(), format="QCOW2",
                             hypervisor="KVM", zoneid=str(zone.zone.uuid))
    assert user.status == 431 and "file" in user.errortext.lower()
    admin = api("registerTemplate", name="f", displaytext="f", url=path.as_uri(), format="QCOW2", hypervisor="KVM",
                zoneid=str(zone.zone.uuid))
    assert admin.status == 200 and row_of(admin).is_ready


def test_bad_values_are_431(api, zone, source, tenant_a):
    cases = [
        (dict(format="VHD"), "QCOW2 or RAW"),
        (dict(hypervisor="XenServer"), "KVM or Simulator"),
        (dict(checksum="{CRC32}abcd"), "checksum"),
        (dict(zoneid="00000000-0000-4000-8000-000000000000"), "does not exist"),
    ]
    for extra, says in cases:
        params = dict(name="x", displaytext="x", url=source.url("tiny.qcow2"), format="QCOW2", hypervisor="KVM",
                      zoneid=str(zone.zone.uuid))
        params.update(extra)
        answer = api("registerTemplate", **params)
        assert answer.status == 431, (extra, answer)
        assert says in answer.errortext, (extra, answer.errortext)
    featured = api.as_(tenant_a)("registerTemplate", name="x", displaytext="x", url=source.url("tiny.qcow2"),
                                 format="QCOW2", hypervisor="KVM", zoneid=str(zone.zone.uuid), isfeatured="true")
    assert featured.status == 531 and "featured" in featured.errortext
    assert not Template.objects.exists()


def test_a_zone_without_secondary_storage_is_refused(api, infra, source):
    answer = api("registerTemplate", name="x", displaytext="x", url=source.url("tiny.qcow2"), format="QCOW2",
                 hypervisor="KVM", zoneid=str(infra.zone.uuid))
    assert answer.status == 431 and "addImageStore" in answer.errortext


# -- visibility, filters and permissions ----------------------------------------------------------
def test_private_public_featured_and_shared_visibility(api, zone, source, tenant_a, tenant_b):
    a, b = api.as_(tenant_a), api.as_(tenant_b)
    private = row_of(register(a, source, name="mine", zone=zone)).template
    public = row_of(register(a, source, name="community", zone=zone, ispublic="true")).template
    featured = row_of(register(api, source, name="featured", zone=zone, ispublic="true", isfeatured="true")).template

    def names(client, flt):
        body = client("listTemplates", templatefilter=flt).inner
        return sorted(t["name"] for t in body.get("template", []))

    assert names(a, "self") == ["community", "mine"]
    assert names(b, "self") == []
    assert names(b, "featured") == ["featured"]
    assert names(b, "community") == ["community"]
    assert names(b, "executable") == ["community", "featured"]
    assert names(b, "sharedexecutable") == []
    assert b("listTemplates", templatefilter="all").status == 431
    assert names(api, "all") == ["community", "featured", "mine"]
    # B cannot use or even name A's private template
    assert b("updateTemplate", id=str(private.uuid), displaytext="x").status == 431
    assert b("listTemplates", templatefilter="executable", id=str(private.uuid)).inner == {}
    # A shares it with B (an account of the same domain)
    granted = a("updateTemplatePermissions", id=str(private.uuid), op="add", accounts=tenant_b.account.name)
    assert granted.status == 200, granted
    assert names(b, "sharedexecutable") == ["mine"]
    assert names(b, "executable") == ["community", "featured", "mine"]
    perms = a("listTemplatePermissions", id=str(private.uuid)).inner["templatepermission"]
    assert perms["account"] == [tenant_b.account.name] and perms["ispublic"] is False
    # B may use it but not change it
    assert b("updateTemplate", id=str(private.uuid), displaytext="x").status == 531
    assert b("deleteTemplate", id=str(private.uuid)).status == 531
    a("updateTemplatePermissions", id=str(private.uuid), op="reset")
    assert names(b, "executable") == ["community", "featured"]
    assert public.is_public and featured.is_featured


def test_share_with_an_unknown_account_is_431(api, zone, source, tenant_a):
    template = row_of(register(api.as_(tenant_a), source, zone=zone)).template
    answer = api.as_(tenant_a)("updateTemplatePermissions", id=str(template.uuid), op="add", accounts="nobody")
    assert answer.status == 431 and "nobody" in answer.errortext


def test_in_progress_templates_show_in_self_but_not_in_executable(cloud, zone, source, tenant_a, api):
    row, = images.register(tenant_a.user, is_iso=False, name="pending", url=source.url("tiny.qcow2"),
                           zoneid=str(zone.zone.uuid), format="QCOW2", hypervisor="KVM")  # no commit: not started
    a = api.as_(tenant_a)
    pending = a("listTemplates", templatefilter="self").inner["template"][0]
    assert pending["isready"] is False and pending["status"] == "Waiting to download"
    assert a("listTemplates", templatefilter="executable").inner == {}
    images.run_download(row.pk)
    assert a("listTemplates", templatefilter="executable").inner["count"] == 1


# -- update, extract, copy, delete ------------------------------------------------------------------
def test_update_changes_what_the_template_says(api, zone, source):
    template = row_of(register(api, source, zone=zone)).template
    answer = api("updateTemplate", id=str(template.uuid), name="renamed", displaytext="new text",
                 passwordenabled="true", **{"details[0].key": "k", "details[0].value": "v"})
    assert answer.status == 200, answer
    item = answer.inner["template"]
    assert (item["name"], item["displaytext"], item["passwordenabled"]) == ("renamed", "new text", True)
    assert item["details"] == {"k": "v"}


def test_extract_gives_a_url_that_downloads_the_file_until_it_expires(api, zone, source, client):
    template = row_of(register(api, source, zone=zone, isextractable="true")).template
    job = api.job(api("extractTemplate", id=str(template.uuid), mode="HTTP_DOWNLOAD"))
    assert job["jobstatus"] == 1, job
    url = job["jobresult"]["template"]["url"]
    parts = urlsplit(url)
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == (source.directory / "tiny.qcow2").read_bytes()
    tampered = client.get(f"{parts.path}?{parts.query[:-2]}xx")
    assert tampered.status_code == 404
    config.set_value("extract.url.expiration.interval", "60")
    from portal.cache import invalidate_all

    invalidate_all()
    from unittest import mock

    with mock.patch("time.time", return_value=time.time() + 120):
        assert client.get(f"{parts.path}?{parts.query}").status_code == 404


def test_extract_of_a_non_extractable_template_is_refused_for_users(api, zone, source, tenant_a):
    a = api.as_(tenant_a)
    template = row_of(register(a, source, zone=zone)).template
    answer = a("extractTemplate", id=str(template.uuid), mode="HTTP_DOWNLOAD")
    assert answer.status == 531 and "not extractable" in answer.errortext  # refused before any job


def test_copy_to_another_zone_and_delete_per_zone(api, zone, source, tmp_path):
    zone2, _ = make_zone(zone.admin, name="z2", octet=2)
    store2 = storage_services.add_image_store(zone.admin, zone=zone2, name="store-2", url=f"file://{tmp_path}/store-2")
    template = row_of(register(api, source, zone=zone)).template
    job = api.job(api("copyTemplate", id=str(template.uuid), destzoneid=str(zone2.uuid)))
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["template"]["zoneid"] == str(zone2.uuid)
    assert job["jobresult"]["template"]["isready"] is True
    listed = api("listTemplates", templatefilter="self", id=str(template.uuid)).inner
    assert listed["count"] == 2
    copied = list(Path(store2.mount_path).rglob("*.qcow2"))
    assert len(copied) == 1
    again = api.job(api("copyTemplate", id=str(template.uuid), destzoneid=str(zone2.uuid)))
    assert again["jobstatus"] == 2 and "already in zone" in again["jobresult"]["errortext"]
    # delete from one zone: the other copy stays
    assert api.job(api("deleteTemplate", id=str(template.uuid), zoneid=str(zone2.uuid)))["jobstatus"] == 1
    assert not copied[0].exists()
    assert api("listTemplates", templatefilter="self", id=str(template.uuid)).inner["count"] == 1
    # delete everywhere: removed, file gone, hidden from lists
    assert api.job(api("deleteTemplate", id=str(template.uuid)))["jobstatus"] == 1
    assert store_files(zone) == []
    assert api("listTemplates", templatefilter="self").inner == {}
    template.refresh_from_db()
    assert template.removed is not None


def test_delete_refuses_while_in_use_and_root_can_force(api, zone, source, monkeypatch, tenant_a):
    template = row_of(register(api.as_(tenant_a), source, zone=zone)).template
    monkeypatch.setattr(images, "TEMPLATE_USERS_HOOKS", [lambda t: ["VM web-1", "VM web-2"]])
    refused = api.as_(tenant_a).job(api.as_(tenant_a)("deleteTemplate", id=str(template.uuid)))
    assert refused["jobstatus"] == 2 and "web-1" in refused["jobresult"]["errortext"]
    assert refused["jobresult"]["errorcode"] == 536
    forced_by_user = api.as_(tenant_a)("deleteTemplate", id=str(template.uuid), forced="true")
    assert forced_by_user.status == 531
    assert api.job(api("deleteTemplate", id=str(template.uuid), forced="true"))["jobstatus"] == 1


def test_a_store_holding_templates_cannot_be_deleted(api, zone, source):
    register(api, source, zone=zone)
    answer = api("deleteImageStore", id=str(zone.store.uuid))
    assert answer.status == 536 and "tiny" in answer.errortext


# -- quota ----------------------------------------------------------------------------------------
def test_the_secondary_storage_limit_stops_further_registrations(api, zone, source, tenant_a):
    a = api.as_(tenant_a)
    config.set_value("max.account.secondary.storage", "0", scope="account", scope_uuid=str(tenant_a.account.uuid))
    answer = register(a, source, zone=zone)
    assert answer.status == 535, answer
    assert "secondary_storage" in answer.errortext
    assert not Template.objects.exists()
    # root admin accounts are not limited
    config.set_value("max.account.secondary.storage", "0")
    assert register(api, source, zone=zone).status == 200


# -- cross-zone and built-in ------------------------------------------------------------------------
def test_cross_zone_templates_reach_zones_that_get_storage_later(api, zone, source, tmp_path):
    answer = register(api, source, zone=zone, zoneid="-1")
    assert answer.status == 200, answer
    template = row_of(answer).template
    assert template.cross_zones
    zone2, _ = make_zone(zone.admin, name="z2", octet=2)
    with api.capture(execute=True):
        storage_services.add_image_store(zone.admin, zone=zone2, name="store-2", url=f"file://{tmp_path}/store-2")
    rows = TemplateZone.objects.filter(template=template)
    assert {r.zone_id: r.state for r in rows} == {zone.zone.pk: "DOWNLOADED", zone2.pk: "DOWNLOADED"}
    assert api("listTemplates", templatefilter="featured").inner == {}  # not featured
    assert api("listTemplates", templatefilter="self", id=str(template.uuid)).inner["template"][0]["crossZones"]


def test_builtin_registration_is_idempotent_and_featured(api, zone, source, tenant_a, tmp_path):
    manifest = {"images": {
        "template": {"path": str(source.directory / "tiny.qcow2"), "format": "QCOW2", "sha256": _sha(source, "tiny.qcow2")},
        "iso": {"path": str(source.directory / "tiny.iso"), "format": "ISO", "sha256": _sha(source, "tiny.iso")},
    }}
    with api.capture(execute=True):
        assert len(images.register_builtin(manifest)) == 2
    assert images.register_builtin(manifest) == []
    featured = api.as_(tenant_a)("listTemplates", templatefilter="featured").inner["template"]
    assert [(t["name"], t["templatetype"], t["isready"]) for t in featured] == [("Tiny Linux", "BUILTIN", True)]
    isos = api.as_(tenant_a)("listIsos", isofilter="featured").inner["iso"]
    assert [i["name"] for i in isos] == ["Tiny Linux ISO"]
    # a tenant cannot delete or change it
    template = Template.objects.get(builtin_key="tiny-linux-template")
    assert api.as_(tenant_a)("deleteTemplate", id=str(template.uuid)).status == 531


def _sha(source, name: str) -> str:
    import hashlib

    return hashlib.sha256((source.directory / name).read_bytes()).hexdigest()


def test_a_lost_download_is_restarted(cloud, zone, source):
    from django.utils import timezone

    row, = images.register(zone.admin, is_iso=False, name="lost", url=source.url("tiny.qcow2"),
                           zoneid=str(zone.zone.uuid), format="QCOW2", hypervisor="KVM")
    TemplateZone.objects.filter(pk=row.pk).update(state=DownloadState.DOWNLOAD_IN_PROGRESS, attempts=1,
                                                  heartbeat=timezone.now() - images.LOST_AFTER * 2)
    assert images.recover_lost_downloads() == {"restarted": 1, "failed": 0}
    row.refresh_from_db()
    assert row.state == DownloadState.DOWNLOADED
    TemplateZone.objects.filter(pk=row.pk).update(state=DownloadState.DOWNLOAD_IN_PROGRESS, attempts=9,
                                                  heartbeat=timezone.now() - images.LOST_AFTER * 2)
    assert images.recover_lost_downloads() == {"restarted": 0, "failed": 1}
    row.refresh_from_db()
    assert row.state == DownloadState.DOWNLOAD_ERROR and "Retry" in row.status_text


def test_deleting_an_account_deletes_its_templates(api, zone, source, tenant_a):
    template = row_of(register(api.as_(tenant_a), source, zone=zone)).template
    assert api.job(api("deleteAccount", id=str(tenant_a.account.uuid)))["jobstatus"] == 1
    template.refresh_from_db()
    assert template.removed is not None
    assert store_files(zone) == []
