"""createConsoleEndpoint (CloudStack 4.18+): a console link for one VM."""
from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from rest_framework import serializers as s

from accounts.access import ALL_ROLE_TYPES
from portal.api import params as P
from portal.api.registry import Command, register
from portal.api.responses import ResponseSerializer

from . import console
from .commands_instances import VmId


class WebsocketResponse(ResponseSerializer):
    object_name = "websocket"
    host = s.CharField(help_text="the console proxy's host name")
    port = s.CharField(help_text="the console proxy's port")
    path = s.CharField(help_text="the websocket path")
    token = s.CharField(help_text="the single-use console token")
    extra = s.CharField(required=False, help_text="the extra security token, if one was given")


class ConsoleEndpointResponse(ResponseSerializer):
    object_name = "consoleendpoint"
    success = s.BooleanField(help_text="true if the console endpoint is generated properly")
    details = s.CharField(required=False, help_text="details in case of an error")
    url = s.CharField(help_text="the console url")
    websocket = WebsocketResponse(read_only=True, help_text="the console websocket options")


class CreateConsoleEndpointParams(s.Serializer):
    virtualmachineid = VmId(required=True, help_text="ID of the VM")
    token = P.String(max_length=255, help_text="(optional) extra security token, valid when the extra validation "
                                               "is enabled")


@register
class CreateConsoleEndpoint(Command):
    name = "createConsoleEndpoint"
    description = "Create a console endpoint to connect to a VM console"
    Params = CreateConsoleEndpointParams
    response = ConsoleEndpointResponse
    roles = ALL_ROLE_TYPES
    event = "VM.CONSOLE"
    since = "4.18.0"

    def execute(self, params):
        vm = params["virtualmachineid"]
        origin = console.request_origin(self.request)
        token, _session = console.issue(self.caller, vm, origin=origin)
        endpoint = console.websocket_endpoint(origin)
        page = f"{origin}{reverse('console-page')}?{urlencode({'token': token})}"
        websocket = {"host": endpoint.host, "port": endpoint.port, "path": endpoint.path, "token": token}
        if params.get("token"):
            websocket["extra"] = params["token"]
        return {"success": True, "url": page, "websocket": websocket}
