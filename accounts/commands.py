"""API commands of the tenancy model: declarations that validate, then call one service."""
from __future__ import annotations

from django.db.models import Exists, OuterRef
from rest_framework import serializers

from portal.api import params as P
from portal.api.listing import keyword_filter
from portal.api.registry import Command, ListParams, ScopedListParams, register

from . import services
from .access import ADMIN_ONLY, ADMINS, ALL_ROLE_TYPES, apply_list_scope
from .choices import AccountState, UserState
from .models import Account, Domain, Role, RolePermission, User
from .responses import (
    AccountResponse,
    DomainResponse,
    RolePermissionResponse,
    RoleResponse,
    UserKeysResponse,
    UserResponse,
)


def domains_with_flags(qs):
    return qs.select_related("parent").annotate(has_child=Exists(Domain.objects.filter(parent=OuterRef("pk"))))


def accounts_for_response(qs):
    return qs.select_related("role", "domain")  # users: AccountResponse.prepare


def users_for_response(qs):
    return qs.select_related("account__role", "domain")




# -- domains ------------------------------------------------------------------------------------
class CreateDomainParams(serializers.Serializer):
    name = P.String(required=True, help_text="creates domain with this name")
    parentdomainid = P.Entity(Domain, help_text="assigns new domain a parent domain by domain ID of the parent. "
                                                "If no parent domain is specified, the ROOT domain is assumed.")
    networkdomain = P.String(help_text="Network domain for networks in the domain")
    domainid = P.Uuid(help_text="Domain UUID, required for adding domain from another Region")


@register
class CreateDomain(Command):
    name = "createDomain"
    description = "Creates a domain"
    Params = CreateDomainParams
    response = DomainResponse
    roles = ADMINS
    event = "DOMAIN.CREATE"

    def execute(self, params):
        domain = services.create_domain(self.caller, name=params["name"], parent=params.get("parentdomainid"),
                                        network_domain=params.get("networkdomain", ""),
                                        domain_uuid=params.get("domainid"))
        return domains_with_flags(Domain.objects.filter(pk=domain.pk)).get()


class ListDomainsParams(ListParams):
    id = P.Uuid(help_text="List domain by domain ID.")
    name = P.String(help_text="List domain by domain name.")
    level = P.Integer(help_text="List domains by domain level.")
    listall = P.Boolean(help_text="If set to false, list only resources belonging to the command's caller; "
                                  "if set to true - list resources that the caller is authorized to see.")
    details = P.List(help_text="comma separated list of domain details requested: all, resource, min")


@register
class ListDomains(Command):
    name = "listDomains"
    description = "Lists domains and provides detailed information for listed domains"
    Params = ListDomainsParams
    response = DomainResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = Domain.objects.visible_to(self.caller)
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        if params.get("level") is not None:
            qs = qs.filter(level=params["level"])
        qs = keyword_filter(qs, params.get("keyword"), "name")
        return domains_with_flags(qs)


class ListDomainChildrenParams(ListParams):
    id = P.Entity(Domain, help_text="list children of the domain by ID (default: the caller's domain)")
    name = P.String(help_text="list children domains by name")
    isrecursive = P.Boolean(help_text="to return the entire tree, use the value true")
    listall = P.Boolean(help_text="If set to true, list every domain below the one given")


@register
class ListDomainChildren(Command):
    name = "listDomainChildren"
    description = "Lists all children domains belonging to a specified domain"
    Params = ListDomainChildrenParams
    response = DomainResponse
    kind = "list"
    roles = ADMINS

    def execute(self, params):
        parent = params.get("id") or self.caller.account.domain
        if params.get("isrecursive") or params.get("listall"):
            qs = Domain.objects.filter(path__startswith=parent.path).exclude(pk=parent.pk)
        else:
            qs = Domain.objects.filter(parent=parent)
        qs = qs.visible_to(self.caller)
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        return domains_with_flags(keyword_filter(qs, params.get("keyword"), "name"))


class UpdateDomainParams(serializers.Serializer):
    id = P.Entity(Domain, required=True, help_text="ID of domain to update")
    name = P.String(help_text="updates domain with this name")
    networkdomain = P.String(help_text="Network domain for the domain's networks")


