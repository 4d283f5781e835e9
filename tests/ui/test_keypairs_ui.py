"""SSH key pair pages: the caller's list (admins also see the accounts they manage), making a key
pair (the private key shown once, never stored, the page not cached), registering a public key
(errors next to the field), the detail page, delete with an event; another tenant's key pair is
a 404."""
from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from accounts import keypairs
from accounts.models import SSHKeyPair
from portal.models import Event

from .conftest import logged_in
from .test_instances_ui import field_error, text, words


def public_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " me@laptop"


def names(response) -> list[str]:
    return re.findall(r'<td><a href="/client/ssh-keypairs/[0-9a-f-]+">([^<]+)</a></td>', text(response))


@pytest.fixture
def keys(tenant_a, tenant_b):
    a = keypairs.register_key_pair(tenant_a.user, name="a-laptop", public_key=public_line())
    b = keypairs.register_key_pair(tenant_b.user, name="b-laptop", public_key=public_line())
    return a, b


def test_each_sees_its_own_key_pairs(keys, user_ui, admin_ui, tenant_b):
    a, b = keys
    assert names(user_ui.get("/client/ssh-keypairs")) == ["a-laptop"]
    assert names(logged_in(tenant_b.user).get("/client/ssh-keypairs")) == ["b-laptop"]
    admin_list = admin_ui.get("/client/ssh-keypairs?sort=-name")
    assert names(admin_list) == ["b-laptop", "a-laptop"] and "tenant-a" in text(admin_list)
    assert "<th" in text(admin_list) and ">Account<" in text(admin_list)
    assert ">Account<" not in text(user_ui.get("/client/ssh-keypairs"))
    assert names(admin_ui.get("/client/ssh-keypairs?q=b-lap")) == ["b-laptop"]
    assert names(admin_ui.get(f"/client/ssh-keypairs?q={a.fingerprint[:11]}")) == ["a-laptop"]


def test_another_tenants_key_pair_is_not_found(keys, user_ui):
    a, b = keys
    assert user_ui.get(f"/client/ssh-keypairs/{b.uuid}").status_code == 404
    assert user_ui.post(f"/client/ssh-keypairs/{b.uuid}/delete").status_code == 404
    assert SSHKeyPair.objects.filter(pk=b.pk).exists()
    assert "a-laptop" in words(user_ui.get(f"/client/ssh-keypairs/{a.uuid}"))


def test_make_a_key_pair_shows_the_private_key_once(cloud, tenant_a, user_ui):
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "create", "name": "deploy"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    keypair = SSHKeyPair.objects.get(account=tenant_a.account, name="deploy")
    private = re.search(r'<pre id="private-key"[^>]*>([^<]+)</pre>', text(response)).group(1)
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(private.encode(), password=None)
    public = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                              serialization.PublicFormat.OpenSSH).decode()
    assert public == keypair.public_key and "PRIVATE" not in keypair.public_key
    assert Event.objects.filter(type="CREATE.SSH.KEYPAIR", resource_uuid=str(keypair.uuid)).exists()
    # the private key is nowhere else: not on the key pair's page, not in the list
    assert "PRIVATE KEY" not in text(user_ui.get(f"/client/ssh-keypairs/{keypair.uuid}"))
    assert "PRIVATE KEY" not in text(user_ui.get("/client/ssh-keypairs"))


def test_register_and_its_errors_next_to_the_field(cloud, tenant_a, user_ui):
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "register", "name": "laptop", "public_key": ""})
    assert field_error(response, "id_public_key") == "Paste the public key to register."
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "register", "name": "laptop",
                                                         "public_key": "ssh-rsa not-base64!"})
    assert "Public key is invalid" in field_error(response, "id_public_key")
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "register", "name": "laptop",
                                                         "public_key": "ssh-dss AAAAB3NzaC1kc3M="})
    assert "DSA" in field_error(response, "id_public_key")
    line = public_line()
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "register", "name": "laptop", "public_key": line})
    keypair = SSHKeyPair.objects.get(account=tenant_a.account, name="laptop")
    assert response.status_code == 302 and response["Location"] == f"/client/ssh-keypairs/{keypair.uuid}"
    assert keypair.public_key == line.rsplit(" ", 1)[0]  # stored without its comment
    assert Event.objects.filter(type="REGISTER.SSH.KEYPAIR", resource_uuid=str(keypair.uuid)).exists()
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "register", "name": "laptop",
                                                         "public_key": public_line()})
    assert "already exists" in field_error(response, "id_name")
    response = user_ui.post("/client/ssh-keypairs/new", {"mode": "sideways", "name": "x"})
    assert "Select a valid choice" in field_error(response, "id_mode")


def test_delete_writes_an_event(keys, user_ui, tenant_a):
    a, _ = keys
    response = user_ui.post(f"/client/ssh-keypairs/{a.uuid}/delete")
    assert response.status_code == 302 and response["Location"] == "/client/ssh-keypairs"
    assert not SSHKeyPair.objects.filter(pk=a.pk).exists()
    event = Event.objects.get(type="DELETE.SSH.KEYPAIR", resource_uuid=str(a.uuid))
    assert event.account_id == tenant_a.account.pk
    assert user_ui.get(f"/client/ssh-keypairs/{a.uuid}/delete").status_code == 405  # state changes are POSTs
