from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.api.views import api

urlpatterns = [
    path("client/api", api, name="api"),
    path("client/api/", api),
    path("admin/", admin.site.urls),
    path("client/", include("portal.ui_urls")),
    path("", RedirectView.as_view(url="/client/", permanent=False)),
]
