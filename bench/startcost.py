"""Watchword's CPU per verification start, at several organisation sizes (issue 11's `start_cpu_ms`).

    python -m bench.startcost [--sizes 2000,12000,50000 --starts 9 --seed 1]

What a start costs Watchword's own process once the tenant is warm (its tenant-wide facts and directory snapshot
cached, as in steady state): reading the person's Microsoft 365 data (`load_context`: the $batch answers decoded
and mapped) and choosing the questions (`assess_risk` and `VerificationSession.start`), timed with
`time.process_time()` (CPU of every thread of this process; waiting for Graph costs none). Sealing the plan for the
store (`encode_plan` and the Fernet encryption, as dialogs/session_keeper.py does) is reported apart.

Each size runs in a process of its own, against a devtenant in another process (Graph is another machine: its
CPU is not ours), with no added latency except the sign-in logs' (so they arrive after the first question, as
they do from Microsoft, and are awaited outside the measure). Like app.py, the process freezes what it holds
before the first verification (`gc.freeze()`), so the collector's work on what a start and the snapshot leave
is counted as it is in the product. One cold start fills the caches and one warm start is not counted; then
different people from the whole organisation (seeded), each once, until `--starts` of them were asked a question
(a start refused at once, e.g. for an administrator, chooses nothing and is not counted); the medians are reported
(and means), with the collector's share (`gc_ms`, from gc.callbacks) and what one full collection costs at the end
(`full_collection_ms`: one comes every few dozen starts, and pauses every turn in flight).

Prints one line per start and per size, then one line of JSON: `start_cpu_ms` per size (the median of load +
choice) and the parts.

`--whole` measures instead the whole start through the bot (bench/wholestart.py: `verify <name>`, the picker,
up to the first question card, driven through /api/messages with Watchword in its own process, every thread's
CPU): `whole_start_cpu_ms` per size, and its split by thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from graph.client import build_http_client
from graph.graph_directory import GraphDirectory
from graph.tokens import TokenSource
from settings import Settings
from verification.plan import encode_plan
from verification.policy import Policy
from verification.risk import assess_risk
from verification.session import VerificationSession

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 20.0
SIGN_INS_LATENCY_MS = 1000  # the sign-in logs arrive after the measured part, as from Microsoft's reports API


class GcClock:
    """CPU time spent in the cyclic garbage collector (all generations), from gc.callbacks."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.collections = 0
        self.full = 0  # of the oldest generation: they walk everything not frozen
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.total_s += time.thread_time() - self._began
            self.collections += 1
            self.full += info["generation"] == 2


def start_devtenant(users: int, seed: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "devtenant", "--port", "0", "--seed", str(seed), "--users", str(users),
         "--log-level", "WARNING", "--endpoint-latency-ms", f"/auditLogs/signIns={SIGN_INS_LATENCY_MS}"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        raise SystemExit(f"devtenant did not start (exit code {proc.returncode})")
    return proc, json.loads(line)


@dataclass
class GraphPath:
    """The product's Graph path to a devtenant, as Watchword builds it, and a token for the bench's own reads."""

    settings: Settings
    tokens: TokenSource
    http: httpx.AsyncClient
    directory: GraphDirectory
    tenant: str
    token: str


async def graph_path(ready: dict[str, Any]) -> GraphPath:
    settings = Settings().with_devtenant(ready)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file)
    directory = GraphDirectory(tokens, http, settings.graph_url, settings.client_id)
    token = (await tokens.token(settings.tenant_id)).access_token
    return GraphPath(settings, tokens, http, directory, settings.tenant_id, token)


