"""SSH key pairs: made here (createSSHKeyPair) or registered from a public key
(registerSSHKeyPair), named per account, deleted by name. Each function takes the caller, checks
what the caller may do, owns its transaction and writes its event.

As in CloudStack: a made key is RSA 2048 and its private key (PEM, "BEGIN RSA PRIVATE KEY") is
returned once and never stored; the stored public key is "type base64" without its comment;
the fingerprint is the MD5 of the key blob in colon-separated lower-case hex (SSHKeysHelper
.getPublicKeyFingerprint, the same digits `ssh-keygen -l -E md5` prints after "MD5:").
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import IntegrityError, transaction

from portal import events
from portal.errors import InvalidParameterValue, PermissionDenied

from .access import can_manage_domain
from .choices import AccountType
from .models import Account, SSHKeyPair

RSA_BITS = 2048
KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
MAX_PUBLIC_KEY = 16384  # an RSA 16384-bit key line is about 2.8 KB; anything far longer is not a key

INVALID_KEY = ("Public key is invalid: give publickey one OpenSSH public key line such as "
               "'ssh-ed25519 AAAAC3… comment' (types: " + ", ".join(KEY_TYPES) + ")")


@dataclass(frozen=True)
class CreatedKeyPair:
    keypair: SSHKeyPair
    private_key: str  # PEM; returned once, never stored


def fingerprint(public_key: str) -> str:
    """CloudStack's fingerprint of an OpenSSH public key line: MD5 of the base64-decoded blob,
    lower-case hex pairs joined by colons."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def normalise_public_key(material: str) -> str:
    """The "type base64" form of one OpenSSH public key line (its comment dropped), checked by
    parsing the key. Like CloudStack, material without a space is first base64-decoded (clients
    may send the whole line base64-encoded). InvalidParameterValue with a sentence otherwise."""
    text = (material or "").strip()
    if not text or len(text) > MAX_PUBLIC_KEY:
        raise InvalidParameterValue(INVALID_KEY)
    if not any(c.isspace() for c in text):
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidParameterValue(INVALID_KEY) from None
    if "\n" in text or "\r" in text:
        raise InvalidParameterValue("Public key is invalid: give exactly one key (one line)")
    parts = text.split()
    if len(parts) < 2:
        raise InvalidParameterValue(INVALID_KEY)
    key_type, blob = parts[0], parts[1]
    if key_type == "ssh-dss":
        raise InvalidParameterValue("Public key is invalid: DSA (ssh-dss) keys are no longer accepted by OpenSSH; "
                                    "use ssh-ed25519, ECDSA or RSA")
    if key_type not in KEY_TYPES:
        raise InvalidParameterValue(INVALID_KEY)
    line = f"{key_type} {blob}"
    try:
        base64.b64decode(blob, validate=True)
        serialization.load_ssh_public_key(line.encode("ascii"))
    except (binascii.Error, ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise InvalidParameterValue(f"Public key is invalid: the {key_type} key data does not decode to a "
                                    f"{key_type} key") from None
    return line


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidParameterValue("Please specify a valid name for the key pair. The key name can't be empty")
    return name


def _require_act_for(caller, owner: Account) -> None:
    """The caller may manage key pairs of `owner`: its own account, or (admins) an account in a
    domain it manages; a domain admin never acts for a root admin account."""
    me = caller.account
    if owner.pk == me.pk:
        return
    if me.type == AccountType.USER or not can_manage_domain(caller, owner.domain) or (
            owner.type == AccountType.ADMIN and me.type != AccountType.ADMIN):
        raise PermissionDenied(f"Account {me.name} does not have permission to manage the key pairs of account "
                               f"{owner.name}")


def _save(caller, owner: Account, name: str, public_key: str, event_type: str, verb: str) -> SSHKeyPair:
    with transaction.atomic():
        if SSHKeyPair.objects.filter(account=owner, name=name).exists():
            raise InvalidParameterValue(f"A key pair with name '{name}' already exists for account {owner.name}.")
        if event_type == "REGISTER.SSH.KEYPAIR" and SSHKeyPair.objects.filter(account=owner,
                                                                               public_key=public_key).exists():
            raise InvalidParameterValue(f"A key pair with key '{public_key}' already exists for account "
                                        f"{owner.name}.")
        try:
            with transaction.atomic():
                keypair = SSHKeyPair.objects.create(account=owner, name=name, public_key=public_key,
                                                    fingerprint=fingerprint(public_key))
        except IntegrityError:  # the same name, made concurrently
            raise InvalidParameterValue(f"A key pair with name '{name}' already exists for account "
                                        f"{owner.name}.") from None
        events.record(caller, event_type, f"SSH key pair {name} {verb} for account {owner.name}", resource=keypair,
                      resource_type="SSHKeyPair", account=owner)
    return keypair


def create_key_pair(caller, *, name: str, owner: Account | None = None) -> CreatedKeyPair:
    """Make an RSA 2048 key pair for `owner` (default: the caller's account); the private key is
    in the answer only."""
    owner = owner or caller.account
    name = _check_name(name)
    _require_act_for(caller, owner)
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode("ascii")
    public_key = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode("ascii")
    keypair = _save(caller, owner, name, public_key, "CREATE.SSH.KEYPAIR", "created")
    return CreatedKeyPair(keypair=keypair, private_key=private_pem)


def register_key_pair(caller, *, name: str, public_key: str, owner: Account | None = None) -> SSHKeyPair:
    """Store the public key the caller gives, under `name`, for `owner` (default: the caller's account)."""
    owner = owner or caller.account
    name = _check_name(name)
    _require_act_for(caller, owner)
    return _save(caller, owner, name, normalise_public_key(public_key), "REGISTER.SSH.KEYPAIR", "registered")


def delete_key_pair(caller, *, name: str, owner: Account | None = None) -> None:
    owner = owner or caller.account
    name = _check_name(name)
    _require_act_for(caller, owner)
    with transaction.atomic():
        keypair = SSHKeyPair.objects.select_for_update().filter(account=owner, name=name).first()
        if keypair is None:
            raise InvalidParameterValue(f"A key pair with name '{name}' does not exist for account {owner.name} "
                                        f"in domain {owner.domain.display_path}")
        keypair.delete()
        events.record(caller, "DELETE.SSH.KEYPAIR", f"SSH key pair {name} deleted from account {owner.name}",
                      resource=keypair, resource_type="SSHKeyPair", account=owner)
