"""The generic command suite (design.md §3.10): one declaration per registered command, and the
same checks run for every one of them, in JSON and in XML:

- success, as the least privileged role that may run it (200 and the documented response key;
  async commands: a job that finishes with jobstatus 1 and jobresultcode 0), leaving an Event of
  the command's type for every mutating command;
- a bad value → 431;
- another tenant's object → 431 (answered as "does not exist"), both ways between two domain
  subtrees; list filters answer an empty list instead;
- a role type the command does not declare → 401; a role deny rule (createRolePermission) → 401.

A command registered without an entry in CASES fails `test_every_command_is_declared`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest

from accounts import services
from accounts.models import Account, Role, User
from portal.api.registry import REGISTRY
from portal.models import Event
from tests.api.helpers import FORMATS, Side, World, as_list, finished_job, send, share_client_handler, signed, uid
from tests.factories import Tenant, _with_keys

U, D, A = "User", "DomainAdmin", "Admin"
ALL, ADMINS, ROOT_ONLY = frozenset({A, D, U}), frozenset({A, D}), frozenset({A})
NOT_FOUND = ("does not exist", "Unable to find")
INFRA = "infrastructure is managed by root admins only"


@dataclass
class Case:
    """How to exercise one command. To add a command: its role types; `params(world, side)` giving
    valid parameters for the least privileged caller of `side` (tests.api.helpers.World/Side hold
    two tenant subtrees with their objects; infrastructure commands also get zones, pods, clusters
    and hosts); the documented response key; one bad value; and whether naming the other side's
    object must answer 431 ("431"), an empty list ("empty"), or why there is no tenant object."""

    roles: frozenset[str]
    params: Callable[[World, Side], dict]
    key: str  # the documented response key (for async commands: the key of jobresult)
    bad: dict[str, str] | None  # overrides making the request invalid (431); None only without params
    foreign: str | None = "431"  # "431", "empty" (a list filter), or None when there is no tenant object
    why_no_foreign: str = ""
    empty: bool = False  # a list that is always empty (what a basic zone answers so): success is `{}`


def user_fields(w: World) -> dict:
    return {"password": "pw-12345", "email": "new@example.org", "firstname": "New", "lastname": "Person"}


CASES: dict[str, Case] = {
    # -- domains
    "createDomain": Case(ADMINS, lambda w, s: {"name": w.unique("dom"), "parentdomainid": uid(s.domain)},
                         "domain", bad={"parentdomainid": "not-a-uuid"}),
    "listDomains": Case(ALL, lambda w, s: {"id": uid(s.domain)}, "domain", bad={"level": "top"}, foreign="empty"),
    "listDomainChildren": Case(ADMINS, lambda w, s: {"id": uid(s.domain)}, "domain", bad={"id": "nope"}),
    "updateDomain": Case(ADMINS, lambda w, s: {"id": uid(s.sub), "name": w.unique("renamed")}, "domain",
                         bad={"id": "nope"}),
    "deleteDomain": Case(ADMINS, lambda w, s: {"id": uid(s.sub)}, "success", bad={"id": "42"}),
    # -- accounts
    "createAccount": Case(ADMINS, lambda w, s: {"username": w.unique("acct"), **user_fields(w),
                                                "domainid": uid(s.domain)}, "account", bad={"accounttype": "admin"}),
    "listAccounts": Case(ALL, lambda w, s: {"domainid": uid(s.domain)}, "account", bad={"accounttype": "x"}),
    "updateAccount": Case(ADMINS, lambda w, s: {"id": uid(s.victim.account), "newname": w.unique("acct")},
                          "account", bad={"roleid": "nope"}),
    "deleteAccount": Case(ADMINS, lambda w, s: {"id": uid(s.victim.account)}, "success", bad={"id": "nope"}),
    "disableAccount": Case(ADMINS, lambda w, s: {"id": uid(s.victim.account), "lock": "false"}, "account",
                           bad={"id": "0000"}),
    "enableAccount": Case(ADMINS, lambda w, s: {"id": uid(s.victim.account)}, "account", bad={"id": "nope"}),
    "lockAccount": Case(ADMINS, lambda w, s: {"id": uid(s.victim.account)}, "account", bad={"id": "nope"}),
    # -- users
    "createUser": Case(ADMINS, lambda w, s: {"account": s.victim.account.name, "username": w.unique("user"),
                                             **user_fields(w), "domainid": uid(s.domain)}, "user",
                       bad={"domainid": "nope"}),
    "listUsers": Case(ALL, lambda w, s: {"domainid": uid(s.domain)}, "user", bad={"accounttype": "x"}),
    "updateUser": Case(ALL, lambda w, s: {"id": uid(s.user.user), "firstname": "Renamed"}, "user",
                       bad={"id": "nope"}),
    "deleteUser": Case(ADMINS, lambda w, s: {"id": uid(s.victim.user)}, "success", bad={"id": "nope"}),
    "disableUser": Case(ADMINS, lambda w, s: {"id": uid(s.victim.user)}, "user", bad={"id": "nope"}),
    "enableUser": Case(ADMINS, lambda w, s: {"id": uid(s.victim.user)}, "user", bad={"id": "nope"}),
    "lockUser": Case(ADMINS, lambda w, s: {"id": uid(s.victim.user)}, "user", bad={"id": "nope"}),
    "registerUserKeys": Case(ALL, lambda w, s: {"id": uid(s.user.user)}, "userkeys", bad={"id": "nope"}),
    "getUserKeys": Case(ALL, lambda w, s: {"id": uid(s.user.user)}, "userkeys", bad={"id": "nope"}),
    # -- roles
    "createRole": Case(ROOT_ONLY, lambda w, s: {"name": w.unique("role"), "type": "User"}, "role",
                       bad={"type": "Superuser"}, foreign=None, why_no_foreign="roles are global (root admin only)"),
    "listRoles": Case(ADMINS, lambda w, s: {}, "role", bad={"id": "nope"}, foreign=None,
                      why_no_foreign="roles are global"),
    "updateRole": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.spare_role), "description": "changed"}, "role",
                       bad={"id": "nope"}, foreign=None, why_no_foreign="roles are global (root admin only)"),
    "deleteRole": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.spare_role)}, "success", bad={"id": "nope"},
                       foreign=None, why_no_foreign="roles are global (root admin only)"),
    "createRolePermission": Case(ROOT_ONLY, lambda w, s: {"roleid": uid(w.spare_role), "rule": "createZone",
                                                          "permission": "deny"}, "rolepermission",
                                 bad={"permission": "maybe"}, foreign=None, why_no_foreign="root admin only"),
    "listRolePermissions": Case(ROOT_ONLY, lambda w, s: {"roleid": uid(w.spare_role)}, "rolepermission",
                                bad={"roleid": "nope"}, foreign=None, why_no_foreign="root admin only"),
    "updateRolePermission": Case(ROOT_ONLY, lambda w, s: {"roleid": uid(w.spare_role), "ruleid": uid(w.rule),
                                                          "permission": "allow"}, "success",
                                 bad={"ruleid": "nope"}, foreign=None, why_no_foreign="root admin only"),
    "deleteRolePermission": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.rule)}, "success", bad={"id": "nope"},
                                 foreign=None, why_no_foreign="root admin only"),
    # -- framework
    "listApis": Case(ALL, lambda w, s: {}, "api", bad={"name": "noSuchApi"}, foreign=None,
                     why_no_foreign="no object parameter"),
    "listCapabilities": Case(ALL, lambda w, s: {}, "capability", bad=None, foreign=None,
                             why_no_foreign="no parameters"),
    "queryAsyncJobResult": Case(ALL, lambda w, s: {"jobid": uid(s.job)}, "jobstatus", bad={"jobid": "nope"}),
    "listAsyncJobs": Case(ALL, lambda w, s: {"domainid": uid(s.domain)}, "asyncjobs", bad={"startdate": "yesterday"}),
    "listEvents": Case(ALL, lambda w, s: {"domainid": uid(s.domain)}, "event", bad={"startdate": "2024-13-45"}),
    "listConfigurations": Case(ROOT_ONLY, lambda w, s: {"name": "default.page.size"}, "configuration",
                               bad={"accountid": "nope"}, foreign=None, why_no_foreign="root admin only"),
    "updateConfiguration": Case(ROOT_ONLY, lambda w, s: {"name": "default.ui.page.size", "value": "25"},
                                "configuration", bad={"value": "many"}, foreign=None,
                                why_no_foreign="root admin only"),
    "resetConfiguration": Case(ROOT_ONLY, lambda w, s: {"name": "default.ui.page.size"}, "configuration",
                               bad={"name": "no.such.setting"}, foreign=None, why_no_foreign="root admin only"),
    # -- storage (global catalogue)
    "listOsTypes": Case(ALL, lambda w, s: {}, "ostype", bad={"oscategoryid": "nope"}, foreign=None,
                        why_no_foreign="the OS catalogue is global"),
    "listOsCategories": Case(ALL, lambda w, s: {}, "oscategory", bad={"id": "nope"}, foreign=None,
                             why_no_foreign="the OS catalogue is global"),
    # -- infrastructure (root admin; zones and hypervisors are listed to everyone)
    "createZone": Case(ROOT_ONLY, lambda w, s: {"name": w.unique("zone"), "networktype": "Basic", "dns1": "8.8.8.8",
                                                "internaldns1": "10.0.0.2"}, "zone", bad={"domainid": "nope"},
                       foreign=None, why_no_foreign=INFRA),
    "listZones": Case(ALL, lambda w, s: {"id": uid(s.zone)}, "zone", bad={"domainid": "nope"}, foreign="empty"),
    "updateZone": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.zone), "description": "changed"}, "zone",
                       bad={"id": "nope"}, foreign=None, why_no_foreign=INFRA),
    "deleteZone": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.spare_zone)}, "success", bad={"id": "nope"},
                       foreign=None, why_no_foreign=INFRA),
    "createPod": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone), "name": w.unique("pod"), "gateway": "10.9.0.1",
                                               "netmask": "255.255.255.0"}, "pod", bad={"zoneid": "nope"},
                      foreign=None, why_no_foreign=INFRA),
    "listPods": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "pod", bad={"zoneid": "nope"}, foreign=None,
                     why_no_foreign=INFRA),
    "updatePod": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.pod), "name": w.unique("pod")}, "pod", bad={"id": "nope"},
                      foreign=None, why_no_foreign=INFRA),
    "deletePod": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.spare_pod)}, "success", bad={"id": "nope"}, foreign=None,
                      why_no_foreign=INFRA),
    "createVlanIpRange": Case(ROOT_ONLY, lambda w, s: {"podid": uid(s.pod), "gateway": s.pod.gateway,
                                                       "netmask": "255.255.255.0",
                                                       "startip": s.pod.gateway.replace(".0.1", ".0.100"),
                                                       "endip": s.pod.gateway.replace(".0.1", ".0.110")},
                              "vlan", bad={"podid": "nope"}, foreign=None, why_no_foreign=INFRA),
    "listVlanIpRanges": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "vlaniprange", bad={"zoneid": "nope"},
                             foreign=None, why_no_foreign=INFRA),
    "deleteVlanIpRange": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.empty_range)}, "success", bad={"id": "nope"},
                              foreign=None, why_no_foreign=INFRA),
    "addCluster": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone), "podid": uid(s.pod),
                                                "clustername": w.unique("cluster"), "clustertype": "CloudManaged",
                                                "hypervisor": "Simulator"}, "cluster", bad={"podid": "nope"},
                       foreign=None, why_no_foreign=INFRA),
    "listClusters": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "cluster", bad={"zoneid": "nope"},
                         foreign=None, why_no_foreign=INFRA),
    "updateCluster": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.cluster), "clustername": w.unique("cluster")},
                          "cluster", bad={"id": "nope"}, foreign=None, why_no_foreign=INFRA),
    "deleteCluster": Case(ROOT_ONLY, lambda w, s: {"id": uid(w.spare_cluster)}, "success", bad={"id": "nope"},
                          foreign=None, why_no_foreign=INFRA),
    "addHost": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone), "podid": uid(s.pod), "clusterid": uid(s.cluster),
                                             "url": f"http://sim/{w.unique('host')}", "hypervisor": "Simulator"},
                    "host", bad={"clusterid": "nope"}, foreign=None, why_no_foreign=INFRA),
    "listHosts": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "host", bad={"zoneid": "nope"}, foreign=None,
                      why_no_foreign=INFRA),
    "updateHost": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.host), "hosttags": "fast"}, "host", bad={"id": "nope"},
                       foreign=None, why_no_foreign=INFRA),
    "deleteHost": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.maint_host)}, "success", bad={"id": "nope"},
                       foreign=None, why_no_foreign=INFRA),
    "reconnectHost": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.host)}, "host", bad={"id": "nope"}, foreign=None,
                          why_no_foreign=INFRA),
    "prepareHostForMaintenance": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.idle_host)}, "host", bad={"id": "nope"},
                                      foreign=None, why_no_foreign=INFRA),
    "cancelHostMaintenance": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.maint_host)}, "host", bad={"id": "nope"},
                                  foreign=None, why_no_foreign=INFRA),
    "listHypervisors": Case(ALL, lambda w, s: {"zoneid": uid(s.zone)}, "hypervisor", bad={"zoneid": "nope"}),
    "listCapacity": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "capacity", bad={"type": "memory"},
                         foreign=None, why_no_foreign=INFRA),
    "listAlerts": Case(ROOT_ONLY, lambda w, s: {}, "alert", bad={"id": "nope"}, foreign=None, why_no_foreign=INFRA),
    "archiveAlerts": Case(ROOT_ONLY, lambda w, s: {"ids": uid(w.alert)}, "success", bad={"ids": "nope"}, foreign=None,
                          why_no_foreign=INFRA),
    "deleteAlerts": Case(ROOT_ONLY, lambda w, s: {"type": "7", "enddate": "2999-12-31"}, "success",
                         bad={"startdate": "2024-13-45"}, foreign=None, why_no_foreign=INFRA),
    "setupBasicZone": Case(ROOT_ONLY, lambda w, s: {
        "name": w.unique("setup"), "dns1": "8.8.8.8", "internaldns1": "10.0.0.2", "podname": "pod1",
        "podgateway": "10.77.0.1", "podnetmask": "255.255.255.0", "podstartip": "10.77.0.10",
        "podendip": "10.77.0.20", "guestgateway": "10.77.0.1", "guestnetmask": "255.255.255.0",
        "gueststartip": "10.77.0.100", "guestendip": "10.77.0.110", "clustername": "cluster1",
        "hypervisor": "Simulator", "url": f"http://sim/{w.unique('setup-host')}", "primaryname": "primary1",
        "primaryurl": f"file://{w.storage_dir}/{w.unique('setup-pool')}",
        "secondaryurl": f"file://{w.storage_dir}/{w.unique('setup-store')}"},
        "zone", bad={"podgateway": "10.77.0"}, foreign=None, why_no_foreign=INFRA),
    # -- primary and secondary storage (root admin)
    "createStoragePool": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone), "podid": uid(s.pod),
                                                       "clusterid": uid(s.cluster), "name": w.unique("pool"),
                                                       "url": f"file://{w.storage_dir}/{w.unique('pool')}"},
                              "storagepool", bad={"url": "relative/path"}, foreign=None, why_no_foreign=INFRA),
    "listStoragePools": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "storagepool", bad={"zoneid": "nope"},
                             foreign=None, why_no_foreign=INFRA),
    "updateStoragePool": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.pool), "tags": "fast"}, "storagepool",
                              bad={"id": "nope"}, foreign=None, why_no_foreign=INFRA),
    "deleteStoragePool": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.empty_pool)}, "success", bad={"id": "nope"},
                              foreign=None, why_no_foreign=INFRA),
    "addImageStore": Case(ROOT_ONLY, lambda w, s: {"provider": "NFS", "zoneid": uid(s.zone),
                                                   "url": f"file://{w.storage_dir}/{w.unique('store')}"},
                          "imagestore", bad={"url": "relative/path"}, foreign=None, why_no_foreign=INFRA),
    "addSecondaryStorage": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone),
                                                         "url": f"file://{w.storage_dir}/{w.unique('store')}"},
                                "secondarystorage", bad={"url": "relative/path"}, foreign=None,
                                why_no_foreign=INFRA),
    "listImageStores": Case(ROOT_ONLY, lambda w, s: {"zoneid": uid(s.zone)}, "imagestore", bad={"zoneid": "nope"},
                            foreign=None, why_no_foreign=INFRA),
    "deleteImageStore": Case(ROOT_ONLY, lambda w, s: {"id": uid(s.empty_store)}, "success", bad={"id": "nope"},
                             foreign=None, why_no_foreign=INFRA),
    # -- templates and ISOs (each side's user owns a ready template and ISO in the side's zone)
    "registerTemplate": Case(ALL, lambda w, s: {"name": w.unique("tpl"), "displaytext": "a template",
                                                "url": w.images.url("tiny.qcow2"), "format": "QCOW2",
                                                "hypervisor": "KVM", "zoneid": uid(s.zone)}, "template",
                             bad={"format": "VHD"}),
    "registerIso": Case(ALL, lambda w, s: {"name": w.unique("iso"), "displaytext": "an ISO",
                                           "url": w.images.url("tiny.iso"), "zoneid": uid(s.zone)}, "iso",
                        bad={"zoneid": "nope"}),
    "listTemplates": Case(ALL, lambda w, s: {"templatefilter": "self", "id": uid(s.template)}, "template",
                          bad={"templatefilter": "mine"}, foreign="empty"),
    "listIsos": Case(ALL, lambda w, s: {"isofilter": "self", "id": uid(s.iso)}, "iso", bad={"isofilter": "mine"},
                     foreign="empty"),
    "updateTemplate": Case(ALL, lambda w, s: {"id": uid(s.template), "displaytext": "renamed"}, "template",
                           bad={"format": "VHD"}),
    "updateIso": Case(ALL, lambda w, s: {"id": uid(s.iso), "displaytext": "renamed"}, "iso", bad={"id": "nope"}),
    "deleteTemplate": Case(ALL, lambda w, s: {"id": uid(s.victim_template)}, "success", bad={"id": "nope"}),
    "deleteIso": Case(ALL, lambda w, s: {"id": uid(s.victim_iso)}, "success", bad={"id": "nope"}),
    "copyTemplate": Case(ALL, lambda w, s: {"id": uid(s.template), "destzoneid": uid(w.copy_zone)}, "template",
                         bad={"destzoneid": "nope"}),
    "copyIso": Case(ALL, lambda w, s: {"id": uid(s.iso), "destzoneid": uid(w.copy_zone)}, "iso",
                    bad={"destzoneid": "nope"}),
    "extractTemplate": Case(ALL, lambda w, s: {"id": uid(s.template), "mode": "HTTP_DOWNLOAD"}, "template",
                            bad={"mode": "FTP_UPLOAD"}),
    "extractIso": Case(ALL, lambda w, s: {"id": uid(s.iso), "mode": "HTTP_DOWNLOAD"}, "iso",
                       bad={"mode": "FTP_UPLOAD"}),
    "updateTemplatePermissions": Case(ALL, lambda w, s: {"id": uid(s.template), "op": "add",
                                                         "accounts": s.victim.account.name}, "success",
                                      bad={"op": "grant"}),
    "updateIsoPermissions": Case(ALL, lambda w, s: {"id": uid(s.iso), "op": "add", "accounts": s.victim.account.name},
                                 "success", bad={"op": "grant"}),
    "listTemplatePermissions": Case(ALL, lambda w, s: {"id": uid(s.template)}, "templatepermission",
                                    bad={"id": "nope"}),
    "listIsoPermissions": Case(ALL, lambda w, s: {"id": uid(s.iso)}, "templatepermission", bad={"id": "nope"}),
    "prepareTemplate": Case(ROOT_ONLY, lambda w, s: {"templateid": uid(s.template), "zoneid": uid(s.zone)},
                            "template", bad={"zoneid": "nope"}, foreign=None,
                            why_no_foreign="root admins may prepare any template: there is no object they cannot see"),
    # -- offerings (issue 5)
    # (each side's domain has a service and a disk offering dedicated to it, and one more of each to delete)
    "createServiceOffering": Case(ADMINS, lambda w, s: {"name": w.unique("so"), "displaytext": "an offering",
                                                        "cpunumber": "1", "cpuspeed": "500", "memory": "128",
                                                        "domainid": uid(s.domain)}, "serviceoffering",
                                  bad={"memory": "16"}),
    "listServiceOfferings": Case(ALL, lambda w, s: {"id": uid(s.service_offering)}, "serviceoffering",
                                 bad={"domainid": "nope"}, foreign="empty"),
    "updateServiceOffering": Case(ADMINS, lambda w, s: {"id": uid(s.service_offering), "displaytext": "renamed"},
                                  "serviceoffering", bad={"domainid": "nope"}),
    "deleteServiceOffering": Case(ADMINS, lambda w, s: {"id": uid(s.victim_service_offering)}, "success",
                                  bad={"id": "nope"}),
    "createDiskOffering": Case(ADMINS, lambda w, s: {"name": w.unique("do"), "displaytext": "a disk offering",
                                                     "disksize": "5", "domainid": uid(s.domain)}, "diskoffering",
                               bad={"disksize": "0"}),
    "listDiskOfferings": Case(ALL, lambda w, s: {"id": uid(s.disk_offering)}, "diskoffering", bad={"domainid": "nope"},
                              foreign="empty"),
    "updateDiskOffering": Case(ADMINS, lambda w, s: {"id": uid(s.disk_offering), "displaytext": "renamed"},
                               "diskoffering", bad={"sortkey": "first"}),
    "deleteDiskOffering": Case(ADMINS, lambda w, s: {"id": uid(s.victim_disk_offering)}, "success",
                               bad={"id": "nope"}),
    # -- SSH key pairs (issue 5)
    "createSSHKeyPair": Case(ALL, lambda w, s: {"name": w.unique("kp"), "account": s.user.account.name,
                                                "domainid": uid(s.domain)}, "keypair", bad={"projectid": "nope"}),
    "registerSSHKeyPair": Case(ALL, lambda w, s: {"name": w.unique("kp"), "publickey": s.public_key,
                                                  "account": s.user.account.name, "domainid": uid(s.domain)},
                               "keypair", bad={"publickey": "ssh-rsa: e6:9a:1e:b5"}),
    "listSSHKeyPairs": Case(ALL, lambda w, s: {"name": s.keypair.name}, "sshkeypair", bad={"id": "nope"},
                            foreign="empty"),
    "deleteSSHKeyPair": Case(ALL, lambda w, s: {"name": s.keypair.name}, "success", bad={"domainid": "nope"}),
    # -- resource limits (issue 5)
    "listResourceLimits": Case(ALL, lambda w, s: {"account": s.user.account.name, "domainid": uid(s.domain)},
                               "resourcelimit", bad={"resourcetype": "99"}),
    "updateResourceLimit": Case(ADMINS, lambda w, s: {"resourcetype": "0", "max": "10",
                                                      "account": s.victim.account.name, "domainid": uid(s.domain)},
                                "resourcelimit", bad={"max": "lots"}),
    "updateResourceCount": Case(ADMINS, lambda w, s: {"domainid": uid(s.domain), "account": s.victim.account.name},
                                "resourcecount", bad={"resourcetype": "x"}),
    # -- basic-zone network answers (issue 5)
    "listNetworks": Case(ALL, lambda w, s: {"id": uid(s.zone.guest_network)}, "network", bad={"zoneid": "nope"},
                         foreign="empty"),
    "listNetworkOfferings": Case(ALL, lambda w, s: {"zoneid": uid(s.zone)}, "networkoffering",
                                 bad={"zoneid": "nope"}),
    "listNics": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.vm)}, "nic", bad={"virtualmachineid": "nope"}),
    # (answered empty in a basic zone: `empty=True`; the object parameters still follow visibility)
    "listPublicIpAddresses": Case(ALL, lambda w, s: {"associatednetworkid": uid(s.zone.guest_network)},
                                  "publicipaddress", bad={"associatednetworkid": "nope"}, empty=True),
    "listPortForwardingRules": Case(ALL, lambda w, s: {"networkid": uid(s.zone.guest_network)},
                                    "portforwardingrule", bad={"ipaddressid": "nope"}, empty=True),
    "listIpForwardingRules": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.vm)}, "ipforwardingrule",
                                  bad={"id": "nope"}, empty=True),
    "listFirewallRules": Case(ALL, lambda w, s: {"networkid": uid(s.zone.guest_network)}, "firewallrule",
                              bad={"networkid": "nope"}, empty=True),
    "listLoadBalancerRules": Case(ALL, lambda w, s: {"zoneid": uid(s.zone)}, "loadbalancerrule",
                                  bad={"publicipid": "nope"}, empty=True),
    "listSecurityGroups": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.vm)}, "securitygroup",
                               bad={"virtualmachineid": "nope"}, empty=True),
    "listAffinityGroups": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.vm)}, "affinitygroup",
                               bad={"id": "nope"}, empty=True),
    "listAffinityGroupTypes": Case(ALL, lambda w, s: {}, "affinityGroupType", bad={"pagesize": "many"},
                                   empty=True, foreign=None, why_no_foreign="no object parameter"),
    "listVPCs": Case(ALL, lambda w, s: {"zoneid": uid(s.zone)}, "vpc", bad={"zoneid": "nope"}, empty=True),
    "listVPCOfferings": Case(ALL, lambda w, s: {"zoneid": uid(s.zone)}, "vpcoffering", bad={"zoneid": "nope"},
                             empty=True),
    "listProjects": Case(ALL, lambda w, s: {"listall": "true"}, "project", bad={"id": "nope"}, empty=True,
                         foreign=None, why_no_foreign="projects are not supported: no project to name"),
    "listTags": Case(ALL, lambda w, s: {"resourcetype": "UserVm", "resourceid": uid(s.vm)}, "tag",
                     bad={"projectid": "nope"}, empty=True, foreign=None,
                     why_no_foreign="resourceid is a filter of a list that is always empty"),
    # -- virtual machines (each side's user owns a Running, a Stopped and a Destroyed VM in its zone)
    "deployVirtualMachine": Case(ALL, lambda w, s: {"zoneid": uid(s.zone), "serviceofferingid": uid(w.vm_offering),
                                                    "templateid": uid(s.template), "name": w.unique("vm")},
                                 "virtualmachine", bad={"name": "9-starts-with-a-digit"}),
    "listVirtualMachines": Case(ALL, lambda w, s: {"id": uid(s.vm)}, "virtualmachine", bad={"zoneid": "nope"},
                                foreign="empty"),
    "startVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.stopped_vm)}, "virtualmachine", bad={"id": "nope"}),
    "stopVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.vm)}, "virtualmachine", bad={"id": "nope"}),
    "rebootVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.vm)}, "virtualmachine", bad={"id": "nope"}),
    "destroyVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.vm)}, "virtualmachine", bad={"id": "nope"}),
    "recoverVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.destroyed_vm)}, "virtualmachine",
                                  bad={"id": "nope"}),
    "expungeVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.destroyed_vm)}, "success", bad={"id": "nope"}),
    "updateVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.vm), "displayname": "renamed"}, "virtualmachine",
                                 bad={"id": "nope"}),
    "resetPasswordForVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.stopped_vm)}, "virtualmachine",
                                           bad={"id": "nope"}),
    "resetSSHKeyForVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.stopped_vm), "keypair": s.keypair.name},
                                         "virtualmachine", bad={"id": "nope"}),
    "changeServiceForVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.stopped_vm),
                                                              "serviceofferingid": uid(w.vm_offering)},
                                           "virtualmachine", bad={"serviceofferingid": "nope"}),
    "scaleVirtualMachine": Case(ALL, lambda w, s: {"id": uid(s.stopped_vm), "serviceofferingid": uid(w.vm_offering)},
                                "virtualmachine", bad={"serviceofferingid": "nope"}),
    "restoreVirtualMachine": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.stopped_vm)}, "virtualmachine",
                                  bad={"virtualmachineid": "nope"}),
    "listVirtualMachinesMetrics": Case(ALL, lambda w, s: {"id": uid(s.vm)}, "virtualmachine", bad={"zoneid": "nope"},
                                       foreign="empty"),
    # -- the browser console
    "createConsoleEndpoint": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.vm)}, "consoleendpoint",
                                  bad={"virtualmachineid": "nope"}),
    # -- the ISO drive (issue 5; iso_vm was installed from the side's ISO and holds it)
    "attachIso": Case(ALL, lambda w, s: {"id": uid(s.iso), "virtualmachineid": uid(s.vm)}, "virtualmachine",
                      bad={"forced": "maybe"}),
    "detachIso": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.iso_vm)}, "virtualmachine",
                      bad={"virtualmachineid": "nope"}),
    "listVolumes": Case(ALL, lambda w, s: {"virtualmachineid": uid(s.iso_vm)}, "volume",
                        bad={"virtualmachineid": "nope"}, foreign="empty"),
}


@dataclass
class Variant:
    """A parameter of a command declared in CASES, exercised on its own: valid parameters using it
    (least privileged caller of `side`), a bad value of it (431), and which parameter names the
    other side's object (answered as missing: 431, or for a list filter an empty list). The
    command's roles are CASES[command].roles, whose role tests cover it."""

    command: str
    params: Callable[[World, Side], dict]
    bad: dict[str, str]
    foreign: str  # the parameter that, naming the other side's object, must be answered as missing


