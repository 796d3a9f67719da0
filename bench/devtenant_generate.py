"""How long devtenant takes to generate an organisation, and what it holds.

    python -m bench.devtenant_generate --users 50000 --seed 1

Prints figures, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import ssl
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from devtenant.generate import generate_org
from devtenant.model import GroupKind
from devtenant.server import running_devtenant
from devtenant.state import DevTenantConfig
from graph.tokens import TokenSource

NOW = datetime(2026, 11, 26, 14, tzinfo=UTC)


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample", type=int, default=1000, help="users whose mail and sign-ins are materialised")
    parser.add_argument("--serve-sample", type=int, default=100, help="users whose mailbox is read over https")
    args = parser.parse_args(argv)

    rss_before = _peak_rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    org = generate_org(args.seed, args.users, NOW)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    rss_after_generate = _peak_rss_mb()
    # What a long-running devtenant should do once its organisation is built: keep the collector
    # from walking millions of records that live as long as the process.
    gc.freeze()

    people = [u for u in org.users.values() if not u.is_service_account]
    sample = people[:: max(1, len(people) // args.sample)][: args.sample]
    started, cpu_started = time.perf_counter(), time.process_time()
    mail = sign_ins = contacts = 0
    anomalies: Counter[str] = Counter()
    for u in sample:
        mail += len(org.messages_of(u.id))
        records = org.sign_ins_of(u.id)
        sign_ins += len(records)
        anomalies.update({s.anomaly for s in records if s.anomaly})
        contacts += len(org.contacts_of(u.id))
    lazy_seconds, lazy_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    messages = sum(len(c.messages) for c in org.chats)
    kinds = Counter(e.kind for e in org.events)
    group_kinds = Counter(g.kind.value for g in org.groups.values())
    figures = {
        "users": len(org.users),
        "seed": args.seed,
        "generate_seconds": round(seconds, 2),
        "generate_cpu_seconds": round(cpu_seconds, 2),
        "users_per_second": round(len(org.users) / seconds),
        "peak_rss_mb_before": round(rss_before, 1),
        "peak_rss_mb_after_generate": round(rss_after_generate, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "events": len(org.events),
        "events_by_kind": dict(sorted(kinds.items())),
        "chats": len(org.chats),
        "chat_messages": messages,
        "groups": len(org.groups),
        "groups_by_kind": {k.value: group_kinds.get(k.value, 0) for k in GroupKind},
        "role_assignments": len(org.role_assignments),
        "lazy_users": len(sample),
        "lazy_seconds": round(lazy_seconds, 2),
        "lazy_cpu_seconds": round(lazy_cpu_seconds, 2),
        "lazy_mail": mail,
        "lazy_sign_ins": sign_ins,
        "lazy_contacts": contacts,
        "lazy_sign_in_anomalies": dict(sorted((k, v) for k, v in anomalies.items() if k)),
    }
    print(f"generated {figures['users']} users (seed {args.seed}) in {seconds:.1f} s ({cpu_seconds:.1f} s CPU) "
          f"({figures['users_per_second']} users/s), peak RSS {figures['peak_rss_mb_after_generate']} MB")
    print(f"  events {figures['events']} {figures['events_by_kind']}")
    print(f"  chats {figures['chats']} with {messages} messages; groups {figures['groups']} "
          f"{figures['groups_by_kind']}; role assignments {figures['role_assignments']}")
    print(f"materialised mail, sign-ins and contacts for {len(sample)} users in {lazy_seconds:.1f} s "
          f"({lazy_cpu_seconds:.1f} s CPU): "
          f"{mail} messages, {sign_ins} sign-ins, {contacts} contacts; peak RSS {figures['peak_rss_mb']} MB")
    figures.update(asyncio.run(_serve(org, sample[: args.serve_sample])))
    print(f"served over https: started in {figures['serve_start_seconds']} s; paged all "
          f"{figures['serve_paged_users']} users in {figures['serve_page_all_users_seconds']} s; per-user "
          f"reads p50 {figures['serve_read_p50_ms']} ms, p95 {figures['serve_read_p95_ms']} ms")
    print(json.dumps(figures))
    return 0


async def _serve(org, sample) -> dict[str, float | int]:
    """Serve the generated org over https and read it as the product does (msal token, Graph paging)."""
    started = time.perf_counter()
    async with running_devtenant(DevTenantConfig(seed=0, users=len(org.users)), org=org) as dt:
        start_seconds = time.perf_counter() - started
        tokens = TokenSource(login_url=dt.ready["login"], client_id=dt.ready["client_id"],
                             client_secret=dt.ready["client_secret"], ca_file=Path(dt.ready["ca_file"]))
        token = (await tokens.token(dt.ready["tenant_id"])).access_token
        headers = {"Authorization": f"Bearer {token}"}
        graph = dt.ready["graph"]
        context = ssl.create_default_context(cafile=dt.ready["ca_file"])
        async with httpx.AsyncClient(verify=context, trust_env=False, timeout=60) as http:
            started = time.perf_counter()
            url, paged = f"{graph}/users?$select=id,displayName,userPrincipalName&$top=999", 0
            while url:
                page = (await http.get(url, headers=headers)).json()
                paged += len(page["value"])
                url = page.get("@odata.nextLink")
            page_seconds = time.perf_counter() - started
            window = "startDateTime=2026-11-12T00:00:00Z&endDateTime=2026-11-29T00:00:00Z"
            timings = []
            for u in sample:
                for path in (f"/users/{u.id}/calendarView?{window}&$top=100", f"/users/{u.id}/messages?$top=50",
                             f"/users/{u.id}/transitiveMemberOf/microsoft.graph.group?$top=999&$count=true"):
                    t0 = time.perf_counter()
                    response = await http.get(graph + path, headers={**headers, "ConsistencyLevel": "eventual"})
                    response.raise_for_status()
                    timings.append((time.perf_counter() - t0) * 1000)
        tokens.close()
    timings.sort()
    return {
        "serve_start_seconds": round(start_seconds, 2),
        "serve_paged_users": paged,
        "serve_page_all_users_seconds": round(page_seconds, 2),
        "serve_reads": len(timings),
        "serve_read_p50_ms": round(statistics.median(timings), 1),
        "serve_read_p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
    }


if __name__ == "__main__":
    sys.exit(main())
