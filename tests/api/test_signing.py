"""Request signatures (spec §2): the worked examples, the real clients' variants, the `cs`
library itself, and every way a signed request must be refused (401)."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from accounts import auth, services
from accounts.models import User
from portal import config
from portal.api import signing
from tests.api.helpers import (
    API,
    BAD_CREDENTIALS,
    Answer,
    FORM,
    cloudmonkey5_sign,
    cmk_sign,
    cs_sign,
    expires_in,
    java_urlencode,
    libcloud_sign,
    reference_canonical,
    reference_sign,
    send,
    signed,
)

# Spec §2.3
SPEC_KEY = "plgWJfZK4gyS3mOMTVmjUVg-X-jlWlnfaUJ9GAbBbf9EdM-kAYMmAiLqzzq1ElZLYq_u38zCm0bewzGUdP66mg"
SPEC_SECRET = "VDaACYb0LV9eNjTetIOElcVQkvJck_J_QljX_FcHRj87ZKiy0z0ty0ZsYBkoXkY9b7eq1EhwJaw7FF3akA3KBQ"
EXAMPLE1 = {"command": "listUsers", "response": "json", "apiKey": SPEC_KEY}
EXAMPLE1_CANONICAL = ("apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg"
                      "&command=listusers&response=json")
EXAMPLE1_SIGNATURE = "TTpdDq/7j/J58XCRHomKoQXEQds="
EXAMPLE2 = {
    "command": "deployVirtualMachine", "response": "json", "apiKey": SPEC_KEY, "signatureVersion": "3",
    "expires": "2030-01-01T00:00:00+0000",
    "zoneid": "1c2d3e4f-0000-4000-8000-000000000001",
    "serviceofferingid": "1c2d3e4f-0000-4000-8000-000000000002",
    "templateid": "1c2d3e4f-0000-4000-8000-000000000003",
    "displayname": "web 01 (prod)*", "userdata": "I2Nsb3VkLWNvbmZpZwo+/w==", "details[0].cpuNumber": "2",
    "name": "café-vm",
}
EXAMPLE2_CANONICAL = (
    "apikey=plgwjfzk4gys3momtvmjuvg-x-jlwlnfauj9gabbbf9edm-kaymmailqzzq1elzlyq_u38zcm0bewzgudp66mg"
    "&command=deployvirtualmachine&details[0].cpunumber=2&displayname=web%2001%20%28prod%29*"
    "&expires=2030-01-01t00%3a00%3a00%2b0000&name=caf%c3%a9-vm&response=json"
    "&serviceofferingid=1c2d3e4f-0000-4000-8000-000000000002&signatureversion=3"
    "&templateid=1c2d3e4f-0000-4000-8000-000000000003&userdata=i2nsb3vklwnvbmzpzwo%2b%2fw%3d%3d"
    "&zoneid=1c2d3e4f-0000-4000-8000-000000000001"
)
EXAMPLE2_SIGNATURE = "/1RDTyj5tyNQtoQjkyMlotNPFFs="


@pytest.fixture
def spec_admin(cloud):
    """The root admin, holding the spec's example API key and secret."""
    user = User.objects.get(pk=cloud.admin.user.pk)
    services.update_user(user, user, api_key=SPEC_KEY, secret_key=SPEC_SECRET)
    return user


def assert_refused(answer, response_name: str = "listusersresponse") -> None:
    assert answer.status == 401, answer
    assert answer.name == response_name
    assert answer.inner["errorcode"] in (401, "401")
    assert answer.errortext == BAD_CREDENTIALS
    assert answer["X-Description"] == BAD_CREDENTIALS


# -- the canonical form's pieces ---------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "plain-Value_1.2*", "a b+c/d=e:f", "café €", "emoji 😀", "~tilde",
                                   "details[0].key", "tab\tnew\nline", "%41 already%20escaped", "'quotes\""])
def test_java_urlencode_is_urlencoder_with_percent20(value):
    assert signing.java_urlencode(value) == java_urlencode(value)
    assert signing.java_urlencode(value, b"~") == java_urlencode(value).replace("%7E", "~")
    assert signing.java_urlencode(value, b"~[]") == (java_urlencode(value).replace("%7E", "~")
                                                     .replace("%5B", "[").replace("%5D", "]"))


@pytest.mark.parametrize("text", ["2030-01-01T00:00:00+0000", "2030-01-01T00:00:00.5-0530", "2030-1-1T0:0:0+0000",
                                  "2030-02-30T00:00:00+0000", "2030-01-01T24:00:00+0000", "2030-01-01T00:00:60+0000",
                                  "2030-01-01T00:00:00+2400", "2030-01-01T00:00:00.1234567+0000", " 2030-01-01T00:00:00Z "])