VARIANTS: dict[str, Variant] = {
    # an ISO in templateid with a disk offering for the root disk (the side's disk offering: 5 GiB, fixed)
    "deployVirtualMachine from an ISO": Variant(
        "deployVirtualMachine", lambda w, s: {"zoneid": uid(s.zone), "serviceofferingid": uid(w.vm_offering),
                                              "templateid": uid(s.iso), "diskofferingid": uid(s.disk_offering),
                                              "name": w.unique("vm")}, bad={"size": "7"}, foreign="templateid"),
    # a template plus a disk offering: a DATADISK besides the root disk
    "deployVirtualMachine with a data disk": Variant(
        "deployVirtualMachine", lambda w, s: {"zoneid": uid(s.zone), "serviceofferingid": uid(w.vm_offering),
                                              "templateid": uid(s.template), "diskofferingid": uid(s.disk_offering),
                                              "name": w.unique("vm")}, bad={"diskofferingid": "nope"},
        foreign="diskofferingid"),
    "listVirtualMachines by ISO": Variant("listVirtualMachines", lambda w, s: {"isoid": uid(s.iso)},
                                          bad={"isoid": "nope"}, foreign="isoid"),
}

COMMANDS = sorted(CASES)


def _needs_infrastructure(name: str) -> bool:
    cls = REGISTRY.get(name)
    return cls is not None and cls.__module__.startswith(("compute.", "storage."))


