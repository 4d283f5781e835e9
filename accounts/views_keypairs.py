"""SSH key pairs UI: the list (the caller's own key pairs; admins also those of the accounts they
see), making a new key pair (its private key shown once, on the page answering the POST, never
stored), registering a public key, a detail page with the VMs deployed with the key, and delete.
Each action calls one function of accounts.keypairs, which checks the caller and writes the event."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.errors import ApiError
from portal.ui import Column, columns_for, search_query, sort
from portal.views import is_admin, paginate

from . import keypairs
from .forms import KeyPairForm
from .models import SSHKeyPair

COLUMNS = (Column("name", "Name", ("name",)), Column("fingerprint", "Fingerprint (MD5)"),
           Column("owner", "Account", ("account__name",), admins_only=True), Column("created", "Created (UTC)", ("created",)))


def visible_keypairs(caller):
    return SSHKeyPair.objects.visible_to(caller).select_related("account__domain")


@login_required
def keypair_list(request):
    caller = request.user
    show_owner = is_admin(caller)
    columns = columns_for(COLUMNS, admin=show_owner)
    query = search_query(request)
    rows = visible_keypairs(caller)
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(fingerprint__icontains=query)
                           | Q(account__name__icontains=query))
    rows, headers = sort(request, rows, columns, "name")
    return render(request, "accounts/keypair_list.html", {"page": paginate(request, rows), "headers": headers,
                                                          "query": query, "show_owner": show_owner})


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def keypair_create(request):
    """Make or register a key pair for the caller's own account. A made key pair's private key is
    only in the answer to this POST (no-store), never in a URL, a redirect, the session or a log."""
    caller = request.user
    form = KeyPairForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data["mode"] == "create":
                made = keypairs.create_key_pair(caller, name=data["name"])
            else:
                keypair = keypairs.register_key_pair(caller, name=data["name"], public_key=data["public_key"])
        except ApiError as exc:
            form.add_service_error(exc)
        else:
            if data["mode"] == "register":
                messages.success(request, f"SSH key pair {keypair.name} registered.")
                return redirect("ssh-keypair", uuid=keypair.uuid)
            response = render(request, "accounts/keypair_created.html", {"keypair": made.keypair,
                                                                         "private_key": made.private_key})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "accounts/keypair_form.html", {"form": form})


def _keypair(request, uuid) -> SSHKeyPair:
    return get_object_or_404(visible_keypairs(request.user), uuid=uuid)


def _used_by(caller, keypair: SSHKeyPair) -> list:
    """The VMs (that the caller sees) of the key pair's account deployed with it."""
    from compute.views_instances import visible_vms

    vms = visible_vms(caller).filter(account=keypair.account).only("uuid", "name", "state", "keypairs")
    return [vm for vm in vms.order_by("name", "id") if keypair.name in (vm.keypairs or [])]


@login_required
def keypair_detail(request, uuid):
    keypair = _keypair(request, uuid)
    return render(request, "accounts/keypair_detail.html", {
        "keypair": keypair, "vms": _used_by(request.user, keypair), "show_owner": is_admin(request.user)})


@login_required
@require_POST
def keypair_delete(request, uuid):
    keypair = _keypair(request, uuid)
    try:
        keypairs.delete_key_pair(request.user, name=keypair.name, owner=keypair.account)
    except ApiError as exc:
        messages.error(request, exc.message)
        return redirect("ssh-keypair", uuid=keypair.uuid)
    messages.success(request, f"SSH key pair {keypair.name} deleted.")
    return redirect("ssh-keypairs")
