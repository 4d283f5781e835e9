"""Tenancy UI: login, logout, the caller's own account (keys, password), and the admin pages for
domains, accounts and users.

Each view parses a form, calls one function of accounts.services and renders; service errors
(portal.errors.ApiError) are shown next to the field they are about, or at the top of the page.
Every queryset is scoped with `visible_to(caller)`, so another tenant's object is a 404."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import authenticate, login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from portal.api.listing import keyword_filter
from portal.errors import ApiError
from portal.ui import Column, search_query, sort, sort_param
from portal.views import admin_required, paginate

from . import services
from .choices import AccountState, UserState
from .forms import AccountEditForm, AccountForm, DomainDeleteForm, DomainForm, LoginForm, PasswordChangeForm, UserForm
from .models import Account, Domain, User, tree_order

DEFAULT_LOGIN_ERROR = "Invalid username or password"


# -- scoped querysets (read-only) ------------------------------------------------------------------
def visible_domains(caller):
    return Domain.objects.visible_to(caller)


def visible_accounts(caller):
    """Accounts the caller may see, without the internal system account (as listAccounts)."""
    return Account.objects.visible_to(caller).exclude(name=services.SYSTEM_ACCOUNT, domain__parent=None)


def visible_users(caller):
    return User.objects.visible_to(caller).exclude(account__name=services.SYSTEM_ACCOUNT, domain__parent=None)


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return default
    return target


def _posted(request):
    """The submitted data of a POST (even an empty one), None for a GET: the form is then unbound."""
    return request.POST if request.method == "POST" else None


# -- login, logout ----------------------------------------------------------------------------------
@sensitive_post_parameters("password")
@never_cache
def login_view(request):
    if request.user.is_authenticated and request.method != "POST":
        return redirect(_safe_next(request, reverse("dashboard")))
    form = LoginForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = authenticate(request, username=data["username"], password=data["password"],
                            domain=data["domain"] or "/")
        if user is not None:
            login(request, user)
            services.record_login(user, api=False)
            return redirect(_safe_next(request, reverse("dashboard")))
        form.add_error(None, getattr(request, "nubo_login_error", DEFAULT_LOGIN_ERROR))
    return render(request, "accounts/login.html", {"form": form, "next": request.GET.get("next", "")})


def logout_view(request):
    if request.method == "POST":
        logout(request)
    return redirect("login")


# -- my account -----------------------------------------------------------------------------------
@login_required
@never_cache
def my_account(request):
    caller = request.user
    api_key, secret_key = services.get_user_keys(caller, caller)
    return render(request, "accounts/my_account.html", {"api_key": api_key, "secret_key": secret_key})


@login_required
@require_POST
def my_account_keys(request):
    try:
        services.register_user_keys(request.user, request.user)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "New API keys generated. The previous keys no longer work.")
    return redirect("my-account")


@sensitive_post_parameters("current_password", "new_password", "new_password_again")
@login_required
@never_cache
def change_password(request):
    form = PasswordChangeForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            user = services.update_user(request.user, request.user, password=form.cleaned_data["new_password"],
                                        current_password=form.cleaned_data["current_password"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            update_session_auth_hash(request, user)  # stay logged in with the new password
            messages.success(request, "Your password has been changed.")
            return redirect("my-account")
    return render(request, "accounts/password.html", {"form": form})


# -- domains --------------------------------------------------------------------------------------
# By default in tree order: each domain followed by its subtree, siblings by name (whatever the
# collation).
DOMAIN_COLUMNS = (Column("name", "Name", ("name",)), Column("path", "Path", (tree_order(),)),
                  Column("network_domain", "Network domain", ("network_domain",)),
                  Column("children", "Sub-domains", ("num_children",)),
                  Column("accounts", "Accounts", ("num_accounts",)),
                  Column("actions", "Actions", hidden_label=True))


@admin_required
def domain_list(request):
    query = search_query(request)
    domains = keyword_filter(visible_domains(request.user), query, "name").annotate(
        num_accounts=Count("accounts", distinct=True), num_children=Count("children", distinct=True))
    domains, headers = sort(request, domains, DOMAIN_COLUMNS, "path")
    return render(request, "accounts/domain_list.html", {
        "page": paginate(request, domains), "headers": headers, "query": query, "delete_form": DomainDeleteForm(),
        # names are indented by their depth while the rows are in tree order
        "tree": sort_param(request, DOMAIN_COLUMNS, "path") in ("", "-path")})


@admin_required
def domain_create(request):
    caller = request.user
    form = DomainForm(_posted(request), domains=visible_domains(caller),
                      initial={"parent": caller.account.domain.uuid})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            domain = services.create_domain(caller, name=data["name"], parent=data["parent"],
                                            network_domain=data["network_domain"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Domain {domain.display_path} created.")
            return redirect("domains")
    return render(request, "accounts/domain_form.html", {"form": form})


@admin_required
@require_POST
def domain_delete(request, uuid):
    domain = get_object_or_404(visible_domains(request.user), uuid=uuid)
    form = DomainDeleteForm(request.POST)
    cleanup = form.is_valid() and form.cleaned_data["cleanup"]
    try:
        services.delete_domain(request.user, domain, cleanup=cleanup)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Domain {domain.display_path} deleted.")
    return redirect("domains")


# -- accounts -------------------------------------------------------------------------------------
# By default by domain (in tree order), then name.
ACCOUNT_COLUMNS = (Column("name", "Name", ("name",)), Column("type", "Type", ("type", "name")),
                   Column("domain", "Domain", (tree_order("domain__path"), "name")),
                   Column("state", "State", ("state", "name")), Column("users", "Users", ("num_users", "name")))


@admin_required
def account_list(request):
    query = search_query(request)
    accounts = keyword_filter(visible_accounts(request.user), query, "name")
    accounts, headers = sort(request, accounts.select_related("domain").annotate(num_users=Count("users")),
                             ACCOUNT_COLUMNS, "domain")
    return render(request, "accounts/account_list.html", {
        "page": paginate(request, accounts), "headers": headers, "query": query})


@sensitive_post_parameters("password")
@admin_required
def account_create(request):
    caller = request.user
    form = AccountForm(_posted(request), domains=visible_domains(caller),
                       may_create_root_admin=caller.account.is_root_admin,
                       initial={"domain": caller.account.domain.uuid})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.create_account(
                caller, username=data["username"], password=data["password"], email=data["email"],
                firstname=data["firstname"], lastname=data["lastname"], account_name=data["account_name"] or None,
                accounttype=data["account_type"], domain=data["domain"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Account {account.name} created.")
            return redirect("account-detail", uuid=account.uuid)
    return render(request, "accounts/account_form.html", {"form": form})


def _account_page(request, account: Account, *, new_keys: dict | None = None, edit_form=None,
                  limit_error: tuple[int, str, str] | None = None, status: int = 200) -> HttpResponse:
    from .views_edit import limit_table

    users = visible_users(request.user).filter(account=account).select_related("domain").order_by("username", "id")
    edit_form = edit_form or AccountEditForm(initial={"new_name": account.name,
                                                      "network_domain": account.network_domain})
    response = render(request, "accounts/account_detail.html", {
        "account": account, "users": users, "new_keys": new_keys, "edit_form": edit_form,
        "limits": limit_table(request.user, account=account, error=limit_error)}, status=status)
    if new_keys:
        response["Cache-Control"] = "no-store"
    return response


@admin_required
def account_detail(request, uuid):
    account = get_object_or_404(visible_accounts(request.user).select_related("domain", "role"), uuid=uuid)
    return _account_page(request, account)


ACCOUNT_ACTIONS = {
    "enable": (lambda caller, account: services.set_account_state(caller, account, AccountState.ENABLED), "enabled"),
    "disable": (lambda caller, account: services.set_account_state(caller, account, AccountState.DISABLED), "disabled"),
    "lock": (lambda caller, account: services.set_account_state(caller, account, AccountState.LOCKED), "locked"),
    "delete": (services.delete_account, "deleted"),
}


@admin_required
@require_POST
def account_action(request, uuid, action: str):
    account = get_object_or_404(visible_accounts(request.user).select_related("domain"), uuid=uuid)
    if action not in ACCOUNT_ACTIONS:
        raise Http404("No such action")
    call, done = ACCOUNT_ACTIONS[action]
    try:
        call(request.user, account)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("account-detail", uuid=account.uuid)
    messages.success(request, f"Account {account.name} {done}.")
    if action == "delete":
        return redirect("accounts")
    return redirect("account-detail", uuid=account.uuid)


# -- users ----------------------------------------------------------------------------------------
# By default by domain (in tree order), then account, then username.
USER_COLUMNS = (Column("username", "Username", ("username",)), Column("name", "Name", ("firstname", "lastname")),
                Column("email", "E-mail", ("email",)), Column("account", "Account", ("account__name", "username")),
                Column("domain", "Domain", (tree_order("domain__path"), "account__name", "username")),
                Column("state", "State", ("state", "username")), Column("actions", "Actions", hidden_label=True))


@admin_required
def user_list(request):
    query = search_query(request)
    users = keyword_filter(visible_users(request.user), query,
                           "username", "email", "firstname", "lastname", "account__name")
    users, headers = sort(request, users.select_related("account", "domain"), USER_COLUMNS, "domain")
    return render(request, "accounts/user_list.html", {"page": paginate(request, users), "headers": headers,
                                                       "query": query})


@sensitive_post_parameters("password")
@admin_required
def user_create(request):
    caller = request.user
    accounts = visible_accounts(caller).select_related("domain").order_by("domain__path", "name")
    initial = {}
    wanted = request.GET.get("account")
    if wanted:
        initial["account"] = wanted
    form = UserForm(_posted(request), accounts=accounts, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.create_user(caller, account=data["account"], username=data["username"],
                                        password=data["password"], email=data["email"],
                                        firstname=data["firstname"], lastname=data["lastname"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"User {user.username} created in account {user.account.name}.")
            return redirect(_safe_next(request, reverse("users")))
    return render(request, "accounts/user_form.html", {"form": form})


USER_ACTIONS = {
    "enable": (lambda caller, user: services.set_user_state(caller, user, UserState.ENABLED), "enabled"),
    "disable": (lambda caller, user: services.set_user_state(caller, user, UserState.DISABLED), "disabled"),
    "delete": (services.delete_user, "deleted"),
}


@admin_required
@require_POST
def user_action(request, uuid, action: str):
    user = get_object_or_404(visible_users(request.user).select_related("account__domain"), uuid=uuid)
    if action not in USER_ACTIONS:
        raise Http404("No such action")
    call, done = USER_ACTIONS[action]
    try:
        call(request.user, user)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"User {user.username} {done}.")
    return redirect(_safe_next(request, reverse("users")))


@admin_required
@require_POST
def user_keys(request, uuid):
    """Generate keys for a user of a visible account; the page answering the POST is the only place
    the new secret is shown (never in a URL, a redirect, the session or a log)."""
    user = get_object_or_404(visible_users(request.user).select_related("account__domain", "account__role"), uuid=uuid)
    try:
        api_key, secret_key = services.register_user_keys(request.user, user)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("account-detail", uuid=user.account.uuid)
    request.nubo_section = reverse("accounts")
    return _account_page(request, user.account, new_keys={"user": user, "api_key": api_key, "secret_key": secret_key})