@pytest.fixture(autouse=True)
def _infrastructure_for_compute_commands(request):
    """Tests of infrastructure commands get the shared world's zones, pods, clusters and hosts
    (built once, before the test's own transaction)."""
    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("name") if callspec else None
    if name and _needs_infrastructure(name):
        request.getfixturevalue("shared_infrastructure")


def test_every_command_is_declared():
    missing = sorted(set(REGISTRY) - set(CASES))
    assert not missing, f"add these commands to tests/api/test_commands.py CASES: {missing}"
    stale = sorted(set(CASES) - set(REGISTRY))
    assert not stale, f"CASES names commands that are not registered: {stale}"


@pytest.mark.parametrize("name", COMMANDS)
def test_declared_roles(name):
    """The role types a command declares are the ones this suite expects (a change is deliberate)."""
    assert frozenset(str(r) for r in REGISTRY[name].roles) == CASES[name].roles


@pytest.mark.parametrize("name", COMMANDS)
def test_bad_value_is_declared_unless_there_are_no_parameters(name):
    if CASES[name].bad is None:
        assert not REGISTRY[name].Params().fields, f"{name} has parameters: declare a bad value"


# -- helpers ---------------------------------------------------------------------------------------
def call(client, capture, tenant: Tenant, name: str, params: dict, fmt: str):
    return send(client, signed(tenant, name, fmt=fmt, **params), capture=capture)


