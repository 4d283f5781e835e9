"""listApis as discovery data (spec §8.1, §9.3, §9.4) and listCapabilities."""
from __future__ import annotations

import pytest

from accounts.models import User
from portal import config
from portal.api.registry import REGISTRY
from tests.api.helpers import as_list, send, signed
from tests.factories import _with_keys

ASYNC = {"deleteAccount", "deleteDomain", "disableAccount", "disableUser",  # as in CloudStack 4.18
         "prepareHostForMaintenance", "cancelHostMaintenance", "reconnectHost",
         "deleteTemplate", "copyTemplate", "extractTemplate", "deleteIso", "copyIso", "extractIso",
         "deployVirtualMachine", "startVirtualMachine", "stopVirtualMachine", "rebootVirtualMachine",
         "destroyVirtualMachine", "expungeVirtualMachine", "resetPasswordForVirtualMachine",
         "resetSSHKeyForVirtualMachine", "scaleVirtualMachine", "restoreVirtualMachine", "attachIso", "detachIso",
         "setupBasicZone"}  # Nubo's own: the wizard's whole set-up runs as one job


def list_apis(client, tenant, fmt="json", **params):
    answer = send(client, signed(tenant, "listApis", fmt=fmt, **params))
    assert answer.status == 200, answer
    return answer


