"""SSH key pairs through the API: the private key is shown once and matches the stored public
key, fingerprints are CloudStack's (MD5, colon-separated, as `ssh-keygen -l -E md5` prints them),
names are unique per account, garbage is refused with a sentence, and tenants stay apart."""
from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from accounts import keypairs
from accounts.models import SSHKeyPair
from portal.models import Event
from tests.factories import make_account, make_domain

# Made once with `ssh-keygen -t ed25519` / `-t rsa -b 1024`; fingerprints from `ssh-keygen -l -E md5 -f`.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHtqxXspcLc8ZUf20uxo2mufA99psyh6Rz0na412PcnV known@example"
ED25519_MD5 = "98:93:5f:6b:62:1a:40:60:c0:54:ff:70:ba:09:ec:ef"
RSA = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCzrMHNQpuH6Bn7KfyRAC8WmroIt107syiUuUt4CM/P29EpkyZSh6O8jOq9MCUwBGLltIsX+"
       "XrVygT/dpuaoU8g05QGVKPuhPp8pm1jamSniKJyMBzJqahDYHKcklP8ZNoaRYETDhQEkgThpYIHAA/+3TyyWH8wpi+PMay6Ga19PQ== "
       "rsa@example")
RSA_MD5 = "51:4b:db:51:26:3e:2a:b0:78:c5:c5:39:bf:85:aa:1b"

needs_ssh_keygen = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen is not installed")


def rows(result, key: str) -> list[dict]:
    value = result.inner.get(key, [])
    return value if isinstance(value, list) else [value]


def ssh_keygen_md5(tmp_path, public_line: str) -> str:
    path = tmp_path / "key.pub"
    path.write_text(public_line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1].removeprefix("MD5:")


# -- create ------------------------------------------------------------------------------------------
def test_create_returns_the_private_key_once_and_it_matches_the_public_key(api, tenant_a):
    made = api.as_(tenant_a)("createSSHKeyPair", name="laptop")
    assert made.status == 200, made
    keypair = made.inner["keypair"]
    assert set(keypair) >= {"id", "name", "fingerprint", "privatekey", "account", "domainid", "domain"}
    assert (keypair["name"], keypair["account"], keypair["hasannotations"]) == ("laptop", "tenant-a", False)
    assert keypair["privatekey"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(keypair["privatekey"].encode(), password=None)
    assert private.key_size == 2048
    public_line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH).decode()
    stored = SSHKeyPair.objects.get(uuid=keypair["id"])
    assert stored.public_key == public_line
    assert keypair["fingerprint"] == stored.fingerprint == keypairs.fingerprint(public_line)
    # never again: not stored, not listed
    assert "PRIVATE" not in stored.public_key
    listed = rows(api.as_(tenant_a)("listSSHKeyPairs", name="laptop"), "sshkeypair")
    assert len(listed) == 1 and "privatekey" not in listed[0]
    assert listed[0]["fingerprint"] == keypair["fingerprint"] and listed[0]["id"] == keypair["id"]


@needs_ssh_keygen
def test_the_private_key_works_with_openssh(api, tenant_a, tmp_path):
    keypair = api.as_(tenant_a)("createSSHKeyPair", name="laptop").inner["keypair"]
    path = tmp_path / "id_rsa"
    path.write_text(keypair["privatekey"])
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], check=True, capture_output=True,
                             text=True).stdout.split()
    assert " ".join(derived[:2]) == SSHKeyPair.objects.get(uuid=keypair["id"]).public_key
    assert ssh_keygen_md5(tmp_path, " ".join(derived[:2])) == keypair["fingerprint"]


def test_create_answers_keypair_in_xml(api, tenant_a):
    made = api.as_(tenant_a).xml()("createSSHKeyPair", name="xml-key")
    assert made.status == 200, made
    assert made.body["createsshkeypairresponse"]["keypair"]["privatekey"].startswith("-----BEGIN")


# -- fingerprints ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, md5", [(ED25519, ED25519_MD5), (RSA, RSA_MD5)])
def test_fingerprints_of_known_keys(api, tenant_a, line, md5):
    registered = api.as_(tenant_a)("registerSSHKeyPair", name="known", publickey=line)
    assert registered.status == 200, registered
    keypair = registered.inner["keypair"]
    assert keypair["fingerprint"] == md5
    assert "privatekey" not in keypair
    assert SSHKeyPair.objects.get(uuid=keypair["id"]).public_key == " ".join(line.split()[:2])  # comment dropped
    assert rows(api.as_(tenant_a)("listSSHKeyPairs", fingerprint=md5), "sshkeypair")[0]["name"] == "known"