@register
class UpdateDomain(Command):
    name = "updateDomain"
    description = "Updates a domain with a new name"
    Params = UpdateDomainParams
    response = DomainResponse
    roles = ADMINS
    event = "DOMAIN.UPDATE"

    def execute(self, params):
        domain = services.update_domain(self.caller, params["id"], name=params.get("name"),
                                        network_domain=params.get("networkdomain"))
        return domains_with_flags(Domain.objects.filter(pk=domain.pk)).get()


class DeleteDomainParams(serializers.Serializer):
    id = P.Entity(Domain, required=True, help_text="ID of domain to delete")
    cleanup = P.Boolean(help_text="true if all domain resources (child domains, accounts) have to be cleaned up, "
                                  "false otherwise")


@register
class DeleteDomain(Command):
    name = "deleteDomain"
    description = "Deletes a specified domain"
    Params = DeleteDomainParams
    kind = "success"
    roles = ADMINS
    is_async = True
    event = "DOMAIN.DELETE"
    instance_type = "Domain"

    def execute(self, params):
        services.delete_domain(self.caller, params["id"], cleanup=params.get("cleanup", False))
        return True


# -- accounts -----------------------------------------------------------------------------------
class CreateAccountParams(serializers.Serializer):
    username = P.String(required=True, help_text="Unique username.")
    password = P.Password(required=True, help_text="Clear text password (Default hashed to SHA256SALT).")
    email = P.String(required=True, help_text="email")
    firstname = P.String(required=True, help_text="firstname")
    lastname = P.String(required=True, help_text="lastname")
    account = P.String(help_text="Name of the account to be created. The user will be added to this newly "
                                 "created account. If no account is specified, the username will be used as "
                                 "the account name.")
    accounttype = P.Integer(help_text="Type of the account.  Specify 0 for user, 1 for root admin, and 2 for "
                                      "domain admin")
    roleid = P.Entity(Role, help_text="Creates the account under the specified role.")
    domainid = P.Entity(Domain, help_text="Creates the user under the specified domain.")
    networkdomain = P.String(help_text="Network domain for the account's networks")
    timezone = P.String(help_text="Specifies a timezone for this command.")
    accountdetails = P.Map(help_text="details for account used to store specific parameters")
    accountid = P.Uuid(help_text="Account UUID, required for adding account from external provisioning system")
    userid = P.Uuid(help_text="User UUID, required for adding account from external provisioning system")


@register
class CreateAccount(Command):
    name = "createAccount"
    description = "Creates an account"
    Params = CreateAccountParams
    response = AccountResponse
    roles = ADMINS
    event = "ACCOUNT.CREATE"

    def execute(self, params):
        account = services.create_account(
            self.caller, username=params["username"], password=params["password"], email=params["email"],
            firstname=params["firstname"], lastname=params["lastname"], account_name=params.get("account"),
            accounttype=params.get("accounttype"), role=params.get("roleid"), domain=params.get("domainid"),
            network_domain=params.get("networkdomain", ""), timezone=params.get("timezone", ""),
            account_uuid=params.get("accountid"), user_uuid=params.get("userid"))
        return accounts_for_response(Account.objects.filter(pk=account.pk)).get()


class ListAccountsParams(ScopedListParams):
    id = P.Uuid(help_text="list account by account ID")
    name = P.String(help_text="list account by account name")
    accounttype = P.Integer(help_text="list accounts by account type. Valid account types are 1 (admin), "
                                      "2 (domain-admin), and 0 (user).")
    state = P.String(help_text="list accounts by state. Valid states are enabled, disabled, and locked.")
    iscleanuprequired = P.Boolean(help_text="list accounts by cleanuprequired attribute (values are true or false)")
    details = P.List(help_text="comma separated list of account details requested: all, resource, min")


@register
class ListAccounts(Command):
    name = "listAccounts"
    description = "Lists accounts and provides detailed account information for listed accounts"
    Params = ListAccountsParams
    response = AccountResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = apply_list_scope(Account.objects.exclude(name=services.SYSTEM_ACCOUNT, domain__parent=None),
                              self.caller, params, command=self.name, account_field="pk", domain_field="domain",
                              owned=False)
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        if params.get("accounttype") is not None:
            qs = qs.filter(type=params["accounttype"])
        if params.get("state"):
            qs = qs.filter(state=params["state"].lower())
        # a page shares its few roles and domains: one instance each (prefetched), not one per row
        return keyword_filter(qs, params.get("keyword"), "name").prefetch_related("role", "domain")


