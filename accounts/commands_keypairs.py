"""API commands of SSH key pairs (CloudStack 4.18: createSSHKeyPair, registerSSHKeyPair,
listSSHKeyPairs, deleteSSHKeyPair): declarations that validate, then call accounts.keypairs."""
from __future__ import annotations

from django.db.models import Q
from rest_framework import serializers
from rest_framework import serializers as s

from portal.api import params as P
from portal.api.registry import Command, ScopedListParams, register
from portal.api.responses import ResponseSerializer, Uuid
from portal.errors import InvalidParameterValue

from . import keypairs
from .access import ALL_ROLE_TYPES, apply_list_scope, resolve_owner
from .models import SSHKeyPair


# -- responses --------------------------------------------------------------------------------------
class SSHKeyPairResponse(ResponseSerializer):
    object_name = "sshkeypair"
    id = Uuid(source="uuid", help_text="ID of the ssh keypair")
    name = s.CharField(help_text="Name of the keypair")
    fingerprint = s.CharField(help_text="Fingerprint of the public key")
    account = s.CharField(source="account.name", help_text="the owner of the keypair")
    domainid = Uuid(source="account.domain.uuid", help_text="the domain id of the keypair owner")
    domain = s.CharField(source="account.domain.name", help_text="the domain name of the keypair owner")
    domainpath = s.CharField(source="account.domain.display_path", help_text="the domain path of the keypair owner")
    hasannotations = s.SerializerMethodField(help_text="whether the entity has an annotation")

    def get_hasannotations(self, obj) -> bool:
        return False


class KeyPairResponse(SSHKeyPairResponse):
    """createSSHKeyPair / registerSSHKeyPair answer a single `keypair` (createSSHKeyPair with
    the private key, the only time it is ever shown)."""

    object_name = "keypair"
    privatekey = s.CharField(source="private_key", default=None,
                             help_text="Private key (createSSHKeyPair only; it is not stored)")


def keypairs_for_response(qs):
    return qs.select_related("account__domain")


# -- parameters -------------------------------------------------------------------------------------
class OwnerParams(serializers.Serializer):
    account = P.String(help_text="an optional account for the ssh key. Must be used with domainId.")
    domainid = P.Uuid(help_text="an optional domainId for the ssh key. If the account parameter is used, "
                                "domainId must also be used.")
    projectid = P.Uuid(help_text="an optional project for the ssh key (projects are not supported)")


def owner_of(caller, params: dict, command: str):
    if params.get("projectid"):
        raise InvalidParameterValue("Projects are not supported; key pairs belong to accounts")
    return resolve_owner(caller, params, command=command)


class CreateSSHKeyPairParams(OwnerParams):
    name = P.String(required=True, help_text="Name of the keypair")


class RegisterSSHKeyPairParams(OwnerParams):
    name = P.String(required=True, help_text="Name of the keypair")
    publickey = P.String(required=True, max_length=keypairs.MAX_PUBLIC_KEY,
                         help_text="Public key material of the keypair")


class DeleteSSHKeyPairParams(OwnerParams):
    name = P.String(required=True, help_text="Name of the keypair")


class ListSSHKeyPairsParams(ScopedListParams):
    id = P.Uuid(help_text="the ID of the ssh keypair")
    name = P.String(help_text="A key pair name to look for")
    fingerprint = P.String(help_text="A public key fingerprint to look for")
    projectid = P.Uuid(help_text="list objects by project (projects are not supported)")


# -- commands ---------------------------------------------------------------------------------------
@register
class CreateSSHKeyPair(Command):
    name = "createSSHKeyPair"
    description = "Create a new keypair and returns the private key"
    Params = CreateSSHKeyPairParams
    response = KeyPairResponse
    roles = ALL_ROLE_TYPES
    event = "CREATE.SSH.KEYPAIR"

    def execute(self, params):
        made = keypairs.create_key_pair(self.caller, name=params["name"],
                                        owner=owner_of(self.caller, params, self.name))
        keypair = keypairs_for_response(SSHKeyPair.objects.filter(pk=made.keypair.pk)).get()
        keypair.private_key = made.private_key
        return keypair


@register
class RegisterSSHKeyPair(Command):
    name = "registerSSHKeyPair"
    description = "Register a public key in a keypair under a certain name"
    Params = RegisterSSHKeyPairParams
    response = KeyPairResponse
    roles = ALL_ROLE_TYPES
    event = "REGISTER.SSH.KEYPAIR"

    def execute(self, params):
        keypair = keypairs.register_key_pair(self.caller, name=params["name"], public_key=params["publickey"],
                                             owner=owner_of(self.caller, params, self.name))
        return keypairs_for_response(SSHKeyPair.objects.filter(pk=keypair.pk)).get()


@register
class ListSSHKeyPairs(Command):
    name = "listSSHKeyPairs"
    description = "List registered keypairs"
    Params = ListSSHKeyPairsParams
    response = SSHKeyPairResponse
    kind = "list"
    roles = ALL_ROLE_TYPES

    def execute(self, params):
        qs = apply_list_scope(SSHKeyPair.objects.all(), self.caller, params, command=self.name)
        if params.get("projectid"):
            return qs.none()
        if params.get("id"):
            qs = qs.filter(uuid=params["id"])
        if params.get("name"):
            qs = qs.filter(name=params["name"])
        if params.get("fingerprint"):
            qs = qs.filter(fingerprint=params["fingerprint"].strip().lower())
        if params.get("keyword"):
            qs = qs.filter(Q(name__icontains=params["keyword"]) | Q(fingerprint__icontains=params["keyword"]))
        return keypairs_for_response(qs).order_by("-id")


@register
class DeleteSSHKeyPair(Command):
    name = "deleteSSHKeyPair"
    description = "Deletes a keypair by name"
    Params = DeleteSSHKeyPairParams
    kind = "success"
    roles = ALL_ROLE_TYPES
    event = "DELETE.SSH.KEYPAIR"

    def execute(self, params):
        keypairs.delete_key_pair(self.caller, name=params["name"], owner=owner_of(self.caller, params, self.name))
        return True
