"""CloudStack's response envelopes (spec §3, §5): JSON or XML, the same shapes either way."""
from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse

JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1;mode=block",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "X-Frame-Options": "DENY",  # what XFrameOptionsMiddleware adds to every other answer
}


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value), {'"': "&quot;", "'": "&apos;"})


def _xml_children(body: dict[str, Any]) -> str:
    parts: list[str] = []
    for key, value in body.items():
        if value is None:
            continue
        if isinstance(value, dict):
            parts.append(f"<{key}>{_xml_children(value)}</{key}>")
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    parts.append(f"<{key}>{_xml_children(item)}</{key}>")
                else:
                    parts.append(f"<{key}>{_xml_value(item)}</{key}>")
        else:
            parts.append(f"<{key}>{_xml_value(value)}</{key}>")
    return "".join(parts)


def to_xml(name: str, body: dict[str, Any]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<{name} cloud-stack-version="{settings.CLOUDSTACK_VERSION}">{_xml_children(body)}</{name}>'
    )


def respond(name: str, body: dict[str, Any], fmt: str, status: int = 200, headers: dict | None = None) -> HttpResponse:
    if fmt == "json":
        content = json.dumps({name: body}, ensure_ascii=False, separators=(",", ":"))
        response = HttpResponse(content, status=status, content_type=JSON_TYPE)
    else:
        response = HttpResponse(to_xml(name, body), status=status, content_type=XML_TYPE)
    for key, value in SECURITY_HEADERS.items():
        response[key] = value
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def error_body(errorcode: int, errortext: str, cserrorcode: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"uuidList": [], "errorcode": errorcode}
    if cserrorcode is not None:
        body["cserrorcode"] = cserrorcode
    body["errortext"] = errortext
    return body


def respond_error(name: str, errorcode: int, errortext: str, cserrorcode: int | None, fmt: str) -> HttpResponse:
    # X-Description is what CloudMonkey prints; header values must be one line of latin-1.
    description = " ".join(errortext.split()).encode("latin-1", "replace").decode("latin-1")
    return respond(name, error_body(errorcode, errortext, cserrorcode), fmt, status=errorcode,
                   headers={"X-Description": description})


def list_body(item_name: str, items: list[dict[str, Any]], count: int) -> dict[str, Any]:
    if count == 0:
        return {}
    body: dict[str, Any] = {"count": count}
    if items:
        body[item_name] = items
    return body
