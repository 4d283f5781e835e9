"""The web UI under /client/."""
from django.urls import path

from accounts import views as account_views
from portal import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login", account_views.login_view, name="login"),
    path("logout", account_views.logout_view, name="logout"),
]
