"""Factories building the smallest valid graph, and a signing API client for tests."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from accounts import services
from accounts.models import Account, Domain, User
from portal.api import signing


@dataclass
class Tenant:
    account: Account
    user: User
    api_key: str
    secret: str
    password: str = "secret-pw-1"

    @property
    def domain(self) -> Domain:
        return self.account.domain


@dataclass
class Cloud:
    root: Domain
    admin: Tenant


def _with_keys(user: User, password: str) -> Tenant:
    api_key, secret = services.register_user_keys(user, user)
    user.refresh_from_db()
    return Tenant(account=user.account, user=user, api_key=api_key, secret=secret, password=password)


def bootstrap_cloud() -> Cloud:
    services.bootstrap("admin-pw-1")
    admin_user = User.objects.select_related("account__domain", "account__role").get(username="admin", domain__path="/")
    return Cloud(root=Domain.objects.get(path="/"), admin=_with_keys(admin_user, "admin-pw-1"))


def admin_user() -> User:
    return User.objects.select_related("account__domain", "account__role").get(username="admin", domain__path="/")


def make_domain(name: str, parent: Domain | None = None) -> Domain:
    return services.create_domain(admin_user(), name=name, parent=parent)


def make_account(name: str, *, domain: Domain | None = None, accounttype: int = 0, password: str = "secret-pw-1") -> Tenant:
    account = services.create_account(admin_user(), username=name, password=password, email=f"{name}@example.org",
                                      firstname=name.title(), lastname="Tester", domain=domain, accounttype=accounttype)
    user = User.objects.select_related("account__domain", "account__role").get(account=account)
    return _with_keys(user, password)


class ApiResult:
    def __init__(self, status: int, body: Any, text: str, headers):
        self.status = status
        self.body = body
        self.text = text
        self.headers = headers

    @property
    def inner(self) -> dict:
        """The object under the single `<command>response` key."""
        assert isinstance(self.body, dict) and len(self.body) == 1, self.body
        return next(iter(self.body.values()))

    @property
    def errortext(self) -> str:
        return self.inner.get("errortext", "")

    def __repr__(self) -> str:
        return f"ApiResult({self.status}, {self.text[:400]})"


class ApiClient:
    """Calls /client/api through Django's test client, signed like `cs` (v3 + expires)."""

    def __init__(self, client, tenant: Tenant, capture=None, fmt: str = "json"):
        self.client = client
        self.tenant = tenant
        self.capture = capture
        self.fmt = fmt

    def as_(self, tenant: Tenant) -> "ApiClient":
        return ApiClient(self.client, tenant, self.capture, self.fmt)

    def xml(self) -> "ApiClient":
        return ApiClient(self.client, self.tenant, self.capture, "xml")

    def signed_params(self, command: str, params: dict[str, Any]) -> dict[str, str]:
        data = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in params.items() if v is not None}
        data.update({"command": command, "apiKey": self.tenant.api_key, "signatureVersion": "3",
                     "expires": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(time.time() + 600))})
        if self.fmt == "json":
            data["response"] = "json"
        data["signature"] = signing.sign(data, self.tenant.secret)
        return data

    def __call__(self, command: str, *, method: str = "GET", **params: Any) -> ApiResult:
        data = self.signed_params(command, params)
        return self.raw(data, method=method)

    def raw(self, data: dict[str, str], *, method: str = "GET") -> ApiResult:
        def send():
            if method == "POST":
                return self.client.post("/client/api", data=urlencode(data), content_type="application/x-www-form-urlencoded")
            return self.client.get("/client/api?" + urlencode(data))

        if self.capture is not None:
            with self.capture(execute=True):
                response = send()
        else:
            response = send()
        text = response.content.decode()
        if response["Content-Type"].startswith("application/json"):
            body: Any = json.loads(text)
        else:
            body = xml_to_dict(text)
        return ApiResult(response.status_code, body, text, response)

    def job(self, result: ApiResult) -> dict:
        """The queryAsyncJobResult answer for an async command's result (jobs run eagerly)."""
        assert result.status == 200, result
        jobid = result.inner["jobid"]
        return self("queryAsyncJobResult", jobid=jobid).inner


def xml_to_dict(text: str) -> dict:
    root = ET.fromstring(text)

    def convert(el):
        children = list(el)
        if not children:
            return el.text or ""
        out: dict[str, Any] = {}
        for child in children:
            value = convert(child)
            if child.tag in out:
                if not isinstance(out[child.tag], list):
                    out[child.tag] = [out[child.tag]]
                out[child.tag].append(value)
            else:
                out[child.tag] = value
        return out

    return {root.tag: convert(root)}
