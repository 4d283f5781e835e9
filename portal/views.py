"""The UI shell: navigation context and the dashboard."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


def shell_context(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nubo_caller": user,
        "nubo_default_password": user.account.is_root_admin and user.password_is_default,
    }


@login_required
def dashboard(request):
    return render(request, "portal/dashboard.html", {})
