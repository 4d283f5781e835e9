"""The compute pages of the web UI beyond infrastructure and instances: offerings (everyone lists,
admins manage), guest networks with their IP ranges (everyone, scoped) and alerts (root admin).
Included from portal.ui_urls."""
from django.urls import path

from . import views_networks, views_offerings

urlpatterns = [
    path("offerings", views_offerings.offerings_home, name="offerings"),
    path("networks", views_networks.network_list, name="networks"),
    path("networks/<uuid:uuid>", views_networks.network_detail, name="network"),
    path("alerts", views_networks.alert_list, name="alerts"),
    path("alerts/<str:action>", views_networks.alert_action, name="alert-action"),
]
for _kind in ("service", "disk"):
    urlpatterns += [
        path(f"offerings/{_kind}", views_offerings.offering_list, {"kind": _kind}, name=f"{_kind}-offerings"),
        path(f"offerings/{_kind}/new", views_offerings.offering_create, {"kind": _kind}, name=f"{_kind}-offering-new"),
        path(f"offerings/{_kind}/<uuid:uuid>", views_offerings.offering_detail, {"kind": _kind},
             name=f"{_kind}-offering"),
        path(f"offerings/{_kind}/<uuid:uuid>/delete", views_offerings.offering_delete, {"kind": _kind},
             name=f"{_kind}-offering-delete"),
    ]
