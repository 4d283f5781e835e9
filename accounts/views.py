"""Tenancy UI: login, logout."""
from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from . import services


def login_view(request):
    error = None
    if request.method == "POST":
        username = request.POST.get("username", "")
        password = request.POST.get("password", "")
        domain = request.POST.get("domain", "") or "/"
        user = authenticate(request, username=username, password=password, domain=domain)
        if user is not None:
            login(request, user)
            services.record_login(user, api=False)
            target = request.GET.get("next", "/client/")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = "/client/"
            return redirect(target)
        error = getattr(request, "nubo_login_error", "Invalid username or password")
    return render(request, "accounts/login.html", {"error": error}, status=200 if error is None else 401)


def logout_view(request):
    if request.method == "POST":
        logout(request)
    return redirect("/client/login")