class AccountRefParams(serializers.Serializer):
    """`id`, or `account` + `domainid`, naming one account the caller may see."""

    id = P.Entity(Account, help_text="Account id")
    account = P.String(help_text="Account name")
    domainid = P.Entity(Domain, help_text="Domain ID of the account")

    def validate(self, attrs):
        if attrs.get("id") is None:
            name, domain = attrs.get("account"), attrs.get("domainid")
            if not name or domain is None:
                raise serializers.ValidationError("Either id or account and domainid must be given")
            account = Account.objects.visible_to(self.context["caller"]).filter(domain=domain, name=name).first()
            if account is None:
                raise serializers.ValidationError(f"Unable to find account {name} in domain {domain.display_path}")
            attrs["id"] = account
        return attrs


class UpdateAccountParams(AccountRefParams):
    newname = P.String(help_text="new name for the account")
    networkdomain = P.String(help_text="Network domain for the account's networks")
    roleid = P.Entity(Role, help_text="The UUID of the dynamic role to set for the account")
    accountdetails = P.Map(help_text="Details for the account used to store specific parameters")


@register
class UpdateAccount(Command):
    name = "updateAccount"
    description = "Updates account information for the authenticated user"
    Params = UpdateAccountParams
    response = AccountResponse
    roles = ADMINS
    event = "ACCOUNT.UPDATE"

    def execute(self, params):
        account = services.update_account(self.caller, params["id"], new_name=params.get("newname"),
                                          network_domain=params.get("networkdomain"), role=params.get("roleid"))
        return accounts_for_response(Account.objects.filter(pk=account.pk)).get()


class DeleteAccountParams(serializers.Serializer):
    id = P.Entity(Account, required=True, help_text="Account id")


@register
class DeleteAccount(Command):
    name = "deleteAccount"
    description = "Deletes an account and all the users associated with it"
    Params = DeleteAccountParams
    kind = "success"
    roles = ADMINS
    is_async = True
    event = "ACCOUNT.DELETE"
    instance_type = "Account"

    def execute(self, params):
        services.delete_account(self.caller, params["id"])
        return True


class DisableAccountParams(AccountRefParams):
    lock = P.Boolean(required=True, help_text="If true, only lock the account; else disable the account")


@register
class DisableAccount(Command):
    name = "disableAccount"
    description = "Disables an account"
    Params = DisableAccountParams
    response = AccountResponse
    roles = ADMINS
    is_async = True
    event = "ACCOUNT.DISABLE"
    instance_type = "Account"

    def instance_of(self, params):
        return params["id"]

    def execute(self, params):
        state = AccountState.LOCKED if params["lock"] else AccountState.DISABLED
        account = services.set_account_state(self.caller, params["id"], state)
        return accounts_for_response(Account.objects.filter(pk=account.pk)).get()


@register
class EnableAccount(Command):
    name = "enableAccount"
    description = "Enables an account"
    Params = AccountRefParams
    response = AccountResponse
    roles = ADMINS
    event = "ACCOUNT.ENABLE"

    def execute(self, params):
        account = services.set_account_state(self.caller, params["id"], AccountState.ENABLED)
        return accounts_for_response(Account.objects.filter(pk=account.pk)).get()


@register
class LockAccount(Command):
    name = "lockAccount"
    description = "This deprecated function used to locks an account. Look for the API DisableAccount instead"
    Params = AccountRefParams
    response = AccountResponse
    roles = ADMINS
    event = "ACCOUNT.LOCK"

    def execute(self, params):
        account = services.set_account_state(self.caller, params["id"], AccountState.LOCKED)
        return accounts_for_response(Account.objects.filter(pk=account.pk)).get()


