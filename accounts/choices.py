"""Enumerations of the tenancy model, with CloudStack's values."""
from django.db import models


class AccountType(models.IntegerChoices):
    USER = 0, "User"
    ADMIN = 1, "Root admin"
    DOMAIN_ADMIN = 2, "Domain admin"


class RoleType(models.TextChoices):
    ADMIN = "Admin", "Admin"
    DOMAIN_ADMIN = "DomainAdmin", "Domain admin"
    USER = "User", "User"


ROLE_TYPE_FOR_ACCOUNT_TYPE = {
    AccountType.USER: RoleType.USER,
    AccountType.ADMIN: RoleType.ADMIN,
    AccountType.DOMAIN_ADMIN: RoleType.DOMAIN_ADMIN,
}
ACCOUNT_TYPE_FOR_ROLE_TYPE = {v: k for k, v in ROLE_TYPE_FOR_ACCOUNT_TYPE.items()}


class AccountState(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"
    LOCKED = "locked", "Locked"


class UserState(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"
    LOCKED = "locked", "Locked"


class DomainState(models.TextChoices):
    ACTIVE = "Active", "Active"
    INACTIVE = "Inactive", "Inactive"


class Permission(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"
