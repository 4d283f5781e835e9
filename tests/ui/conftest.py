"""UI fixtures: Django test clients logged in as the root admin, a domain admin and plain users."""
from __future__ import annotations

import pytest
from django.test import Client

from accounts import services
from accounts.models import User


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_ui(admin) -> Client:
    """The root admin (password already changed from the default)."""
    return logged_in(admin.user)


@pytest.fixture
def user_ui(tenant_a) -> Client:
    """A plain user: tenant-a."""
    return logged_in(tenant_a.user)


@pytest.fixture
def domain_admin_ui(domain_admin) -> Client:
    """The domain admin of ROOT/corp."""
    return logged_in(domain_admin.user)


@pytest.fixture
def default_admin(db) -> User:
    """A fresh installation whose admin still has the default password "password"."""
    services.bootstrap(None)
    return User.objects.select_related("account__domain").get(username="admin", domain__path="/")


def column_labels(response) -> list[str]:
    """The column headers of a list page's table, as a reader sees them (without sort marks)."""
    import html
    import re

    head = re.search(r"<thead>(.*?)</thead>", response.content.decode(), re.S).group(1)
    cells = re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head, re.S)
    return [html.unescape(re.sub(r"<[^>]+>|[▲▼]", "", cell)).strip() for cell in cells]
