"""The alerts page (root admin only; 404 for anyone else): open or archived alerts, filtered by
type, searched, sorted; archived or deleted — the ticked ones, those of a type, those sent on or
before a day — by a CSRF-protected POST through compute.alerts, the service of the archiveAlerts /
deleteAlerts API commands (tested here too), each writing an event. Unknown filter values are
ignored and named; the page costs a constant number of queries."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from compute import services as compute_services
from compute.choices import AlertType
from compute.models import Alert
from portal.models import Event
from tests.factories import make_account

from .test_events_jobs_ui import ignored_note, queries
from .test_instances_ui import build_sim, text, words


@pytest.fixture
def sim(cloud, tmp_path):
    return build_sim(tmp_path)


# -- alerts ---------------------------------------------------------------------------------------
def alert_subjects(response) -> list[str]:
    return re.findall(r"</code></td>\s*<td>([^<]+)</td>", text(response))


@pytest.fixture
def some_alerts(cloud):
    host = compute_services.raise_alert(AlertType.HOST, "ALERT.HOST", "Host h1 is Alert")
    host_old = compute_services.raise_alert(AlertType.HOST, "ALERT.HOST", "Host h2 is Down")
    pool = compute_services.raise_alert(AlertType.STORAGE_MISC, "ALERT.STORAGE", "Pool p1 is short of space")
    Alert.objects.filter(pk=host_old.pk).update(sent=timezone.now() - dt.timedelta(days=10))
    return host, host_old, pool


def test_only_root_admins_archive_or_delete_alerts(some_alerts, user_ui, domain_admin_ui):
    host, *_ = some_alerts
    for client in (user_ui, domain_admin_ui):
        for action in ("archive", "delete"):
            assert client.post(f"/client/alerts/{action}", {"ids": [str(host.uuid)]}).status_code == 404
        assert client.get("/client/alerts?state=archived").status_code == 404
    assert Alert.objects.filter(archived=False).count() == 3
    assert not Event.objects.filter(type__startswith="ALERT.").exists()


def test_ticked_alerts_are_archived_then_listed_as_archived(some_alerts, admin_ui):
    host, host_old, pool = some_alerts
    page = text(admin_ui.get("/client/alerts"))
    assert 'data-confirm="Archive the chosen alerts?' in page and 'data-confirm="Delete the chosen alerts?' in page
    assert 'name="csrfmiddlewaretoken"' in page and f'name="ids" value="{host.uuid}" form="alert-selection"' in page
    response = admin_ui.post("/client/alerts/archive?q=Host&page=2", {"ids": [str(host.uuid), str(host_old.uuid)]})
    assert response.status_code == 302 and response["Location"] == "/client/alerts?q=Host"
    assert "2 alerts archived." in words(admin_ui.get(response["Location"]))
    assert set(Alert.objects.filter(archived=True).values_list("pk", flat=True)) == {host.pk, host_old.pk}
    assert alert_subjects(admin_ui.get("/client/alerts")) == ["Pool p1 is short of space"]
    assert alert_subjects(admin_ui.get("/client/alerts?state=archived")) == ["Host h1 is Alert", "Host h2 is Down"]
    assert len(alert_subjects(admin_ui.get("/client/alerts?state=all"))) == 3
    assert "Archive</button>" not in text(admin_ui.get("/client/alerts?state=archived"))
    event = Event.objects.get(type="ALERT.ARCHIVE")
    assert event.description == "2 alerts archived (2 chosen)" and event.username == "admin"


def test_alerts_of_a_type_or_older_than_a_day_are_archived_or_deleted(some_alerts, admin_ui):
    host, host_old, pool = some_alerts
    # the type chosen in the filter is the form's default type
    assert f'<option value="{AlertType.HOST.value}" selected>Host</option>' in text(
        admin_ui.get(f"/client/alerts?type={AlertType.HOST.value}"))
    admin_ui.post("/client/alerts/archive", {"type": str(AlertType.STORAGE_MISC.value)})
    assert list(Alert.objects.filter(archived=True)) == [pool]
    day = (timezone.now() - dt.timedelta(days=5)).date().isoformat()
    response = admin_ui.post("/client/alerts/delete", {"before": day})
    assert "1 alert deleted." in words(admin_ui.get(response["Location"]))
    assert set(Alert.objects.all()) == {host, pool}
    # type and day combined: nothing matches, nothing changes
    admin_ui.post("/client/alerts/delete", {"type": str(AlertType.HOST.value), "before": day})
    assert set(Alert.objects.all()) == {host, pool}
    # deleting reaches archived alerts too
    admin_ui.post("/client/alerts/delete", {"ids": [str(pool.uuid)]})
    assert list(Alert.objects.all()) == [host]
    assert Event.objects.filter(type="ALERT.DELETE").count() == 3


@pytest.mark.parametrize("data, message", [
    ({}, "Tick alerts, or choose a type or a day, first."),
    ({"before": "yesterday"}, "Enter a day such as 2024-05-31"),
    ({"type": "99"}, "Select a valid choice. 99 is not one of the available choices."),
    ({"ids": ["00000000-0000-4000-8000-000000000000"]}, "The ticked alerts are gone already."),
])
def test_an_alert_action_without_a_valid_choice_changes_nothing(some_alerts, admin_ui, data, message):
    response = admin_ui.post("/client/alerts/archive", data)
    assert response.status_code == 302
    assert message in words(admin_ui.get(response["Location"]))
    assert not Alert.objects.filter(archived=True).exists() and Alert.objects.count() == 3
    assert admin_ui.post("/client/alerts/forget", {"type": "7"}).status_code == 404
    assert admin_ui.get("/client/alerts/archive").status_code == 405


def test_alert_actions_need_the_csrf_token(some_alerts, admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin.user)
    assert client.post("/client/alerts/delete", {"type": "7"}).status_code == 403
    assert Alert.objects.count() == 3


def test_alerts_filters_and_sort_never_fail(some_alerts, admin_ui):
    for query in ("type=99", "type=abc", "state=gone", "sort=-where&page=0", "state=all&type=25&sort=-name"):
        assert admin_ui.get(f"/client/alerts?{query}").status_code == 200, query
    assert "“gone” is not a value of state: ignored." in ignored_note(admin_ui.get("/client/alerts?state=gone"))
    assert alert_subjects(admin_ui.get("/client/alerts?sort=sent")) == [
        "Host h2 is Down", "Host h1 is Alert", "Pool p1 is short of space"]


def test_the_alerts_page_costs_the_same_queries_for_any_number_of_rows(some_alerts, admin_ui, sim):
    few = queries(admin_ui, "/client/alerts?state=all")
    for i in range(40):
        compute_services.raise_alert(AlertType.HOST, "ALERT.HOST", f"Host bulk-{i} is Alert", zone=sim.zone,
                                     pod=sim.pod, cluster=sim.cluster)
    assert queries(admin_ui, "/client/alerts?state=all") == few


def test_archive_and_delete_alerts_through_the_api(some_alerts, api):
    host, host_old, pool = some_alerts
    assert api("archiveAlerts").errortext.endswith("either ids, type or enddate must be specified")
    assert api("archiveAlerts", startdate="2020-01-01").status == 431
    assert api("archiveAlerts", type="host").status == 431
    answer = api("archiveAlerts", type=str(AlertType.HOST.value),
                 enddate=(timezone.now() - dt.timedelta(days=1)).strftime("%Y-%m-%d"))
    assert answer.status == 200 and answer.inner["success"] in (True, "true")
    assert list(Alert.objects.filter(archived=True)) == [host_old]
    assert [a["description"] for a in api("listAlerts").inner["alert"]] == ["Pool p1 is short of space",
                                                                         "Host h1 is Alert"]
    assert api("deleteAlerts", ids=f"{host.uuid},{pool.uuid}").status == 200
    assert list(Alert.objects.all()) == [host_old]
    assert api("deleteAlerts", ids="00000000-0000-4000-8000-000000000000").status == 431
    assert api.as_(make_account("plain"))("deleteAlerts", type="7").status == 401
