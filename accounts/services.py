"""Tenancy use cases. Each function takes the caller, checks what the caller may do, owns its
transaction and writes its event. Commands (API) and views (UI) call these, nothing else.

Every write here to domains, accounts, users (and their keys), roles and role rules is an access
change that every process honours on its next request: the models announce it themselves
(accounts.access.access_changed, through signals and AccessRowsQuerySet)."""
from __future__ import annotations

import logging
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from portal import events
from portal.errors import InvalidParameterValue, ParamError, PermissionDenied, ResourceInUse

from . import crypto
from .access import can_manage_domain, valid_rule
from .choices import (
    ACCOUNT_TYPE_FOR_ROLE_TYPE,
    ROLE_TYPE_FOR_ACCOUNT_TYPE,
    AccountState,
    AccountType,
    Permission,
    RoleType,
    UserState,
)
from .models import Account, Domain, Role, RolePermission, User

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[^/\\\x00-\x1f]+$")
SYSTEM_ACCOUNT = "system"

DEFAULT_ROLES = (
    ("Root Admin", RoleType.ADMIN, "Default root admin role"),
    ("Domain Admin", RoleType.DOMAIN_ADMIN, "Default domain admin role"),
    ("User", RoleType.USER, "Default user role"),
)


# -- helpers ------------------------------------------------------------------------------------
def _require_admin(caller, what: str) -> None:
    if caller.account.type not in (AccountType.ADMIN, AccountType.DOMAIN_ADMIN):
        raise PermissionDenied(f"Account {caller.account.name} does not have permission to {what}")


def _require_root_admin(caller, what: str) -> None:
    if caller.account.type != AccountType.ADMIN:
        raise PermissionDenied(f"Only a root admin may {what}")


def _require_manage_domain(caller, domain: Domain, what: str) -> None:
    if not can_manage_domain(caller, domain):
        raise PermissionDenied(f"Account {caller.account.name} does not have permission to {what} in domain {domain.display_path}")


def _require_manage_account(caller, account: Account, what: str) -> None:
    if account.name == SYSTEM_ACCOUNT and account.domain.is_root:
        raise PermissionDenied(f"The system account cannot be changed ({what})")
    if caller.account.type == AccountType.ADMIN:
        return
    if caller.account.type == AccountType.DOMAIN_ADMIN and account.domain.is_in_subtree_of(caller.account.domain):
        if account.type == AccountType.ADMIN:
            raise PermissionDenied(f"A domain admin may not {what} a root admin account")
        return
    raise PermissionDenied(f"Account {caller.account.name} does not have permission to {what} account {account.name}")