def job_of(client, capture, tenant: Tenant, answer, fmt: str) -> dict:
    assert answer.status == 200, answer
    assert "jobid" in answer.inner, answer
    job = call(client, capture, tenant, "queryAsyncJobResult", {"jobid": answer.inner["jobid"]}, fmt)
    assert job.status == 200, job
    return job.inner


def events_of(event_type: str) -> int:
    return Event.objects.filter(type=event_type, state="Completed").count()


@pytest.fixture
def run(client, django_capture_on_commit_callbacks):
    def go(tenant, name, params, fmt):
        return call(client, django_capture_on_commit_callbacks, tenant, name, params, fmt)

    go.job = lambda tenant, answer, fmt: job_of(client, django_capture_on_commit_callbacks, tenant, answer, fmt)
    return go


# -- success ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", COMMANDS)
def test_success(world, run, name, fmt):
    case, cls = CASES[name], REGISTRY[name]
    caller = world.least(world.a, case.roles)
    before = events_of(cls.event) if cls.event else 0
    answer = run(caller, name, case.params(world, world.a), fmt)
    assert answer.status == 200, answer
    assert answer.name == cls.get_response_name()
    if cls.is_async:
        job = run.job(caller, answer, fmt)
        assert str(job["jobstatus"]) == "1", job
        assert str(job["jobresultcode"]) == "0", job
        body = job["jobresult"]
    else:
        body = answer.inner
    if case.empty:
        assert body == {} and cls.response.object_name == case.key, body
    else:
        assert case.key in body, body
    if cls.kind == "list" and not case.empty:
        assert int(body["count"]) >= 1 and as_list(body[case.key]), body
    if case.key == "success":
        assert body["success"] in (True, "true"), body
    if cls.event:
        assert events_of(cls.event) > before, f"{name} left no Completed {cls.event} event"


