"""Changing domains, accounts and users from the UI: a domain's page (edit: updateDomain; its
resource limits: updateResourceLimit with domainid), editing an account (updateAccount) and its
limits, a user's page (edit: updateUser's person fields; an admin sets another user's password:
updateUser's password).

Each POST calls the same service function as the API command, so the rules, the sentences and
the events are the API's; a refusal is shown on the form it answers (next to the field it is
about), a success is a message after the redirect. Objects come from the same scoped querysets
as the lists (accounts.views), so another tenant's or another domain's is a 404."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from portal.errors import ApiError
from portal.views import admin_required, is_admin

from . import limits, services
from .choices import AccountType
from .forms import AccountEditForm, DomainEditForm, NewPasswordForm, UserEditForm
from .models import Account, Domain, User
from .views import _account_page, visible_accounts, visible_domains, visible_users


def _saved(request, form, call, done) -> HttpResponse | None:
    """A form's answers given to one service call (`call(cleaned_data)`): once done, the redirect
    (`done(result)` → (message, URL name, uuid)) with its message queued; None when the form or the
    service refused it (the sentences are then on the form)."""
    if not form.is_valid():
        return None
    try:
        result = call(form.cleaned_data)
    except ApiError as exc:
        form.add_service_error(exc)
        return None
    text, url_name, uuid = done(result)
    messages.success(request, text)
    return redirect(url_name, uuid=uuid)


# -- resource limits (accounts and domains) -----------------------------------------------------------
def limit_table(caller, *, account: Account | None = None, domain: Domain | None = None,
                error: tuple[int, str, str] | None = None) -> list[dict]:
    """The rows of accounts/_limits.html: each type's limit and use, the URL its form posts to and
    the refusal it answered (error: (resource type number, sentence, the value refused))."""
    owner = account or domain
    url_name = "account-limit" if account is not None else "domain-limit"
    return [{"type": row.resource_type, "max": row.max, "used": row.used, "explicit": row.explicit,
             "url": reverse(url_name, args=[owner.uuid, row.resource_type.number]),
             "error": error[1] if error and error[0] == row.resource_type.number else "",
             "value": error[2] if error and error[0] == row.resource_type.number else row.max}
            for row in limits.usage(caller, account=account, domain=domain)]


def _set_limit(request, resource_type: int, *, account: Account | None = None,
               domain: Domain | None = None) -> str | None:
    """updateResourceLimit from a limits form: None once set (its message queued), else the
    sentence that refused it."""
    raw = request.POST.get("max", "").strip()
    try:
        value = int(raw)
    except ValueError:
        return f"A limit is a whole number (-1 for no limit), not {raw!r}."
    try:
        row = limits.update_limit(request.user, rtype=resource_type, max=value, account=account, domain=domain)
    except ApiError as exc:
        return exc.message
    rt = row.resource_type
    shown = "no limit" if row.max == -1 else f"{row.max}{' ' + rt.unit if rt.unit else ''}"
    owner = f"account {account.name}" if account is not None else f"domain {domain.display_path}"
    messages.success(request, f"Limit of {rt.name} for {owner}: {shown}.")
    return None


@admin_required
@require_POST
def account_limit(request, uuid, resource_type: int):
    """updateResourceLimit for one type of an account (-1: unlimited), with the service's rules."""
    account = get_object_or_404(visible_accounts(request.user).select_related("domain", "role"), uuid=uuid)
    if resource_type not in limits.BY_NUMBER:
        raise Http404("No such resource type")
    refusal = _set_limit(request, resource_type, account=account)
    if refusal:
        return _account_page(request, account, limit_error=(resource_type, refusal, request.POST.get("max", "")))
    return redirect("account-detail", uuid=account.uuid)


# -- accounts ---------------------------------------------------------------------------------------
@admin_required
@require_POST
def account_update(request, uuid):
    account = get_object_or_404(visible_accounts(request.user).select_related("domain", "role"), uuid=uuid)
    form = AccountEditForm(request.POST)
    return _saved(request, form, lambda data: services.update_account(
        request.user, account, new_name=data["new_name"], network_domain=data["network_domain"]),
        lambda done: (f"Account {done.name} updated.", "account-detail", done.uuid)) \
        or _account_page(request, account, edit_form=form)


# -- domains ----------------------------------------------------------------------------------------
def may_edit_domain(caller, domain: Domain) -> bool:
    """updateDomain's rule, to offer the form: a root admin any domain, a domain admin those
    below its own (the service refuses anything else with its sentence)."""
    me = caller.account
    return me.type == AccountType.ADMIN or (me.type == AccountType.DOMAIN_ADMIN and domain.pk != me.domain_id
                                            and domain.path.startswith(me.domain.path))


