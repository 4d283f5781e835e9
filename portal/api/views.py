"""/client/api: the CloudStack-compatible endpoint. It parses, authenticates, checks the role,
validates parameters and calls the command; commands call one service function each."""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import auth
from accounts.access import role_allows
from portal import jobs
from portal.errors import ApiError, Unauthorized, UnsupportedAction

from . import dispatch, throttle
from .registry import get_command
from .render import respond, respond_error

log = logging.getLogger("nubo.api")

AUTHENTICATORS = {"login", "logout"}


def first_values(request: HttpRequest) -> dict[str, str]:
    """The servlet's parameter map: form body, then the query string overriding it; the first
    value of a repeated name."""
    params: dict[str, str] = {}
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        for key, values in request.POST.lists():
            params[key] = values[0]
    query: dict[str, str] = {}
    for key, value in query_pairs(request):
        query.setdefault(key, value)
    params.update(query)
    return params


def query_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs exactly as request.GET reads them (WSGI's Latin-1
    text back to bytes, UTF-8 unless that fails, blank values kept, at most
    DATA_UPLOAD_MAX_NUMBER_FIELDS), without building the QueryDict: that alone is a tenth of what
    a signed listCapabilities costs."""
    raw = request.META.get("QUERY_STRING", "").encode("iso-8859-1")
    try:
        text = raw.decode(settings.DEFAULT_CHARSET)
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    try:
        return parse_qsl(text, keep_blank_values=True, encoding=settings.DEFAULT_CHARSET,
                         max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
    except ValueError as exc:
        raise TooManyFieldsSent("The number of GET/POST parameters exceeded "
                                "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.") from exc


def command_name(raw: dict[str, str]) -> str:
    return raw.get("command") or next((v for k, v in raw.items() if k.lower() == "command"), "")


def needs_session(raw: dict[str, str]) -> bool:
    """Does answering these parameters need the session and the logged-in user: `login`, `logout`
    and calls proven by a session key? A signed call is answered from its signature alone (its
    caller comes from the API key), so ApiEndpointMiddleware spares it the session chain."""
    return command_name(raw) in AUTHENTICATORS or "signature" not in {k.lower() for k in raw}


def response_format(raw: dict[str, str]) -> str:
    value = next((v for k, v in raw.items() if k.lower() == "response"), "xml")
    return "json" if value.lower() == "json" else "xml"


@csrf_exempt
def api(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return respond_error("errorresponse", 405, "The API accepts GET and POST only", None, "xml")
    raw = getattr(request, "nubo_params", None)
    if raw is None:
        raw = first_values(request)
    fmt = response_format(raw)
    name = command_name(raw)
    command_cls = get_command(name)
    response_name = command_cls.get_response_name() if command_cls else "errorresponse"
    try:
        if not name:
            raise UnsupportedAction("Invalid request, no command sent")
        if name in AUTHENTICATORS:
            from accounts.views_api import authenticator

            return authenticator(request, name, raw, fmt)
        if command_cls is None:
            raise UnsupportedAction(f"Unknown API command: {name}")
        if "signature" in {k.lower() for k in raw}:
            caller = auth.api_key_user(raw)
        else:
            caller = auth.session_user(request, raw)
            if caller is None:
                raise Unauthorized(auth.BAD_CREDENTIALS)
        throttle.check(caller)
        if not role_allows(caller.account.role, name, command_cls.roles):
            raise Unauthorized(f"The given command '{name}' either does not exist, is not available for user.")
        if command_cls.post_only and request.method != "POST":
            raise ApiError(f"Please use HTTP POST for {name}", errorcode=405)
        data = dispatch.normalise(raw, name)
        params = dispatch.validate(command_cls, data, caller)
        body = execute(command_cls, params, data, caller, request)
        return respond(response_name, body, fmt)
    except ApiError as exc:
        if exc.errorcode == 432:
            response_name = "errorresponse"
        return respond_error(response_name, exc.errorcode, exc.message, exc.cserrorcode, fmt)
    except Exception:  # noqa: BLE001 - never a traceback to the client
        log.exception("API command %s failed", name)
        return respond_error(response_name, 530, jobs.INTERNAL_ERROR_TEXT, 9999, fmt)


def execute(command_cls, params: dict[str, Any], data: dict[str, Any], caller, request) -> dict[str, Any]:
    command = command_cls(caller, request=request)
    if command_cls.is_async:
        command.check(params)
        with transaction.atomic():
            instance = command.create(params) if command_cls.is_async_create() else command.instance_of(params)
            job = jobs.submit(command_cls, data, caller, instance=instance)
        body: dict[str, Any] = {}
        if command_cls.is_async_create() and instance is not None:
            body["id"] = str(instance.uuid)
        body["jobid"] = str(job.uuid)
        return body
    if command_cls.event is None:  # reads (lists, keys, capabilities): no transaction round trips
        return dispatch.serialize(command_cls, command.execute(params), caller, params)
    with transaction.atomic():
        result = command.execute(params)
        return dispatch.serialize(command_cls, result, caller, params)
