"""Tenancy: the domain tree, accounts, users, roles and their per-command rules.

Visibility is one rule, applied through `visible_to(caller)` on every queryset here
(root admin: everything; domain admin: its domain subtree; user: its own account).
"""
from __future__ import annotations

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models import Value
from django.db.models.functions import Collate, Lower, Replace

from .choices import AccountState, AccountType, DomainState, Permission, RoleType, UserState


class AccessRowsQuerySet(models.QuerySet):
    """Querysets of the rows authority is read from (ACCESS_MODELS): bulk writes, which send no
    signals, announce themselves as access changes like saves and deletes do."""

    def update(self, **kwargs):
        from .access import access_changed

        rows = super().update(**kwargs)
        if rows:
            access_changed(kwargs)
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        from .access import access_changed

        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            access_changed()
        return created


class DomainQuerySet(AccessRowsQuerySet):
    def visible_to(self, caller) -> "DomainQuerySet":
        account = caller.account
        if account.type == AccountType.ADMIN:
            return self
        if account.type == AccountType.DOMAIN_ADMIN:
            return self.filter(path__startswith=account.domain.path)
        return self.filter(pk=account.domain_id)


class Domain(models.Model):
    """A node of the domain tree. `path` is "/" for ROOT and "/a/b/" below it, so a subtree is
    one indexed prefix query."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    path = models.CharField(max_length=1024, unique=True, db_index=True)
    level = models.PositiveIntegerField(default=0)
    network_domain = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=16, choices=DomainState.choices, default=DomainState.ACTIVE)
    created = models.DateTimeField(auto_now_add=True)

    objects = DomainQuerySet.as_manager()

    class Meta:
        ordering = ["path"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="domain_unique_name_in_parent"),
        ]

    def __str__(self) -> str:
        return self.display_path

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @property
    def display_path(self) -> str:
        """CloudStack's response form: ROOT, ROOT/a, ROOT/a/b."""
        return domain_display_path(self.path)

    # Properties response serializers may read from .values() rows: name -> (column, function).
    VALUES_DERIVED = {"display_path": ("path", lambda path: domain_display_path(path))}

    def is_in_subtree_of(self, other: "Domain") -> bool:
        return self.path.startswith(other.path)


def domain_display_path(path: str) -> str:
    """A domain path ("/", "/a/b/") in CloudStack's response form: ROOT, ROOT/a/b."""
    return "ROOT" + path.rstrip("/") if path != "/" else "ROOT"


def tree_order(path_field: str = "path") -> Collate:
    """An ordering of domain paths in tree order, whatever the database's collation: each domain
    before its subtree, siblings by name ignoring case ("/alpha/", "/alpha/zeta/", "/alpha-2/").
    The "/" between names becomes U+0001, below any character of a name, and the lowercased
    paths are compared byte by byte (collation "C")."""
    return Collate(Replace(Lower(path_field), Value("/"), Value("\x01")), "C")


