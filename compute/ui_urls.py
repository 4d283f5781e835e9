"""The infrastructure pages of the web UI, under /client/infrastructure (root admin only), and
the instance pages, under /client/instances (every logged-in user, each seeing its VMs)."""
from django.urls import path

from . import views, views_console, views_instances

urlpatterns = [
    path("infrastructure", views.overview, name="infrastructure"),
    path("infrastructure/zones", views.zone_list, name="infra-zones"),
    path("infrastructure/zones/<uuid:uuid>", views.zone_detail, name="infra-zone"),
    path("infrastructure/zones/<uuid:uuid>/<str:action>", views.zone_action, name="infra-zone-action"),
    path("infrastructure/pods", views.pod_list, name="infra-pods"),
    path("infrastructure/pods/<uuid:uuid>", views.pod_detail, name="infra-pod"),
    path("infrastructure/pods/<uuid:uuid>/<str:action>", views.pod_action, name="infra-pod-action"),
    path("infrastructure/ip-ranges/<uuid:uuid>/delete", views.ip_range_delete, name="infra-ip-range-delete"),
    path("infrastructure/clusters", views.cluster_list, name="infra-clusters"),
    path("infrastructure/clusters/<uuid:uuid>", views.cluster_detail, name="infra-cluster"),
    path("infrastructure/clusters/<uuid:uuid>/<str:action>", views.cluster_action, name="infra-cluster-action"),
    path("infrastructure/hosts", views.host_list, name="infra-hosts"),
    path("infrastructure/hosts/<uuid:uuid>", views.host_detail, name="infra-host"),
    path("infrastructure/hosts/<uuid:uuid>/status", views.host_status, name="infra-host-status"),
    path("infrastructure/hosts/<uuid:uuid>/<str:action>", views.host_action, name="infra-host-action"),
    path("infrastructure/primary-storage", views.primary_list, name="infra-primary"),
    path("infrastructure/primary-storage/<uuid:uuid>", views.primary_detail, name="infra-primary-detail"),
    path("infrastructure/primary-storage/<uuid:uuid>/delete", views.primary_delete, name="infra-primary-delete"),
    path("infrastructure/secondary-storage", views.secondary_list, name="infra-secondary"),
    path("infrastructure/secondary-storage/<uuid:uuid>", views.secondary_detail, name="infra-secondary-detail"),
    path("infrastructure/secondary-storage/<uuid:uuid>/delete", views.secondary_delete, name="infra-secondary-delete"),
    # the basic-installation wizard and the progress of its setup job
    path("infrastructure/wizard", views.wizard_start, name="infra-wizard"),
    path("infrastructure/wizard/reset", views.wizard_reset, name="infra-wizard-reset"),
    path("infrastructure/wizard/review", views.wizard_review, name="infra-wizard-review"),
    path("infrastructure/wizard/launch", views.wizard_launch, name="infra-wizard-launch"),
    path("infrastructure/wizard/<str:step>", views.wizard_step, name="infra-wizard-step"),
    path("infrastructure/setup/<uuid:uuid>", views.setup_progress, name="infra-setup"),
    path("infrastructure/setup/<uuid:uuid>/status", views.setup_status, name="infra-setup-status"),
    # instances (everyone, scoped)
    path("instances", views_instances.instance_list, name="instances"),
    path("instances/rows", views_instances.instance_rows, name="instance-rows"),
    path("instances/new", views_instances.instance_create, name="instance-new"),
    path("instances/<uuid:uuid>", views_instances.instance_detail, name="instance-detail"),
    path("instances/<uuid:uuid>/status", views_instances.instance_status, name="instance-status"),
    path("instances/<uuid:uuid>/console", views_console.console_page, name="instance-console"),
    path("instances/<uuid:uuid>/console/token", views_console.console_token, name="instance-console-token"),
    path("instances/<uuid:uuid>/<str:action>", views_instances.instance_action, name="instance-action"),
    # the browser console: API links (createConsoleEndpoint) and the admins' active sessions
    path("console/", views_console.console_link, name="console-page"),
    path("console-sessions", views_console.console_sessions, name="console-sessions"),
    path("console-sessions/<uuid:uuid>/end", views_console.console_session_end, name="console-session-end"),
]
