"""Templates on primary storage: prepareTemplate copies a Ready template once per pool through the
driver (real libvirt pools on this machine's qemu:///system, and the Simulator); root disks are
copy-on-write clones of that base; the base goes with its template. And the whole chain for the
built-in image: `manage.py bootstrap` registers Tiny Linux, a zone's new secondary storage receives
it, it reaches a real pool, and a guest boots from a linked clone of it."""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from compute import services as compute_services
from compute.drivers import DiskSpec, DomainSpec, DriverError, NicSpec, get_driver
from compute.models import Zone
from portal.models import Event
from storage import services as storage_services
from storage.images import builtin, primary
from storage.images import services as images
from storage.models import PoolCopyState, Template, TemplatePoolCopy, TemplateZone
from tests.factories import admin_user
from tests.images import make_qcow2
from tests.storage.conftest import make_zone

QEMU = "qemu:///system"


@pytest.fixture
def kvm(cloud, tmp_path):
    """Zone (enabled, with secondary storage) > pod > KVM cluster > this machine's libvirtd, and a
    directory pool on it; libvirt pools made under tmp_path are removed afterwards."""
    try:
        with get_driver(QEMU) as driver:
            driver.ping()
    except DriverError as exc:
        pytest.fail(f"{exc.message}\nThese tests need libvirtd: `make test` starts it.", pytrace=False)
    admin = admin_user()
    zone, pod = make_zone(admin, "kz")
    Zone.objects.filter(pk=zone.pk).update(allocation_state="Enabled")
    cluster = compute_services.add_cluster(admin, zone=zone, pod=pod, name="kvm1", hypervisor="KVM")
    host = compute_services.add_host(admin, zone=zone, pod=pod, cluster=cluster, url=QEMU)
    pool = storage_services.create_storage_pool(admin, zone=zone, pod=pod, cluster=cluster, name="primary",
                                                url=f"file://{tmp_path}/primary")
    store = storage_services.add_image_store(admin, zone=zone, name="secondary", url=f"file://{tmp_path}/secondary")
    yield type("Kvm", (), dict(admin=admin, zone=zone, pod=pod, cluster=cluster, host=host, pool=pool, store=store))
    with get_driver(QEMU) as driver:
        for info in driver.list_pools():
            if info.spec.path.startswith(str(tmp_path)):
                for volume in sorted(driver.list_volumes(info.spec.name), key=lambda v: not v.backing_path):
                    driver.delete_volume(info.spec.name, volume.name)
                driver.delete_pool(info.spec.name, force=True)


def _ready_template(admin, zone, path: Path, name: str = "tiny") -> Template:
    row, = images.register(admin, is_iso=False, name=name, url=path.as_uri(), zoneid=str(zone.uuid),
                           format="QCOW2", hypervisor="KVM")
    images.run_download(row.pk)
    row.refresh_from_db()
    assert row.is_ready, row.status_text
    return row.template


def test_prepare_copies_once_and_clones_are_copy_on_write(api, kvm, tmp_path):
    template = _ready_template(kvm.admin, kvm.zone, make_qcow2(tmp_path / "tiny.qcow2", "32M"))
    answer = api("prepareTemplate", templateid=str(template.uuid), zoneid=str(kvm.zone.uuid))
    assert answer.status == 200, answer
    assert answer.inner["template"]["id"] == str(template.uuid)
    copy = TemplatePoolCopy.objects.get(template=template, pool=kvm.pool)
    assert copy.state == PoolCopyState.READY, copy.error
    assert copy.size == 32 << 20
    base = Path(copy.path)
    assert base.parent == tmp_path / "primary" and base.is_file()
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(base)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    written = base.stat().st_mtime_ns
    # a second deploy (or prepare) finds the base: no second copy
    assert primary.ensure_on_pool(template, kvm.pool).pk == copy.pk
    assert base.stat().st_mtime_ns == written
    assert Event.objects.filter(type="TEMPLATE.PRIMARY.COPY").count() == 1
    # root disks are linked clones of the base
    with get_driver(QEMU) as driver:
        started = time.monotonic()
        clone = driver.clone_volume(kvm.pool.libvirt_name, copy.volume_name, "root-1", capacity_bytes=64 << 20)
        took = time.monotonic() - started
        assert clone.backing_path == str(base) and clone.capacity_bytes == 64 << 20
        assert clone.allocation_bytes < 1 << 20
        driver.delete_volume(kvm.pool.libvirt_name, "root-1")
    assert took < 5  # no data copied (milliseconds in practice; bench/ measures it)


