"""Response objects of the tenancy commands (CloudStack field names)."""
from __future__ import annotations

from rest_framework import serializers as s

from portal.api.responses import DateTime, ResponseSerializer, Uuid, use_values


class DomainResponse(ResponseSerializer):
    object_name = "domain"
    id = Uuid(source="uuid", help_text="the ID of the domain")
    name = s.CharField(help_text="the name of the domain")
    level = s.IntegerField(help_text="the level of the domain")
    parentdomainid = Uuid(source="parent.uuid", default=None, help_text="the domain ID of the parent domain")
    parentdomainname = s.CharField(source="parent.name", default=None, help_text="the domain name of the parent domain")
    path = s.CharField(source="display_path", help_text="the path of the domain")
    haschild = s.SerializerMethodField(help_text="whether the domain has one or more sub-domains")
    state = s.CharField(help_text="the state of the domain")
    networkdomain = s.CharField(source="network_domain", default=None, help_text="the network domain")
    created = DateTime(help_text="the date when this domain was created")

    def get_haschild(self, obj) -> bool:
        annotated = getattr(obj, "has_child", None)
        return bool(annotated) if annotated is not None else obj.children.exists()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("networkdomain") == "":
            data.pop("networkdomain")
        return data


class UserResponse(ResponseSerializer):
    object_name = "user"
    values_rows = True
    values_methods = frozenset({"usersource", "is2faenabled"})
    id = Uuid(source="uuid", help_text="the user ID")
    username = s.CharField(help_text="the user name")
    firstname = s.CharField(help_text="the user firstname")
    lastname = s.CharField(help_text="the user lastname")
    email = s.CharField(help_text="the user email address")
    state = s.CharField(help_text="the user state")
    account = s.CharField(source="account.name", help_text="the account name of the user")
    accountid = Uuid(source="account.uuid", help_text="the account ID of the user")
    accounttype = s.IntegerField(source="account.type", help_text="the account type of the user")
    roleid = Uuid(source="account.role.uuid", help_text="the ID of the role")
    rolename = s.CharField(source="account.role.name", help_text="the name of the role")
    roletype = s.CharField(source="account.role.type", help_text="the type of the role")
    domainid = Uuid(source="domain.uuid", help_text="the domain ID of the user")
    domain = s.CharField(source="domain.name", help_text="the domain name of the user")
    domainpath = s.CharField(source="domain.display_path", help_text="the path of the user's domain")
    created = DateTime(help_text="the date and time the user account was created")
    timezone = s.CharField(help_text="the timezone user was created in")
    apikey = s.CharField(source="api_key", default=None, help_text="the api key of the user")
    isdefault = s.BooleanField(source="is_default", help_text="true if user is default, false otherwise")
    usersource = s.SerializerMethodField(help_text="the source type of the user: native")
    is2faenabled = s.SerializerMethodField(help_text="true if two-factor authentication is enabled")

    def get_usersource(self, obj) -> str:
        return "native"

    def get_is2faenabled(self, obj) -> bool:
        return False


class AccountResponse(ResponseSerializer):
    object_name = "account"
    values_rows = True  # listAccounts pages of 500 accounts and their users: from .values() rows
    id = Uuid(source="uuid", help_text="the id of the account")
    name = s.CharField(help_text="the name of the account")
    accounttype = s.IntegerField(source="type", help_text="account type (admin, domain-admin, user)")
    roleid = Uuid(source="role.uuid", help_text="the ID of the role")
    rolename = s.CharField(source="role.name", help_text="the name of the role")
    roletype = s.CharField(source="role.type", help_text="the type of the role (Admin, DomainAdmin, User)")
    domainid = Uuid(source="domain.uuid", help_text="id of the Domain the account belongs to")
    domain = s.CharField(source="domain.name", help_text="name of the Domain the account belongs to")
    domainpath = s.CharField(source="domain.display_path", help_text="path of the Domain the account belongs to")
    state = s.CharField(help_text="the state of the account")
    isdefault = s.BooleanField(source="is_default", help_text="true if account is default, false otherwise")
    networkdomain = s.CharField(source="network_domain", default=None, help_text="the network domain")
    created = DateTime(help_text="the date when this account was created")
    user = UserResponse(source="user_list", many=True, help_text="the list of users associated with account")

    @classmethod
    def prepare(cls, rows: list) -> None:
        from .models import User

        by_account: dict[int, list] = {row.pk: [] for row in rows}
        accounts = {row.pk: row for row in rows}
        for user in User.objects.filter(account_id__in=list(by_account)).order_by("id"):
            # a user's account and domain are the row's own: attach them instead of re-reading
            user.account = accounts[user.account_id]
            user.domain = user.account.domain
            by_account[user.account_id].append(user)
        for row in rows:
            row.user_list = by_account[row.pk]

    def prepare_values(self, rows):
        from .models import User

        users = self.fields["user"].child
        by_account: dict[int, list] = {row["pk"]: [] for row in rows}
        for user in User.objects.filter(account_id__in=list(by_account)).order_by("id").values(
                "account_id", *use_values(users, User)):
            by_account[user["account_id"]].append(user)
        for row in rows:
            row["user_list"] = by_account[row["pk"]]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("networkdomain") == "":
            data.pop("networkdomain")
        return data


class UserKeysResponse(ResponseSerializer):
    object_name = "userkeys"
    apikey = s.CharField(help_text="the api key of the registered user")
    secretkey = s.CharField(help_text="the secret key of the registered user")


class RoleResponse(ResponseSerializer):
    object_name = "role"
    id = Uuid(source="uuid", help_text="the ID of the role")
    name = s.CharField(help_text="the name of the role")
    type = s.CharField(help_text="the type of the role")
    description = s.CharField(help_text="the description of the role")
    isdefault = s.BooleanField(source="is_default", help_text="true if role is default, false otherwise")


class RolePermissionResponse(ResponseSerializer):
    object_name = "rolepermission"
    id = Uuid(source="uuid", help_text="the ID of the role permission")
    roleid = Uuid(source="role.uuid", help_text="the ID of the role to which the role permission belongs")
    rolename = s.CharField(source="role.name", help_text="the name of the role to which the role permission belongs")
    rule = s.CharField(help_text="the api name or wildcard rule")
    permission = s.CharField(help_text="the permission type of the api name or wildcard rule, allow/deny")
    description = s.CharField(help_text="the description of the role permission")