def _check_name(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ParamError(f"The {what} must not be empty")
    if not NAME_RE.match(value):
        raise ParamError(f"The {what} {value!r} may not contain '/', '\\' or control characters")
    return value


def _check_password(password: str) -> str:
    if password is None or password == "":
        raise ParamError("The password must not be empty")
    return password


def default_role(role_type: str) -> Role:
    return Role.objects.filter(type=role_type, is_default=True).order_by("id").first()


def _role_and_type(caller, accounttype: int | None, role: Role | None) -> tuple[Role, int]:
    if role is not None:
        account_type = ACCOUNT_TYPE_FOR_ROLE_TYPE[role.type]
        if accounttype is not None and accounttype != account_type:
            raise InvalidParameterValue(f"Role {role.name} is of type {role.type}, which does not match accounttype {accounttype}")
    else:
        account_type = AccountType.USER if accounttype is None else accounttype
        if account_type not in ROLE_TYPE_FOR_ACCOUNT_TYPE:
            raise InvalidParameterValue(f"accounttype must be 0 (user), 1 (root admin) or 2 (domain admin), not {accounttype}")
        role = default_role(ROLE_TYPE_FOR_ACCOUNT_TYPE[account_type])
    if account_type == AccountType.ADMIN and caller.account.type != AccountType.ADMIN:
        raise PermissionDenied("Only a root admin may create or promote root admin accounts")
    return role, account_type


# -- bootstrap ------------------------------------------------------------------------------------
@transaction.atomic
def bootstrap(admin_password: str | None) -> list[str]:
    """Idempotent first-run data: default roles, ROOT, the system and admin accounts."""
    done: list[str] = []
    for name, role_type, description in DEFAULT_ROLES:
        _, created = Role.objects.get_or_create(
            name=name, defaults={"type": role_type, "description": description, "is_default": True})
        if created:
            done.append(f"role {name}")
    root, created = Domain.objects.get_or_create(path="/", defaults={"name": "ROOT", "level": 0})
    if created:
        done.append("domain ROOT")
    admin_role = default_role(RoleType.ADMIN)
    system, created = Account.objects.get_or_create(
        domain=root, name=SYSTEM_ACCOUNT,
        defaults={"type": AccountType.ADMIN, "role": admin_role, "is_default": True})
    if created:
        user = User(username="system", account=system, domain=root, firstname="system", lastname="cloud",
                    state=UserState.DISABLED, is_default=True)
        user.set_unusable_password()
        user.save()
        done.append("account system")
    admin, created = Account.objects.get_or_create(
        domain=root, name="admin", defaults={"type": AccountType.ADMIN, "role": admin_role, "is_default": True})
    if created or not admin.users.filter(username="admin").exists():
        user = User(username="admin", account=admin, domain=root, firstname="Admin", lastname="User",
                    is_default=True, password_is_default=not admin_password)
        user.set_password(admin_password or "password")
        user.save()
        done.append("account admin (password " + ("from NUBO_ADMIN_PASSWORD" if admin_password else "'password'") + ")")
    return done


def system_user() -> User:
    return User.objects.select_related("account__domain", "account__role").get(
        username="system", account__name=SYSTEM_ACCOUNT, domain__path="/")


# -- domains ------------------------------------------------------------------------------------
def create_domain(caller, *, name: str, parent: Domain | None = None, network_domain: str = "",
                  domain_uuid: str | None = None) -> Domain:
    _require_admin(caller, "create domains")
    name = _check_name(name, "domain name")
    parent = parent or caller.account.domain
    _require_manage_domain(caller, parent, "create domains")
    with transaction.atomic():
        if Domain.objects.filter(parent=parent, name__iexact=name).exists():
            raise InvalidParameterValue(f"Domain with name {name} already exists under {parent.display_path}")
        domain = Domain(name=name, parent=parent, path=f"{parent.path}{name}/", level=parent.level + 1,
                        network_domain=network_domain or "")
        if domain_uuid:
            domain.uuid = domain_uuid
        try:
            with transaction.atomic():
                domain.save()
        except IntegrityError:
            raise InvalidParameterValue(f"Domain with name {name} (or that id) already exists") from None
        events.record(caller, "DOMAIN.CREATE", f"Domain {domain.display_path} created", resource=domain)
    return domain


def update_domain(caller, domain: Domain, *, name: str | None = None, network_domain: str | None = None) -> Domain:
    _require_admin(caller, "update domains")
    if domain.pk == caller.account.domain_id and caller.account.type != AccountType.ADMIN:
        raise PermissionDenied("A domain admin may not update its own domain")
    _require_manage_domain(caller, domain, "update domains")
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(pk=domain.pk)
        if name is not None and name != domain.name:
            if domain.is_root:
                raise InvalidParameterValue("The ROOT domain cannot be renamed")
            name = _check_name(name, "domain name")
            if Domain.objects.filter(parent=domain.parent, name__iexact=name).exclude(pk=domain.pk).exists():
                raise InvalidParameterValue(f"Domain with name {name} already exists under {domain.parent.display_path}")
            old_path, new_path = domain.path, f"{domain.parent.path}{name}/"
            for sub in Domain.objects.filter(path__startswith=old_path).exclude(pk=domain.pk):
                sub.path = new_path + sub.path[len(old_path):]
                sub.save(update_fields=["path"])
            domain.name, domain.path = name, new_path
        if network_domain is not None:
            domain.network_domain = network_domain
        domain.save()
        events.record(caller, "DOMAIN.UPDATE", f"Domain {domain.display_path} updated", resource=domain)
    return domain


def delete_domain(caller, domain: Domain, *, cleanup: bool = False) -> None:
    _require_admin(caller, "delete domains")
    if domain.is_root:
        raise InvalidParameterValue("The ROOT domain cannot be deleted")
    if domain.pk == caller.account.domain_id:
        raise PermissionDenied("You cannot delete the domain your own account belongs to")
    _require_manage_domain(caller, domain, "delete domains")
    subtree = Domain.objects.filter(path__startswith=domain.path)
    accounts = Account.objects.filter(domain__in=subtree)
    if not cleanup:
        children = list(domain.children.values_list("name", flat=True)[:5])
        names = list(accounts.values_list("name", flat=True)[:5])
        if children or names:
            parts = []
            if children:
                parts.append("sub-domains " + ", ".join(children))
            if names:
                parts.append("accounts " + ", ".join(names))
            raise ResourceInUse(f"Domain {domain.display_path} still has {' and '.join(parts)}; "
                                "delete them first or pass cleanup=true")
    if accounts.filter(pk=caller.account_id).exists():
        raise PermissionDenied("You cannot delete a domain that contains your own account")
    with transaction.atomic():
        for account in accounts.select_related("domain"):
            _delete_account_rows(caller, account)
        display = domain.display_path
        for sub in subtree.order_by("-level"):
            try:
                sub.delete()
            except ProtectedError as exc:  # e.g. a zone dedicated to the domain: refuse, undo everything
                used = sorted(f"{type(obj).__name__} {obj}" for obj in exc.protected_objects)[:5]
                raise ResourceInUse(f"Domain {sub.display_path} is still used by {', '.join(used)}; "
                                    "release it first") from None
        events.record(caller, "DOMAIN.DELETE", f"Domain {display} deleted", resource_type="Domain")


# -- accounts -----------------------------------------------------------------------------------
def create_account(caller, *, username: str, password: str, email: str, firstname: str, lastname: str,
                   account_name: str | None = None, accounttype: int | None = None, role: Role | None = None,
                   domain: Domain | None = None, network_domain: str = "", timezone: str = "",
                   account_uuid: str | None = None, user_uuid: str | None = None) -> Account:
    _require_admin(caller, "create accounts")
    domain = domain or caller.account.domain
    _require_manage_domain(caller, domain, "create accounts")
    role, account_type = _role_and_type(caller, accounttype, role)
    name = _check_name(account_name or username, "account name")
    username = _check_name(username, "username")
    _check_password(password)
    with transaction.atomic():
        if Account.objects.filter(domain=domain, name=name).exists():
            raise InvalidParameterValue(f"The specified account: {name} already exists in domain {domain.display_path}")
        if User.objects.filter(domain=domain, username=username).exists():
            raise InvalidParameterValue(f"The user {username} already exists in domain {domain.display_path}")
        account = Account(name=name, type=account_type, role=role, domain=domain, network_domain=network_domain or "")
        if account_uuid:
            account.uuid = account_uuid
        try:
            with transaction.atomic():
                account.save()
                user = User(username=username, account=account, domain=domain, firstname=firstname, lastname=lastname,
                            email=email, timezone=timezone or "")
                if user_uuid:
                    user.uuid = user_uuid
                user.set_password(password)
                user.save()
        except IntegrityError:
            raise InvalidParameterValue(f"Account {name} or user {username} already exists (or that id is taken)") from None
        events.record(caller, "ACCOUNT.CREATE", f"Account {name} created in {domain.display_path}", resource=account,
                      account=account)
        events.record(caller, "USER.CREATE", f"User {username} created in account {name}", resource=user, account=account)
    return account


def update_account(caller, account: Account, *, new_name: str | None = None, network_domain: str | None = None,
                   role: Role | None = None) -> Account:
    _require_admin(caller, "update accounts")
    _require_manage_account(caller, account, "update")
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("domain").get(pk=account.pk)
        if new_name is not None and new_name != account.name:
            new_name = _check_name(new_name, "account name")
            if account.is_default:
                raise InvalidParameterValue(f"The default account {account.name} cannot be renamed")
            if Account.objects.filter(domain=account.domain, name=new_name).exists():
                raise InvalidParameterValue(f"The specified account: {new_name} already exists in domain {account.domain.display_path}")
            account.name = new_name
        if network_domain is not None:
            account.network_domain = network_domain
        if role is not None and role.pk != account.role_id:
            if ACCOUNT_TYPE_FOR_ROLE_TYPE[role.type] != account.type:
                raise InvalidParameterValue(f"Role {role.name} is of type {role.type}; account {account.name} "
                                            f"needs a role of type {ROLE_TYPE_FOR_ACCOUNT_TYPE[account.type]}")
            if role.type == RoleType.ADMIN and caller.account.type != AccountType.ADMIN:
                raise PermissionDenied("Only a root admin may assign an admin role")
            account.role = role
        account.save()
        events.record(caller, "ACCOUNT.UPDATE", f"Account {account.name} updated", resource=account, account=account)
    return account


def _delete_account_rows(caller, account: Account) -> None:
    """Everything an account owns goes with it. Later apps register their cleanup here via the
    `account_cleanup` hooks (resources are released before the rows are removed)."""
    for hook in ACCOUNT_CLEANUP_HOOKS:
        hook(caller, account)
    name, domain = account.name, account.domain.display_path
    account.delete()
    events.record(caller, "ACCOUNT.DELETE", f"Account {name} in {domain} deleted", resource_type="Account")


ACCOUNT_CLEANUP_HOOKS: list = []


def delete_account(caller, account: Account) -> None:
    _require_admin(caller, "delete accounts")
    _require_manage_account(caller, account, "delete")
    if account.is_default:
        raise InvalidParameterValue(f"The default account {account.name} cannot be deleted")
    if account.pk == caller.account_id:
        raise InvalidParameterValue("You cannot delete your own account")
    with transaction.atomic():
        account = Account.objects.select_for_update().select_related("domain").get(pk=account.pk)
        _delete_account_rows(caller, account)


def set_account_state(caller, account: Account, state: str) -> Account:
    verb = {AccountState.ENABLED: "enable", AccountState.DISABLED: "disable", AccountState.LOCKED: "lock"}[state]
    _require_admin(caller, f"{verb} accounts")
    _require_manage_account(caller, account, verb)
    if account.pk == caller.account_id and state != AccountState.ENABLED:
        raise InvalidParameterValue(f"You cannot {verb} your own account")
    if account.is_default and state != AccountState.ENABLED:
        raise InvalidParameterValue(f"The default account {account.name} cannot be {verb}d" if verb != "lock"
                                    else f"The default account {account.name} cannot be locked")
    with transaction.atomic():
        Account.objects.filter(pk=account.pk).update(state=state)
        account.state = state
        event = {"enable": "ACCOUNT.ENABLE", "disable": "ACCOUNT.DISABLE", "lock": "ACCOUNT.LOCK"}[verb]
        events.record(caller, event, f"Account {account.name} {verb}d" if verb != "lock" else f"Account {account.name} locked",
                      resource=account, account=account)
    return account


# -- users --------------------------------------------------------------------------------------
def create_user(caller, *, account: Account, username: str, password: str, email: str, firstname: str,
                lastname: str, timezone: str = "", user_uuid: str | None = None) -> User:
    _require_admin(caller, "create users")
    _require_manage_account(caller, account, "add users to")
    username = _check_name(username, "username")
    _check_password(password)
    with transaction.atomic():
        if User.objects.filter(domain=account.domain, username=username).exists():
            raise InvalidParameterValue(f"The user {username} already exists in domain {account.domain.display_path}")
        user = User(username=username, account=account, domain=account.domain, email=email, firstname=firstname,
                    lastname=lastname, timezone=timezone or "")
        if user_uuid:
            user.uuid = user_uuid
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise InvalidParameterValue(f"The user {username} (or that id) already exists") from None
        events.record(caller, "USER.CREATE", f"User {username} created in account {account.name}", resource=user,
                      account=account)
    return user


def _require_manage_user(caller, user: User, what: str) -> None:
    if user.pk == caller.pk:
        return
    _require_admin(caller, f"{what} other users")
    _require_manage_account(caller, user.account, what)


def update_user(caller, user: User, *, username: str | None = None, password: str | None = None,
                current_password: str | None = None, email: str | None = None, firstname: str | None = None,
                lastname: str | None = None, timezone: str | None = None, api_key: str | None = None,
                secret_key: str | None = None) -> User:
    _require_manage_user(caller, user, "update")
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account__domain", "domain").get(pk=user.pk)
        if username is not None and username != user.username:
            username = _check_name(username, "username")
            if User.objects.filter(domain=user.domain, username=username).exclude(pk=user.pk).exists():
                raise InvalidParameterValue(f"The user {username} already exists in domain {user.domain.display_path}")
            user.username = username
        if password is not None:
            _check_password(password)
            is_admin_change = caller.pk != user.pk and caller.account.type in (AccountType.ADMIN, AccountType.DOMAIN_ADMIN)
            if not is_admin_change:
                if not current_password or not user.check_password(current_password):
                    raise InvalidParameterValue("To change your password, give your current password (currentpassword)")
            user.set_password(password)
            user.password_is_default = False
        for field, value in (("email", email), ("firstname", firstname), ("lastname", lastname), ("timezone", timezone)):
            if value is not None:
                setattr(user, field, value)
        if (api_key is None) != (secret_key is None):
            raise InvalidParameterValue("userapikey and usersecretkey must be given together")
        if api_key is not None:
            if User.objects.filter(api_key=api_key).exclude(pk=user.pk).exists():
                raise InvalidParameterValue("That API key is already in use; choose another")
            user.api_key = api_key
            user.secret_key_encrypted = crypto.encrypt(secret_key)
        user.save()
        events.record(caller, "USER.UPDATE", f"User {user.username} updated", resource=user, account=user.account)
    return user


def delete_user(caller, user: User) -> None:
    _require_admin(caller, "delete users")
    _require_manage_account(caller, user.account, "delete users of")
    if user.pk == caller.pk:
        raise InvalidParameterValue("You cannot delete yourself")
    if user.is_default:
        raise InvalidParameterValue(f"The default user {user.username} cannot be deleted")
    with transaction.atomic():
        name, account = user.username, user.account
        user.delete()
        events.record(caller, "USER.DELETE", f"User {name} deleted from account {account.name}", resource_type="User",
                      account=account)


def set_user_state(caller, user: User, state: str) -> User:
    verb = {UserState.ENABLED: "enable", UserState.DISABLED: "disable", UserState.LOCKED: "lock"}[state]
    _require_admin(caller, f"{verb} users")
    _require_manage_account(caller, user.account, f"{verb} users of")
    if user.pk == caller.pk and state != UserState.ENABLED:
        raise InvalidParameterValue(f"You cannot {verb} yourself")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(state=state, failed_login_attempts=0, login_locked_until=None)
        user.state = state
        event = {"enable": "USER.ENABLE", "disable": "USER.DISABLE", "lock": "USER.LOCK"}[verb]
        events.record(caller, event, f"User {user.username} {verb}d" if verb != "lock" else f"User {user.username} locked",
                      resource=user, account=user.account)
    return user


def register_user_keys(caller, user: User) -> tuple[str, str]:
    """New API key and secret for `user` (the old pair stops working at once)."""
    _require_manage_user(caller, user, "generate keys for")
    api_key, secret = crypto.new_api_key(), crypto.new_api_key()
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(api_key=api_key, secret_key_encrypted=crypto.encrypt(secret))
        user.api_key = api_key
        user.secret_key_encrypted = crypto.encrypt(secret)
        events.record(caller, "REGISTER.USER.KEY", f"API keys generated for user {user.username}", resource=user,
                      account=user.account)
    return api_key, secret


def get_user_keys(caller, user: User) -> tuple[str | None, str | None]:
    _require_manage_user(caller, user, "read the keys of")
    if not user.api_key:
        return None, None
    return user.api_key, crypto.decrypt(user.secret_key_encrypted)


# -- roles --------------------------------------------------------------------------------------
def create_role(caller, *, name: str, role_type: str | None = None, description: str = "",
                copy_from: Role | None = None) -> Role:
    _require_root_admin(caller, "create roles")
    name = _check_name(name, "role name")
    if copy_from is None and not role_type:  # a blank type= counts as missing
        raise ParamError("Give either type (Admin, DomainAdmin, User) or roleid to copy from")
    role_type = role_type or copy_from.type
    if role_type not in RoleType.values:
        raise InvalidParameterValue(f"Role type must be one of {', '.join(RoleType.values)}, not {role_type}")
    with transaction.atomic():
        if Role.objects.filter(name__iexact=name).exists():
            raise InvalidParameterValue(f"A role named {name} already exists")
        role = Role.objects.create(name=name, type=role_type, description=description or "")
        if copy_from is not None:
            RolePermission.objects.bulk_create([
                RolePermission(role=role, rule=p.rule, permission=p.permission, description=p.description,
                               sort_order=p.sort_order) for p in copy_from.permissions.all()])
        events.record(caller, "ROLE.CREATE", f"Role {name} ({role_type}) created", resource=role)
    return role


def update_role(caller, role: Role, *, name: str | None = None, description: str | None = None,
                role_type: str | None = None) -> Role:
    _require_root_admin(caller, "update roles")
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role.pk)
        if role.is_default and (name is not None and name != role.name or role_type is not None and role_type != role.type):
            raise InvalidParameterValue(f"The default role {role.name} cannot be renamed or change type")
        if name is not None and name != role.name:
            name = _check_name(name, "role name")
            if Role.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
                raise InvalidParameterValue(f"A role named {name} already exists")
            role.name = name
        if role_type is not None and role_type != role.type:
            if role_type not in RoleType.values:
                raise InvalidParameterValue(f"Role type must be one of {', '.join(RoleType.values)}, not {role_type}")
            if role.accounts.exists():
                raise ResourceInUse(f"Role {role.name} is used by accounts; its type cannot change")
            role.type = role_type
        if description is not None:
            role.description = description
        role.save()
        events.record(caller, "ROLE.UPDATE", f"Role {role.name} updated", resource=role)
    return role