def test_expires_read_as_by_strptime(text):
    """The fast reading of the common form agrees with the strptime formats it stands for."""
    import datetime as dt

    expected = None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        for candidate in (text.strip(), text.strip()[:-1] + "+0000" if text.strip().endswith("Z") else text.strip()):
            try:
                expected = expected or dt.datetime.strptime(candidate, fmt)
            except ValueError:
                pass
    assert signing.parse_expires(text) == expected


# -- the worked examples ---------------------------------------------------------------------------
def test_example1_canonical_form_and_signature():
    assert signing.canonical(EXAMPLE1) == EXAMPLE1_CANONICAL
    assert signing.sign(EXAMPLE1, SPEC_SECRET) == EXAMPLE1_SIGNATURE
    assert signing.verify(EXAMPLE1, SPEC_SECRET, EXAMPLE1_SIGNATURE)
    assert not signing.verify(EXAMPLE1, SPEC_SECRET[:-1] + "x", EXAMPLE1_SIGNATURE)


def test_example2_canonical_form_and_signature():
    assert reference_canonical(EXAMPLE2) == EXAMPLE2_CANONICAL  # the reference signer agrees with the spec
    assert signing.canonical(EXAMPLE2) == EXAMPLE2_CANONICAL
    assert signing.sign(EXAMPLE2, SPEC_SECRET) == EXAMPLE2_SIGNATURE
    assert signing.verify(EXAMPLE2, SPEC_SECRET, EXAMPLE2_SIGNATURE)


def test_example1_through_the_endpoint(client, spec_admin):
    # Exactly the documented request: the signature as it appears on the wire.
    url = (f"{API}?command=listUsers&response=json&apiKey={SPEC_KEY}"
           "&signature=TTpdDq%2F7j%2FJ58XCRHomKoQXEQds%3D")
    answer = Answer(client.get(url))
    assert answer.status == 200, answer
    assert answer.name == "listusersresponse"
    assert "admin" in [u["username"] for u in answer.inner["user"]]


def test_example2_verifies_as_the_spec_admin(spec_admin):
    params = {**EXAMPLE2, "signature": EXAMPLE2_SIGNATURE}
    assert auth.api_key_user(params).pk == spec_admin.pk


def test_example2_parameter_set_through_the_endpoint(client, spec_admin):
    """Spaces, parentheses, '*', base64 with '+/=', a map parameter and UTF-8 all survive the
    transport (GET and POST) and verify."""
    params = {**EXAMPLE2, "command": "listUsers", "expires": expires_in(600)}
    params["signature"] = reference_sign(params, SPEC_SECRET)
    for method in ("GET", "POST"):
        answer = send(client, params, method=method)
        assert answer.status == 200, (method, answer)
        assert answer.name == "listusersresponse"


# -- the clients' variants (spec §2.2) -----------------------------------------------------------
SPEC_TABLE = [  # displayname: (server/Java, cs 5.2.0, libcloud 3.9.1)
    ("a~b", "ImQX0LdV7In8ufoDR4l9T21+rHA=", "6MTMxO7JfXRLt5qw2/KvwL1moXU=", "6MTMxO7JfXRLt5qw2/KvwL1moXU="),
    ("x[1]", "OOqeAunOEYsVki97DPsbH4bIMJo=", "OOqeAunOEYsVki97DPsbH4bIMJo=", "iDfpXIQAnPrFrjGXAcPJqTazI1Q="),
    ("a'b!c", "nOu2ZpjVTHf8A6kwtfdqnm0Ju1Q=", "nOu2ZpjVTHf8A6kwtfdqnm0Ju1Q=", "nOu2ZpjVTHf8A6kwtfdqnm0Ju1Q="),
]


@pytest.mark.parametrize("displayname, java, cs_sig, libcloud_sig", SPEC_TABLE)
def test_spec_variant_table(displayname, java, cs_sig, libcloud_sig):
    """Our client re-implementations reproduce the spec's cross-check table, and the server
    accepts every one of those signatures."""
    params = {**EXAMPLE2, "displayname": displayname}
    assert reference_sign(params, SPEC_SECRET) == java
    assert signing.sign(params, SPEC_SECRET) == java
    assert cs_sign(params, SPEC_SECRET) == cs_sig
    assert libcloud_sign(params, SPEC_SECRET) == libcloud_sig
    for sig in (java, cs_sig, libcloud_sig):
        assert signing.verify(params, SPEC_SECRET, sig), sig


