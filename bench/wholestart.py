"""A whole verification start's CPU in Watchword's process, driven through /api/messages (bench.startcost --whole).

What bench.load's `quiet_start_cpu_ms` measures, made precise enough to work on: Watchword runs as bench.load runs
it (`python -m bench.load --serve-app`: app.py's main() in demo mode, pointed at a devtenant in a process of its
own, Graph `--latency-ms` away), this process plays Teams (bench.turns' fake connector), and one helpdesk agent
after another, nothing else running, types `verify <display name>` of a different person, picks them on the
card when several match, and waits for the first question card. Measured per start, for every thread of
Watchword's process: the CPU from sending `verify` until the first question card arrived (`turn_ms`: the people
search, the helpdesk check, the picker card, the choice turn, reading the person's data, choosing the questions,
sealing, the cards, the store) and what the start goes on doing after it (`after_ms`: the sign-in logs read in
the background, the code card in the person's Teams...: the CPU over the `--settle-s` after the card, less
Watchword's idle CPU over as long, measured before the starts). `whole_start_cpu_ms` is their sum, the median
over the starts that reached a question. CPU is each thread's time on a CPU from /proc/<pid>/task/*/schedstat
(nanoseconds; threads that ended between two readings are missed, so /proc/<pid>/stat's utime+stime over all the
starts, which counts them in 10 ms ticks, is reported beside as `ticks_mean_ms`). `turn_cpu_ms_by_thread` splits
the turns' CPU by thread (mean per start; named from `py-spy dump` when py-spy is on PATH): the event loop
(MainThread), the store's SQLite thread (watchword-sqlite), the threads that choose the questions
(watchword-start), asyncio's default executor. `--database-url postgresql+asyncpg://...` runs the store on a fresh
PostgreSQL database beside that one (as bench.load does): its units of work then run on the store's PostgreSQL
threads (watchword-postgres; on the event loop before 2026-12-07).

The first verification is cold (it fills the per-tenant caches); then the bench waits for Watchword's background
reads of the directory snapshot and group sizes to end (bench.load's `graph_quiet`), one warm start is not
counted, and the rest are. `--py-spy FILE` samples every thread holding the GIL at ~1 kHz over the counted
starts (py-spy on PATH; collapsed stacks; it slows nothing down, but C code that releases the GIL, SQLite's
own work say, is not in it). `--profile FILE` profiles Watchword's process over the counted starts, every thread
(yappi, when importable: install it outside the product's requirements, e.g. `pip install --target DIR yappi`
and PYTHONPATH=DIR; otherwise cProfile of the event loop's thread only), into FILE (pstats format).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILE_ENV = "BENCH_WHOLESTART_PROFILE"


def task_cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of `pid` (/proc/<pid>/task/<tid>/schedstat's first field)."""
    return sum(threads_cpu_ns(pid).values())