# -- users --------------------------------------------------------------------------------------
class CreateUserParams(serializers.Serializer):
    account = P.String(required=True, help_text="Creates the user under the specified account. If no account is "
                                                "specified, the username will be used as the account name.")
    username = P.String(required=True, help_text="Unique username.")
    password = P.Password(required=True, help_text="Clear text password")
    email = P.String(required=True, help_text="email")
    firstname = P.String(required=True, help_text="firstname")
    lastname = P.String(required=True, help_text="lastname")
    domainid = P.Entity(Domain, help_text="Creates the user under the specified domain. Has to be accompanied "
                                          "with the account parameter")
    timezone = P.String(help_text="Specifies a timezone for this command.")
    userid = P.Uuid(help_text="User UUID, required for adding account from external provisioning system")

    def validate(self, attrs):
        caller = self.context["caller"]
        domain = attrs.get("domainid") or caller.account.domain
        account = Account.objects.visible_to(caller).filter(domain=domain, name=attrs["account"]).first()
        if account is None:
            raise serializers.ValidationError(f"Unable to find account {attrs['account']} in domain {domain.display_path}")
        attrs["account"] = account
        return attrs


@register
class CreateUser(Command):
    name = "createUser"
    description = "Creates a user for an account that already exists"
    Params = CreateUserParams
    response = UserResponse
    roles = ADMINS
    event = "USER.CREATE"

    def execute(self, params):
        user = services.create_user(self.caller, account=params["account"], username=params["username"],
                                    password=params["password"], email=params["email"],
                                    firstname=params["firstname"], lastname=params["lastname"],
                                    timezone=params.get("timezone", ""), user_uuid=params.get("userid"))
        return users_for_response(User.objects.filter(pk=user.pk)).get()


class ListUsersParams(ScopedListParams):
    id = P.Uuid(help_text="List user by ID.")
    username = P.String(help_text="List user by the username")
    accounttype = P.Integer(help_text="List users by account type. Valid types include admin, domain-admin, "
                                      "read-only-admin, or user.")
    state = P.String(help_text="List users by state of the user account.")


@register
class ListUsers(Command):
    name = "listUsers"
    description = "Lists user accounts"
    Params = ListUsersParams
    response = UserResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = apply_list_scope(User.objects.exclude(account__name=services.SYSTEM_ACCOUNT, domain__parent=None),
                              self.caller, params, command=self.name, account_field="account",
                              domain_field="domain", owned=False)
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("username"):
            qs = qs.filter(username=params["username"])
        if params.get("accounttype") is not None:
            qs = qs.filter(account__type=params["accounttype"])
        if params.get("state"):
            qs = qs.filter(state=params["state"].lower())
        return users_for_response(keyword_filter(qs, params.get("keyword"), "username", "firstname", "lastname", "email"))


class UpdateUserParams(serializers.Serializer):
    id = P.Entity(User, required=True, help_text="User uuid")
    username = P.String(help_text="Unique username")
    password = P.Password(help_text="Clear text password (default hashed to SHA256SALT). If you wish to use any "
                                    "other hashing algorithm, you would need to write a custom authentication adapter.")
    currentpassword = P.Password(help_text="Current password that was being used by the user. You must inform "
                                           "the current password when updating the password.")
    email = P.String(help_text="email")
    firstname = P.String(help_text="first name")
    lastname = P.String(help_text="last name")
    timezone = P.String(help_text="Specifies a timezone for this command.")
    userapikey = P.String(max_length=128, help_text="The API key for the user. Must be specified with userSecretKey")
    usersecretkey = P.Password(max_length=128, help_text="The secret key for the user. Must be specified with userApiKey")


@register
class UpdateUser(Command):
    name = "updateUser"
    description = "Updates a user account"
    Params = UpdateUserParams
    response = UserResponse
    roles = ALL_ROLE_TYPES
    event = "USER.UPDATE"

    def execute(self, params):
        user = services.update_user(
            self.caller, params["id"], username=params.get("username"), password=params.get("password"),
            current_password=params.get("currentpassword"), email=params.get("email"),
            firstname=params.get("firstname"), lastname=params.get("lastname"), timezone=params.get("timezone"),
            api_key=params.get("userapikey"), secret_key=params.get("usersecretkey"))
        return users_for_response(User.objects.filter(pk=user.pk)).get()


class UserIdParams(serializers.Serializer):
    id = P.Entity(User, required=True, help_text="User uuid")


@register
class DeleteUser(Command):
    name = "deleteUser"
    description = "Deletes a user for an account"
    Params = UserIdParams
    kind = "success"
    roles = ADMINS
    event = "USER.DELETE"

    def execute(self, params):
        services.delete_user(self.caller, params["id"])
        return True