def delete_role(caller, role: Role) -> None:
    _require_root_admin(caller, "delete roles")
    if role.is_default:
        raise InvalidParameterValue(f"The default role {role.name} cannot be deleted")
    with transaction.atomic():
        users = list(role.accounts.values_list("name", flat=True)[:5])
        if users:
            raise ResourceInUse(f"Role {role.name} is in use by accounts {', '.join(users)}; give them another role first")
        name = role.name
        role.delete()
        events.record(caller, "ROLE.DELETE", f"Role {name} deleted", resource_type="Role")


def create_role_permission(caller, *, role: Role, rule: str, permission: str, description: str = "") -> RolePermission:
    _require_root_admin(caller, "change role permissions")
    if not valid_rule(rule):
        raise InvalidParameterValue(f"Rule {rule!r} is not an API name or a wildcard such as list*")
    permission = (permission or "").lower()
    if permission not in Permission.values:
        raise InvalidParameterValue(f"permission must be allow or deny, not {permission}")
    with transaction.atomic():
        if role.permissions.filter(rule__iexact=rule).exists():
            raise InvalidParameterValue(f"Role {role.name} already has a rule for {rule}")
        last = role.permissions.order_by("-sort_order").first()
        perm = RolePermission.objects.create(role=role, rule=rule, permission=permission, description=description or "",
                                             sort_order=(last.sort_order + 1) if last else 0)
        events.record(caller, "ROLE.PERMISSION.CREATE", f"Rule {permission} {rule} added to role {role.name}", resource=role)
    return perm


