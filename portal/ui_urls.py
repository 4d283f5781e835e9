"""The web UI under /client/."""
from django.urls import include, path

from accounts import views as account_views
from accounts import views_edit
from portal import views, views_settings

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login", account_views.login_view, name="login"),
    path("logout", account_views.logout_view, name="logout"),
    # the caller's own account
    path("account", account_views.my_account, name="my-account"),
    path("account/keys", account_views.my_account_keys, name="my-account-keys"),
    path("account/password", account_views.change_password, name="change-password"),
    # admin pages (root admin, domain admin): 404 for plain users
    path("domains", account_views.domain_list, name="domains"),
    path("domains/new", account_views.domain_create, name="domain-create"),
    path("domains/<uuid:uuid>", views_edit.domain_detail, name="domain-detail"),
    path("domains/<uuid:uuid>/edit", views_edit.domain_update, name="domain-update"),
    path("domains/<uuid:uuid>/limits/<int:resource_type>", views_edit.domain_limit, name="domain-limit"),
    path("domains/<uuid:uuid>/delete", account_views.domain_delete, name="domain-delete"),
    path("accounts", account_views.account_list, name="accounts"),
    path("accounts/new", account_views.account_create, name="account-create"),
    path("accounts/<uuid:uuid>", account_views.account_detail, name="account-detail"),
    path("accounts/<uuid:uuid>/edit", views_edit.account_update, name="account-update"),
    path("accounts/<uuid:uuid>/limits/<int:resource_type>", views_edit.account_limit, name="account-limit"),
    path("accounts/<uuid:uuid>/<str:action>", account_views.account_action, name="account-action"),
    path("users", account_views.user_list, name="users"),
    path("users/new", account_views.user_create, name="user-create"),
    path("users/<uuid:uuid>", views_edit.user_detail, name="user-detail"),
    path("users/<uuid:uuid>/edit", views_edit.user_update, name="user-update"),
    path("users/<uuid:uuid>/password", views_edit.user_password, name="user-password"),
    path("users/<uuid:uuid>/keys", account_views.user_keys, name="user-keys"),
    path("users/<uuid:uuid>/<str:action>", account_views.user_action, name="user-action"),
    # infrastructure (root admin only; 404 for everyone else)
    path("", include("compute.ui_urls")),
    # everyone, scoped
    path("", include("storage.ui_urls")),
    path("", include("compute.ui_urls_more")),
    path("", include("accounts.ui_urls")),
    path("events", views.event_list, name="events"),
    path("jobs", views.job_list, name="jobs"),
    path("settings", views_settings.setting_list, name="settings"),
    path("settings/<str:name>", views_settings.setting_detail, name="setting"),
    path("settings/<str:scope>/<uuid:uuid>", views_settings.scoped_settings, name="scoped-settings"),
    path("settings/<str:scope>/<uuid:uuid>/<str:name>", views_settings.scoped_setting, name="scoped-setting"),
]