def nulls(value, path="$"):
    if value is None:
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from nulls(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nulls(item, f"{path}[{index}]")


def check_cmk_api(api: dict) -> None:
    """What cmk's hard type assertions and CloudMonkey 5's cache builder need (spec §9.3, §9.4)."""
    assert isinstance(api["name"], str) and api["name"]
    assert isinstance(api["description"], str) and api["description"]
    assert type(api["isasync"]) is bool
    assert isinstance(api["related"], str)
    assert isinstance(api["since"], str)
    assert isinstance(api["params"], list)
    assert isinstance(api["response"], list)
    for param in api["params"]:
        assert isinstance(param["name"], str) and param["name"] == param["name"].lower(), param
        assert isinstance(param["type"], str) and param["type"], param
        assert type(param["required"]) is bool, param
        assert isinstance(param["description"], str) and param["description"], param
        assert type(param["length"]) is int and param["length"] > 0, param
        assert isinstance(param.get("related", ""), str)
        related = param.get("related", "")
        assert all(r.strip() for r in related.split(",")) if related else True
    for field in api["response"]:
        check_response_field(field)


def check_response_field(field: dict) -> None:
    assert isinstance(field["name"], str) and field["name"], field
    assert isinstance(field["description"], str), field
    assert isinstance(field["type"], str) and field["type"], field
    assert isinstance(field["response"], list), field
    for child in field["response"]:
        check_response_field(child)


def test_every_registered_command_is_discoverable(client, admin):
    answer = list_apis(client, admin)
    apis = answer.inner["api"]
    assert answer.inner["count"] == len(apis) == len(REGISTRY)
    assert {a["name"] for a in apis} == set(REGISTRY)
    assert not list(nulls(answer.body))
    for api in apis:
        check_cmk_api(api)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_api_metadata_matches_the_declaration(client, admin, name):
    cls = REGISTRY[name]
    api = list_apis(client, admin, name=name).inner["api"][0]
    check_cmk_api(api)
    assert api["name"] == name
    assert api["isasync"] is cls.is_async
    assert api["description"] == (cls.description or name)
    declared = cls.Params().fields
    assert {p["name"] for p in api["params"]} == set(declared)
    for param in api["params"]:
        assert param["required"] is bool(declared[param["name"]].required)
    if cls.kind != "success":
        assert api["response"], f"{name} documents no response fields"
    if cls.is_async:
        assert {"jobid", "jobstatus"} <= {f["name"] for f in api["response"]}


def test_async_flags_match_cloudstack(client, admin):
    from tests.api.test_commands import CASES  # the tenancy/framework commands of this suite

    apis = list_apis(client, admin).inner["api"]
    assert {a["name"] for a in apis if a["isasync"] and a["name"] in CASES} == ASYNC


def test_parameter_types_and_lengths(client, admin):
    apis = {a["name"]: a for a in list_apis(client, admin).inner["api"]}
    create_account = {p["name"]: p for p in apis["createAccount"]["params"]}
    assert create_account["username"] == {**create_account["username"], "type": "string", "required": True,
                                          "length": 255}
    assert create_account["domainid"]["type"] == "uuid"
    assert create_account["accounttype"]["type"] == "integer"
    assert create_account["accountdetails"]["type"] == "map"
    delete_domain = {p["name"]: p for p in apis["deleteDomain"]["params"]}
    assert delete_domain["cleanup"]["type"] == "boolean" and delete_domain["cleanup"]["required"] is False
    update_configuration = {p["name"]: p for p in apis["updateConfiguration"]["params"]}
    assert update_configuration["value"]["length"] == 4096


def test_nested_response_fields(client, admin):
    api = list_apis(client, admin, name="listAccounts").inner["api"][0]
    fields = {f["name"]: f for f in api["response"]}
    assert {"id", "name", "accounttype", "domainid", "state", "user"} <= set(fields)
    assert "username" in {f["name"] for f in fields["user"]["response"]}


def test_listapis_xml_is_parseable(client, admin):
    answer = list_apis(client, admin, fmt="xml", name="createAccount")
    api = answer.inner["api"]
    assert api["name"] == "createAccount"
    assert api["isasync"] == "false"
    params = as_list(api["params"])
    assert len(params) == len(REGISTRY["createAccount"].Params().fields)
    assert all(p["length"].isdigit() for p in params)


def test_name_filter(client, admin):
    answer = list_apis(client, admin, name="listUsers")
    assert answer.inner["count"] == 1
    assert [a["name"] for a in answer.inner["api"]] == ["listUsers"]
    unknown = send(client, signed(admin, "listApis", name="listNothing"))
    assert unknown.status == 431
    assert "listNothing" in unknown.errortext


def test_a_user_discovers_only_what_its_role_allows(client, tenant_a):
    names = {a["name"] for a in list_apis(client, tenant_a).inner["api"]}
    expected = {n for n, cls in REGISTRY.items() if "User" in {str(r) for r in cls.roles}}
    assert names == expected
    assert "createDomain" not in names and "listUsers" in names
    hidden = send(client, signed(tenant_a, "listApis", name="createDomain"))
    assert hidden.status == 431  # an admin command is not even named to a user


def test_a_domain_admin_discovers_no_root_admin_command(client, domain_admin):
    names = {a["name"] for a in list_apis(client, domain_admin).inner["api"]}
    assert "createDomain" in names
    assert not names & {"updateConfiguration", "listConfigurations", "createRole", "createRolePermission"}


@pytest.fixture
def restricted(client, admin, cloud):
    """A user whose role (made through the API) denies listUsers and every delete*."""
    role = send(client, signed(admin, "createRole", name="Restricted", type="User")).inner["role"]
    for rule in ("listUsers", "delete*"):
        made = send(client, signed(admin, "createRolePermission", roleid=role["id"], rule=rule, permission="deny"))
        assert made.status == 200, made
    made = send(client, signed(admin, "createAccount", username="restricted", password="pw-12345",
                              email="r@example.org", firstname="R", lastname="R", roleid=role["id"]))
    assert made.status == 200, made
    user = User.objects.select_related("account__domain", "account__role").get(username="restricted")
    return _with_keys(user, "pw-12345")


def test_a_deny_rule_removes_the_command_from_listapis_and_answers_401(client, restricted):
    names = {a["name"] for a in list_apis(client, restricted).inner["api"]}
    assert "listUsers" not in names
    assert "listAccounts" in names
    assert not {n for n in names if n.startswith("delete")}
    refused = send(client, signed(restricted, "listUsers"))
    assert refused.status == 401
    assert refused.errortext == "The given command 'listUsers' either does not exist, is not available for user."
    assert send(client, signed(restricted, "listApis", name="listUsers")).status == 431
    assert send(client, signed(restricted, "listAccounts")).status == 200


def test_listapis_follows_rule_changes(client, admin, restricted):
    rule = send(client, signed(admin, "listRolePermissions", roleid=str(restricted.account.role.uuid)))
    first = next(r for r in rule.inner["rolepermission"] if r["rule"] == "listUsers")
    changed = send(client, signed(admin, "updateRolePermission", roleid=first["roleid"], ruleid=first["id"],
                                  permission="allow"))
    assert changed.status == 200, changed
    assert "listUsers" in {a["name"] for a in list_apis(client, restricted).inner["api"]}
    assert send(client, signed(restricted, "listUsers")).status == 200


# -- listCapabilities ----------------------------------------------------------------------------
CAPABILITY_FIELDS = {
    "cloudstackversion": str, "securitygroupsenabled": bool, "userpublictemplateenabled": bool, "supportELB": str,
    "projectinviterequired": bool, "allowusercreateprojects": bool, "customdiskofferingminsize": int,
    "customdiskofferingmaxsize": int, "regionsecondaryenabled": bool, "kvmsnapshotenabled": bool,
    "allowuserviewdestroyedvm": bool, "allowuserexpungerecovervm": bool, "allowuserexpungerecovervolume": bool,
    "allowuserviewalldomainaccounts": bool, "dynamicrolesenabled": bool, "kubernetesserviceenabled": bool,
    "kubernetesclusterexperimentalfeaturesenabled": bool, "defaultuipagesize": int,
    "instancesstatsretentiontime": int, "instancesstatsuseronly": bool, "instancesdisksstatsretentionenabled": bool,
    "instancesdisksstatsretentiontime": int,
}


@pytest.mark.parametrize("who", ["admin", "tenant_a"])
def test_list_capabilities_fields(client, request, who):
    tenant = request.getfixturevalue(who)
    answer = send(client, signed(tenant, "listCapabilities"))
    assert answer.status == 200
    capability = answer.inner["capability"]
    assert set(capability) == set(CAPABILITY_FIELDS)  # no apilimit* while throttling is off
    for key, kind in CAPABILITY_FIELDS.items():
        assert type(capability[key]) is kind, (key, capability[key])
    assert capability["cloudstackversion"] == "4.18.0.0"
    assert capability["defaultuipagesize"] == 20
    assert capability["dynamicrolesenabled"] is True


def test_list_capabilities_follow_settings(client, admin):
    config.set_value("default.ui.page.size", "50")
    config.set_value("api.throttling.enabled", "true")
    config.set_value("api.throttling.max", "100")
    capability = send(client, signed(admin, "listCapabilities")).inner["capability"]
    assert capability["defaultuipagesize"] == 50
    assert capability["apilimitmax"] == 100
    assert capability["apilimitinterval"] == 1


def test_list_capabilities_xml(client, admin):
    answer = send(client, signed(admin, "listCapabilities", fmt="xml"))
    assert answer.inner["capability"]["securitygroupsenabled"] == "false"
    assert answer.inner["capability"]["defaultuipagesize"] == "20"
