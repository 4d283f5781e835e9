"""Sorting on the list pages that gained it with issue 7 — instances, templates, ISOs, domains,
accounts, users, the infrastructure lists and console sessions — through the one mechanism of
portal.ui (declared columns, ?sort=<key> / ?sort=-<key>, header links with aria-sort): two columns
each, in both directions; an unknown or hidden sort key ignored (the default order, never an
error); sort, search and page combined, and each kept by the links of the others. Scoping is
unchanged: sorting or searching never shows another tenant's rows."""
from __future__ import annotations

import hashlib
import html
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.utils import timezone

from compute import services as compute_services
from compute.choices import VmState
from compute.models import ConsoleSession, Host, Pod, VirtualMachine, Zone
from portal import config
from storage.models import DownloadState, ImageStore, StoragePool, Template, TemplateZone
from tests.factories import admin_user, make_account, make_domain

from .conftest import logged_in
from .test_infra_pages import GIB, make_sim_zone
from .test_instances_ui import act, build_sim, deploy

# Sort values that name no column a page shows: each is ignored, the page answering its default order.
BAD_SORTS = ("nonsense", "-", "--", "id", "-id", "password", "name;DROP TABLE x", "\x00", "é" * 300)


def text(response) -> str:
    return response.content.decode()


def url_with(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(params)
    return f"{parts.path}?{urlencode(query)}"


def sorted_header(response) -> tuple[str, str, dict[str, list[str]]]:
    """(label, aria-sort, the query of its link) of the column the rows are sorted by."""
    cells = re.findall(r'<th scope="col" aria-sort="(ascending|descending)"><a href="([^"]+)" class="nubo-sort">([^<]+)<',
                       text(response))
    assert len(cells) == 1, cells
    aria, href, label = cells[0]
    return html.unescape(label), aria, parse_qs(urlsplit(html.unescape(href)).query)


def assert_sorts(client, url: str, names, key: str, expected: list[str]) -> None:
    """?sort=<key> lists `expected`, ?sort=-<key> the reverse (the id tiebreak turns too); the
    header marks the column and links to the other direction."""
    for wanted, order, aria, turned in ((key, expected, "ascending", "-" + key),
                                        ("-" + key, expected[::-1], "descending", key)):
        response = client.get(url_with(url, sort=wanted))
        assert response.status_code == 200, wanted
        assert names(response) == order, wanted
        _, shown, link = sorted_header(response)
        assert shown == aria and link["sort"] == [turned], wanted


def assert_bad_sorts_ignored(client, url: str, names, *also: str) -> None:
    """Unknown sort keys (and `also`: keys of columns the caller does not see, or that do not
    sort) give the default order."""
    default = names(client.get(url))
    for bad in (*BAD_SORTS, *also):
        response = client.get(url_with(url, sort=bad))
        assert response.status_code == 200, bad
        assert names(response) == default, bad


def assert_combined(client, url: str, names, *, q: str, sort: str, expected: list[str]) -> None:
    """With two rows a page: page 2 of the rows matching `q` in `sort` order is `expected`; the
    page links keep the search and the order, the header links keep the search and go to page 1,
    the search form keeps the order."""
    config.set_value("default.ui.page.size", "2")
    response = client.get(url_with(url, q=q, sort=sort, page="2"))
    assert response.status_code == 200
    assert names(response) == expected
    body = text(response)
    previous = parse_qs(urlsplit(html.unescape(re.search(r'<a href="([^"]+)" rel="prev">', body).group(1))).query)
    assert previous["q"] == [q] and previous["sort"] == [sort] and previous["page"] == ["1"]
    for href in re.findall(r'<a href="([^"]+)" class="nubo-sort">', body):
        link = parse_qs(urlsplit(html.unescape(href)).query)
        assert link["q"] == [q] and "page" not in link, href
    form = body.split('role="search"', 1)[1].split("</form>", 1)[0]
    assert f'name="sort" value="{sort}"' in form


def link_names(segment: str):
    """The names of a list's rows, each linking to its page under /client/<segment>/<uuid>."""
    row = re.compile(rf'<a(?: class="nubo-nowrap")? href="/client/{segment}/[0-9a-f-]{{36}}">([^<]+)</a>')
    return lambda response: row.findall(text(response))


def first_cells(response) -> list[str]:
    return re.findall(r'<tr>\s*<td>(?:<a href="[^"]+">)?([^<]+)(?:</a>)?</td>', text(response))


# -- instances ------------------------------------------------------------------------------------
vm_names = link_names("instances")


@pytest.fixture
def vms(cloud, tmp_path, tenant_a, tenant_b, django_capture_on_commit_callbacks):
    """tenant-a deploys vm-b, vm-c, vm-a (in that order) and stops vm-c; tenant-b deploys vm-theirs."""
    sim = build_sim(tmp_path)
    capture = django_capture_on_commit_callbacks
    made = {name: deploy(tenant_a.user, sim, capture, name) for name in ("vm-b", "vm-c", "vm-a")}
    act(logged_in(tenant_a.user), capture, made["vm-c"], "stop")
    made["vm-theirs"] = deploy(tenant_b.user, sim, capture, "vm-theirs")
    return sim, made


def test_instances_sort(vms, tenant_a, admin_ui):
    sim, made = vms
    client = logged_in(tenant_a.user)
    assert vm_names(client.get("/client/instances")) == ["vm-a", "vm-c", "vm-b"]  # newest first
    assert_sorts(client, "/client/instances", vm_names, "name", ["vm-a", "vm-b", "vm-c"])
    # Running before Stopped; the two running ones in the order they were made (the id tiebreak)
    assert_sorts(client, "/client/instances", vm_names, "state", ["vm-b", "vm-a", "vm-c"])
    assert_sorts(client, "/client/instances", vm_names, "created", ["vm-b", "vm-c", "vm-a"])
    # the owner and host columns are for admins (the host for the root admin): no sort key for a user
    assert_bad_sorts_ignored(client, "/client/instances", vm_names, "owner", "host", "ip", "-ip")
    assert_sorts(admin_ui, "/client/instances?q=vm-", vm_names, "owner",
                 ["vm-b", "vm-c", "vm-a", "vm-theirs"])  # tenant-a's, then tenant-b's
    assert sorted_header(admin_ui.get("/client/instances?sort=host"))[0] == "Host"
    # sorting and searching keep the caller's scope
    for query in ("sort=name", "sort=-name&q=theirs", "sort=owner", f"sort=state&zone={sim.zone.uuid}"):
        assert "vm-theirs" not in vm_names(client.get(f"/client/instances?{query}")), query


def test_instances_sort_search_and_page_combine_with_filters(vms, tenant_a):
    client = logged_in(tenant_a.user)
    assert_combined(client, "/client/instances", vm_names, q="vm-", sort="-name", expected=["vm-a"])
    response = client.get("/client/instances?state=Running&sort=-name")
    assert vm_names(response) == ["vm-b", "vm-a"]
    # the state chips keep the order
    assert '<a href="?sort=-name&amp;state=Stopped">Stopped</a>' in text(response)


def test_the_live_body_polls_the_rows_shown_in_their_order(vms, tenant_a):
    _, made = vms
    client = logged_in(tenant_a.user)
    VirtualMachine.objects.filter(pk=made["vm-b"].pk).update(state=VmState.STOPPING)
    config.set_value("default.ui.page.size", "2")
    body = text(client.get("/client/instances?sort=name&page=1&q=vm"))
    tbody = re.search(r'<tbody id="instance-rows"[^>]*>', body).group(0)
    poll = html.unescape(re.search(r'hx-get="([^"]+)"', tbody).group(1))
    assert parse_qs(urlsplit(poll).query) | {"seen": []} == {"q": ["vm"], "sort": ["name"], "page": ["1"], "seen": []}
    assert client.get(poll).status_code == 204
    VirtualMachine.objects.filter(pk=made["vm-b"].pk).update(state=VmState.STOPPED)
    rows = client.get(poll)
    assert rows.status_code == 200 and vm_names(rows) == ["vm-a", "vm-b"] and 'data-live="false"' in text(rows)
    # the default order is not spelled out; a bad key is not carried
    VirtualMachine.objects.filter(pk=made["vm-a"].pk).update(state=VmState.STOPPING)  # the newest
    for url in ("/client/instances", "/client/instances?sort=-created", "/client/instances?sort=bogus"):
        tbody = re.search(r'<tbody id="instance-rows"[^>]*>', text(client.get(url))).group(0)
        assert "hx-get" in tbody and "sort=" not in tbody, url


# -- templates and ISOs ---------------------------------------------------------------------------
def image(zone, store, account, name: str, *, iso: bool = False, size: int = 0, featured: bool = False) -> Template:
    template = Template.objects.create(name=name, format="ISO" if iso else "QCOW2", hypervisor="" if iso else "KVM",
                                       account=account, url="http://127.0.0.1/x", is_public=featured,
                                       is_featured=featured)
    TemplateZone.objects.create(template=template, zone=zone, store=store, state=DownloadState.DOWNLOADED,
                                size=size * GIB or None)
    return template


@pytest.fixture
def images(cloud, tenant_a, tenant_b):
    """Two zones; tenant-a's templates tpl-b (3 GiB, both zones), tpl-c (1 GiB), tpl-a (size not known),
    ISOs iso-b, iso-a; tenant-b's tpl-theirs."""
    one, two = make_sim_zone("z-one", net=1), make_sim_zone("z-two", net=2)
    b = image(one.zone, one.store, tenant_a.account, "tpl-b", size=3)
    TemplateZone.objects.create(template=b, zone=two.zone, store=two.store, state=DownloadState.DOWNLOADED,
                                size=3 * GIB)
    image(one.zone, one.store, tenant_a.account, "tpl-c", size=1)
    image(one.zone, one.store, tenant_a.account, "tpl-a")
    image(one.zone, one.store, tenant_a.account, "iso-b", iso=True, size=1)
    image(one.zone, one.store, tenant_a.account, "iso-a", iso=True, size=2)
    image(one.zone, one.store, tenant_b.account, "tpl-theirs", size=9)
    return one, two


def image_rows(kind: str):
    """(name, zone) of each row: a template is listed once per zone."""
    row = re.compile(rf'<a class="nubo-nowrap" href="/client/{kind}/[0-9a-f-]{{36}}">([^<]+)</a>.*?</td>\s*<td>([^<]+)</td>',
                     re.S)
    return lambda response: [f"{name}@{zone}" for name, zone in row.findall(text(response))]


def test_templates_and_isos_sort(images, tenant_a, admin_ui):
    client, rows = logged_in(tenant_a.user), image_rows("templates")
    url = "/client/templates?filter=self"
    assert rows(client.get(url)) == ["tpl-a@z-one", "tpl-b@z-one", "tpl-b@z-two", "tpl-c@z-one"]
    assert_sorts(client, url, rows, "name", ["tpl-a@z-one", "tpl-b@z-one", "tpl-b@z-two", "tpl-c@z-one"])
    assert_sorts(client, url, rows, "zone", ["tpl-a@z-one", "tpl-b@z-one", "tpl-c@z-one", "tpl-b@z-two"])
    # the size shown: the zone's copy's, else the template's; unknown last
    assert_sorts(client, url, rows, "size", ["tpl-c@z-one", "tpl-b@z-one", "tpl-b@z-two", "tpl-a@z-one"])
    assert_bad_sorts_ignored(client, url, rows, "owner")  # the owner column is for admins
    assert_sorts(admin_ui, "/client/templates?filter=all&q=tpl-", rows, "owner",
                 ["tpl-a@z-one", "tpl-b@z-one", "tpl-b@z-two", "tpl-c@z-one", "tpl-theirs@z-one"])
    for query in ("sort=-size", "sort=name&q=theirs"):
        assert not [r for r in rows(client.get(f"{url}&{query}")) if "theirs" in r], query
    isos = image_rows("isos")
    assert_sorts(client, "/client/isos?filter=self", isos, "name", ["iso-a@z-one", "iso-b@z-one"])
    assert_sorts(client, "/client/isos?filter=self", isos, "size", ["iso-b@z-one", "iso-a@z-one"])
    assert_bad_sorts_ignored(client, "/client/isos?filter=self", isos, "format")  # no format column for ISOs


def test_templates_sort_search_and_page_combine(images, tenant_a):
    client, rows = logged_in(tenant_a.user), image_rows("templates")
    assert_combined(client, "/client/templates?filter=self", rows, q="tpl-", sort="-name",
                    expected=["tpl-b@z-one", "tpl-a@z-one"])
    body = text(client.get("/client/templates?filter=self&q=tpl-&sort=-name"))
    form = body.split('role="search"', 1)[1].split("</form>", 1)[0]
    assert 'name="filter" value="self"' in form  # the tab is kept as before


def test_the_template_rows_poll_in_their_order(images, tenant_a):
    client, rows = logged_in(tenant_a.user), image_rows("templates")
    TemplateZone.objects.filter(template__name="tpl-a").update(state=DownloadState.DOWNLOAD_IN_PROGRESS, percent=5)
    body = text(client.get("/client/templates?filter=self&sort=-name"))
    poll = html.unescape(re.search(r'<tbody id="image-rows" hx-get="([^"]+)"', body).group(1))
    assert parse_qs(urlsplit(poll).query)["sort"] == ["-name"]
    assert client.get(poll).status_code == 204
    TemplateZone.objects.filter(template__name="tpl-a").update(state=DownloadState.DOWNLOADED)
    assert rows(client.get(poll)) == ["tpl-c@z-one", "tpl-b@z-two", "tpl-b@z-one", "tpl-a@z-one"]


# -- domains, accounts, users -----------------------------------------------------------------------
def domain_names(response) -> list[str]:
    return re.findall(r'class="nubo-tree-name" style="--level: \d"><a href="[^"]+">([^<]+)<', text(response))


@pytest.fixture
def tenancy(cloud):
    """Domains alpha (2 accounts), beta (none), alpha/zeta (1), alpha-2 (3), each account with one
    user, named after its domain."""
    alpha = make_domain("alpha")
    domains = {"alpha": alpha, "beta": make_domain("beta"), "zeta": make_domain("zeta", parent=alpha),
               "alpha-2": make_domain("alpha-2")}
    for domain, count in (("alpha", 2), ("zeta", 1), ("alpha-2", 3)):
        for i in range(count):
            make_account(f"acc-{domain}-{i}", domain=domains[domain])
    return domains


def test_domains_sort(tenancy, admin_ui, domain_admin_ui):
    tree = ["ROOT", "alpha", "zeta", "alpha-2", "beta", "corp"]  # corp: the domain admin's
    assert domain_names(admin_ui.get("/client/domains")) == tree
    assert_sorts(admin_ui, "/client/domains", domain_names, "path", tree)
    assert_sorts(admin_ui, "/client/domains?q=a", domain_names, "name", ["alpha", "alpha-2", "beta", "zeta"])
    # names are indented by depth in tree order only
    assert re.search(r'style="--level: 2"><a href="[^"]+">zeta<', text(admin_ui.get("/client/domains?sort=-path")))
    assert re.search(r'style="--level: 0"><a href="[^"]+">zeta<', text(admin_ui.get("/client/domains?sort=name")))
    assert_sorts(admin_ui, "/client/domains?q=a", domain_names, "accounts", ["beta", "zeta", "alpha", "alpha-2"])
    assert_bad_sorts_ignored(admin_ui, "/client/domains", domain_names, "actions")
    assert_combined(admin_ui, "/client/domains", domain_names, q="a", sort="-name", expected=["alpha-2", "alpha"])
    # a domain admin: its subtree only, however sorted or searched
    assert domain_names(domain_admin_ui.get("/client/domains?sort=-name")) == ["corp"]
    assert domain_names(domain_admin_ui.get("/client/domains?q=alpha")) == []


def account_names(response) -> list[str]:
    return link_names("accounts")(response)


def test_accounts_sort(tenancy, admin_ui):
    url = "/client/accounts?q=acc-"
    by_domain = ["acc-alpha-0", "acc-alpha-1", "acc-zeta-0", "acc-alpha-2-0", "acc-alpha-2-1", "acc-alpha-2-2"]
    assert account_names(admin_ui.get(url)) == by_domain  # by domain in tree order, then name
    assert_sorts(admin_ui, url, account_names, "domain", by_domain)
    assert_sorts(admin_ui, url, account_names, "name", sorted(by_domain))
    assert_bad_sorts_ignored(admin_ui, url, account_names)
    assert_combined(admin_ui, "/client/accounts", account_names, q="alpha-", sort="-name",
                    expected=["acc-alpha-2-0", "acc-alpha-1"])


def test_users_sort(tenancy, admin_ui, domain_admin, domain_admin_ui):
    url = "/client/users?q=acc-"
    by_domain = ["acc-alpha-0", "acc-alpha-1", "acc-zeta-0", "acc-alpha-2-0", "acc-alpha-2-1", "acc-alpha-2-2"]
    assert first_cells(admin_ui.get(url)) == by_domain
    assert_sorts(admin_ui, url, first_cells, "username", sorted(by_domain))
    from accounts.models import User

    for i, username in enumerate(("acc-alpha-2-1", "acc-zeta-0", "acc-alpha-0", "acc-alpha-2-2", "acc-alpha-1",
                                  "acc-alpha-2-0")):
        User.objects.filter(username=username).update(email=f"{i}@example.org")
    assert_sorts(admin_ui, url, first_cells, "email", ["acc-alpha-2-1", "acc-zeta-0", "acc-alpha-0", "acc-alpha-2-2",
                                                         "acc-alpha-1", "acc-alpha-2-0"])
    assert_bad_sorts_ignored(admin_ui, url, first_cells, "actions", "password")
    assert_combined(admin_ui, "/client/users", first_cells, q="acc-alpha-2", sort="-username",
                    expected=["acc-alpha-2-0"])
    assert first_cells(domain_admin_ui.get("/client/users?sort=email")) == ["corp-admin"]


# -- infrastructure --------------------------------------------------------------------------------
@pytest.fixture
def infra(cloud):
    """Zones z-alpha, z-beta, z-gamma; pods, clusters, hosts, primary and secondary storage named
    so that name order and the other orders differ."""
    caller = admin_user()
    alpha, beta = make_sim_zone("z-alpha", net=1), make_sim_zone("z-beta", net=2)
    gamma = compute_services.create_zone(caller, name="z-gamma", dns1="9.9.9.1", internal_dns1="10.0.0.2")
    # DNS: inet order (9.9.9.1 < 9.9.9.9 < 9.9.9.10), not text order
    Zone.objects.filter(pk=alpha.zone.pk).update(dns1="9.9.9.10")
    # pods: pod-c and pod-a in z-alpha, pod-b in z-beta
    Pod.objects.filter(pk=alpha.pod.pk).update(name="pod-c")
    Pod.objects.filter(pk=beta.pod.pk).update(name="pod-b")
    pod_a = compute_services.create_pod(caller, zone=alpha.zone, name="pod-a", gateway="10.3.0.1",
                                        netmask="255.255.255.0", start_ip="10.3.0.10", end_ip="10.3.0.20")
    # clusters: cl-c (pod-c, 1 host) and cl-a (pod-a, 2 hosts) in z-alpha, cl-b (pod-b, 1 host) in z-beta
    alpha.cluster.__class__.objects.filter(pk=alpha.cluster.pk).update(name="cl-c")
    beta.cluster.__class__.objects.filter(pk=beta.cluster.pk).update(name="cl-b")
    cl_a = compute_services.add_cluster(caller, zone=alpha.zone, pod=pod_a, name="cl-a", hypervisor="Simulator")
    # hosts: host-c (z-alpha, pinged 1 h ago), host-b (z-beta, 3 h ago), host-a (cl-a, never), host-d (cl-a, now)
    now = timezone.now()
    Host.objects.filter(pk=alpha.host.pk).update(name="host-c", last_pinged=now - timedelta(hours=1))
    Host.objects.filter(pk=beta.host.pk).update(name="host-b", last_pinged=now - timedelta(hours=3))
    for name, pinged in (("host-a", None), ("host-d", now)):
        host = compute_services.add_host(caller, zone=alpha.zone, pod=pod_a, cluster=cl_a, url=f"http://sim/{name}")
        Host.objects.filter(pk=host.pk).update(name=name, last_pinged=pinged)
    # storage: used 30 GiB on z-alpha-primary, 10 on z-beta-primary, 20 on z-alpha-extra
    StoragePool.objects.filter(pk=alpha.pool.pk).update(used_bytes=30 * GIB)
    StoragePool.objects.filter(pk=beta.pool.pk).update(used_bytes=10 * GIB)
    StoragePool.objects.create(name="z-alpha-extra", zone=alpha.zone, pod=pod_a, cluster=cl_a, scope="CLUSTER",
                               url="file:///srv/extra", type="Filesystem", path="/srv/extra",
                               capacity_bytes=100 * GIB, used_bytes=20 * GIB)
    ImageStore.objects.filter(pk=alpha.store.pk).update(used_bytes=30 * GIB)
    ImageStore.objects.filter(pk=beta.store.pk).update(used_bytes=10 * GIB)
    ImageStore.objects.create(name="z-alpha-extra", zone=alpha.zone, url="file:///srv/store-extra", protocol="file",
                              mount_path="/srv/store-extra", capacity_bytes=100 * GIB, used_bytes=20 * GIB)
    return alpha, beta, gamma


INFRA = {
    # page: (default order, [(sort key, ascending order)…], (search, sort, page 2 with two rows a page))
    "zones": (["z-alpha", "z-beta", "z-gamma"],
              [("name", ["z-alpha", "z-beta", "z-gamma"]), ("dns1", ["z-gamma", "z-beta", "z-alpha"]),
               ("pods", ["z-gamma", "z-beta", "z-alpha"])],
              ("z-", "-dns1", ["z-gamma"])),
    "pods": (["pod-a", "pod-c", "pod-b"],
             [("name", ["pod-a", "pod-b", "pod-c"]), ("zone", ["pod-a", "pod-c", "pod-b"]),
              ("gateway", ["pod-c", "pod-b", "pod-a"])],
             ("pod-", "-name", ["pod-a"])),
    "clusters": (["cl-a", "cl-c", "cl-b"],
                 [("name", ["cl-a", "cl-b", "cl-c"]), ("zone", ["cl-a", "cl-c", "cl-b"]),
                  ("hosts", ["cl-b", "cl-c", "cl-a"])],
                 ("cl-", "name", ["cl-c"])),
    "hosts": (["host-a", "host-d", "host-c", "host-b"],
              [("name", ["host-a", "host-b", "host-c", "host-d"]),
               ("pinged", ["host-b", "host-c", "host-d", "host-a"]),  # never pinged: last
               ("cluster", ["host-a", "host-d", "host-b", "host-c"])],
              ("host-", "-pinged", ["host-c", "host-b"])),
    "primary-storage": (["z-alpha-extra", "z-alpha-primary", "z-beta-primary"],
                        [("name", ["z-alpha-extra", "z-alpha-primary", "z-beta-primary"]),
                         ("capacity", ["z-beta-primary", "z-alpha-extra", "z-alpha-primary"])],
                        ("z-", "capacity", ["z-alpha-primary"])),
    "secondary-storage": (["z-alpha-extra", "z-alpha-secondary", "z-beta-secondary"],
                          [("name", ["z-alpha-extra", "z-alpha-secondary", "z-beta-secondary"]),
                           ("capacity", ["z-beta-secondary", "z-alpha-extra", "z-alpha-secondary"])],
                          ("z-", "-name", ["z-alpha-extra"])),
}


@pytest.mark.parametrize("page", INFRA)
def test_infrastructure_lists_sort(infra, admin_ui, page):
    default, orders, (q, sort, second_page) = INFRA[page]
    url, names = f"/client/infrastructure/{page}", link_names(f"infrastructure/{page}")
    assert names(admin_ui.get(url)) == default
    for key, expected in orders:
        assert_sorts(admin_ui, url, names, key, expected)
    assert_bad_sorts_ignored(admin_ui, url, names)
    assert_combined(admin_ui, url, names, q=q, sort=sort, expected=second_page)


def test_infrastructure_sorting_keeps_the_parent_and_state_filters(infra, admin_ui):
    alpha, *_ = infra
    names = link_names("infrastructure/hosts")
    url = f"/client/infrastructure/hosts?zone={alpha.zone.uuid}"
    assert_sorts(admin_ui, url, names, "name", ["host-a", "host-c", "host-d"])
    Host.objects.filter(name="host-d").update(state="Alert")
    response = admin_ui.get(url_with(url, state="alert", sort="-name"))
    assert response.status_code == 200 and names(response) == ["host-d"]
    body = text(admin_ui.get(url_with(url, sort="-name")))
    assert f'<a href="?zone={alpha.zone.uuid}&amp;sort=-name&amp;state=alert">Alert</a>' in body
    assert "Show all</a>" in body and 'href="?sort=-name">Show all' in body  # leaves the zone, keeps the order
    assert admin_ui.get(url_with(url, sort="name", state="bogus")).status_code == 404  # as before


def test_sorted_lists_cost_the_same_queries_for_any_number_of_rows(infra, tenancy, admin_ui):
    from .test_events_jobs_ui import queries

    urls = [f"/client/infrastructure/{page}?sort={key}" for page, key in (
        ("zones", "-pods"), ("pods", "clusters"), ("clusters", "-hosts"), ("hosts", "pinged"),
        ("primary-storage", "-capacity"), ("secondary-storage", "zone"))]
    urls += ["/client/domains?sort=-accounts", "/client/accounts?sort=users", "/client/users?sort=-domain"]
    few = {url: queries(admin_ui, url) for url in urls}
    for i in range(4, 8):
        make_sim_zone(f"z-more-{i}", net=i)
        make_account(f"more-{i}", domain=make_domain(f"more-{i}"))
    assert {url: queries(admin_ui, url) for url in urls} == few


# -- console sessions -------------------------------------------------------------------------------
session_vms = link_names("instances")


def open_session(vm, user, *, minutes_ago: int, address: str) -> ConsoleSession:
    now = timezone.now()
    return ConsoleSession.objects.create(
        token_hash=hashlib.sha256(secrets.token_bytes(16)).hexdigest(), virtual_machine=vm,
        host=Host.objects.get(name="h1"),
        vnc_host="127.0.0.1", vnc_port=5900, user=user, origin="http://testserver", expires=now + timedelta(minutes=5),
        connected=now - timedelta(minutes=minutes_ago), client_address=address, last_seen=now)


def session_rows(response) -> list[str]:
    """user@vm of each row."""
    return [f"{user}@{vm}" for user, vm in re.findall(
        r'<tr>\s*<td>([^<]+)</td>\s*<td><a href="/client/instances/[0-9a-f-]{36}">([^<]+)</a>', text(response))]


def test_console_sessions_sort_and_search(vms, tenant_a, tenant_b, admin, admin_ui, domain_admin_ui):
    _, made = vms
    open_session(made["vm-b"], tenant_a.user, minutes_ago=5, address="192.0.2.3")
    open_session(made["vm-a"], admin.user, minutes_ago=1, address="192.0.2.1")
    open_session(made["vm-theirs"], tenant_b.user, minutes_ago=9, address="192.0.2.2")
    open_session(made["vm-c"], tenant_a.user, minutes_ago=3, address="192.0.2.4")
    url = "/client/console-sessions"
    newest_first = ["admin@vm-a", "tenant-a@vm-c", "tenant-a@vm-b", "tenant-b@vm-theirs"]
    assert session_rows(admin_ui.get(url)) == newest_first
    assert_sorts(admin_ui, url, session_rows, "since", newest_first[::-1])
    assert_sorts(admin_ui, url, session_rows, "vm", ["admin@vm-a", "tenant-a@vm-b", "tenant-a@vm-c",
                                                     "tenant-b@vm-theirs"])
    assert_sorts(admin_ui, url, session_rows, "user", ["admin@vm-a", "tenant-a@vm-b", "tenant-a@vm-c",
                                                       "tenant-b@vm-theirs"])
    assert_sorts(admin_ui, url, session_rows, "from", ["admin@vm-a", "tenant-b@vm-theirs", "tenant-a@vm-b",
                                                       "tenant-a@vm-c"])
    assert_bad_sorts_ignored(admin_ui, url, session_rows, "actions")
    # searched by user or VM
    assert session_rows(admin_ui.get(f"{url}?q=TENANT-A")) == ["tenant-a@vm-c", "tenant-a@vm-b"]
    assert session_rows(admin_ui.get(f"{url}?q=theirs")) == ["tenant-b@vm-theirs"]
    assert "No console session matches “nobody”." in text(admin_ui.get(f"{url}?q=nobody"))
    assert_combined(admin_ui, url, session_rows, q="tenant", sort="vm", expected=["tenant-b@vm-theirs"])
    # a domain admin of another subtree sees none of them, however it searches and sorts
    assert session_rows(domain_admin_ui.get(f"{url}?q=vm&sort=user")) == []
