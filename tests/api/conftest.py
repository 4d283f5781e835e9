import pytest
from django.db import transaction

from tests.api.helpers import build_infrastructure, build_world_from_scratch, share_client_handler


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
    """Django's test client, with one request handler (middleware chain) for the whole run:
    loading the middleware makes whitenoise index every static file, which otherwise costs
    ~0.3 s per test."""
    return share_client_handler(client)


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """The world of tests.api.helpers.World, built once per module inside a transaction that is
    rolled back at the end of the module; each test runs in a savepoint inside it (what Django's
    TestCase.setUpTestData does). Tests using it must not use the `cloud`/`admin`/`api`
    fixtures, which re-key the admin."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            world = build_world_from_scratch()
        except BaseException:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            raise
    yield world
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared_infrastructure(shared_world, django_db_blocker):
    """Zones, pods, ranges, clusters and hosts (Simulator) added to the shared world, once per
    module, inside its transaction; only tests of infrastructure commands ask for it."""
    from django.db import connection

    with django_db_blocker.unblock():
        assert not connection.savepoint_ids, "build the infrastructure before a test's own transaction"
        build_infrastructure(shared_world)
    yield shared_world
    import shutil

    if shared_world.images is not None:
        shared_world.images.close()
    shutil.rmtree(shared_world.storage_dir, ignore_errors=True)


@pytest.fixture
def world(shared_world, db):
    """The shared world (do not change its objects in memory: the database is rolled back after
    each test, Python objects are not)."""
    return shared_world
