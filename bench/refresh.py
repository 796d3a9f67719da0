"""What the background refresh of a tenant's directory costs (graph/tenant_facts.py), the first time and after.

    python -m bench.refresh --users 12000 [--users 50000] [--seed 7] [--changes 100] [--latency-ms 0]

For each size, devtenant runs in a process of its own (`python -m devtenant`); in this process a ContextLoader,
as the product builds it, refreshes the tenant three times, each to its end (`settle`), its clock moved past
REFRESH_AFTER_S between them, as a running service does every seven minutes:
1. first: nothing known yet (the product's first refresh of a tenant);
2. later, nobody changed;
3. later, `--changes` people changed meanwhile (their password profile PATCHed through Graph, as a reset does:
   devtenant then reports them to /users/delta).
Each line: Watchword's CPU (`time.process_time()`, every thread of this process: the event loop, the HTTP client,
JSON, the snapshot's preparation), the wall time, the Graph requests by kind (each $batch item counts, as Graph
counts them), devtenant's CPU (/proc utime+stime) and this process's RSS after. The last line is JSON.
Runs against any version of graph/tenant_facts.py with `refresh_soon`/`settle` (to compare before and after,
run it in a checkout of the older code too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from graph.client import build_http_client
from graph.context_loader import ContextLoader
from graph.tenant_facts import REFRESH_AFTER_S
from graph.tokens import TokenSource
from settings import Settings
from verification.clock import utc_now

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def start_devtenant(users: int, seed: int, latency_ms: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtenant", "--port", "0", "--seed", str(seed), "--users", str(users),
         "--latency-ms", str(latency_ms), "--log-level", "WARNING"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip().startswith("{"):
            return proc, json.loads(line)
    raise SystemExit(f"devtenant did not start (exit code {proc.wait()})")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Calls:
    def __init__(self) -> None:
        self.sources: Counter[str] = Counter()

    def graph_call(self, source: str, status: str) -> None:
        self.sources[source if status == "ok" else f"{source} ({status})"] += 1


async def change_people(http: httpx.AsyncClient, graph: str, token: str, count: int) -> int:
    """PATCH `count` ordinary people's password profile (no new password: nothing to hash), as a reset would."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{graph}/users?$select=id,userType,accountEnabled&$top=999"
    changed = 0
    while url and changed < count:
        page = (await http.get(url, headers=headers)).json()
        for user in page.get("value", []):
            if changed == count or user.get("userType") != "Member" or user.get("accountEnabled") is False:
                continue
            answer = await http.patch(f"{graph}/users/{user['id']}", headers=headers,
                                      json={"passwordProfile": {"forceChangePasswordNextSignIn": False}})
            changed += answer.status_code == 204
        url = page.get("@odata.nextLink")
    return changed


async def one_size(users: int, seed: int, changes: int, latency_ms: float) -> dict[str, Any]:
    proc, ready = start_devtenant(users, seed, latency_ms)
    try:
        settings = Settings().with_devtenant(ready)
        tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                             client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
        http = build_http_client(settings.ca_file)
        moment = [0.0]
        calls = Calls()
        loader = ContextLoader(tokens=tokens, http=http, graph_url=settings.graph_url, clock=utc_now,
                               monotonic=lambda: moment[0],
                               calls=calls)
        tenant = settings.tenant_id
        out: dict[str, Any] = {"users": users}
        for name in ("first", "later_quiet", "later_changed"):
            if name == "later_changed":
                token = (await tokens.token(tenant)).access_token
                out["people_changed"] = await change_people(http, settings.graph_url, token, changes)
            moment[0] += REFRESH_AFTER_S + 1
            calls.sources.clear()
            graph_before, cpu_before, wall_before = cpu_s(proc.pid), time.process_time(), time.monotonic()
            loader.tenant_facts.refresh_soon(tenant)
            await loader.settle()
            run = {"cpu_s": round(time.process_time() - cpu_before, 3),
                   "wall_s": round(time.monotonic() - wall_before, 1),
                   "graph_requests": sum(calls.sources.values()), "by_kind": dict(calls.sources.most_common()),
                   "devtenant_cpu_s": round(cpu_s(proc.pid) - graph_before, 2), "rss_mb": round(rss_mb())}
            out[name] = run
            print(f"  {users} people, {name}: Watchword CPU {run['cpu_s']:.3f} s, wall {run['wall_s']} s, "
                  f"{run['graph_requests']} Graph requests {run['by_kind']}, devtenant CPU {run['devtenant_cpu_s']} s, "
                  f"RSS {run['rss_mb']} MB", flush=True)
        await loader.aclose()
        await http.aclose()
        tokens.close()
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
