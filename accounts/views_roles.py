"""Roles and permissions UI (root admin only, as CloudStack's role management; anyone else gets
404): the roles with their rule and account counts, a role's page with its ordered allow/deny
rules (add, switch allow/deny, move up or down, remove), the accounts that have it, and its
changes; create (optionally copying another role's rules), update and delete. Each action calls
one function of accounts.services, which writes the event and refreshes the rule cache."""
from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from portal.errors import ApiError
from portal.models import Event
from portal.ui import Column, Filter, filter_rows, root_admin_required, search_query, sort
from portal.views import paginate

from . import services
from .choices import Permission, RoleType
from .forms import RoleCreateForm, RoleForm, RuleForm
from .models import Role

COLUMNS = (Column("name", "Name", ("name",)), Column("type", "Type", ("type", "name")),
           Column("description", "Description"), Column("rules", "Rules", ("num_rules",)),
           Column("accounts", "Accounts", ("num_accounts",)))

TYPE = Filter("type", "Filter roles by type", tuple((value, label, Q(type=value)) for value, label in RoleType.choices))


@root_admin_required
def role_list(request):
    query = search_query(request)
    roles = Role.objects.annotate(num_rules=Count("permissions", distinct=True),
                                  num_accounts=Count("accounts", distinct=True))
    if query:
        roles = roles.filter(Q(name__icontains=query) | Q(description__icontains=query))
    filtered = filter_rows(request, roles, (TYPE,))
    roles, headers = sort(request, filtered.rows, COLUMNS, "name")
    return render(request, "accounts/role_list.html", {
        "page": paginate(request, roles), "headers": headers, "query": query,
        "filter_chips": filtered.chips, "ignored": filtered.ignored})


@root_admin_required
@require_http_methods(["GET", "POST"])
def role_create(request):
    form = RoleCreateForm(request.POST if request.method == "POST" else None, roles=Role.objects.order_by("name"))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            role = services.create_role(request.user, name=data["name"], role_type=data["role_type"] or None,
                                        description=data["description"], copy_from=data["copy_from"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Role {role.name} created.")
            return redirect("role", uuid=role.uuid)
    return render(request, "accounts/role_form.html", {"form": form})


def _role(uuid) -> Role:
    return get_object_or_404(Role, uuid=uuid)


def _role_page(request, role: Role, *, form=None, rule_form=None, error: str = "", status: int = 200) -> HttpResponse:
    rules = list(role.permissions.order_by("sort_order", "id"))
    accounts = role.accounts.select_related("domain").order_by("domain__path", "name")
    events = Event.objects.visible_to(request.user).filter(resource_uuid=str(role.uuid)).order_by("-created", "-id")
    return render(request, "accounts/role_detail.html", {
        "role": role, "rules": rules, "accounts": accounts[:20], "num_accounts": accounts.count(),
        "events": events[:10], "action_error": error, "permissions": Permission.choices,
        "form": form or RoleForm(initial={"name": role.name, "role_type": role.type, "description": role.description}),
        "rule_form": rule_form or RuleForm(prefix="rule"),
    }, status=status)


@root_admin_required
@require_http_methods(["GET", "POST"])
def role_detail(request, uuid):
    """The role; its edit form POSTs here."""
    role = _role(uuid)
    if request.method == "GET":
        return _role_page(request, role)
    form = RoleForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.update_role(request.user, role, name=data["name"], description=data["description"],
                                 role_type=data["role_type"] or None)
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Role {data['name']} updated.")
            return redirect("role", uuid=role.uuid)
    role.refresh_from_db()
    return _role_page(request, role, form=form)


@root_admin_required
@require_POST
def role_delete(request, uuid):
    role = _role(uuid)
    try:
        services.delete_role(request.user, role)
    except ApiError as exc:
        return _role_page(request, role, error=exc.message)
    messages.success(request, f"Role {role.name} deleted.")
    return redirect("roles")


@root_admin_required
@require_POST
def rule_add(request, uuid):
    role = _role(uuid)
    form = RuleForm(request.POST, prefix="rule")
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.create_role_permission(request.user, role=role, rule=data["rule"].strip(),
                                            permission=data["permission"], description=data["description"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            messages.success(request, f"Rule {data['permission']} {data['rule'].strip()} added.")
            return redirect("role", uuid=role.uuid)
    return _role_page(request, role, rule_form=form)


@root_admin_required
@require_POST
def rule_action(request, uuid, rule_uuid, action: str):
    """allow / deny (switch the rule), up / down (move it one place), delete."""
    role = _role(uuid)
    perm = get_object_or_404(role.permissions.select_related("role"), uuid=rule_uuid)
    try:
        if action in Permission.values:
            services.update_role_permission(request.user, perm, permission=action)
            done = f"Rule {perm.rule} now {action}s."
        elif action in ("up", "down"):
            rules = list(role.permissions.order_by("sort_order", "id"))
            index = rules.index(perm)
            other = index - 1 if action == "up" else index + 1
            if 0 <= other < len(rules):
                rules[index], rules[other] = rules[other], rules[index]
                services.reorder_role_permissions(request.user, role, rules)
            done = f"Rule {perm.rule} moved {action}."
        elif action == "delete":
            services.delete_role_permission(request.user, perm)
            done = f"Rule {perm.rule} removed."
        else:
            raise Http404("No such action")
    except ApiError as exc:
        return _role_page(request, role, error=exc.message)
    messages.success(request, done)
    return redirect("role", uuid=role.uuid)
