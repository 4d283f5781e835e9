"""The template and ISO pages of the web UI, under /client/templates and /client/isos, and the
volumes page, /client/volumes (every logged-in user, each seeing what it may use or owns)."""
from django.urls import path

from . import views, views_volumes

urlpatterns = [path("volumes", views_volumes.volume_list, name="volumes")]
for kind in ("templates", "isos"):
    urlpatterns += [
        path(kind, views.image_list, {"kind": kind}, name=kind),
        path(f"{kind}/rows", views.image_rows, {"kind": kind}, name=f"{kind}-rows"),
        path(f"{kind}/new", views.image_register, {"kind": kind}, name=f"{kind}-new"),
        path(f"{kind}/<uuid:uuid>", views.image_detail, {"kind": kind}, name=f"{kind}-detail"),
        path(f"{kind}/<uuid:uuid>/zones", views.image_zones, {"kind": kind}, name=f"{kind}-zones"),
        path(f"{kind}/<uuid:uuid>/<str:action>", views.image_action, {"kind": kind}, name=f"{kind}-action"),
    ]