# -- bad values ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [n for n in COMMANDS if CASES[n].bad is not None])
def test_bad_value(world, run, name, fmt):
    case, cls = CASES[name], REGISTRY[name]
    caller = world.least(world.a, case.roles)
    answer = run(caller, name, {**case.params(world, world.a), **case.bad}, fmt)
    assert answer.status == 431, answer
    assert answer.name == cls.get_response_name()
    assert str(answer.inner["errorcode"]) == "431"
    if cls.is_async:  # refused before a job was created
        assert "jobid" not in answer.inner
    bad_param = next(iter(case.bad))
    bad_value = case.bad[bad_param]
    assert bad_param in answer.errortext or bad_value in answer.errortext, answer.errortext


def _required(name: str) -> list[str]:
    return [p for p, f in REGISTRY[name].Params().fields.items() if f.required] if name in REGISTRY else []


@pytest.mark.parametrize("name", [n for n in COMMANDS if _required(n)])
def test_missing_required_parameters(world, run, name):
    required = _required(name)
    caller = world.least(world.a, CASES[name].roles)
    params = {k: v for k, v in CASES[name].params(world, world.a).items() if k != required[0]}
    answer = run(caller, name, params, "json")
    assert answer.status == 431, answer
    assert answer.errortext == f"Unable to execute API command {name.lower()} due to missing parameter {required[0]}"


