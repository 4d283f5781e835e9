"""Benchmark data and the in-process SQL query count (run by bench/run.py as
`python -m bench.seed`, DJANGO_SETTINGS_MODULE=portal.settings, against the scratch database).

Creates accounts through accounts.services (as the API does) in two steps, and after each counts
the SQL queries of one signed listAccounts page (page=1, pagesize=500) answered through the real
URL routing and middleware (django.test.Client) — first with `--first` accounts, then with
`--total`. Prints one JSON object on stdout: the admin's API keys and the counts."""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys


def normalise(sql: str) -> str:
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r"\((?:\s*\?\s*,)+\s*\?\s*\)", "(?, ...)", sql)
    return re.sub(r"\s+", " ", sql).strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, default=10)
    parser.add_argument("--total", type=int, default=500)
    parser.add_argument("--domains", type=int, default=5)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts import services
    from accounts.models import User
    from bench.loadgen import signed_query

    admin = User.objects.select_related("account__domain", "account__role").get(username="admin", domain__path="/")
    api_key, secret = services.register_user_keys(admin, admin)
    client = Client()

    def count_queries() -> dict:
        query = signed_query("listAccounts", {"page": "1", "pagesize": "500"}, api_key, secret)
        runs = []
        for _ in range(3):  # the first call may fill per-process caches; report the steady state
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(f"/client/api?{query}")
            runs.append([q["sql"] for q in ctx.captured_queries])
        assert response.status_code == 200, response.content[:500]
        body = json.loads(response.content)["listaccountsresponse"]
        return {"queries": len(runs[-1]), "first_call_queries": len(runs[0]), "rows": len(body.get("account", [])),
                "count": body.get("count", 0), "sql": runs[-1]}

    domains = []
    with transaction.atomic():
        for index in range(args.domains):
            domains.append(services.create_domain(admin, name=f"bench-d{index}"))

    def create(start: int, stop: int) -> None:
        with transaction.atomic():
            for index in range(start, stop):
                services.create_account(
                    admin, username=f"bench-{index:04d}", password="bench-pw-1", email=f"bench-{index:04d}@example.org",
                    firstname="Bench", lastname=f"User {index}", domain=domains[index % len(domains)],
                    accounttype=2 if index % 50 == 0 else 0)

    create(0, args.first)
    small = count_queries()
    create(args.first, args.total)
    large = count_queries()

    repeats = []
    if small["queries"] != large["queries"]:
        a = collections.Counter(normalise(s) for s in small["sql"])
        b = collections.Counter(normalise(s) for s in large["sql"])
        for sql, n in (b - a).most_common():
            repeats.append({"sql": sql, f"times_with_{args.first}": a.get(sql, 0), f"times_with_{args.total}": b[sql]})
    print(json.dumps({
        "api_key": api_key, "secret": secret,
        "accounts": {"first": args.first, "total": args.total},
        "small": {k: v for k, v in small.items() if k != "sql"},
        "large": {k: v for k, v in large.items() if k != "sql"},
        "small_sql": [normalise(s) for s in small["sql"]],
        "repeats": repeats,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
