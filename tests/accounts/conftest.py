import pytest

from tests.api.helpers import share_client_handler


@pytest.fixture(autouse=True)
def _forget_snapshots():
    """Each test rolls its rows back; process-local snapshots (settings, role rules) must forget
    them too, or a later test could see rules of a role that no longer exists (SQLite reuses ids)."""
    from portal.cache import invalidate_all

    invalidate_all()
    yield
    invalidate_all()


@pytest.fixture
def client(client):
    """Django's test client sharing one request handler (see tests/api/conftest.py)."""
    return share_client_handler(client)
