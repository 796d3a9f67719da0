"""The questions a change asks, and what choosing them costs, replayed in-process on people's loaded data.

    python -m bench.plans capture --people 50000 [--count 40 --seed 1] --out FILE.pkl
    python -m bench.plans replay FILE.pkl --plans PLANS.jsonl [--passes 5 --all]

For a change to choosing the questions that must not change them (issue 11's start CPU work): `capture` reads
`--count` people's data (different people from the whole organisation, seeded as bench.startcost picks them) through
the product's Graph path from a devtenant of `--people`, and pickles each person's UserContext and OrgKnowledge with
the directory snapshot's people. `replay`, run from each worktree, prepares the snapshot as graph/tenant_facts.py does
(typo neighbours, department indexes) and generates each person's questions with a fixed seed per person, as a
session starts (`asked_only`; `--all`: every question generate_questions makes, unfinished ones included), writing
every Question whole (accepted answers, look-alikes, true-but-known answers, options, the right one) one JSON line
each to `--plans`: compare two worktrees' files byte for byte (the digest printed is the file's). It prints what
choosing cost: the median over people of the first pass (shared memos cold; each person as a real start meets them)
and of the least of the later passes (`time.process_time()`: min of N, for a shared machine), and the traced memory
the prepared snapshot and the shared memos hold after the first pass (`--trace`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import inspect
import json
import pickle
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.startcost import graph_path, people_with_a_department, start_devtenant
from graph.tenant_facts import DirectorySnapshot
from verification.policy import Policy
from verification.questions import generate_questions


async def capture(people: int, seed: int, count: int) -> dict[str, Any]:
    proc, ready = start_devtenant(people, seed)
    try:
        path = await graph_path(ready)
        settings, tokens, http, directory = path.settings, path.tokens, path.http, path.directory
        tenant, token = path.tenant, path.token
        cases = []
        for user_id in await people_with_a_department(http, settings.graph_url, token, seed):
            if len(cases) == count:
                break
            await directory.settle()  # the snapshot complete, as in steady state
            loaded = await directory.load_context(tenant, user_id)
            await loaded.with_sign_ins()
            # The department's index is made again from the snapshot at replay, by the code replayed.
            cases.append((user_id, loaded.context, dataclasses.replace(loaded.org, department_index=None)))
        # The snapshot the contexts were read against (a bench may look behind the directory's interface).
        held = directory._loader.tenant_facts.directory(tenant)  # noqa: SLF001
        if held is None:
            raise SystemExit("the directory snapshot never completed")
        await directory.aclose()
        await http.aclose()
        tokens.close()
        return {"people": held.people, "manager_of": dict(held.manager_of), "others": held.others, "cases": cases}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replay(path: Path, plans: Path, passes: int, asked_only: bool, trace: bool) -> dict[str, Any]:
    data = pickle.loads(path.read_bytes())  # noqa: S301 - our own capture
    if trace:
        gc.collect()
        tracemalloc.start()
    began = time.process_time()
    snap = DirectorySnapshot(data["people"], data["manager_of"], True, data["others"])
    snap.prepare()
    prepare_s = time.process_time() - began
    held_mb = tracemalloc.get_traced_memory()[0] / 1e6 if trace else None
    cases = []
    for user_id, context, org in data["cases"]:
        index = snap.department_index(context.profile.department)
        if index is not None:
            org = dataclasses.replace(org, department_members=index.members, department_index=index)
        cases.append((user_id, context, org))
    policy = Policy()
    # Older code (the other side of a comparison) may not have asked_only: then the session's own filter.
    kwargs = {"asked_only": True} if asked_only and "asked_only" in inspect.signature(
        generate_questions).parameters else {}
    gc.freeze()  # as app.py and the snapshot's refresh do
    cpu: dict[str, list[float]] = {user_id: [] for user_id, _, _ in cases}
    lines: list[str] = []
    memo_mb = None
    for n in range(passes):
        for user_id, context, org in cases:
            began = time.process_time()
            questions = generate_questions(context, org, policy, f"plans:{user_id}", **kwargs)
            cpu[user_id].append((time.process_time() - began) * 1000)
            if n == 0:
                kept = [q for q in questions if not asked_only or q.bits >= policy.min_bits_per_question]
                lines += [json.dumps({"person": user_id, **q.to_dict()}, sort_keys=True) for q in kept]
        if n == 0 and trace:
            gc.collect()
            memo_mb = tracemalloc.get_traced_memory()[0] / 1e6 - (held_mb or 0)
            tracemalloc.stop()
    text = "\n".join(lines) + "\n"
    plans.write_text(text)
    warm = [min(v[1:]) for v in cpu.values()] if passes > 1 else [v[0] for v in cpu.values()]
    return {"people": len(cases), "prepare_s": round(prepare_s, 2),
            "first_pass_ms": round(statistics.median(v[0] for v in cpu.values()), 2),
            "warm_ms": round(statistics.median(warm), 2), "warm_sum_ms": round(sum(warm), 1),
            "snapshot_mb": None if held_mb is None else round(held_mb, 2),
            "memos_after_first_pass_mb": None if memo_mb is None else round(memo_mb, 2),
            "questions": len(lines), "plans_sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture", help="read people's data through the product's Graph path and pickle it")
    cap.add_argument("--people", type=int, default=12000, help="organisation size")
    cap.add_argument("--count", type=int, default=40, help="people to capture")
    cap.add_argument("--seed", type=int, default=1)
    cap.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("replay", help="choose the captured people's questions with this worktree's code")
    rep.add_argument("capture", type=Path)
    rep.add_argument("--plans", type=Path, required=True, help="every question, one JSON line each")
    rep.add_argument("--passes", type=int, default=5, help="passes over the people (the first with cold memos)")
    rep.add_argument("--all", action="store_true", help="every question generated, not only those a session asks")
    rep.add_argument("--trace", action="store_true", help="tracemalloc: what the snapshot and shared memos hold")
    args = parser.parse_args(argv)
    if args.command == "capture":
        data = asyncio.run(capture(args.people, args.seed, args.count))
        args.out.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        print(f"captured {len(data['cases'])} people of {len(data['people'])} into {args.out}")
        return 0
    print(json.dumps(replay(args.capture, args.plans, args.passes, not args.all, args.trace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
