from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portal.api.views import api
from storage.downloads import extract_download

urlpatterns = [
    path("client/api", api, name="api"),
    path("client/api/", api),
    path("client/extract/<str:filename>", extract_download, name="extract-download"),
    path("admin/", admin.site.urls),
    path("client/", include("portal.ui_urls")),
    path("", RedirectView.as_view(url="/client/", permanent=False)),
]