def _client_request(style: str, tenant, value: str) -> dict[str, str]:
    """A listUsers request signed the way `style` does, carrying `value` in a parameter."""
    if style == "cs":  # raw names, v3 + expires, quote(safe="*")
        params = {"command": "listUsers", "apiKey": tenant.api_key, "response": "json", "signatureVersion": "3",
                  "expires": expires_in(600), "keyword": value}
        params["signature"] = cs_sign(params, tenant.secret)
    elif style == "libcloud":  # camelCase names sent as-is, signed lower-cased; never v3
        params = {"command": "listUsers", "apiKey": tenant.api_key, "response": "json", "keyword": value,
                  "zoneId": "z", "zone_x": "y"}  # 'zoneId' < 'zone_x' raw, but 'zone_x' < 'zoneid' lowered
        params["signature"] = libcloud_sign(params, tenant.secret)
    elif style == "cloudmonkey5":  # lower-case names, signatureversion=3
        params = {"command": "listUsers", "apikey": tenant.api_key, "response": "json", "signatureversion": "3",
                  "expires": expires_in(600), "keyword": value}
        params["signature"] = cloudmonkey5_sign(params, tenant.secret)
    else:  # cmk: raw names, no expires
        params = {"command": "listUsers", "apiKey": tenant.api_key, "response": "json", "keyword": value}
        params["signature"] = cmk_sign(params, tenant.secret)
    return params


@pytest.mark.parametrize("style", ["cs", "libcloud", "cloudmonkey5", "cmk"])
@pytest.mark.parametrize("value", ["a~b", "x[1]", "web 01 (prod)*", "a'b!c", "café/é+=&?"])
def test_client_variants_verify_through_the_endpoint(client, admin, style, value):
    params = _client_request(style, admin, value)
    answer = send(client, params)
    assert answer.status == 200, answer
    assert answer.name == "listusersresponse"


def test_the_variants_really_differ_from_the_java_form(admin):
    """Guard for the test above: the `~` and `[1]` requests are not signed the Java way, so they
    only pass because the server accepts the client variants."""
    for style, value in (("cs", "a~b"), ("libcloud", "x[1]"), ("libcloud", "a~b"), ("cmk", "a~b")):
        params = _client_request(style, admin, value)
        assert params["signature"] != reference_sign(params, admin.secret), (style, value)


# -- refusals --------------------------------------------------------------------------------------
def test_tampered_value_is_refused(client, admin):
    params = signed(admin, "listUsers", username="admin")
    params["username"] = "tenant-a"
    assert_refused(send(client, params))


def test_tampered_signature_is_refused(client, admin):
    params = signed(admin, "listUsers")
    params["signature"] = params["signature"][:-2] + ("A=" if params["signature"][-2] != "A" else "B=")
    assert_refused(send(client, params))


def test_another_users_key_is_refused(client, tenant_a, tenant_b):
    params = signed(tenant_a, "listUsers")
    params["apiKey"] = tenant_b.api_key
    params["signature"] = reference_sign({k: v for k, v in params.items() if k != "signature"}, tenant_a.secret)
    assert_refused(send(client, params))


def test_unknown_key_is_refused(client, admin):
    params = signed(admin, "listUsers")
    params["apiKey"] = "nope" + admin.api_key[4:]
    assert_refused(send(client, params))


def test_signature_without_api_key_is_refused(client, admin):
    params = signed(admin, "listUsers")
    del params["apiKey"]
    assert_refused(send(client, params))


def test_expired_v3_request_is_refused(client, admin):
    assert_refused(send(client, signed(admin, "listUsers", expires=expires_in(-60))))


def test_v3_request_without_expires_is_refused(client, admin):
    params = {"command": "listUsers", "apiKey": admin.api_key, "response": "json", "signatureVersion": "3"}
    params["signature"] = reference_sign(params, admin.secret)
    assert_refused(send(client, params))


def test_v3_request_with_unparsable_expires_is_refused(client, admin):
    assert_refused(send(client, signed(admin, "listUsers", expires="tomorrow")))


def test_refusal_in_xml(client, admin):
    params = signed(admin, "listUsers", fmt="xml", expires=expires_in(-60))
    answer = send(client, params)
    assert answer.content_type == "text/xml; charset=UTF-8"
    assert_refused(answer)


@pytest.mark.parametrize("expires", ["{}+0000", "{}+00:00", "{}Z", "{}.123456+0000"])
def test_v3_expires_formats(client, admin, expires):
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 600))
    answer = send(client, signed(admin, "listUsers", expires=expires.format(stamp)))
    assert answer.status == 200, answer


def test_without_signature_version_expires_is_just_a_signed_parameter(client, admin):
    """Spec §2.1.5: only signatureVersion=3 triggers the expiry check."""
    answer = send(client, signed(admin, "listUsers", v3=False, expires=expires_in(-3600)))
    assert answer.status == 200, answer


def test_signature_version_other_than_3_has_no_expiry_check(client, admin):
    answer = send(client, signed(admin, "listUsers", v3=False, signatureVersion="2", expires=expires_in(-3600)))
    assert answer.status == 200, answer