def test_prepare_refuses_what_is_not_ready_or_not_a_template(api, kvm, tmp_path, tenant_a):
    row, = images.register(kvm.admin, is_iso=False, name="later", url=make_qcow2(tmp_path / "later.qcow2").as_uri(),
                           zoneid=str(kvm.zone.uuid), format="QCOW2", hypervisor="KVM")  # not downloaded yet
    answer = api("prepareTemplate", templateid=str(row.template.uuid), zoneid=str(kvm.zone.uuid))
    assert answer.status == 431 and "not ready" in answer.errortext
    template = _ready_template(kvm.admin, kvm.zone, make_qcow2(tmp_path / "tiny.qcow2"))
    assert api.as_(tenant_a)("prepareTemplate", templateid=str(template.uuid),
                             zoneid=str(kvm.zone.uuid)).status == 401


def test_a_failed_copy_is_reported_and_retried(api, kvm, tmp_path):
    template = _ready_template(kvm.admin, kvm.zone, make_qcow2(tmp_path / "tiny.qcow2"))
    stored = images.stored_path(TemplateZone.objects.get(template=template))
    stored.rename(stored.with_suffix(".moved"))
    with pytest.raises(Exception, match="Cannot copy template tiny to primary storage primary"):
        primary.ensure_on_pool(template, kvm.pool)
    assert TemplatePoolCopy.objects.get(template=template).state == PoolCopyState.ERROR
    with get_driver(QEMU) as driver:
        assert driver.volume_info(kvm.pool.libvirt_name, primary.base_volume_name(template)) is None
    stored.with_suffix(".moved").rename(stored)
    assert primary.ensure_on_pool(template, kvm.pool).state == PoolCopyState.READY


def test_deleting_the_template_removes_its_base_volumes(api, kvm, tmp_path):
    template = _ready_template(kvm.admin, kvm.zone, make_qcow2(tmp_path / "tiny.qcow2"))
    copy = primary.ensure_on_pool(template, kvm.pool)
    assert Path(copy.path).is_file()
    assert api.job(api("deleteTemplate", id=str(template.uuid)))["jobstatus"] == 1
    assert not Path(copy.path).exists()
    assert not TemplatePoolCopy.objects.filter(template=template).exists()


def test_the_simulator_models_the_copy(api, infra, tmp_path):
    Zone.objects.filter(pk=infra.zone.pk).update(allocation_state="Enabled")
    storage_services.add_image_store(infra.admin, zone=infra.zone, name="s", url=f"file://{tmp_path}/secondary")
    pool = storage_services.create_storage_pool(infra.admin, zone=infra.zone, pod=infra.pod, cluster=infra.cluster,
                                                name="sim-primary", url=f"file://{tmp_path}/sim-primary")
    template = _ready_template(infra.admin, infra.zone, make_qcow2(tmp_path / "tiny.qcow2", "48M"))
    copy = primary.ensure_on_pool(template, pool)
    assert copy.state == PoolCopyState.READY and copy.size == 48 << 20


@pytest.mark.slow_qemu
def test_the_builtin_template_from_bootstrap_boots_from_a_clone_on_primary(api, kvm, tmp_path):
    from tests.storage.test_builtin_images import BOOT_TIMEOUT_S, SerialConsole

    with api.capture(execute=True):
        call_command("bootstrap")
    template = Template.objects.get(builtin_key="tiny-linux-template")
    assert (template.name, template.is_featured, template.is_public, template.cross_zones) == (
        "Tiny Linux", True, True, True)
    # the zone's secondary storage existed before: bootstrap's registration downloaded it there
    row = TemplateZone.objects.get(template=template, zone=kvm.zone)
    assert row.is_ready, row.status_text
    with api.capture(execute=True):
        call_command("bootstrap")  # idempotent: nothing registered again
    assert Template.objects.filter(builtin_key="tiny-linux-template").count() == 1
    featured = api("listTemplates", templatefilter="featured", zoneid=str(kvm.zone.uuid)).inner["template"]
    assert [t["name"] for t in featured] == ["Tiny Linux"] and featured[0]["isready"]

    copy = primary.ensure_on_pool(template, kvm.pool)
    name = f"nubo-test-{uuid.uuid4().hex[:6]}-tiny"
    with get_driver(QEMU) as driver:
        driver.clone_volume(kvm.pool.libvirt_name, copy.volume_name, f"{name}-root")
        spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, memory_mib=builtin.MIN_MEMORY_MIB,
                          emulation="qemu", disks=(DiskSpec(target="vda", pool=kvm.pool.libvirt_name,
                                                            volume=f"{name}-root", format="qcow2"),),
                          nics=(NicSpec(mac="52:54:00:6e:75:63"),), vnc=False, serial_console=True)
        driver.define_domain(spec)
        try:
            driver.start_domain(name)
            console = SerialConsole(driver, name)
            try:
                marker = console.wait_for(r"NUBO-TINY-LINUX READY hostname=(\S+) ip=(\S+) config=(\S+)\r?\n", BOOT_TIMEOUT_S)
            finally:
                console.close()
            assert marker.group(2) == b"10.0.2.15"
        finally:
            driver.stop_domain(name, force=True)
            driver.undefine_domain(name)
            driver.delete_volume(kvm.pool.libvirt_name, f"{name}-root")
