"""Django admin (issue 2: registered for every model): each model of Nubo's apps has a page that a
root admin can open, and the secrets of VMs and console tokens are not shown there."""
from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from tests.compute.test_console import running  # noqa: F401  (fixture)
from tests.compute.test_instances import sim  # noqa: F401  (fixture)

APPS = ("portal", "accounts", "compute", "storage")


def test_every_model_is_registered():
    missing = [m.__name__ for label in APPS for m in apps.get_app_config(label).get_models()
               if m not in admin.site._registry]
    assert not missing, f"register these models in their app's admin.py: {missing}"


@pytest.mark.parametrize("model", [m for label in APPS for m in apps.get_app_config(label).get_models()],
                         ids=lambda m: m.__name__)
def test_each_changelist_opens_for_the_root_admin(model, admin, running):  # noqa: F811
    client = Client()
    client.force_login(admin.user)
    meta = model._meta
    page = client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
    assert page.status_code == 200, (model, page.status_code)


def test_vm_secrets_are_not_on_its_admin_page(admin, running):  # noqa: F811
    client = Client()
    client.force_login(admin.user)
    page = client.get(f"/admin/compute/virtualmachine/{running.pk}/change/").content.decode()
    assert running.name in page
    assert running.vnc_password not in page and "vnc_password" not in page
