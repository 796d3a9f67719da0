"""Memory per open verification (issue 11's `kb_per_open_verification`) without bench.load's whole run.

    python -m bench.openmem [--people 12000 --open 60 --at-once 8 --seed 1] [--trace FILE [--trim]]

devtenant in its own process (Graph `--latency-ms` away), Watchword as bench.load serves it (`app.py`'s own main(),
demo mode, SQLite in a temporary directory), this process playing Teams. One cold verification fills Watchword's
per-tenant caches; once Watchword's background reads of the directory ended (bench.load's wait) and one warm
verification ran to its end (answered, decided, and when verified the password reset and the person told, as
bench.load's calibration does: what a running service has done once, such as loading a library's lazily imported
modules, is not put on the verifications measured), VmRSS is read (`baseline`). Then `--open` helpdesk agents each
start a verification of a different person (at most `--at-once` starts in flight) and stop at its first question,
so each stays open. After `--settle-s` (the sign-in logs are read in the background meanwhile, queued for the
tenant's reports budget: most are still on their way) VmRSS is read again (`open`): (open - baseline) /
verifications open is `kb_per_open_verification`, as bench.load computes it at its peak, without its answer turns.
Then every agent types `cancel` and VmRSS is read a third time (`closed`): what stays after the verifications ended
(caches filled per start, the allocators' fragments) is (closed - baseline) / starts, `kb_kept_per_start`. RSS seldom
shrinks, so `kb_per_open_verification` counts what the starts' transient work left in the allocators too: an upper
bound on what an open verification holds.

`--trace FILE` has Watchword write what grew, at `open` and at `closed`, as JSON lines in FILE: pymalloc's and glibc's
heaps (in use and free, before and after a full collection), objects by type (those the collector tracks), entries
of our functools caches, modules imported since the baseline (and who imported the first), and what holds one
UserContext, LoadedContext and MailMessage still alive. `--tracemalloc FRAMES` adds tracemalloc's allocations since
the baseline by the innermost line of our code (slow: 8 frames about 3x); `--trim` calls glibc's malloc_trim after
each report and says how much VmRSS it gave back. Figures compare within one run (shared 2-core machines).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TRACE_ENV = "BENCH_OPENMEM_TRACE"  # the served app's report file (tracemalloc on from SIGUSR1, written on SIGUSR2)


# --- the served Watchword, with tracemalloc on demand -----------------------------------------------------------

def serve_app() -> int:
    """bench.load's served Watchword, with `install_trace`."""
    from bench import load

    install_trace()
    return load.serve_app()


def install_trace() -> None:
    """With BENCH_OPENMEM_TRACE set (a file): SIGUSR1 takes a baseline (and starts tracemalloc when
    BENCH_OPENMEM_TRACEMALLOC is set) and each SIGUSR2 appends a report of what grew since to that file (JSON).
    bench.load's served Watchword installs it too, for a run signalled by hand."""
    out = os.environ.get(TRACE_ENV)
    if out:
        signal.signal(signal.SIGUSR1, lambda *_: _trace_start())
        signal.signal(signal.SIGUSR2, lambda *_: _trace_report(out))


_BASE: dict[str, Any] = {}


def _types() -> dict[str, list[int]]:
    """Objects the collector tracks (not frozen) by type: [count, bytes of the objects themselves]."""
    import gc

    table: dict[str, list[int]] = {}
    for o in gc.get_objects():
        entry = table.setdefault(type(o).__qualname__, [0, 0])
        entry[0] += 1
        entry[1] += sys.getsizeof(o)
    return table