@register
class DisableUser(Command):
    name = "disableUser"
    description = "Disables a user account"
    Params = UserIdParams
    response = UserResponse
    roles = ADMINS
    is_async = True
    event = "USER.DISABLE"
    instance_type = "User"

    def instance_of(self, params):
        return params["id"]

    def execute(self, params):
        user = services.set_user_state(self.caller, params["id"], UserState.DISABLED)
        return users_for_response(User.objects.filter(pk=user.pk)).get()


@register
class EnableUser(Command):
    name = "enableUser"
    description = "Enables a user account"
    Params = UserIdParams
    response = UserResponse
    roles = ADMINS
    event = "USER.ENABLE"

    def execute(self, params):
        user = services.set_user_state(self.caller, params["id"], UserState.ENABLED)
        return users_for_response(User.objects.filter(pk=user.pk)).get()


@register
class LockUser(Command):
    name = "lockUser"
    description = "Locks a user account"
    Params = UserIdParams
    response = UserResponse
    roles = ADMINS
    event = "USER.LOCK"

    def execute(self, params):
        user = services.set_user_state(self.caller, params["id"], UserState.LOCKED)
        return users_for_response(User.objects.filter(pk=user.pk)).get()


@register
class RegisterUserKeys(Command):
    name = "registerUserKeys"
    description = "This command allows a user to register for the developer API, returning a secret key and an "\
                  "API key. This request is made through the integration API port, so it is a privileged command "\
                  "and must be made on behalf of a user. It is up to the implementer just how the username and "\
                  "password are entered, and then how that translates to an integration API request. Both secret "\
                  "key and API key should be returned to the user"
    Params = UserIdParams
    response = UserKeysResponse
    roles = ALL_ROLE_TYPES
    event = "REGISTER.USER.KEY"

    def execute(self, params):
        api_key, secret = services.register_user_keys(self.caller, params["id"])
        return {"apikey": api_key, "secretkey": secret}


@register
class GetUserKeys(Command):
    name = "getUserKeys"
    description = "This command allows the user to query the seceret and API keys for the account"
    Params = UserIdParams
    response = UserKeysResponse
    roles = ALL_ROLE_TYPES
    since = "4.10.0"

    def execute(self, params):
        api_key, secret = services.get_user_keys(self.caller, params["id"])
        return {"apikey": api_key, "secretkey": secret}


# -- roles --------------------------------------------------------------------------------------
class CreateRoleParams(serializers.Serializer):
    name = P.String(required=True, help_text="Creates a role with this unique name")
    type = P.String(help_text="The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User")
    roleid = P.Entity(Role, help_text="ID of the role to be cloned from. Either roleid or type must be passed in")
    description = P.String(help_text="The description of the role")


@register
class CreateRole(Command):
    name = "createRole"
    description = "Creates a role"
    Params = CreateRoleParams
    response = RoleResponse
    roles = ADMIN_ONLY
    event = "ROLE.CREATE"
    since = "4.9.0"

    def execute(self, params):
        return services.create_role(self.caller, name=params["name"], role_type=params.get("type"),
                                    description=params.get("description", ""), copy_from=params.get("roleid"))


class ListRolesParams(ListParams):
    id = P.Uuid(help_text="List role by role ID.")
    name = P.String(help_text="List role by role name.")
    type = P.String(help_text="List role by role type, valid options are: Admin, ResourceAdmin, DomainAdmin, User.")


@register
class ListRoles(Command):
    name = "listRoles"
    description = "Lists dynamic roles in CloudStack"
    Params = ListRolesParams
    response = RoleResponse
    kind = "list"
    roles = ADMINS
    since = "4.9.0"

    def execute(self, params):
        qs = Role.objects.all()
        if not self.caller.account.is_root_admin:
            qs = qs.exclude(type="Admin")
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        if params.get("type"):
            qs = qs.filter(type=params["type"])
        return keyword_filter(qs, params.get("keyword"), "name", "description")