class Role(models.Model):
    """A CloudStack dynamic role: a role type that caps what it may ever do, and ordered
    allow/deny rules on command names (wildcards allowed)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=16, choices=RoleType.choices)
    description = models.TextField(blank=True, default="")
    is_default = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = AccessRowsQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class RolePermission(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="permissions")
    rule = models.CharField(max_length=255)
    permission = models.CharField(max_length=8, choices=Permission.choices)
    description = models.TextField(blank=True, default="")
    sort_order = models.PositiveIntegerField(default=0)

    objects = AccessRowsQuerySet.as_manager()

    class Meta:
        ordering = ["role_id", "sort_order", "id"]
        constraints = [models.UniqueConstraint(fields=["role", "rule"], name="rolepermission_unique_rule")]

    def __str__(self) -> str:
        return f"{self.role}: {self.permission} {self.rule}"


class AccountQuerySet(AccessRowsQuerySet):
    def visible_to(self, caller) -> "AccountQuerySet":
        account = caller.account
        if account.type == AccountType.ADMIN:
            return self
        if account.type == AccountType.DOMAIN_ADMIN:
            return self.filter(domain__path__startswith=account.domain.path)
        return self.filter(pk=account.pk)


class Account(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    type = models.IntegerField(choices=AccountType.choices, default=AccountType.USER)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="accounts")
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="accounts")
    state = models.CharField(max_length=16, choices=AccountState.choices, default=AccountState.ENABLED)
    network_domain = models.CharField(max_length=255, blank=True, default="")
    is_default = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="account_unique_name_in_domain")]

    def __str__(self) -> str:
        return f"{self.name} ({self.domain.display_path})"

    @property
    def is_root_admin(self) -> bool:
        return self.type == AccountType.ADMIN

    @property
    def is_domain_admin(self) -> bool:
        return self.type == AccountType.DOMAIN_ADMIN


class UserQuerySet(AccessRowsQuerySet):
    def visible_to(self, caller) -> "UserQuerySet":
        account = caller.account
        if account.type == AccountType.ADMIN:
            return self
        if account.type == AccountType.DOMAIN_ADMIN:
            return self.filter(domain__path__startswith=account.domain.path)
        return self.filter(account_id=account.pk)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True


class User(AbstractBaseUser):
    """A person or program acting for an account. Usernames are unique within a domain."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    username = models.CharField(max_length=255)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="users")
    # Denormalised from account.domain so that the uniqueness rule is a database constraint.
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="users")
    firstname = models.CharField(max_length=255, blank=True, default="")
    lastname = models.CharField(max_length=255, blank=True, default="")
    email = models.CharField(max_length=255, blank=True, default="")
    timezone = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=16, choices=UserState.choices, default=UserState.ENABLED)
    is_default = models.BooleanField(default=False)
    api_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    secret_key_encrypted = models.TextField(blank=True, default="")
    failed_login_attempts = models.PositiveIntegerField(default=0)
    login_locked_until = models.DateTimeField(null=True, blank=True)
    password_is_default = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["domain", "username"], name="user_unique_name_in_domain")]

    def __str__(self) -> str:
        return f"{self.username} ({self.domain.display_path})"

    # Django admin and auth integration: root admins are the staff.
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.state == UserState.ENABLED and self.account.state == AccountState.ENABLED

    @property
    def is_staff(self) -> bool:
        return self.account.type == AccountType.ADMIN

    @property
    def is_superuser(self) -> bool:
        return self.is_staff

    def has_perm(self, perm, obj=None) -> bool:
        return self.is_active and self.is_superuser

    def has_perms(self, perm_list, obj=None) -> bool:
        return self.is_active and self.is_superuser

    def has_module_perms(self, app_label) -> bool:
        return self.is_active and self.is_superuser

    def get_full_name(self) -> str:
        return f"{self.firstname} {self.lastname}".strip() or self.username

    def get_short_name(self) -> str:
        return self.firstname or self.username


# What callers' authority is read from (accounts.access.ACCESS): every change to these is announced.
ACCESS_MODELS = (Domain, Role, RolePermission, Account, User)


# -- SSH key pairs (issue 5) ------------------------------------------------------------------------
class SSHKeyPairQuerySet(models.QuerySet):
    def visible_to(self, caller) -> "SSHKeyPairQuerySet":
        from .access import scope_filter

        return self.filter(scope_filter(caller))


class SSHKeyPair(models.Model):
    """The public half of an SSH key, named per account (CloudStack's ssh_keypairs). The private
    half of a key made by createSSHKeyPair is returned once and never stored."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ssh_keypairs")
    public_key = models.TextField()  # "type base64", as CloudStack stores it (no comment)
    fingerprint = models.CharField(max_length=64, db_index=True)  # MD5, colon-separated hex
    created = models.DateTimeField(auto_now_add=True)

    objects = SSHKeyPairQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="sshkeypair_unique_name_in_account")]

    def __str__(self) -> str:
        return self.name


# -- resource limits (issue 5) ----------------------------------------------------------------------
class ResourceLimit(models.Model):
    """An explicit limit of one resource type (accounts.limits.RESOURCE_TYPES, 0..11) for one
    account or one domain (exactly one of them). `max` is in the API's units (a number; MiB for
    memory; GiB for primary and secondary storage), -1 for unlimited. Without a row the
    max.account.* / max.domain.* settings apply. Usage is never stored: it is counted from rows."""

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="resource_limits")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="resource_limits")
    resource_type = models.PositiveSmallIntegerField()
    max = models.BigIntegerField()
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(account__isnull=False, domain__isnull=True)
                           | models.Q(account__isnull=True, domain__isnull=False)),
                name="resourcelimit_account_xor_domain"),
            models.CheckConstraint(condition=models.Q(resource_type__lte=11), name="resourcelimit_known_type"),
            models.CheckConstraint(condition=models.Q(max__gte=-1), name="resourcelimit_max_at_least_minus_one"),
            models.UniqueConstraint(fields=["account", "resource_type"], condition=models.Q(account__isnull=False),
                                    name="resourcelimit_unique_account_type"),
            models.UniqueConstraint(fields=["domain", "resource_type"], condition=models.Q(domain__isnull=False),
                                    name="resourcelimit_unique_domain_type"),
        ]

    def __str__(self) -> str:
        owner = self.account if self.account_id else self.domain
        return f"{owner}: type {self.resource_type} max {self.max}"
