"""The one access-control path: who may see which rows, and who may run which command.

- visibility: root admin sees all; a domain admin its domain subtree; a user its own account.
- commands: a role's ordered allow/deny rules decide; without a matching rule, the role type's
  defaults declared by the command decide; a command is never allowed beyond the role types it
  declares.
- freshness: what authority is read from (users and their API keys, accounts, domains, roles,
  role rules) may be kept in process memory only against the ACCESS generation, which every
  change to those rows replaces — saves and deletes through signals, bulk writes through
  `AccessRowsQuerySet` — so a change made by any process holds on every process's next request.
"""
from __future__ import annotations

import fnmatch
import re

from django.db.models import Q

from portal.cache import Generation, Snapshot

from .choices import AccountType, Permission, RoleType

RULE_RE = re.compile(r"^[A-Za-z0-9*]+$")


def scope_filter(caller, *, account_field: str = "account", domain_field: str | None = None) -> Q:
    """A Q object restricting rows owned by an account to what `caller` may see."""
    account = caller.account
    if account.type == AccountType.ADMIN:
        return Q()
    if account.type == AccountType.DOMAIN_ADMIN:
        field = domain_field or f"{account_field}__domain"
        return Q(**{f"{field}__path__startswith": account.domain.path})
    return Q(**{account_field: account.pk})  # a pk, so account_field may also be "pk"


def can_see_domain(caller, domain) -> bool:
    account = caller.account
    if account.type == AccountType.ADMIN:
        return True
    if account.type == AccountType.DOMAIN_ADMIN:
        return domain.path.startswith(account.domain.path)
    return domain.pk == account.domain_id


def can_manage_domain(caller, domain) -> bool:
    """May the caller administer objects inside `domain`? (root admin, or a domain admin above it)"""
    account = caller.account
    if account.type == AccountType.ADMIN:
        return True
    if account.type == AccountType.DOMAIN_ADMIN:
        return domain.path.startswith(account.domain.path)
    return False


def can_see_account(caller, account) -> bool:
    me = caller.account
    if me.type == AccountType.ADMIN:
        return True
    if me.type == AccountType.DOMAIN_ADMIN:
        return account.domain.path.startswith(me.domain.path)
    return account.pk == me.pk


def valid_rule(rule: str) -> bool:
    return bool(RULE_RE.match(rule))


def rule_matches(rule: str, command: str) -> bool:
    return fnmatch.fnmatchcase(command.lower(), rule.lower())


def role_allows(role, command_name: str, command_role_types: frozenset[str], rules=None) -> bool:
    """Is `command_name` available to `role`? `rules` may be passed pre-fetched (ordered)."""
    if role.type not in command_role_types:
        return False
    if rules is None:
        rules = ROLE_RULES.get().get(role.pk, ())
    for rule in rules:
        if rule_matches(rule.rule, command_name):
            return rule.permission == Permission.ALLOW
    return True


def _load_role_rules() -> dict[int, tuple]:
    from .models import RolePermission

    rules: dict[int, list] = {}
    for perm in RolePermission.objects.order_by("role_id", "sort_order", "id"):
        rules.setdefault(perm.role_id, []).append(perm)
    return {role_id: tuple(perms) for role_id, perms in rules.items()}


ACCESS = Generation("access")

# Every role's ordered rules, read again after any change to the rows authority comes from.
ROLE_RULES = Snapshot(_load_role_rules, seconds=60.0, generation=ACCESS)

# User fields that password logins keep books in; writing only these changes no one's authority
# (password_login reads them fresh), so it does not make every process re-read its callers.
LOGIN_BOOKKEEPING = frozenset({"last_login", "failed_login_attempts", "login_locked_until"})


def access_changed(fields=None) -> None:
    """Rows authority is read from changed (`fields`: the only columns written, when known):
    every process reads callers and role rules again on its next request. Raises (and so rolls
    the change back) when the other processes cannot be told."""
    if fields is not None and set(fields) <= LOGIN_BOOKKEEPING:
        return
    ACCESS.bump()


def _saved(sender, update_fields=None, **kwargs) -> None:
    access_changed(update_fields)


def _deleted(sender, **kwargs) -> None:
    access_changed()


def announce_access_changes() -> None:
    """Connect the signals (AccountsConfig.ready): a save or delete of any of these models,
    from a service, the admin site or anything else, is an access change."""
    from django.db.models.signals import post_delete, post_save

    from .models import ACCESS_MODELS

    for model in ACCESS_MODELS:
        post_save.connect(_saved, sender=model, dispatch_uid=f"access-changed-save-{model.__name__}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"access-changed-delete-{model.__name__}")


ALL_ROLE_TYPES = frozenset({RoleType.ADMIN, RoleType.DOMAIN_ADMIN, RoleType.USER})
ADMIN_ONLY = frozenset({RoleType.ADMIN})
ADMINS = frozenset({RoleType.ADMIN, RoleType.DOMAIN_ADMIN})


def resolve_scope(caller, params: dict, *, command: str):
    """Turn list scope parameters (account, domainid, isrecursive) into (domain, account) the
    caller may see; unknown or invisible ones are answered as not found."""
    from portal.errors import ParamError

    from .models import Account, Domain

    domain = None
    account = None
    domainid = params.get("domainid")
    if domainid:
        domain = Domain.objects.visible_to(caller).filter(uuid=domainid).first()
        if domain is None:
            raise ParamError(
                f"Unable to execute API command {command.lower()} due to invalid value. Invalid parameter "
                f"domainid value={domainid} due to incorrect long value format, or entity does not exist"
            )
    name = params.get("account")
    if name:
        in_domain = domain or caller.account.domain
        account = Account.objects.visible_to(caller).filter(domain=in_domain, name=name).first()
        if account is None:
            raise ParamError(f"Unable to find account {name} in domain {in_domain.display_path}")
    return domain, account


def apply_list_scope(qs, caller, params: dict, *, command: str, account_field: str = "account",
                     domain_field: str | None = None, owned: bool = True):
    """BaseListDomainResourcesCmd semantics on a queryset of rows owned by accounts.

    owned=True (resources): without listall/domainid/account only the caller's own rows.
    owned=False (tenancy objects such as accounts and users): everything visible by default.
    """
    domain_field = domain_field or f"{account_field}__domain"
    qs = qs.filter(scope_filter(caller, account_field=account_field, domain_field=domain_field))
    domain, account = resolve_scope(caller, params, command=command)
    if account is not None:
        return qs.filter(**{account_field: account.pk})
    if domain is not None:
        if params.get("isrecursive") or params.get("listall"):
            return qs.filter(**{f"{domain_field}__path__startswith": domain.path})
        return qs.filter(**{domain_field: domain})
    if owned and not params.get("listall"):
        return qs.filter(**{account_field: caller.account.pk})
    return qs


def resolve_owner(caller, params: dict, *, command: str):
    """The account a new resource is for: the caller's own, or (for an admin) the one named by
    `account` + `domainid`. A user naming another account is refused."""
    from portal.errors import PermissionDenied

    if not params.get("account"):
        return caller.account
    _, account = resolve_scope(caller, params, command=command)
    if account.pk != caller.account_id and (caller.account.type == AccountType.USER
                                            or not can_manage_domain(caller, account.domain)):
        raise PermissionDenied(f"You may not act for account {account.name}")
    return account
