"""Envelopes, content types, error shapes and parameter handling (spec §1, §3, §5, §7)."""
from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from accounts.commands import ListUsers
from portal import config
from tests.api.helpers import (
    API,
    JSON_TYPE,
    XML_TYPE,
    Answer,
    as_list,
    reference_sign,
    send,
    signed,
    uid,
)
from tests.factories import make_account, make_domain

DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")


def walk(value, path="$"):
    """Yield (path, value) for every leaf of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, f"{path}[{index}]")
    else:
        yield path, value


# -- content types and headers ------------------------------------------------------------------
def test_json_content_type_and_headers(client, admin):
    answer = send(client, signed(admin, "listCapabilities"))
    assert answer.status == 200
    assert answer["Content-Type"] == JSON_TYPE
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["X-XSS-Protection"] == "1;mode=block"
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["Referrer-Policy"] == "same-origin"  # SecurityMiddleware runs for the API too
    assert answer["Content-Length"] == str(len(answer.response.content))
    assert list(answer.body) == ["listcapabilitiesresponse"]
    assert not answer.text.startswith("{ ") and ": " not in answer.text[:40]  # compact, like Gson


@pytest.mark.parametrize("response", [None, "xml", "yaml", "", "XML"])
def test_xml_is_the_default_and_the_fallback(client, admin, response):
    params = signed(admin, "listCapabilities", fmt="xml")
    if response is not None:
        params["response"] = response
        params["signature"] = reference_sign({k: v for k, v in params.items() if k != "signature"}, admin.secret)
    answer = send(client, params)
    assert answer.status == 200, answer
    assert answer["Content-Type"] == XML_TYPE
    assert answer.text.startswith('<?xml version="1.0" encoding="UTF-8"?><listcapabilitiesresponse '
                                  'cloud-stack-version="4.18.0.0">')
    assert answer.inner["capability"]["cloudstackversion"] == "4.18.0.0"


def test_response_value_is_case_insensitive(client, admin):
    params = signed(admin, "listCapabilities", fmt="xml")
    params["response"] = "JSON"
    params["signature"] = reference_sign({k: v for k, v in params.items() if k != "signature"}, admin.secret)
    assert send(client, params)["Content-Type"] == JSON_TYPE


# -- error envelopes ------------------------------------------------------------------------------
def test_error_envelope_json(client, admin):
    answer = send(client, signed(admin, "listUsers", id="nope"))
    assert answer.status == 431
    assert answer["Content-Type"] == JSON_TYPE
    assert list(answer.body) == ["listusersresponse"]
    assert list(answer.inner) == ["uuidList", "errorcode", "cserrorcode", "errortext"]
    assert answer.inner["uuidList"] == []
    assert answer.inner["errorcode"] == 431 == answer.status
    assert isinstance(answer.inner["cserrorcode"], int)
    assert answer.errortext.startswith("Unable to execute API command listusers due to invalid value. "
                                       "Invalid parameter id value=nope")
    assert answer["X-Description"] == answer.errortext


def test_error_envelope_xml(client, admin):
    answer = send(client, signed(admin, "listUsers", fmt="xml", id="nope"))
    assert answer.status == 431
    assert answer["Content-Type"] == XML_TYPE
    assert re.fullmatch(
        r'<\?xml version="1.0" encoding="UTF-8"\?><listusersresponse cloud-stack-version="4.18.0.0">'
        r"<errorcode>431</errorcode><cserrorcode>\d+</cserrorcode><errortext>[^<]+</errortext></listusersresponse>",
        answer.text), answer.text
    assert "uuidList" not in answer.text  # an empty uuidList emits nothing in XML
    assert answer["X-Description"] == answer.errortext


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_unknown_command(client, admin, fmt):
    answer = send(client, signed(admin, "listNothing", fmt=fmt))
    assert answer.status == 432
    assert answer.name == "errorresponse"
    assert answer.errortext == "Unknown API command: listNothing"
    assert str(answer.inner["errorcode"]) == "432"


def test_command_names_are_case_sensitive(client, admin):
    answer = send(client, signed(admin, "listusers"))
    assert answer.status == 432
    assert answer.errortext == "Unknown API command: listusers"


@pytest.mark.parametrize("params", [{}, {"response": "json"}, {"response": "json", "username": "admin"}])
def test_no_command(client, cloud, params):
    answer = send(client, params)
    assert answer.status == 432
    assert answer.name == "errorresponse"
    assert answer.errortext == "Invalid request, no command sent"
    assert answer["Content-Type"] == (JSON_TYPE if params else XML_TYPE)


def test_internal_error_is_an_envelope_not_a_traceback(client, admin, monkeypatch):
    def boom(self, params):
        raise RuntimeError("secret internals: /etc/shadow")

    monkeypatch.setattr(ListUsers, "execute", boom)
    answer = send(client, signed(admin, "listUsers"))
    assert answer.status == 530
    assert answer.name == "listusersresponse"
    assert answer.errortext == "Internal error executing command, please contact your system administrator"
    assert "Traceback" not in answer.text and "shadow" not in answer.text


# -- successful envelopes -------------------------------------------------------------------------
def test_json_has_no_nulls_and_cloudstack_dates(client, admin, tenant_a):
    answer = send(client, signed(admin, "listAccounts", listall="true"))
    leaves = list(walk(answer.body))
    assert all(value is not None for _, value in leaves), [p for p, v in leaves if v is None]
    created = [v for p, v in leaves if p.endswith(".created")]
    assert created and all(DATE_RE.match(v) for v in created), created


def test_special_characters_round_trip(client, admin):
    name = "R&D <\"quoted\"> 'café'"
    created = send(client, signed(admin, "createDomain", name=name))
    assert created.status == 200, created
    assert created.inner["domain"]["name"] == name
    assert "café" in created.text  # UTF-8, not \u escapes (Gson un-escapes them)
    as_xml = send(client, signed(admin, "listDomains", fmt="xml", name=name))
    assert "R&amp;D &lt;&quot;quoted&quot;&gt; &apos;café&apos;" in as_xml.text
    assert as_xml.inner["domain"]["name"] == name


# -- list shapes and paging -----------------------------------------------------------------------
@pytest.fixture
def five_users(cloud):
    return [make_account(f"pager-{i}") for i in range(4)]  # + admin = 5 users


def test_list_count_comes_first_and_counts_everything(client, admin, five_users):
    answer = send(client, signed(admin, "listUsers", page="1", pagesize="2"))
    assert answer.status == 200
    assert list(answer.inner) == ["count", "user"]
    assert answer.inner["count"] == 5
    assert len(answer.inner["user"]) == 2
    rest = send(client, signed(admin, "listUsers", page="3", pagesize="2")).inner["user"]
    assert len(rest) == 1
    everything = send(client, signed(admin, "listUsers", pagesize="-1")).inner
    assert everything["count"] == len(everything["user"]) == 5


def test_pages_do_not_overlap(client, admin, five_users):
    seen = []
    for page in ("1", "2", "3"):
        seen += [u["id"] for u in send(client, signed(admin, "listUsers", page=page, pagesize="2")).inner["user"]]
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_empty_list_is_an_empty_object(client, admin, fmt):
    answer = send(client, signed(admin, "listUsers", fmt=fmt, username="nobody"))
    assert answer.status == 200
    if fmt == "json":
        assert answer.body == {"listusersresponse": {}}
    else:
        assert answer.text.endswith('<listusersresponse cloud-stack-version="4.18.0.0"></listusersresponse>')


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_page_beyond_the_end_has_only_the_count(client, admin, five_users, fmt):
    answer = send(client, signed(admin, "listUsers", fmt=fmt, page="9", pagesize="2"))
    assert answer.status == 200
    assert answer.inner == ({"count": 5} if fmt == "json" else {"count": "5"})


@pytest.mark.parametrize("params, text", [
    ({"pagesize": "2"}, '"page" parameter is required when "pagesize" is specified'),
    ({"page": "2"}, '"pagesize" parameter is required when "page" is specified'),
    ({"page": "1", "pagesize": "501"}, "Page size can't exceed max allowed page size value: 500"),
    ({"page": "1", "pagesize": "x"}, "Unable to execute API command listusers due to invalid value. "
                                     "Invalid parameter pagesize value=x"),
])
def test_bad_paging(client, admin, params, text):
    answer = send(client, signed(admin, "listUsers", **params))
    assert answer.status == 431, answer
    assert answer.errortext.startswith(text)


def test_default_page_size_caps_lists(client, admin, five_users):
    config.set_value("default.page.size", "3")
    answer = send(client, signed(admin, "listUsers"))
    assert answer.inner["count"] == 5 and len(answer.inner["user"]) == 3
    too_big = send(client, signed(admin, "listUsers", page="1", pagesize="4"))
    assert too_big.status == 431
    assert too_big.errortext == "Page size can't exceed max allowed page size value: 3"


# -- parameter handling ---------------------------------------------------------------------------
def test_parameter_names_are_case_insensitive(client, admin, tenant_a):
    answer = send(client, signed(admin, "listUsers", ID=uid(tenant_a.user)))
    assert answer.inner["count"] == 1
    assert answer.inner["user"][0]["username"] == "tenant-a"
    answer = send(client, signed(admin, "listUsers", UserName="tenant-a", listAll="true"))
    assert [u["username"] for u in answer.inner["user"]] == ["tenant-a"]


def test_map_parameters_keep_the_field_case(client, admin):
    answer = send(client, signed(admin, "createAccount", username="mapper", password="pw-12345",
                                 email="m@example.org", firstname="M", lastname="T",
                                 **{"accountDetails[0].someKey": "v", "accountdetails[1].other": "w"}))
    assert answer.status == 200, answer
    from portal.api.dispatch import normalise

    assert normalise({"accountDetails[0].someKey": "v", "accountdetails[1].other": "w", "X": "y"}, "createAccount") == {
        "accountdetails": {"0": {"someKey": "v"}, "1": {"other": "w"}}, "x": "y"}


@pytest.mark.parametrize("char", ["\t", "\x00", "\x1b", "\x7f", "\x0b"])
def test_control_characters_are_refused(client, admin, char):
    answer = send(client, signed(admin, "listUsers", keyword=f"a{char}b"))
    assert answer.status == 431
    assert answer.errortext == "Received value containing illegal ASCII non-printable characters for parameter keyword"


@pytest.mark.parametrize("char", ["\n", "\r"])
def test_line_breaks_are_allowed(client, admin, char):
    assert send(client, signed(admin, "listUsers", keyword=f"a{char}b")).status == 200


@pytest.mark.parametrize("key", ["details[0.x]", "a[0][1].b", "details[0]", "details[0]x"])
def test_malformed_map_keys(client, admin, key):
    answer = send(client, signed(admin, "listUsers", **{key: "1"}))
    assert answer.status == 430, answer
    assert answer.inner["errorcode"] == 430
    assert key in answer.errortext


def test_post_form_body_and_query_string(client, admin, tenant_a):
    # The signature covers the merged map; the query string wins over the body.
    merged = signed(admin, "listUsers", username="tenant-a")
    body = {**merged, "username": "admin"}
    query = {"username": "tenant-a"}
    answer = send(client, body, method="POST", query=query)
    assert answer.status == 200, answer
    assert [u["username"] for u in answer.inner["user"]] == ["tenant-a"]


def test_post_form_body_alone(client, admin):
    answer = send(client, signed(admin, "listUsers", username="admin"), method="POST")
    assert answer.status == 200, answer
    assert answer.inner["user"][0]["username"] == "admin"


def test_post_with_everything_in_the_query_string(client, admin):
    answer = send(client, {}, method="POST", query=signed(admin, "listUsers", username="admin"))
    assert answer.status == 200, answer


def test_only_the_first_value_of_a_repeated_name_counts(client, admin, tenant_a):
    params = signed(admin, "listUsers", username="tenant-a")
    url = API + "?" + urlencode(params) + "&username=admin&username=nobody"
    answer = Answer(client.get(url))
    assert answer.status == 200, answer
    assert [u["username"] for u in answer.inner["user"]] == ["tenant-a"]


@pytest.mark.parametrize("raw", [b"", b"a=1&b=&c", b"a=1&a=2&A=3", b"x=%C3%A9t%C3%A9+%2B&y=caf\xc3\xa9",
                                 b"latin=caf\xe9", b"bad=%ff%fe", b"map[0].key=v&map[0].value=w", b"&&=&a==b;c=d"])
def test_query_string_is_read_as_request_get_reads_it(raw):
    import io

    from django.core.handlers.wsgi import WSGIRequest

    from portal.api.views import query_pairs

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/client/api", "QUERY_STRING": raw.decode("iso-8859-1"),
               "wsgi.input": io.BytesIO(b"")}
    grouped: dict[str, list[str]] = {}
    for key, value in query_pairs(WSGIRequest(environ)):
        grouped.setdefault(key, []).append(value)
    assert grouped == dict(WSGIRequest(environ).GET.lists())


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_missing_required_parameter(client, admin, fmt):
    answer = send(client, signed(admin, "createDomain", fmt=fmt))
    assert answer.status == 431
    assert answer.name == "createdomainresponse"
    assert answer.errortext == "Unable to execute API command createdomain due to missing parameter name"


def test_oversized_string(client, admin):
    answer = send(client, signed(admin, "createDomain", name="x" * 256))
    assert answer.status == 431
    assert answer.errortext.startswith("Unable to execute API command createdomain due to invalid value. "
                                       "Invalid parameter name")
    assert "255" in answer.errortext
    assert send(client, signed(admin, "createDomain", name="x" * 255)).status == 200


def test_unknown_uuid_sentence(client, admin):
    missing = "00000000-0000-4000-8000-000000000000"
    answer = send(client, signed(admin, "updateDomain", id=missing, name="x"))
    assert answer.status == 431
    assert answer.errortext.startswith(
        f"Unable to execute API command updatedomain due to invalid value. Invalid parameter id value={missing} "
        "due to incorrect long value format, or entity does not exist")


def test_passwords_are_not_echoed_in_errors(client, admin):
    answer = send(client, signed(admin, "createAccount", username="u1", password="p" * 300, email="e",
                                 firstname="f", lastname="l"))
    assert answer.status == 431
    assert "ppp" not in answer.text


def test_unknown_parameters_are_ignored(client, admin):
    assert send(client, signed(admin, "listUsers", nosuchparameter="1", _="12345")).status == 200


@pytest.mark.parametrize("value, expected", [("true", 2), ("True", 2), ("TRUE", 2), ("false", 1), ("False", 1)])
def test_boolean_values(client, admin, value, expected):
    """true/false in any case (libcloud sends True/False)."""
    corp = make_domain("corp")
    make_domain("dev", parent=corp)
    answer = send(client, signed(admin, "listDomainChildren", isrecursive=value))
    assert answer.status == 200, answer
    assert answer.inner["count"] == expected


@pytest.mark.parametrize("value", ["yes", "1", "treu"])
def test_other_boolean_values_are_refused(client, admin, value):
    """A documented choice (docs/api.md): CloudStack's Boolean.valueOf would silently read these as
    false (spec §1); Nubo answers 431 so that a typo is not taken as "no"."""
    answer = send(client, signed(admin, "listDomainChildren", isrecursive=value))
    assert answer.status == 431, answer
    assert answer.errortext.startswith("Unable to execute API command listdomainchildren due to invalid value. "
                                       f"Invalid parameter isrecursive value={value}")


def test_blank_non_string_values_are_ignored(client, admin):
    answer = send(client, signed(admin, "listUsers", page="", pagesize="", accounttype=""))
    assert answer.status == 200, answer


def test_xml_lists_repeat_the_item_element(client, admin, five_users):
    answer = send(client, signed(admin, "listUsers", fmt="xml"))
    assert answer.inner["count"] == "5"
    assert len(as_list(answer.inner["user"])) == 5
    assert answer.text.count("<user>") == 5


def test_response_is_always_one_top_level_key(client, admin):
    for command in ("listCapabilities", "listUsers", "listDomains", "listApis"):
        body = json.loads(send(client, signed(admin, command)).text)
        assert list(body) == [command.lower() + "response"]