def update_role_permission(caller, perm: RolePermission, *, permission: str) -> RolePermission:
    _require_root_admin(caller, "change role permissions")
    permission = (permission or "").lower()
    if permission not in Permission.values:
        raise InvalidParameterValue(f"permission must be allow or deny, not {permission}")
    with transaction.atomic():
        RolePermission.objects.filter(pk=perm.pk).update(permission=permission)
        perm.permission = permission
        events.record(caller, "ROLE.PERMISSION.UPDATE", f"Rule {perm.rule} of role {perm.role.name} set to {permission}",
                      resource=perm.role)
    return perm


def reorder_role_permissions(caller, role: Role, ordered: list[RolePermission]) -> None:
    _require_root_admin(caller, "change role permissions")
    if {p.pk for p in ordered} != set(role.permissions.values_list("pk", flat=True)):
        raise InvalidParameterValue("ruleorder must list every rule of the role exactly once")
    with transaction.atomic():
        for index, perm in enumerate(ordered):
            RolePermission.objects.filter(pk=perm.pk).update(sort_order=index)
        events.record(caller, "ROLE.PERMISSION.UPDATE", f"Rules of role {role.name} reordered", resource=role)


def delete_role_permission(caller, perm: RolePermission) -> None:
    _require_root_admin(caller, "change role permissions")
    with transaction.atomic():
        role, rule = perm.role, perm.rule
        perm.delete()
        events.record(caller, "ROLE.PERMISSION.DELETE", f"Rule {rule} removed from role {role.name}", resource=role)


# -- login --------------------------------------------------------------------------------------
def login_response(user: User, sessionkey: str, timeout: int) -> dict[str, Any]:
    """CloudStack's flat loginresponse: every value a string except `timeout`."""
    return {
        "username": user.username,
        "userid": str(user.uuid),
        "domainid": str(user.domain.uuid),
        "timeout": timeout,
        "account": user.account.name,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "type": str(user.account.type),
        "timezone": user.timezone or "UTC",
        "timezoneoffset": "0.0",
        "registered": "false",
        "sessionkey": sessionkey,
        "is2faenabled": "false",
        "is2faverified": "true",
        "passwordchangerequired": user.password_is_default,
    }


def record_login(user: User, *, api: bool) -> None:
    events.record(user, "USER.LOGIN", f"User {user.username} logged in" + (" (API)" if api else ""), resource=user,
                  account=user.account)
