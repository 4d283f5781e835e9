"""The API authenticators `login` and `logout` (spec §4), answered before signature checks."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.http import HttpResponse

from portal.api.render import respond, respond_error
from portal.errors import AccountError

from . import auth, crypto
from .services import login_response, record_login


def authenticator(request, name: str, raw: dict[str, str], fmt: str) -> HttpResponse:
    if name == "logout":
        django_logout(request)
        response = respond("logoutresponse", {"description": "success"}, fmt)
        for cookie in ("sessionkey", settings.SESSION_COOKIE_NAME, "userid", "domainid", "role", "account",
                       "timezone", "timezoneoffset", "userfullname", "username"):
            response.delete_cookie(cookie)
        return response
    if request.method != "POST":
        return respond_error("loginresponse", 405, "Please use HTTP POST to authenticate using this API", 9999, fmt)
    lowered = {k.lower(): v for k, v in raw.items()}
    username = lowered.get("username")
    password = lowered.get("password")
    if not username or password is None:
        missing = "username" if not username else "password"
        return respond_error("loginresponse", 431, f"Unable to execute API command login due to missing parameter {missing}", 9999, fmt)
    try:
        user = auth.password_login(username, password, domain_path=lowered.get("domain"),
                                   domain_uuid=lowered.get("domainid"))
    except AccountError as exc:
        return respond_error("loginresponse", 531, exc.message, None, fmt)
    request.session.cycle_key()
    django_login(request, user, backend="accounts.auth.DomainUserBackend")
    record_login(user, api=True)  # as the UI login does: API logins are audited too
    sessionkey = crypto.new_session_key()
    request.session["sessionkey"] = sessionkey
    response = respond("loginresponse", login_response(user, sessionkey, settings.SESSION_COOKIE_AGE), fmt)
    response.set_cookie("sessionkey", sessionkey, httponly=True, samesite="Lax")
    return response