# -- odd values never crash ------------------------------------------------------------------------------
def _odd_value(field) -> str:
    """One awkward value per parameter type."""
    from portal.api import params as P

    if isinstance(field, P.Integer):
        return "99999999999999999999"  # beyond any database integer
    if isinstance(field, P.Uuid):
        return "1C2D3E4F-0000-4000-8000-000000000001"  # upper case: not a CloudStack uuid
    if isinstance(field, P.Boolean):
        return "maybe"
    if isinstance(field, P.Date):
        return "2024-02-30"
    if isinstance(field, P.List):
        return ",, ,"
    if isinstance(field, P.Map):
        return "not-a-map"
    return "" if field.required else None  # blank required strings (optional blanks are just ignored)


@pytest.mark.parametrize("name", [n for n in COMMANDS if CASES[n].bad is not None])
def test_odd_values_never_crash(world, run, name):
    """Every parameter, one at a time, with an awkward value: an answer a user can act on (a 4xx
    or a CloudStack error code below 530, or success) — never an internal error."""
    case = CASES[name]
    caller = world.least(world.a, case.roles)
    crashes = []
    for param, field in REGISTRY[name].Params().fields.items():
        value = _odd_value(field)
        if value is None:
            continue
        answer = run(caller, name, {**case.params(world, world.a), param: value}, "json")
        if answer.status in (500, 530):
            crashes.append((param, value, answer.errortext))
        elif answer.status == 200 and "jobid" in answer.inner and REGISTRY[name].is_async:
            job = run.job(caller, answer, "json")
            if job["jobresultcode"] == 530:
                crashes.append((param, value, job["jobresult"]))
    assert not crashes, crashes