@needs_ssh_keygen
@pytest.mark.parametrize("key_type, bits", [("rsa", "3072"), ("ed25519", None), ("ecdsa", "256"), ("ecdsa", "384"),
                                            ("ecdsa", "521")])
def test_fingerprints_equal_ssh_keygen_for_every_key_type(api, tenant_a, tmp_path, key_type, bits):
    path = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, *(["-b", bits] if bits else []), "-N", "", "-C", "me@host",
                    "-f", str(path)], check=True)
    line = (tmp_path / "id.pub").read_text().strip()
    registered = api.as_(tenant_a)("registerSSHKeyPair", name=f"{key_type}-{bits}", publickey=line, method="POST")
    assert registered.status == 200, registered
    assert registered.inner["keypair"]["fingerprint"] == ssh_keygen_md5(tmp_path, line)


def test_a_base64_encoded_key_line_is_accepted_as_in_cloudstack(api, tenant_a):
    encoded = base64.b64encode(ED25519.encode()).decode()
    registered = api.as_(tenant_a)("registerSSHKeyPair", name="encoded", publickey=encoded)
    assert registered.status == 200, registered
    assert registered.inner["keypair"]["fingerprint"] == ED25519_MD5


# -- refusals --------------------------------------------------------------------------------------------
MISMATCHED = "ssh-rsa " + ED25519.split()[1]  # an ed25519 key under an RSA header


@pytest.mark.parametrize("garbage", ["", "   ", "ssh-rsa", "ssh-rsa: e6:9a:1e:b5:98:75:88:5d", "ssh-rsa not*base64",
                                     "ssh-rsa AAAAB3NzaC1yc2E=", MISMATCHED, "hello world", "c3NoLXJzYQ==",
                                     ED25519 + "\n" + RSA, "ssh-dss AAAAB3NzaC1kc3MAAACBAP== old"])
def test_garbage_public_keys_are_refused_with_a_sentence(api, tenant_a, garbage):
    answer = api.as_(tenant_a)("registerSSHKeyPair", name="bad", publickey=garbage, method="POST")
    assert answer.status == 431, answer
    assert answer.errortext.startswith("Public key is invalid"), answer.errortext
    assert not SSHKeyPair.objects.exists()


def test_names_are_unique_per_account(api, tenant_a, tenant_b):
    a = api.as_(tenant_a)
    assert a("createSSHKeyPair", name="work").status == 200
    again = a("createSSHKeyPair", name="work")
    assert again.status == 431
    assert again.errortext == "A key pair with name 'work' already exists for account tenant-a."
    registered = a("registerSSHKeyPair", name="work", publickey=ED25519)
    assert registered.status == 431 and "already exists" in registered.errortext
    assert api.as_(tenant_b)("createSSHKeyPair", name="work").status == 200  # another account: fine
    assert SSHKeyPair.objects.filter(name="work").count() == 2


def test_the_same_public_key_is_registered_once_per_account(api, tenant_a, tenant_b):
    assert api.as_(tenant_a)("registerSSHKeyPair", name="one", publickey=ED25519).status == 200
    twice = api.as_(tenant_a)("registerSSHKeyPair", name="two", publickey=ED25519 + " other-comment")
    assert twice.status == 431 and "A key pair with key" in twice.errortext
    assert api.as_(tenant_b)("registerSSHKeyPair", name="one", publickey=ED25519).status == 200


def test_a_blank_name_is_refused(api, tenant_a):
    answer = api.as_(tenant_a)("createSSHKeyPair", name="  ")
    assert answer.status == 431 and "name" in answer.errortext


# -- delete --------------------------------------------------------------------------------------------
def test_delete_by_name(api, tenant_a):
    a = api.as_(tenant_a)
    a("createSSHKeyPair", name="gone")
    deleted = a("deleteSSHKeyPair", name="gone")
    assert deleted.status == 200 and deleted.inner["success"] is True
    assert not SSHKeyPair.objects.filter(name="gone").exists()
    missing = a("deleteSSHKeyPair", name="gone")
    assert missing.status == 431
    # the prefix clients (Terraform's provider) look for
    assert missing.errortext.startswith("A key pair with name 'gone' does not exist for account tenant-a")


