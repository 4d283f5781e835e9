"""The browser console: the console page (ours, around noVNC's RFB module), the token endpoint the
page calls (POST, CSRF-protected, the same checks as createConsoleEndpoint), the page that
createConsoleEndpoint's URL opens, and the admins' list of active console sessions.

The page never receives the VM's VNC password: the proxy logs in to the VNC server itself. A token
reaches the page in a JSON answer (the VM page's console) or, for API links, in the URL's query
string, which the page removes from the address bar at once; our access log writes no query
strings."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal.api.listing import keyword_filter
from portal.errors import ApiError
from portal.ui import Column, search_query, sort
from portal.views import admin_required, paginate

from . import console
from .commands_console import CreateConsoleEndpoint
from .views_instances import _allowed_command, _vm

ERROR_STATUS = {401: 403, 431: 409, 531: 403, 534: 503}


def _page(request, *, vm=None, link: bool = False):
    origin = console.request_origin(request)
    response = render(request, "compute/console.html", {
        "vm": vm, "link": link, "websocket_url": console.websocket_endpoint(origin).url,
        "token_url": reverse("instance-console-token", args=[vm.uuid]) if vm is not None else "",
        "detail_url": reverse("instance-detail", args=[vm.uuid]) if vm is not None else "",
        "keepalive": console.keepalive_interval(),
    })
    response["Referrer-Policy"] = "no-referrer"  # an API link's token must not leak to another site
    return response


@login_required
@never_cache
@require_GET
def console_page(request, uuid):
    """The console of a VM the user may see (404 otherwise); the page asks for its token."""
    return _page(request, vm=_vm(request, uuid))


@never_cache
@require_GET
def console_link(request):
    """What createConsoleEndpoint's URL opens: the same page, the token in the query string
    (checked by the proxy, not here: the link works without a portal session)."""
    return _page(request, link=True)


@login_required
@never_cache
@require_POST
def console_token(request, uuid):
    """A fresh single-use token for the page (first connection and every reconnect)."""
    vm = _vm(request, uuid)
    try:
        _allowed_command(request.user, CreateConsoleEndpoint)
        origin = console.request_origin(request)
        token, _session = console.issue(request.user, vm, origin=origin)
    except ApiError as exc:
        return JsonResponse({"error": exc.message, "state": vm.state},
                            status=ERROR_STATUS.get(exc.errorcode, 409))
    return JsonResponse({"token": token, "url": console.websocket_endpoint(origin).url, "state": vm.state,
                         "name": vm.name})


SESSION_COLUMNS = (Column("user", "User", ("user__username",)), Column("vm", "Virtual machine", ("virtual_machine__name",)),
                   Column("account", "Account", ("virtual_machine__account__name",)),
                   Column("since", "Since", ("connected",)), Column("from", "From", ("client_address",)),
                   Column("actions", "Actions", hidden_label=True))


@admin_required
def console_sessions(request):
    """The connected sessions the admin may see, searchable by user or VM, sortable (newest first)."""
    query = search_query(request)
    sessions = keyword_filter(console.active_sessions(request.user), query,
                              "user__username", "virtual_machine__name", "virtual_machine__display_name")
    sessions, headers = sort(request, sessions, SESSION_COLUMNS, "-since")
    return render(request, "compute/console_sessions.html", {
        "page": paginate(request, sessions), "headers": headers, "query": query})


@admin_required
@require_POST
def console_session_end(request, uuid):
    session = get_object_or_404(console.active_sessions(request.user), uuid=uuid)
    try:
        console.end(request.user, session)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The console session of {session.user.username} on VM "
                                  f"{session.virtual_machine.name} is ending.")
    return redirect("console-sessions")