# -- another tenant's objects ------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [n for n in COMMANDS if CASES[n].foreign])
def test_another_tenants_object(world, run, name, fmt):
    """The caller of one subtree names an object of the other subtree (both ways: a domain admin of
    another subtree and that subtree's users): answered exactly as a missing object."""
    case, cls = CASES[name], REGISTRY[name]
    for mine, theirs in ((world.a, world.b), (world.b, world.a)):
        caller = world.least(mine, case.roles)
        before = events_of(cls.event) if cls.event else 0
        answer = run(caller, name, case.params(world, theirs), fmt)
        if case.foreign == "empty":
            assert answer.status == 200, answer
            assert answer.inner == {}, answer
            continue
        assert answer.status == 431, answer
        assert answer.name == cls.get_response_name()
        assert any(text in answer.errortext for text in NOT_FOUND), answer.errortext
        if cls.event:
            assert events_of(cls.event) == before


# -- parameters declared on their own (VARIANTS) ------------------------------------------------------
@pytest.fixture(params=sorted(VARIANTS))
def variant(request) -> Variant:
    variant = VARIANTS[request.param]
    if _needs_infrastructure(variant.command):
        request.getfixturevalue("shared_infrastructure")
    return variant


@pytest.mark.parametrize("fmt", FORMATS)
def test_variant_success(world, run, variant, fmt):
    cls = REGISTRY[variant.command]
    caller = world.least(world.a, CASES[variant.command].roles)
    answer = run(caller, variant.command, variant.params(world, world.a), fmt)
    assert answer.status == 200, answer
    body = run.job(caller, answer, fmt)["jobresult"] if cls.is_async else answer.inner
    key = CASES[variant.command].key
    assert key in body, body
    if cls.kind == "list":
        assert int(body["count"]) >= 1, body


def test_variant_bad_value(world, run, variant):
    caller = world.least(world.a, CASES[variant.command].roles)
    answer = run(caller, variant.command, {**variant.params(world, world.a), **variant.bad}, "json")
    assert answer.status == 431, answer
    assert "jobid" not in answer.inner
    (param, value), = variant.bad.items()
    assert param in answer.errortext or value in answer.errortext, answer.errortext


def test_variant_another_tenants_object(world, run, variant):
    cls = REGISTRY[variant.command]
    for mine, theirs in ((world.a, world.b), (world.b, world.a)):
        caller = world.least(mine, CASES[variant.command].roles)
        params = {**variant.params(world, mine), variant.foreign: variant.params(world, theirs)[variant.foreign]}
        answer = run(caller, variant.command, params, "json")
        if cls.kind == "list":
            assert answer.status == 200 and answer.inner == {}, answer
            continue
        assert answer.status == 431, answer
        assert any(text in answer.errortext for text in NOT_FOUND), answer.errortext
        assert variant.foreign in answer.errortext, answer.errortext


@pytest.mark.parametrize("name", [n for n in COMMANDS if not CASES[n].foreign])
def test_commands_without_tenant_objects_say_why(name):
    assert CASES[name].why_no_foreign


def _missing_object_answer(run, caller, name, params):
    """The same request with every uuid of another tenant replaced by one that never existed."""
    missing = "00000000-0000-4000-8000-000000000000"
    return run(caller, name, {k: (missing if len(v) == 36 and v.count("-") == 4 else v) for k, v in params.items()},
               "json")