def test_events(api, tenant_a):
    a = api.as_(tenant_a)
    a("createSSHKeyPair", name="made")
    a("registerSSHKeyPair", name="given", publickey=ED25519)
    a("deleteSSHKeyPair", name="made")
    types = list(Event.objects.filter(account=tenant_a.account, type__contains="SSH.KEYPAIR")
                 .order_by("id").values_list("type", "resource_name"))
    assert types == [("CREATE.SSH.KEYPAIR", "made"), ("REGISTER.SSH.KEYPAIR", "given"),
                     ("DELETE.SSH.KEYPAIR", "made")]


# -- tenants ---------------------------------------------------------------------------------------------
def test_users_see_and_touch_only_their_own_key_pairs(api, tenant_a, tenant_b):
    api.as_(tenant_a)("createSSHKeyPair", name="a-key")
    b = api.as_(tenant_b)
    b("createSSHKeyPair", name="b-key")
    assert {k["name"] for k in rows(b("listSSHKeyPairs", listall="true"), "sshkeypair")} == {"b-key"}
    a_id = str(SSHKeyPair.objects.get(name="a-key").uuid)
    assert b("listSSHKeyPairs", id=a_id).inner == {}
    domain = str(tenant_a.account.domain.uuid)
    assert b("listSSHKeyPairs", account="tenant-a", domainid=domain).status == 431
    refused = b("deleteSSHKeyPair", name="a-key", account="tenant-a", domainid=domain)
    assert refused.status == 431 and "Unable to find account tenant-a" in refused.errortext
    assert b("deleteSSHKeyPair", name="a-key").status == 431  # b's own account has no such key
    made = b("createSSHKeyPair", name="planted", account="tenant-a", domainid=domain)
    assert made.status == 431
    assert SSHKeyPair.objects.filter(name="a-key").exists()
    assert not SSHKeyPair.objects.filter(name="planted").exists()


def test_admins_act_for_accounts_they_manage(api, cloud, domain_admin):
    corp = domain_admin.domain
    corp_user = make_account("corp-user", domain=corp)
    other_user = make_account("other-user", domain=make_domain("other"))
    admin = api.as_(domain_admin)
    made = admin("createSSHKeyPair", name="for-user", account="corp-user", domainid=str(corp.uuid))
    assert made.status == 200, made
    assert made.inner["keypair"]["account"] == "corp-user"
    assert SSHKeyPair.objects.get(name="for-user").account == corp_user.account
    outside = admin("createSSHKeyPair", name="x", account="other-user", domainid=str(other_user.domain.uuid))
    assert outside.status == 431 and "does not exist" in outside.errortext
    api.as_(other_user)("createSSHKeyPair", name="other-key")
    # a domain admin lists its subtree with listall; the root admin lists everything
    assert {k["name"] for k in rows(admin("listSSHKeyPairs", listall="true"), "sshkeypair")} == {"for-user"}
    assert {k["name"] for k in rows(api("listSSHKeyPairs", listall="true"), "sshkeypair")} == {"for-user",
                                                                                                 "other-key"}
    assert rows(admin("listSSHKeyPairs"), "sshkeypair") == []  # without listall: only its own account's
    assert admin("deleteSSHKeyPair", name="for-user", account="corp-user", domainid=str(corp.uuid)).status == 200
    assert api("deleteSSHKeyPair", name="other-key", account="other-user",
               domainid=str(other_user.domain.uuid)).status == 200


def test_list_filters(api, tenant_a):
    a = api.as_(tenant_a)
    a("registerSSHKeyPair", name="alpha", publickey=ED25519)
    a("registerSSHKeyPair", name="beta", publickey=RSA)
    assert {k["name"] for k in rows(a("listSSHKeyPairs", keyword="alp"), "sshkeypair")} == {"alpha"}
    assert {k["name"] for k in rows(a("listSSHKeyPairs", keyword=RSA_MD5[:8]), "sshkeypair")} == {"beta"}
    assert a("listSSHKeyPairs", name="gamma").inner == {}
    assert a("listSSHKeyPairs", projectid="00000000-0000-4000-8000-000000000000").inner == {}


def test_key_pairs_go_with_their_account(api, cloud):
    victim = make_account("victim")
    api.as_(victim)("createSSHKeyPair", name="doomed")
    job = api.job(api("deleteAccount", id=str(victim.account.uuid)))
    assert job["jobstatus"] == 1, job
    assert not SSHKeyPair.objects.filter(name="doomed").exists()
