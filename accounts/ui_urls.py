"""The tenancy pages of the web UI beyond login, domains, accounts and users (portal.ui_urls):
SSH key pairs (everyone, its own account's; admins also those they see) and roles with their
permission rules (root admin only). Included from portal.ui_urls."""
from django.urls import path

from . import views_keypairs, views_roles

urlpatterns = [
    path("ssh-keypairs", views_keypairs.keypair_list, name="ssh-keypairs"),
    path("ssh-keypairs/new", views_keypairs.keypair_create, name="ssh-keypair-new"),
    path("ssh-keypairs/<uuid:uuid>", views_keypairs.keypair_detail, name="ssh-keypair"),
    path("ssh-keypairs/<uuid:uuid>/delete", views_keypairs.keypair_delete, name="ssh-keypair-delete"),
    path("roles", views_roles.role_list, name="roles"),
    path("roles/new", views_roles.role_create, name="role-new"),
    path("roles/<uuid:uuid>", views_roles.role_detail, name="role"),
    path("roles/<uuid:uuid>/delete", views_roles.role_delete, name="role-delete"),
    path("roles/<uuid:uuid>/rules", views_roles.rule_add, name="role-rule-add"),
    path("roles/<uuid:uuid>/rules/<uuid:rule_uuid>/<str:action>", views_roles.rule_action, name="role-rule-action"),
]
