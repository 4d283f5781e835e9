"""Tenancy UI forms. They check shape (required, lengths, e-mail, choices among what the caller
may see); the rules themselves live in accounts.services, whose errors `add_service_error` puts
next to the field they are about."""
from __future__ import annotations

from django import forms

from portal.errors import ApiError

from .choices import AccountType, Permission, RoleType


class ServiceForm(forms.Form):
    """A form whose cleaned data goes to one service function.

    `service_error_fields` maps a phrase of a service error message (lower case) to the field
    the message is about; the first match wins, anything else is a form-level error."""

    service_error_fields: tuple[tuple[str, str], ...] = ()

    def service_error_field(self, exc: ApiError) -> str | None:
        text = exc.message.lower()
        for phrase, field in self.service_error_fields:
            if phrase in text and field in self.fields:
                return field
        return None

    def add_service_error(self, exc: ApiError) -> None:
        self.add_error(self.service_error_field(exc), exc.message)


def _password_field(label: str, autocomplete: str, **kwargs) -> forms.CharField:
    return forms.CharField(label=label, strip=False, max_length=255,
                           widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}), **kwargs)


class DomainChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.display_path


class AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"{obj.name} ({obj.domain.display_path})"


# -- login and own account ---------------------------------------------------------------------------
class LoginForm(forms.Form):
    username = forms.CharField(label="Username", max_length=255,
                               widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = _password_field("Password", "current-password")
    domain = forms.CharField(label="Domain", max_length=1024, required=False,
                             help_text='Domain path, for example "/" or "/corp". Leave empty for ROOT.',
                             widget=forms.TextInput(attrs={"placeholder": "/"}))


class NewPasswordForm(ServiceForm):
    """A new password, typed twice: updateUser's password as an admin sets it for another user
    (no current password asked); PasswordChangeForm adds the current one."""

    new_password = _password_field("New password", "new-password")
    new_password_again = _password_field("New password (again)", "new-password")

    service_error_fields = (("password", "new_password"),)

    def clean(self):
        data = super().clean()
        new, again = data.get("new_password"), data.get("new_password_again")
        if new and again and new != again:
            self.add_error("new_password_again", "The two new passwords differ")
        return data


class PasswordChangeForm(NewPasswordForm):
    current_password = _password_field("Current password", "current-password")
    field_order = ["current_password", "new_password", "new_password_again"]

    service_error_fields = (("current password", "current_password"), ("password", "new_password"))

    def clean(self):
        data = super().clean()
        new = data.get("new_password")
        if new and data.get("current_password") and new == data["current_password"]:
            self.add_error("new_password", "Choose a password different from the current one")
        return data


# -- domains ----------------------------------------------------------------------------------------
class DomainForm(ServiceForm):
    name = forms.CharField(label="Name", max_length=255)
    parent = DomainChoiceField(label="Parent domain", queryset=None, to_field_name="uuid", empty_label=None)
    network_domain = forms.CharField(label="Network domain", max_length=255, required=False,
                                     help_text="DNS suffix for the networks of this domain, e.g. corp.example.org")

    service_error_fields = (("domain name", "name"), ("domain with name", "name"), ("permission", "parent"))

    def __init__(self, *args, domains, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = domains


class DomainEditForm(ServiceForm):
    """updateDomain: a new name (not for ROOT) and the network domain."""

    name = forms.CharField(label="Name", max_length=255)
    network_domain = forms.CharField(label="Network domain", max_length=255, required=False,
                                     help_text="DNS suffix for the networks of this domain, e.g. corp.example.org")

    service_error_fields = (("root domain", "name"), ("domain name", "name"), ("domain with name", "name"),
                            ("permission", "name"))


class DomainDeleteForm(forms.Form):
    cleanup = forms.BooleanField(label="Also delete its sub-domains and accounts", required=False)


# -- accounts and users -------------------------------------------------------------------------------
class _PersonFields(ServiceForm):
    username = forms.CharField(label="Username", max_length=255,
                               widget=forms.TextInput(attrs={"autocomplete": "off"}))
    password = _password_field("Password", "new-password")
    email = forms.EmailField(label="E-mail", max_length=255)
    firstname = forms.CharField(label="First name", max_length=255)
    lastname = forms.CharField(label="Last name", max_length=255)


class AccountForm(_PersonFields):
    account_name = forms.CharField(label="Account name", max_length=255, required=False,
                                   help_text="Leave empty to use the username")
    account_type = forms.TypedChoiceField(label="Account type", coerce=int, initial=AccountType.USER)
    domain = DomainChoiceField(label="Domain", queryset=None, to_field_name="uuid", empty_label=None)
    field_order = ["account_name", "account_type", "domain", "username", "password", "email", "firstname",
                   "lastname"]

    service_error_fields = (
        ("specified account", "account_name"),
        ("account name", "account_name"),
        ("root admin", "account_type"),
        ("accounttype", "account_type"),
        ("the user", "username"),
        ("username", "username"),
        ("password", "password"),
        ("permission", "domain"),
    )

    def __init__(self, *args, domains, may_create_root_admin: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domain"].queryset = domains
        choices = [(AccountType.USER.value, "User"), (AccountType.DOMAIN_ADMIN.value, "Domain admin")]
        if may_create_root_admin:
            choices.append((AccountType.ADMIN.value, "Root admin"))
        self.fields["account_type"].choices = choices

    def service_error_field(self, exc: ApiError) -> str | None:
        field = super().service_error_field(exc)
        # Without an account name the service names the account after the user.
        if field == "account_name" and not self.cleaned_data.get("account_name"):
            return "username"
        return field


class AccountEditForm(ServiceForm):
    """updateAccount: a new name and the network domain."""

    new_name = forms.CharField(label="Name", max_length=255)
    network_domain = forms.CharField(label="Network domain", max_length=255, required=False,
                                     help_text="DNS suffix for the networks of this account, e.g. "
                                               "team.example.org")

    service_error_fields = (("specified account", "new_name"), ("account name", "new_name"),
                            ("default account", "new_name"))


def timezone_choices(current: str = "") -> list[tuple[str, str]]:
    """Every IANA time zone name this machine knows, and the user's current value even if not."""
    import zoneinfo

    names = sorted(zoneinfo.available_timezones())
    if current and current not in names:
        names.insert(0, current)
    return [("", "UTC (not set)")] + [(name, name) for name in names]


class UserEditForm(ServiceForm):
    """updateUser's person fields: first and last name, e-mail, time zone."""

    firstname = forms.CharField(label="First name", max_length=255)
    lastname = forms.CharField(label="Last name", max_length=255)
    email = forms.EmailField(label="E-mail", max_length=255)
    timezone = forms.ChoiceField(label="Time zone", required=False)

    service_error_fields = (("e-mail", "email"), ("email", "email"), ("timezone", "timezone"))

    def __init__(self, *args, current_timezone: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].choices = timezone_choices(current_timezone)


class UserForm(_PersonFields):
    account = AccountChoiceField(label="Account", queryset=None, to_field_name="uuid")
    field_order = ["account", "username", "password", "email", "firstname", "lastname"]

    service_error_fields = (
        ("the user", "username"),
        ("username", "username"),
        ("password", "password"),
        ("account", "account"),
    )

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = accounts


# -- SSH key pairs ---------------------------------------------------------------------------------
class KeyPairForm(ServiceForm):
    """Make a new key pair (the private key is shown once) or register an existing public key."""

    mode = forms.ChoiceField(label="How", initial="create", widget=forms.RadioSelect, choices=(
        ("create", "Make a new key pair (the private key is shown once, then forgotten)"),
        ("register", "Register a public key I already have")))
    name = forms.CharField(label="Name", max_length=255)
    public_key = forms.CharField(label="Public key", required=False, max_length=16384,
                                 help_text="One OpenSSH line, e.g. the content of ~/.ssh/id_ed25519.pub "
                                           "(registering only).",
                                 widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}))

    service_error_fields = (("public key", "public_key"), ("key pair with name", "name"), ("name", "name"),
                            ("one key", "public_key"), ("key data", "public_key"))

    def clean(self):
        data = super().clean()
        if data.get("mode") == "register" and not (data.get("public_key") or "").strip():
            self.add_error("public_key", "Paste the public key to register.")
        return data


# -- roles ------------------------------------------------------------------------------------------
class RoleForm(ServiceForm):
    name = forms.CharField(label="Name", max_length=255)
    role_type = forms.ChoiceField(label="Type", required=False, choices=(("", "—"), *RoleType.choices),
                                  help_text="Caps what the role may ever do: the commands of this account type.")
    description = forms.CharField(label="Description", required=False, max_length=4096,
                                  widget=forms.Textarea(attrs={"rows": 2}))

    service_error_fields = (("role type", "role_type"), ("type", "role_type"), ("role name", "name"),
                            ("named", "name"), ("renamed", "name"))


class RoleCreateForm(RoleForm):
    copy_from = forms.ModelChoiceField(label="Copy the rules of", queryset=None, to_field_name="uuid",
                                       required=False, empty_label="— none —",
                                       help_text="Start with another role's rules (and its type, when no type is "
                                                 "chosen).")
    field_order = ["name", "role_type", "copy_from", "description"]
    service_error_fields = (("roleid", "copy_from"),) + RoleForm.service_error_fields

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["copy_from"].queryset = roles


class RuleForm(ServiceForm):
    rule = forms.CharField(label="Rule", max_length=255,
                           help_text="An API command name, or a wildcard such as list* or *VirtualMachine*.",
                           widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}))
    permission = forms.ChoiceField(label="Permission", choices=Permission.choices, initial=Permission.ALLOW)
    description = forms.CharField(label="Description", required=False, max_length=4096)

    service_error_fields = (("rule", "rule"), ("permission", "permission"))