# -- enforce.post.requests.and.timestamps ---------------------------------------------------------
@pytest.fixture
def enforced(cloud):
    config.set_value("enforce.post.requests.and.timestamps", "true")


def test_enforced_timestamps_reject_non_v3(client, admin, enforced):
    assert_refused(send(client, signed(admin, "listUsers", v3=False)))


def test_enforced_timestamps_reject_far_future_expires(client, admin, enforced):
    assert_refused(send(client, signed(admin, "listUsers", expires=expires_in(3600))))


def test_enforced_timestamps_accept_v3_within_15_minutes(client, admin, enforced):
    assert send(client, signed(admin, "listUsers", expires=expires_in(600))).status == 200


def test_far_future_expires_is_fine_when_not_enforced(client, admin):
    assert send(client, signed(admin, "listUsers", expires=expires_in(30 * 86400))).status == 200


# -- the `cs` library itself (PyPI cs 5.2.0) --------------------------------------------------------
class DjangoSession:
    """A requests-compatible session for cs.CloudStack that answers through Django's test client."""

    def __init__(self, client, capture):
        self.client = client
        self.capture = capture
        self.sent: list[requests.PreparedRequest] = []

    def send(self, prepped, **kwargs):
        self.sent.append(prepped)
        url = urlsplit(prepped.url)
        path = url.path + ("?" + url.query if url.query else "")
        with self.capture(execute=True):
            if prepped.method == "GET":
                response = self.client.get(path)
            else:
                body = prepped.body or ""
                response = self.client.generic(prepped.method, path, data=body,
                                               content_type=prepped.headers.get("Content-Type", FORM))
        answer = requests.Response()
        answer.status_code = response.status_code
        answer._content = response.content
        answer.headers = CaseInsensitiveDict(dict(response.items()))
        answer.encoding = "utf-8"
        answer.url = prepped.url
        answer.reason = response.reason_phrase
        return answer


@pytest.fixture
def cs_client(client, admin, django_capture_on_commit_callbacks):
    import cs

    def make(tenant=admin, **kwargs):
        session = DjangoSession(client, django_capture_on_commit_callbacks)
        return cs.CloudStack(endpoint="http://testserver/client/api", key=tenant.api_key, secret=tenant.secret,
                             session=session, poll_interval=0, **kwargs)

    return make


def test_cs_sign_internals_produce_a_signature_the_server_accepts(client, admin):
    import cs

    api = cs.CloudStack(endpoint="http://testserver/client/api", key=admin.api_key, secret=admin.secret)
    kind, params = api._prepare_request("listUsers", keyword="a~b c", listall=True, tags={"key": "x[1]"})
    cs.client.transform(params)
    api._sign(params)
    assert params["signatureVersion"] == "3" and params["expires"].endswith("+0000")
    assert params["signature"] != reference_sign(params, admin.secret)  # '~' makes cs differ from Java
    answer = send(client, params)
    assert answer.status == 200, answer
    assert answer.name == "listusersresponse"


@pytest.mark.parametrize("method", ["get", "post"])
def test_cs_library_end_to_end(cs_client, admin, tenant_a, method):
    import cs

    api = cs_client(method=method)
    users = api.listUsers(listall=True, keyword="~")
    assert users == {}  # nothing matches, but the call verified
    accounts = api.listAccounts(fetch_list=True)
    assert {a["name"] for a in accounts} >= {"admin", "tenant-a"}
    result = api.deleteAccount(id=str(tenant_a.account.uuid), fetch_result=True)
    assert result == {"success": True}
    with pytest.raises(cs.CloudStackApiException) as failure:
        api.listAccounts(id="not-a-uuid")
    assert failure.value.error["errorcode"] == 431
    assert all(p.method == method.upper() for p in api.session.sent)


def test_cs_library_reports_a_failed_job(cs_client, admin):
    import cs

    api = cs_client()
    with pytest.raises(cs.CloudStackApiException) as failure:
        api.deleteAccount(id=str(admin.account.uuid), fetch_result=True)  # the default admin account
    assert failure.value.error["errorcode"] == 431
    assert "cannot be deleted" in failure.value.error["errortext"]


def test_cs_library_with_wrong_secret(cs_client, admin):
    import cs

    api = cs_client()
    api.secret = "wrong" + admin.secret
    with pytest.raises(cs.CloudStackApiException) as failure:
        api.listUsers()
    assert failure.value.error["errortext"] == BAD_CREDENTIALS
    assert failure.value.response.status_code == 401


def test_a_plus_reaches_the_server_percent_encoded():
    # urlencode of a '+' must reach the server as %2B (spec §2.1); our helpers rely on that.
    assert urlencode({"e": "+0000"}) == "e=%2B0000"