def threads_cpu_ns(pid: int) -> dict[int, int]:
    """Each live thread's nanoseconds on a CPU, by thread id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return out


async def one_size(people: int, starts: int, seed: int, latency_ms: float, settle_s: float,
                   profile: str | None, sampler: str | None = None, database_url: str | None = None
                   ) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from bench import load
    from bench.teams_client import actions, kind_of, title_of
    from bench.turns import server
    from devtenant.generate import generate_org

    args = argparse.Namespace(seed=seed, people=people, latency_ms=latency_ms, graph_profile=None,
                              graph_requests=None, agents=0, calibrate=starts + 1, think_scale=0.0,
                              reply_timeout_s=60.0, careless_share=0.0)
    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # devtenant anchors its org there
    with tempfile.TemporaryDirectory(prefix="bench-wholestart-") as tmpdir:
        tmp = Path(tmpdir)
        org_made = asyncio.create_task(asyncio.to_thread(generate_org, seed, people, anchor))
        async with load.teams() as (connector, http), load.devtenant(args, tmp) as (ready, graph_pid), \
                load.fresh_database(database_url, tmp) as store_url:
            org = await org_made
            _, journeys = load.plan(args, org)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
            env.update({"WATCHWORD_DEMO": "true", "WATCHWORD_DATABASE_URL": store_url,
                        "WATCHWORD_STATE_KEY": Fernet.generate_key().decode(),
                        "WATCHWORD_SESSION_KEY": Fernet.generate_key().decode(), load.DEVTENANT_ENV: json.dumps(ready)})
            command = [sys.executable, "-m", "bench.load", "--serve-app"]
            if profile:
                env[PROFILE_ENV] = profile
                command = [sys.executable, "-m", "bench.wholestart", "--serve-profiled"]
            async with server(command, env, tmp / "watchword.log") as bot:
                pid = bot.process.pid
                run = load.Run(args, connector, http, bot, None, graph_pid)
                runs: list[dict[str, Any]] = []
                spy = None
                by_thread: dict[int, int] = {}
                ticks0 = ticks_starts = ticks_at = 0.0
                idle_ns_per_s = 0.0
                for n, j in enumerate(journeys):
                    if n == 1:
                        waited = await load.graph_quiet(tmp / "devtenant.log", pid, load.GRAPH_QUIET_S, 900.0)
                        print(f"  {people} people: Watchword's background reads ended ({waited:.0f} s)",
                              file=sys.stderr, flush=True)
                        idle0, at0 = task_cpu_ns(pid), time.perf_counter()
                        await asyncio.sleep(3.0)
                        idle_ns_per_s = (task_cpu_ns(pid) - idle0) / (time.perf_counter() - at0)
                    if n == 2:
                        ticks0, ticks_at = load.tree_cpu_s(pid), time.perf_counter()
                        if profile:
                            bot.process.send_signal(signal.SIGUSR1)
                        if sampler:  # py-spy: samples every thread's stack, the product running at full speed
                            spy = await asyncio.create_subprocess_exec(
                                "py-spy", "record", "-p", str(pid), "-r", "997", "-f", "raw", "-o", sampler,
                                "--nonblocking", "--gil", stdout=asyncio.subprocess.DEVNULL,
                                stderr=asyncio.subprocess.DEVNULL)
                            await asyncio.sleep(1.0)
                    began_threads = threads_cpu_ns(pid)
                    began = sum(began_threads.values())
                    card, turns = await start(run, j, actions, kind_of)
                    carded_threads = threads_cpu_ns(pid)
                    carded = sum(carded_threads.values())
                    at = time.perf_counter()
                    await asyncio.sleep(settle_s)
                    after = task_cpu_ns(pid) - carded - idle_ns_per_s * (time.perf_counter() - at)
                    asked = card is not None and kind_of(card) == "question"
                    r = {"target": j.target.id, "turns": turns, "turn_ms": (carded - began) / 1e6,
                         "after_ms": after / 1e6, "asked": asked,
                         "first": kind_of(card) if card else "nothing", "title": title_of(card) if card else ""}
                    r["whole_ms"] = r["turn_ms"] + r["after_ms"]
                    label = "cold" if n == 0 else "warm-up" if n == 1 else "start" if asked else "not counted"
                    print(f"  {people} people, {label}: {turns} turn(s), {r['turn_ms']:.1f} ms to the first card + "
                          f"{r['after_ms']:.1f} after = {r['whole_ms']:.1f} ms CPU; {r['first']} "
                          f"{r['title'][:50]!r}", file=sys.stderr, flush=True)
                    if n >= 2:
                        for tid, ns in carded_threads.items():
                            by_thread[tid] = by_thread.get(tid, 0) + ns - began_threads.get(tid, 0)
                        ticks_starts += 1
                        if asked:
                            runs.append(r)
                names = await thread_names(pid)
                threads = {names.get(tid, str(tid)): round(ns / 1e6 / max(1, ticks_starts), 1)
                           for tid, ns in sorted(by_thread.items(), key=lambda kv: -kv[1]) if ns > 0}
                ticks = load.tree_cpu_s(pid) - ticks0 - idle_ns_per_s / 1e9 * (time.perf_counter() - ticks_at)
                if profile:
                    bot.process.send_signal(signal.SIGUSR2)
                    await asyncio.sleep(3.0)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
    if not runs:
        raise SystemExit(f"no start asked a question at {people} people")

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 1)

    return {"people": people, "starts": len(runs), "whole_start_cpu_ms": median("whole_ms"),
            "turn_cpu_ms": median("turn_ms"), "after_cpu_ms": median("after_ms"),
            "max_whole_start_cpu_ms": round(max(r["whole_ms"] for r in runs), 1),
            "ticks_mean_ms": round(1000 * ticks / max(1, ticks_starts), 1),
            "idle_cpu_ms_per_s": round(idle_ns_per_s / 1e6, 2), "turn_cpu_ms_by_thread": threads,
            "settle_s": settle_s, "latency_ms": latency_ms, "database": "postgresql" if database_url else "sqlite"}


async def thread_names(pid: int) -> dict[int, str]:
    """Python's names of the process's threads, from `py-spy dump` when it is on PATH (else none)."""
    import re
    import shutil

    if shutil.which("py-spy") is None:
        return {}
    proc = await asyncio.create_subprocess_exec("py-spy", "dump", "-p", str(pid), "--nonblocking",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    names = {}
    for m in re.finditer(r'Thread (0x[0-9A-Fa-f]+|\d+) \([^)]*\): "([^"]+)"', out.decode(errors="replace")):
        names[m.group(1)] = m.group(2)
    return {int(k, 0) if not k.startswith("0x") else int(k, 16): v for k, v in names.items()}


async def start(run: Any, j: Any, actions: Any, kind_of: Any) -> tuple[dict[str, Any] | None, int]:
    """`verify <name>`, the choice when several match, up to the first card that is not the picker."""
    from bench.load import chosen_value, first_card

    url = run.connector.url
    card, _, _ = await run._send(j, j.agent.activity(url, f"verify {j.target.display_name}"), first_card)
    turns = 1
    if card is not None and kind_of(card) == "people_choice":
        button = next((a for a in actions(card) if a.get("verb") == "choose"), None)
        person = chosen_value(card, j.target)
        if button is None or person is None:
            return None, turns
        card, _, _ = await run._send(j, j.agent.click(url, "choose", {**button["data"], "person": person}),
                                     first_card)
        turns += 1
    return card, turns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=12000)
    parser.add_argument("--starts", type=int, default=9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--settle-s", type=float, default=2.5)
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--py-spy", metavar="FILE", help="sample every thread with py-spy (on PATH) over the counted "
                        "starts, collapsed stacks into FILE")
    parser.add_argument("--database-url", help="run the store on this PostgreSQL (a fresh database is made next to the "
                        "one named, and dropped afterwards: bench.load's); default SQLite in a temporary dir")
    parser.add_argument("--serve-profiled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_profiled:
        from bench.load import serve_app
        from bench.profiling import serve_profiled

        return serve_profiled(os.environ[PROFILE_ENV], serve_app)
    profile = os.path.abspath(args.profile) if args.profile else None
    result = asyncio.run(one_size(args.people, args.starts, args.seed, args.latency_ms, args.settle_s, profile,
                                 os.path.abspath(args.py_spy) if args.py_spy else None, args.database_url))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