def _heap() -> dict[str, int]:
    """pymalloc's arenas (sys._debugmallocstats) and glibc's heap (mallinfo2), in KB."""
    import ctypes
    import re
    import tempfile

    with tempfile.TemporaryFile("w+") as f:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read()

    def number(label: str) -> int:
        m = re.search(re.escape(label) + r"\s*=\s*([\d,]+)", text)
        return int(m.group(1).replace(",", "")) // 1024 if m else -1

    arenas = re.search(r"(\d+) arenas \* (\d+) bytes/arena", text)

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 uses (its page caches are malloc'd)
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Mallinfo2
    mi = libc.mallinfo2()
    return {"pymalloc_arenas_kb": int(arenas.group(1)) * int(arenas.group(2)) // 1024 if arenas else -1,
            "pymalloc_used_kb": number("# bytes in allocated blocks"),
            "pymalloc_free_kb": number("# bytes in available blocks") + number("unused pools * 16384 bytes"),
            "malloc_heap_kb": (mi.arena + mi.hblkhd) // 1024, "malloc_used_kb": (mi.uordblks + mi.hblkhd) // 1024,
            "malloc_free_kb": mi.fordblks // 1024, "sqlite_kb": sqlite.sqlite3_memory_used() // 1024}


class _FirstImports:
    """A finder that finds nothing: it notes the stack of the first few imports after the baseline (who imports
    modules while verifications start), and lets the real finders do the work."""

    def __init__(self, stacks: list[str]) -> None:
        self.stacks = stacks

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if len(self.stacks) < 3:
            import traceback

            self.stacks.append(f"{name}:\n" + "".join(traceback.format_stack(limit=25)[:-1]))


def _lru_sizes() -> dict[str, int]:
    """Entries in our modules' functools caches (module-level functions are frozen: not in gc.get_objects)."""
    import functools

    return {f"{name}.{attr}": o.cache_info().currsize for name, module in list(sys.modules.items())
            if name.split(".")[0] in ("verification", "graph", "dialogs", "bot", "store")
            for attr, o in list(vars(module).items()) if isinstance(o, functools._lru_cache_wrapper)}


def _rss_kb() -> int:
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmRSS:"))


def _trace_start() -> None:
    import gc
    import tracemalloc

    gc.collect()
    _BASE.update(types=_types(), heap=_heap(), modules=set(sys.modules), lru=_lru_sizes(), import_stacks=[])
    sys.meta_path.insert(0, _FirstImports(_BASE["import_stacks"]))
    if os.environ.get(TRACE_ENV + "MALLOC"):
        tracemalloc.start(int(os.environ[TRACE_ENV + "MALLOC"]))


def _trace_report(out: str) -> None:
    import gc
    import tracemalloc

    report: dict[str, Any] = {"rss_kb": _rss_kb(), "heap_uncollected": _heap(), "gc_counts": gc.get_count(),
                              "gc_stats": gc.get_stats()}
    report["garbage"] = _garbage()
    report.update({"unreachable": sum(n for n, _ in report["garbage"].values()), "heap": _heap(),
                   "heap_base": _BASE.get("heap"), "lru_base": _BASE.get("lru"), "frozen": gc.get_freeze_count()})
    base = _BASE.get("types", {})
    grown = {k: [v[0] - base.get(k, [0, 0])[0], v[1] - base.get(k, [0, 0])[1]] for k, v in _types().items()}
    report["types"] = sorted(([k, *v] for k, v in grown.items() if v[0]), key=lambda r: -r[2])[:40]

    report["lru_caches"] = _lru_sizes()
    new = sorted(set(sys.modules) - _BASE.get("modules", set(sys.modules)))
    report["modules_imported"] = [len(new), *new[:15]]
    report["import_stacks"] = _BASE.get("import_stacks")
    report["held_by"] = _held_by(os.environ.get(TRACE_ENV + "HOLDERS", "MailMessage,UserContext,LoadedContext"))
    if tracemalloc.is_tracing():
        report.update(_traced())
        report["json_held"] = _json_held()
    if os.environ.get(TRACE_ENV + "TRIM"):  # what glibc would give back: free pages inside its heaps
        import ctypes

        before = _rss_kb()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        report["trimmed_kb"] = before - _rss_kb()
    with open(out, "a") as f:
        f.write(json.dumps(report) + "\n")


def _garbage() -> dict[str, list[int]]:
    """A full collection that keeps what it found unreachable (gc.DEBUG_SAVEALL) long enough to count it by type
    ([count, bytes of the objects themselves], the 25 largest): the cycles the collector had not freed yet, and
    what they hold up; then they go."""
    import gc

    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        table: dict[str, list[int]] = {}
        for o in gc.garbage:
            entry = table.setdefault(type(o).__qualname__, [0, 0])
            entry[0] += 1
            entry[1] += sys.getsizeof(o)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    gc.collect()
    return dict(sorted(table.items(), key=lambda kv: -kv[1][1])[:25])


def _held_by(names: str, depth: int = 8) -> dict[str, list[str]]:
    """For one live object of each named type: a chain of what refers to it, up to `depth` steps (diagnosis)."""
    import gc

    wanted = {n for n in names.split(",") if n}
    found: dict[str, Any] = {}
    for o in gc.get_objects():
        name = type(o).__qualname__
        if name in wanted and name not in found:
            found[name] = o
    chains = {name: _referrer_chain(found[name], depth, {id(found)}, keys=12, width=160) for name in list(found)}
    found.clear()
    return chains


def _referrer_chain(obj: Any, depth: int, seen: set[int], *, keys: int, width: int) -> list[str]:
    """What refers to `obj`, then to that, up to `depth` steps, skipping frames and the ids in `seen` (the
    diagnosis's own containers)."""
    import gc

    chain: list[str] = []
    current = obj
    for _ in range(depth):
        refs = gc.get_referrers(current)
        holder = next((r for r in refs if id(r) not in seen and type(r).__name__ != "frame"), None)
        del refs
        if holder is None:
            break
        seen.add(id(holder))
        shown = f"keys {list(holder)[:keys]}" if isinstance(holder, dict) else repr(holder)[:width]
        chain.append(f"{type(holder).__module__}.{type(holder).__qualname__}: {shown}")
        current = holder
    return chain


def _json_held() -> dict[str, Any]:
    """Containers decoded from Graph's JSON still alive, by type, and what holds one of them (diagnosis)."""
    import gc
    import tracemalloc

    counts: dict[str, int] = {}
    sample: dict[str, Any] = {}
    for o in gc.get_objects():
        tb = tracemalloc.get_object_traceback(o)
        if tb is not None and any("json/decoder.py" in f.filename for f in tb):
            name = type(o).__qualname__
            counts[name] = counts.get(name, 0) + 1
            sample.setdefault(name, o)
    chains = {name: _referrer_chain(sample[name], 8, {id(sample)}, keys=8, width=120) for name in list(sample)}
    sample.clear()
    return {"counts": counts, "chains": chains}


def _traced() -> dict[str, Any]:
    import tracemalloc

    snapshot = tracemalloc.take_snapshot()
    ours = str(ROOT)
    venv = str(ROOT / ".venv")
    by_line: dict[str, list[int]] = {}
    by_file: dict[str, list[int]] = {}
    for trace in snapshot.traces:
        frames = list(trace.traceback)[::-1]  # most recent call first (a Traceback lists the oldest first)
        inner = frames[0]
        own = next((f for f in frames if f.filename.startswith(ours) and not f.filename.startswith(venv)
                    and "/bench/" not in f.filename), None)
        where = f"{_short(own.filename)}:{own.lineno}" if own else "(none of ours)"
        key = f"{where} <- {_short(inner.filename)}:{inner.lineno}"
        for table, k in ((by_line, key), (by_file, where.split(":")[0])):
            entry = table.setdefault(k, [0, 0])
            entry[0] += trace.size
            entry[1] += 1
    top = sorted(by_line.items(), key=lambda kv: -kv[1][0])[:60]
    files = sorted(by_file.items(), key=lambda kv: -kv[1][0])[:30]
    return {"traced_kb": round(tracemalloc.get_traced_memory()[0] / 1024),
            "top": [[k, round(v[0] / 1024, 1), v[1]] for k, v in top],
            "files": [[k, round(v[0] / 1024, 1), v[1]] for k, v in files]}


def _short(path: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# --- the run ---------------------------------------------------------------------------------------------------

async def first_question(run: Any, j: Any) -> bool:
    """`verify <name>` (and the namesake choice) until the first card: True when it is a question (left open)."""
    from bench.load import chosen_value, first_card
    from bench.teams_client import actions, kind_of

    url = run.connector.url
    card, _, _ = await run.send(j, "start", j.agent.activity(url, f"verify {j.target.display_name}"), first_card)
    if card is not None and kind_of(card) == "people_choice":
        button = next((a for a in actions(card) if a.get("verb") == "choose"), None)
        person = chosen_value(card, j.target)
        if button is None or person is None:
            return False
        card, _, _ = await run.send(j, "start", j.agent.click(url, "choose", {**button["data"], "person": person}),
                                    first_card)
    return card is not None and kind_of(card) == "question"


async def cancel(run: Any, j: Any) -> None:
    from bench.teams_client import cards_in, kind_of

    await run.send(j, "answer", j.agent.activity(run.connector.url, "cancel"),
                   lambda a: kind_of((cards_in(a) or [{}])[0]) in ("notice", "decision"))


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    from bench import load
    from bench.truth import GroundTruth
    from devtenant.generate import generate_org
    from verification import Policy

    anchor = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    org_made = asyncio.create_task(asyncio.to_thread(generate_org, args.seed, args.people, anchor))
    plan_args = argparse.Namespace(seed=args.seed, agents=args.open, calibrate=1, people=args.people, ramp_s=0.0,
                                   careless_share=0.0)
    run_args = argparse.Namespace(reply_timeout_s=args.reply_timeout_s, think_scale=0.0, seed=args.seed)
    trace = Path(args.trace) if args.trace else None
    async with contextlib.AsyncExitStack() as stack:
        connector, http = await stack.enter_async_context(load.teams())
        dev = argparse.Namespace(seed=args.seed, people=args.people, latency_ms=args.latency_ms, graph_profile=None,
                                 graph_requests=None)
        ready, graph_pid = await stack.enter_async_context(load.devtenant(dev, tmp))
        load.progress(f"devtenant ready ({args.people} people)")
        org = await org_made
        truth = GroundTruth(org, datetime.now(UTC), Policy())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
        env.update({"WATCHWORD_DEMO": "true", "WATCHWORD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'ww.db'}",
                    "WATCHWORD_STATE_KEY": Fernet.generate_key().decode(),
                    "WATCHWORD_SESSION_KEY": Fernet.generate_key().decode(), load.DEVTENANT_ENV: json.dumps(ready),
                    **({TRACE_ENV: str(trace)} if trace else {}),
                    **({TRACE_ENV + "MALLOC": str(args.tracemalloc)} if args.tracemalloc else {}),
                    **({TRACE_ENV + "TRIM": "1"} if args.trim else {})})
        for setting in args.env:
            name, _, value = setting.partition("=")
            env[name] = value
        bot = await stack.enter_async_context(load.server([sys.executable, "-m", "bench.openmem", "--serve-app"],
                                                          env, tmp / "watchword.log"))
        pid = bot.process.pid
        run = load.Run(run_args, connector, http, bot, truth, graph_pid)
        journeys, (cold, warm) = load.plan(plan_args, org)
        await first_question(run, cold)
        waited = await load.graph_quiet(tmp / "devtenant.log", pid, load.GRAPH_QUIET_S, args.warm_within_s)
        load.progress(f"Watchword's background reads of the directory ended ({waited:.0f} s)")
        await run.verify(warm, time.perf_counter())  # whole, to its reset: what a running service has done before
        await asyncio.sleep(args.settle_s)
        baseline = load.tree_rss_kb(pid)
        if trace is not None:
            bot.process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1.0)
        load.progress(f"baseline {baseline / 1024:.1f} MB; starting {len(journeys)} verifications, "
                      f"{args.at_once} at once")
        gate = asyncio.Semaphore(args.at_once)
        began = time.perf_counter()

        async def start(j: Any) -> bool:
            async with gate:
                return await first_question(run, j)

        opened = await asyncio.gather(*(start(j) for j in journeys))
        open_now = sum(opened)
        starts_s = time.perf_counter() - began
        await asyncio.sleep(args.settle_s)
        at_open = load.tree_rss_kb(pid)
        load.progress(f"{open_now} open: {at_open / 1024:.1f} MB")
        reports = 0
        if trace is not None:
            reports = await _report(bot, trace, reports)
        await asyncio.gather(*(cancel(run, j) for j, was_open in zip(journeys, opened, strict=True) if was_open))
        await asyncio.sleep(args.settle_s)
        closed = load.tree_rss_kb(pid)
        load.progress(f"all cancelled: {closed / 1024:.1f} MB")
        if trace is not None:
            await _report(bot, trace, reports)
    starts = len(journeys)
    figures: dict[str, Any] = {
        "people": args.people, "starts": starts, "open": open_now,
        "kb_per_open_verification": round((at_open - baseline) / open_now, 1) if open_now else None,
        "kb_kept_per_start": round((closed - baseline) / starts, 1),
        "baseline_rss_mb": round(baseline / 1024, 1), "open_rss_mb": round(at_open / 1024, 1),
        "closed_rss_mb": round(closed / 1024, 1), "starts_s": round(starts_s, 1), "at_once": args.at_once,
        "env": args.env, "seed": args.seed, "traced": bool(trace)}
    if trace is not None:
        lines = _reports(trace)
        figures["heap_open"], figures["heap_closed"] = lines[0]["heap"], lines[-1]["heap"]
        figures["heap_base"] = lines[0]["heap_base"]
    return figures


async def _report(bot: Any, trace: Path, reports: int) -> int:
    bot.process.send_signal(signal.SIGUSR2)
    for _ in range(1200):
        await asyncio.sleep(0.5)
        if len(_reports(trace)) > reports:
            return reports + 1
    raise SystemExit("no tracemalloc report from Watchword")


def _reports(trace: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in trace.read_text().splitlines()] if trace.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openmem", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=12_000)
    parser.add_argument("--open", type=int, default=60, help="verifications started and left at their first question")
    parser.add_argument("--at-once", type=int, default=8, help="starts in flight at most")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--settle-s", type=float, default=4.0, help="wait before each reading (sign-ins read)")
    parser.add_argument("--warm-within-s", type=float, default=900.0)
    parser.add_argument("--reply-timeout-s", type=float, default=120.0)
    parser.add_argument("--trace", metavar="FILE", help="reports from Watchword of what grew: objects by type, "
                        "pymalloc's and glibc's heaps")
    parser.add_argument("--tracemalloc", type=int, metavar="FRAMES", help="with --trace: tracemalloc's allocations "
                        "by line too, FRAMES deep (slows Watchword down: 8 frames about 3x)")
    parser.add_argument("--trim", action="store_true", help="with --trace: after each report, glibc's malloc_trim, "
                        "and how much VmRSS it gave back")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for Watchword's process (e.g. MALLOC_ARENA_MAX=2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve-app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_app:
        return serve_app()
    if args.trace:
        args.trace = os.path.abspath(args.trace)  # the server runs elsewhere
        Path(args.trace).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-openmem-") as tmp:
        figures = asyncio.run(bench(args, Path(tmp)))
    print(f"{figures['people']} people: {figures['open']} of {figures['starts']} verifications open: "
          f"{figures['kb_per_open_verification']} KB each (VmRSS {figures['baseline_rss_mb']} -> "
          f"{figures['open_rss_mb']} MB); after cancelling them {figures['closed_rss_mb']} MB "
          f"({figures['kb_kept_per_start']} KB kept per start)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