async def one_size(users: int, seed: int, starts: int, profile: str | None = None) -> dict[str, Any]:
    proc, ready = start_devtenant(users, seed)
    try:
        path = await graph_path(ready)
        settings, tokens, http, directory = path.settings, path.tokens, path.http, path.directory
        tenant, token = path.tenant, path.token
        candidates = await people_with_a_department(http, settings.graph_url, token, seed)
        policy = Policy()
        from cryptography.fernet import Fernet  # the sealer's cipher (bot/sealing.py), as a start seals its plan

        fernet = Fernet(Fernet.generate_key())
        gc.freeze()  # as app.py does once it is serving: what lives as long as the process is not walked again
        clock = GcClock()
        gc.callbacks.append(clock)
        profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU, not wall: a shared machine
        runs: list[dict[str, Any]] = []
        skipped: list[str] = []
        for i, user_id in enumerate(candidates):
            if len(runs) == starts or len(skipped) > 4 * starts:
                break
            await directory.settle()  # steady state: no background refresh beside the measure
            gc_before, collections_before, full_before = clock.total_s, clock.collections, clock.full
            if profiler is not None and i >= 2:
                profiler.enable()
            began = time.process_time()
            loaded = await directory.load_context(tenant, user_id)
            loaded_at = time.process_time()
            risk = assess_risk(loaded.context, policy)
            session = VerificationSession(clock=lambda: datetime.now(UTC))
            step = session.start(loaded.context, loaded.org, policy, risk, attempts_in_last_24h=0,
                                 risk_pending=loaded.sign_ins_later is not None)
            chosen_at = time.process_time()
            plan = session.plan()
            if plan:
                fernet.encrypt(encode_plan(plan))
            sealed_at = time.process_time()
            if profiler is not None:
                profiler.disable()
            run = {"user": user_id, "load_ms": (loaded_at - began) * 1000, "choose_ms": (chosen_at - loaded_at) * 1000,
                   "seal_ms": (sealed_at - chosen_at) * 1000, "start_ms": (chosen_at - began) * 1000,
                   "gc_ms": (clock.total_s - gc_before) * 1000, "collections": clock.collections - collections_before,
                   "full_collections": clock.full - full_before,
                   "questions": len(plan), "first": step.prompt.kind if step.prompt else step.decision.outcome.value,
                   "requests": loaded.requests}
            await loaded.with_sign_ins()  # outside the measure, as the product weighs them in the background
            asked = step.prompt is not None
            missing = ", ".join(sorted(loaded.context.unavailable))
            label = "cold" if i == 0 else "warm-up" if i == 1 else "start" if asked else "not counted"
            print(f"  {users} people, {label} {user_id}: load {run['load_ms']:.1f} + choice {run['choose_ms']:.1f} "
                  f"= {run['start_ms']:.1f} ms CPU (seal {run['seal_ms']:.1f}, gc {run['gc_ms']:.1f} in "
                  f"{run['collections']} collections, {run['full_collections']} full); {run['questions']} questions, "
                  f"first {run['first']}"
                  f"{'; unavailable: ' + missing if missing else ''}",
                  flush=True)
            if i >= 2:
                (runs.append(run) if asked else skipped.append(run["first"]))
        gc.callbacks.remove(clock)
        began = time.thread_time()
        gc.collect()  # what each full collection costs now (one comes every few dozen starts)
        full_collection_ms = (time.thread_time() - began) * 1000
        if profiler is not None and profile:
            profiler.dump_stats(f"{profile}.{users}")
        await directory.aclose()
        await http.aclose()
        tokens.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 1)

    if not runs:
        raise SystemExit(f"no start asked a question at {users} people")
    return {"people": users, "starts": len(runs), "not_counted": len(skipped), "start_cpu_ms": median("start_ms"),
            "load_cpu_ms": median("load_ms"),
            "choose_cpu_ms": median("choose_ms"), "seal_cpu_ms": median("seal_ms"), "gc_ms": median("gc_ms"),
            "mean_start_cpu_ms": round(statistics.mean(r["start_ms"] for r in runs), 1),
            "mean_gc_ms": round(statistics.mean(r["gc_ms"] for r in runs), 1),
            "full_collections": sum(r["full_collections"] for r in runs),
            "full_collection_ms": round(full_collection_ms, 1),
            "max_start_cpu_ms": round(max(r["start_ms"] for r in runs), 1)}


