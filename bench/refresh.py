"""What the background refresh of a tenant's directory costs (graph/tenant_facts.py), the first time and after.

    python -m bench.refresh --users 12000 [--users 50000] [--seed 7] [--changes 100] [--latency-ms 0]

For each size, devtenant runs on an event loop of its own in a thread of this process (so that the bench can
change its organisation between refreshes, as an administrator would in Entra); a ContextLoader, as the product
builds it, refreshes the tenant three times, each to its end (`settle`), its clock moved past REFRESH_AFTER_S
between them, as a running service does every seven minutes:
1. first: nothing known yet (the product's first refresh of a tenant);
2. later, nobody changed;
3. later, `--changes` people changed meanwhile (a new job title; every tenth also a new manager) and, where
   devtenant can change memberships, `--changes` / 10 groups gained a member.
Each line: Watchword's CPU (every thread of this process but devtenant's, /proc utime+stime: the event loop, the
HTTP client, JSON, the snapshot's preparation), the wall time, the Graph requests by kind (each $batch item
counts, as Graph counts them), devtenant's CPU (its thread) and the process's RSS after (devtenant's organisation
included), and of Watchword's CPU what the collector took (each new snapshot brings one full collection of
everything in the process, here devtenant's organisation too, graph/tenant_facts.py `_out_of_collections`).
The last line is JSON.
Runs against any version of graph/tenant_facts.py with `refresh_soon`/`settle` (to compare before and after,
run it in a checkout of the older code too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devtenant.server import start_devtenant
from devtenant.state import DevTenantConfig
from graph.client import build_http_client
from graph.context_loader import ContextLoader
from graph.tenant_facts import REFRESH_AFTER_S
from graph.tokens import TokenSource
from settings import Settings
from verification.clock import utc_now

TICKS = os.sysconf("SC_CLK_TCK")


class DevTenantThread:
    """devtenant on its own event loop in a thread (as tests/devtenant/helpers.py runs it)."""

    def __init__(self, config: DevTenantConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running = self.call(start_devtenant(config))
        self.tid = self.run(threading.get_native_id)

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=900)

    def run(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()
        return self.call(call())

    def close(self) -> None:
        self.call(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def cpu_s(tid: int | None = None) -> float:
    path = Path(f"/proc/self/task/{tid}/stat") if tid else Path("/proc/self/stat")
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class GcClock:
    """CPU spent in the collector (gc.callbacks, in the collecting thread), and how many full collections ran."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.full = 0
        self._began: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began[threading.get_ident()] = time.thread_time()
        else:
            self.total_s += time.thread_time() - self._began.pop(threading.get_ident(), time.thread_time())
            self.full += info.get("generation") == 2


class Calls:
    def __init__(self) -> None:
        self.sources: Counter[str] = Counter()

    def graph_call(self, source: str, status: str) -> None:
        self.sources[source if status == "ok" else f"{source} ({status})"] += 1


def change(org: Any, count: int) -> dict[str, int]:
    """`count` people get a new job title (every tenth a new manager too); count / 10 groups gain a member."""
    people = [u for u in org.users.values() if u.account_enabled and u.user_type == "Member" and u.manager_id]
    for i, user in enumerate(people[:count]):
        user.job_title = f"{user.job_title or 'Analyst'} (acting)"
        if i % 10 == 0:
            user.manager_id = people[-1 - i].id
        org.touch(user)
    groups = 0
    if hasattr(org, "add_member"):  # devtenant without /groups/delta cannot change memberships
        small = [g for g in org.groups.values() if len(g.member_ids) < 50]
        for group, user in zip(small[:count // 10], people[count:], strict=False):
            org.add_member(group.id, user.id)
            groups += 1
    return {"people_changed": min(count, len(people)), "groups_changed": groups}


async def one_size(users: int, seed: int, changes: int, latency_ms: float) -> dict[str, Any]:
    dt = DevTenantThread(DevTenantConfig(seed=seed, users=users, latency_ms=latency_ms))
    try:
        settings = Settings().with_devtenant(dt.running.ready)
        tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                             client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
        http = build_http_client(settings.ca_file)
        moment = [0.0]
        calls = Calls()
        loader = ContextLoader(tokens=tokens, http=http, graph_url=settings.graph_url, clock=utc_now,
                               monotonic=lambda: moment[0], calls=calls)
        tenant = settings.tenant_id
        out: dict[str, Any] = {"users": users}
        collector = GcClock()
        gc.callbacks.append(collector)
        for name in ("first", "later_quiet", "later_changed"):
            if name == "later_changed":
                out.update(dt.run(lambda: change(dt.running.state.org, changes)))
            moment[0] += REFRESH_AFTER_S + 1
            calls.sources.clear()
            graph_before, all_before, wall_before = cpu_s(dt.tid), cpu_s(), time.monotonic()
            gc_before, full_before = collector.total_s, collector.full
            loader.tenant_facts.refresh_soon(tenant)
            await loader.settle()
            graph_cpu = cpu_s(dt.tid) - graph_before
            run = {"cpu_s": round(cpu_s() - all_before - graph_cpu, 3),
                   "wall_s": round(time.monotonic() - wall_before, 1),
                   "graph_requests": sum(calls.sources.values()), "by_kind": dict(calls.sources.most_common()),
                   "gc_s": round(collector.total_s - gc_before, 3), "full_collections": collector.full - full_before,
                   "devtenant_cpu_s": round(graph_cpu, 2), "rss_mb": round(rss_mb())}
            out[name] = run
            print(f"  {users} people, {name}: Watchword CPU {run['cpu_s']:.3f} s (collector {run['gc_s']:.3f} s, "
                  f"{run['full_collections']} full), wall {run['wall_s']} s, "
                  f"{run['graph_requests']} Graph requests {run['by_kind']}, devtenant CPU {run['devtenant_cpu_s']} s, "
                  f"RSS {run['rss_mb']} MB", flush=True)
        gc.callbacks.remove(collector)
        await loader.aclose()
        await http.aclose()
        tokens.close()
        return out
    finally:
        dt.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.refresh", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, action="append", help="organisation sizes (repeatable)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--changes", type=int, default=100, help="people changed before the third refresh")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="devtenant's added latency per request")
    args = parser.parse_args(argv)
    results = [asyncio.run(one_size(n, args.seed, args.changes, args.latency_ms)) for n in args.users or [12000]]
    print(json.dumps({"refresh": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