def _domain_page(request, domain: Domain, *, edit_form: DomainEditForm | None = None,
                 limit_error: tuple[int, str, str] | None = None) -> HttpResponse:
    caller = request.user
    refusal = limits.domain_limits_refusal(caller, domain)
    children = visible_domains(caller).filter(parent=domain).order_by("name", "id")
    accounts = visible_accounts(caller).filter(domain=domain).order_by("name", "id")
    return render(request, "accounts/domain_detail.html", {
        "domain": domain, "children": children, "accounts": accounts,
        # a refused POST shows its form with the sentence, even where the form is not offered
        "may_edit": may_edit_domain(caller, domain) or edit_form is not None,
        "edit_form": edit_form or DomainEditForm(initial={"name": domain.name,
                                                          "network_domain": domain.network_domain}),
        "limits": limit_table(caller, domain=domain, error=limit_error),
        "may_set_limits": refusal is None or limit_error is not None, "limits_refusal": refusal.message if refusal else ""})


def _domain(request, uuid) -> Domain:
    return get_object_or_404(visible_domains(request.user).select_related("parent"), uuid=uuid)


@admin_required
def domain_detail(request, uuid):
    return _domain_page(request, _domain(request, uuid))


@admin_required
@require_POST
def domain_update(request, uuid):
    domain = _domain(request, uuid)
    form = DomainEditForm(request.POST)
    return _saved(request, form, lambda data: services.update_domain(
        request.user, domain, name=data["name"], network_domain=data["network_domain"]),
        lambda done: (f"Domain {done.display_path} updated.", "domain-detail", done.uuid)) \
        or _domain_page(request, domain, edit_form=form)


@admin_required
@require_POST
def domain_limit(request, uuid, resource_type: int):
    """updateResourceLimit with domainid for one type (-1: unlimited), with the service's rules."""
    domain = _domain(request, uuid)
    if resource_type not in limits.BY_NUMBER:
        raise Http404("No such resource type")
    refusal = _set_limit(request, resource_type, domain=domain)
    if refusal:
        return _domain_page(request, domain, limit_error=(resource_type, refusal, request.POST.get("max", "")))
    return redirect("domain-detail", uuid=domain.uuid)


# -- users ------------------------------------------------------------------------------------------
def _user(request, uuid) -> User:
    """A user the caller may open: an admin those of its subtree, anyone else only itself
    (updateUser lets users change nobody but themselves)."""
    caller = request.user
    users = visible_users(caller) if is_admin(caller) else User.objects.filter(pk=caller.pk)
    return get_object_or_404(users.select_related("account__domain", "account__role", "domain"), uuid=uuid)


def _user_page(request, user: User, *, edit_form: UserEditForm | None = None,
               password_form: NewPasswordForm | None = None) -> HttpResponse:
    caller = request.user
    edit_form = edit_form or UserEditForm(current_timezone=user.timezone, initial={
        "firstname": user.firstname, "lastname": user.lastname, "email": user.email, "timezone": user.timezone})
    return render(request, "accounts/user_detail.html", {
        "member": user, "is_self": user.pk == caller.pk, "edit_form": edit_form,
        # an admin sets another user's password; one's own is changed with the current one
        "password_form": password_form or NewPasswordForm(),
    })


@login_required
@never_cache
def user_detail(request, uuid):
    return _user_page(request, _user(request, uuid))


@login_required
@require_POST
def user_update(request, uuid):
    user = _user(request, uuid)
    form = UserEditForm(request.POST, current_timezone=user.timezone)
    return _saved(request, form, lambda data: services.update_user(
        request.user, user, firstname=data["firstname"], lastname=data["lastname"], email=data["email"],
        timezone=data["timezone"]),
        lambda done: (f"User {done.username} updated.", "user-detail", done.uuid)) \
        or _user_page(request, user, edit_form=form)


@sensitive_post_parameters("new_password", "new_password_again")
@admin_required
@require_POST
def user_password(request, uuid):
    """An admin sets another user's password (updateUser's password, no current password): the
    user's sessions end, and it logs in with the new one. One's own: the change-password page."""
    user = _user(request, uuid)
    if user.pk == request.user.pk:
        return redirect("change-password")
    form = NewPasswordForm(request.POST)
    return _saved(request, form, lambda data: services.update_user(request.user, user, password=data["new_password"]),
                  lambda done: (f"Password of user {done.username} set: it logs in with the new one.", "user-detail",
                                done.uuid)) \
        or _user_page(request, user, password_form=form)