@pytest.mark.parametrize("name", [n for n in COMMANDS if CASES[n].foreign == "431"])
def test_another_tenants_object_is_indistinguishable_from_a_missing_one(world, run, name):
    case = CASES[name]
    caller = world.least(world.a, case.roles)
    foreign = run(caller, name, case.params(world, world.b), "json")
    missing = _missing_object_answer(run, caller, name, case.params(world, world.b))
    assert (foreign.status, foreign.inner.get("cserrorcode")) == (missing.status, missing.inner.get("cserrorcode"))
    assert foreign.errortext.split(" value=")[0] == missing.errortext.split(" value=")[0]


# -- roles -----------------------------------------------------------------------------------------
def _role_denial_text(name: str) -> str:
    return f"The given command '{name}' either does not exist, is not available for user."


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", [n for n in COMMANDS if CASES[n].roles != ALL])
def test_role_type_without_permission(world, run, name, fmt):
    case, cls = CASES[name], REGISTRY[name]
    callers = [world.a.user] + ([world.a.admin] if D not in case.roles else [])
    for caller in callers:
        before = events_of(cls.event) if cls.event else 0
        answer = run(caller, name, case.params(world, world.a), fmt)
        assert answer.status == 401, (caller.account.name, answer)
        assert answer.name == cls.get_response_name()
        assert answer.errortext == _role_denial_text(name)
        if cls.event:
            assert events_of(cls.event) == before


@pytest.fixture(scope="module")
def denied(shared_world, django_db_blocker) -> dict[str, Tenant]:
    """Per command, an account whose custom role (of the command's least privileged role type)
    has a deny rule for it, made through createRole + createRolePermission. Built once per
    module inside the shared world's transaction."""
    from django.test import Client

    world = shared_world
    client = share_client_handler(Client())
    out = {}
    with django_db_blocker.unblock():
        for name in COMMANDS:
            roles = CASES[name].roles
            role_type = U if U in roles else D if D in roles else A
            made = call(client, None, world.admin, "createRole", {"name": f"no-{name}", "type": role_type}, "json")
            assert made.status == 200, made
            role_id = made.inner["role"]["id"]
            rule = call(client, None, world.admin, "createRolePermission",
                        {"roleid": role_id, "rule": name, "permission": "deny"}, "json")
            assert rule.status == 200, rule
            assert rule.inner["rolepermission"]["permission"] == "deny"
            domain = world.a.domain if role_type != A else world.a.domain.parent
            account = services.create_account(world.admin.user, username=f"denied-{name.lower()}",
                                              password="pw-12345", email="d@example.org", firstname="D",
                                              lastname="D", role=Role.objects.get(uuid=role_id), domain=domain)
            user = User.objects.select_related("account__domain", "account__role").get(account=account)
            out[name] = _with_keys(user, "pw-12345")
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", COMMANDS)
def test_role_deny_rule(world, denied, run, name, fmt):
    case, cls = CASES[name], REGISTRY[name]
    caller = denied[name]
    assert str(caller.account.role.type) in case.roles  # the role type alone would allow it
    answer = run(caller, name, case.params(world, world.a), fmt)
    assert answer.status == 401, answer
    assert answer.name == cls.get_response_name()
    assert answer.errortext == _role_denial_text(name)
    if fmt == "json":  # the rule is what refuses: a sibling command the role may use still works
        other = run(caller, "listCapabilities" if name != "listCapabilities" else "listApis", {}, fmt)
        assert other.status == 200, other


# -- tenants in the same domain (tenant_a / tenant_b) -----------------------------------------------
SAME_DOMAIN = {
    "updateUser": lambda b: {"id": uid(b.user), "firstname": "Mallory"},
    "registerUserKeys": lambda b: {"id": uid(b.user)},
    "getUserKeys": lambda b: {"id": uid(b.user)},
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(SAME_DOMAIN))
def test_another_account_in_the_same_domain(api, tenant_a, tenant_b, name, fmt):
    answer = (api.as_(tenant_a) if fmt == "json" else api.as_(tenant_a).xml())(name, **SAME_DOMAIN[name](tenant_b))
    assert answer.status == 431, answer
    assert "does not exist" in answer.errortext
    tenant_b.user.refresh_from_db()
    assert tenant_b.user.firstname != "Mallory"
    assert User.objects.get(pk=tenant_b.user.pk).api_key == tenant_b.api_key


@pytest.mark.parametrize("fmt", FORMATS)
def test_another_accounts_job_in_the_same_domain(api, tenant_a, tenant_b, fmt):
    job = finished_job(tenant_b)
    client = api.as_(tenant_a) if fmt == "json" else api.as_(tenant_a).xml()
    answer = client("queryAsyncJobResult", jobid=uid(job))
    assert answer.status == 431, answer
    assert not client("listAsyncJobs", listall="true").inner


@pytest.mark.parametrize("command, item", [("listUsers", "user"), ("listAccounts", "account"),
                                           ("listEvents", "event"), ("listAsyncJobs", "asyncjobs")])
def test_lists_never_show_another_account(api, tenant_a, tenant_b, command, item):
    finished_job(tenant_a)
    finished_job(tenant_b)
    answer = api.as_(tenant_a)(command, listall="true")
    assert answer.status == 200, answer
    names = {row.get("account") or row.get("name") for row in answer.inner[item]}
    assert names == {"tenant-a"}, answer.inner[item]
    assert api.as_(tenant_a)(command, account="tenant-b").status == 431


def test_accounts_in_results_are_visible_objects(world, run):
    """A domain admin's account list is its subtree, whatever filters it tries."""
    answer = run(world.a.admin, "listAccounts", {"listall": "true"}, "json")
    names = {a["name"] for a in answer.inner["account"]}
    assert names == set(Account.objects.filter(domain__path__startswith=world.a.domain.path)
                        .values_list("name", flat=True))
    assert not names & {"admin", "other-admin", "other-user", "other-victim"}