class UpdateRoleParams(serializers.Serializer):
    id = P.Entity(Role, required=True, help_text="ID of the role")
    name = P.String(help_text="creates a role with this unique name")
    type = P.String(help_text="The type of the role, valid options are: Admin, ResourceAdmin, DomainAdmin, User")
    description = P.String(help_text="The description of the role")


@register
class UpdateRole(Command):
    name = "updateRole"
    description = "Updates a role"
    Params = UpdateRoleParams
    response = RoleResponse
    roles = ADMIN_ONLY
    event = "ROLE.UPDATE"
    since = "4.9.0"

    def execute(self, params):
        return services.update_role(self.caller, params["id"], name=params.get("name"),
                                    description=params.get("description"), role_type=params.get("type"))


class RoleIdParams(serializers.Serializer):
    id = P.Entity(Role, required=True, help_text="ID of the role")


@register
class DeleteRole(Command):
    name = "deleteRole"
    description = "Deletes a role"
    Params = RoleIdParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "ROLE.DELETE"
    since = "4.9.0"

    def execute(self, params):
        services.delete_role(self.caller, params["id"])
        return True


class CreateRolePermissionParams(serializers.Serializer):
    roleid = P.Entity(Role, required=True, help_text="ID of the role")
    rule = P.String(required=True, help_text="The API name or wildcard rule such as list*")
    permission = P.String(required=True, help_text="The rule permission, allow or deny. Default: deny.")
    description = P.String(help_text="The description of the role permission")


@register
class CreateRolePermission(Command):
    name = "createRolePermission"
    description = "Adds an API permission to a role"
    Params = CreateRolePermissionParams
    response = RolePermissionResponse
    roles = ADMIN_ONLY
    event = "ROLE.PERMISSION.CREATE"
    since = "4.9.0"

    def execute(self, params):
        return services.create_role_permission(self.caller, role=params["roleid"], rule=params["rule"],
                                               permission=params["permission"],
                                               description=params.get("description", ""))


class ListRolePermissionsParams(serializers.Serializer):
    roleid = P.Entity(Role, help_text="ID of the role")


@register
class ListRolePermissions(Command):
    name = "listRolePermissions"
    description = "Lists role permissions"
    Params = ListRolePermissionsParams
    response = RolePermissionResponse
    kind = "list"
    roles = ADMIN_ONLY
    since = "4.9.0"

    def execute(self, params):
        qs = RolePermission.objects.select_related("role")
        if params.get("roleid"):
            qs = qs.filter(role=params["roleid"])
        return qs


class UpdateRolePermissionParams(serializers.Serializer):
    roleid = P.Entity(Role, required=True, help_text="ID of the role")
    ruleid = P.Entity(RolePermission, help_text="Role permission rule id")
    permission = P.String(help_text="Rule permission, can be: allow or deny")
    ruleorder = P.List(P.Entity(RolePermission), help_text="The parent role permission uuid, use 0 to move this "
                                                            "rule at the top of the list")

    def validate(self, attrs):
        if attrs.get("ruleorder") is None and (attrs.get("ruleid") is None or not attrs.get("permission")):
            raise serializers.ValidationError("Give ruleorder, or ruleid with permission")
        if attrs.get("ruleid") is not None and attrs["ruleid"].role_id != attrs["roleid"].pk:
            raise serializers.ValidationError("That rule does not belong to that role")
        return attrs


@register
class UpdateRolePermission(Command):
    name = "updateRolePermission"
    description = "Updates a role permission order"
    Params = UpdateRolePermissionParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "ROLE.PERMISSION.UPDATE"
    since = "4.9.0"

    def execute(self, params):
        if params.get("ruleorder") is not None:
            services.reorder_role_permissions(self.caller, params["roleid"], params["ruleorder"])
        else:
            services.update_role_permission(self.caller, params["ruleid"], permission=params["permission"])
        return True


class DeleteRolePermissionParams(serializers.Serializer):
    id = P.Entity(RolePermission, required=True, help_text="ID of the role permission")


@register
class DeleteRolePermission(Command):
    name = "deleteRolePermission"
    description = "Deletes a role permission"
    Params = DeleteRolePermissionParams
    kind = "success"
    roles = ADMIN_ONLY
    event = "ROLE.PERMISSION.DELETE"
    since = "4.9.0"

    def execute(self, params):
        services.delete_role_permission(self.caller, params["id"])
        return True