async def people_with_a_department(http: httpx.AsyncClient, graph: str, token: str, seed: int) -> Iterator[str]:
    """Everyone with a name and a department, from every page of /users, in a seeded random order: people from
    the whole organisation (its first page is its top), the same ones for the same seed."""
    url: str | None = f"{graph}/users"
    params: dict[str, str] | None = {"$select": "id,givenName,surname,department", "$top": "999"}
    people: list[str] = []
    while url:
        body = (await http.get(url, headers={"Authorization": f"Bearer {token}"}, params=params)).json()
        people += [u["id"] for u in body.get("value", []) if u.get("givenName") and u.get("surname")
                   and u.get("department")]
        url, params = body.get("@odata.nextLink"), None
    random.Random(seed).shuffle(people)
    return iter(people)


def run_size(users: int, args: argparse.Namespace) -> dict[str, Any]:
    """One size in a fresh process: the collector's state and the caches are its own."""
    proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.startcost", "--one-size", str(users), "--seed", str(args.seed),
         "--starts", str(args.starts), *(["--profile", args.profile] if args.profile else [])],
        stdout=subprocess.PIPE, text=True, check=False, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    for line in lines[:-1]:
        print(line, flush=True)
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"the run at {users} people failed (exit code {proc.returncode})")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,12000,50000", help="organisation sizes, comma-separated")
    parser.add_argument("--starts", type=int, default=9, help="measured warm starts per size (different people)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", metavar="FILE", help="keep a cProfile of the counted starts in FILE.<size>")
    parser.add_argument("--whole", action="store_true", help="the whole start through the bot (bench.wholestart)")
    parser.add_argument("--one-size", type=int, help=argparse.SUPPRESS)  # the child process of one size
    args = parser.parse_args(argv)
    if args.one_size:
        print(json.dumps(asyncio.run(one_size(args.one_size, args.seed, args.starts, args.profile))))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.whole:
        return whole(sizes, args)
    results = {}
    for users in sizes:
        r = run_size(users, args)
        results[str(users)] = r
        print(f"{users} people: a start {r['start_cpu_ms']} ms of CPU (load {r['load_cpu_ms']} + choice "
              f"{r['choose_cpu_ms']}; gc {r['gc_ms']}; worst {r['max_start_cpu_ms']}), sealing the plan "
              f"{r['seal_cpu_ms']} ms; median of {r['starts']}; a full collection {r['full_collection_ms']} ms "
              f"({r['full_collections']} during them)", flush=True)
    worst = max(r["start_cpu_ms"] for r in results.values())
    print(json.dumps({"start_cpu_ms": {k: r["start_cpu_ms"] for k, r in results.items()},
                      "sizes": results, "target_ms": TARGET_MS, "met": worst <= TARGET_MS, "seed": args.seed}))
    return 0


def whole(sizes: list[int], args: argparse.Namespace) -> int:
    """bench.wholestart at each size, one after another (each its own devtenant and Watchword)."""
    results = {}
    for users in sizes:
        proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "bench.wholestart", "--people", str(users), "--starts", str(args.starts),
             "--seed", str(args.seed)], stdout=subprocess.PIPE, text=True, check=False, cwd=ROOT)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"the whole-start run at {users} people failed (exit code {proc.returncode})")
        r = results[str(users)] = json.loads(lines[-1])
        print(f"{users} people: a whole start {r['whole_start_cpu_ms']} ms of CPU ({r['turn_cpu_ms']} to the first "
              f"question, {r['after_cpu_ms']} after it; worst {r['max_whole_start_cpu_ms']}), by thread "
              f"{r['turn_cpu_ms_by_thread']}; median of {r['starts']}", flush=True)
    worst = max(r["whole_start_cpu_ms"] for r in results.values())
    print(json.dumps({"whole_start_cpu_ms": {k: r["whole_start_cpu_ms"] for k, r in results.items()},
                      "sizes": results, "target_ms": TARGET_MS, "met": worst <= TARGET_MS, "seed": args.seed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
