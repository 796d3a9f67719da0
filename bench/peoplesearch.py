"""What the people search from the directory snapshot costs (graph/people_search.py `PeopleIndex`).

    python -m bench.peoplesearch [--people 50000] [--seed 1] [--queries 200]

devtenant generates the organisation (its people, guests and disabled accounts); the snapshot is made of them as
graph/tenant_facts.py makes it (`snapshot`). Measured in this process, `time.process_time()`: building the index
(`build_ms`, what the background refresh does once per snapshot, off the event loop), patching it for a delta round
that changed 5, 50 and 400 people (`patch_ms`), what it holds (`traced_mb`, tracemalloc), and a search of each form
for `--queries` people drawn with the seed (`search_ms`: median and max per form, `limit` 8 as `verify` asks):
a whole name, the name reversed, a given name, a surname, a principal name, two letters, one letter, a name nobody
has. The last line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import time
import tracemalloc
from typing import Any

from devtenant.generate import generate_org
from graph.people_search import PeopleIndex
from graph.tenant_facts import snapshot
from verification.context import Person


def _json(u: Any) -> dict[str, Any]:
    return {"id": u.id, "displayName": u.display_name, "givenName": u.given_name, "surname": u.surname,
            "userPrincipalName": u.user_principal_name, "mail": u.mail, "jobTitle": u.job_title,
            "department": u.department, "officeLocation": u.office_location, "accountEnabled": u.account_enabled,
            "userType": u.user_type}


def _cpu_ms(work: Any) -> tuple[float, Any]:
    started = time.process_time()
    out = work()
    return (time.process_time() - started) * 1000, out


def run(people: int, seed: int, queries: int) -> dict[str, Any]:
    org = generate_org(seed, people, strangers=True)
    held = snapshot([_json(u) for u in org.users.values()], True)
    accounts = {p.id: p for p in (*held.people, *held.others)}
    build_ms, index = _cpu_ms(lambda: PeopleIndex(accounts))
    tracemalloc.start()
    kept = PeopleIndex(accounts)
    traced_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    del kept
    patch_ms = {}
    for changed in (5, 50, 400):
        after = dict(accounts)
        ids = {p.id for p in held.people[:changed]}
        for p in held.people[:changed]:
            after[p.id] = dataclasses.replace(p, display_name=f"{p.display_name} Jr", surname=f"{p.surname}x")
        patch_ms[changed] = round(_cpu_ms(lambda a=after, c=ids: index.patched(a, c))[0], 1)
    rng = random.Random(seed)
    drawn: list[Person] = rng.sample(held.people, min(queries, len(held.people)))
    forms = {
        "whole name": [p.display_name for p in drawn],
        "reversed": [" ".join(reversed(p.display_name.split())) for p in drawn],
        "given name": [p.given_name or p.display_name for p in drawn],
        "surname": [p.surname or p.display_name for p in drawn],
        "principal name": [p.upn or p.display_name for p in drawn],
        "two letters": [p.display_name[:2] for p in drawn],
        "one letter": [p.display_name[:1] for p in drawn],
        "nobody": ["Zqx Wvy"] * len(drawn),
    }
    search_ms = {}
    for form, texts in forms.items():
        times = []
        for text in texts:
            started = time.perf_counter()
            index.find(text, 8)
            times.append((time.perf_counter() - started) * 1000)
        search_ms[form] = {"median": round(statistics.median(times), 3), "max": round(max(times), 2)}
        print(f"{form:15} median {search_ms[form]['median']:.3f} ms, max {search_ms[form]['max']:.2f} ms", flush=True)
    print(f"{len(accounts)} accounts ({len(held.others)} disabled or guests): built in {build_ms:.0f} ms of CPU, "
          f"{traced_mb:.1f} MB; patched for 5 / 50 / 400 changed in "
          f"{' / '.join(str(v) for v in patch_ms.values())} ms")
    return {"people": people, "accounts": len(accounts), "build_ms": round(build_ms, 1),
            "traced_mb": round(traced_mb, 1), "patch_ms": patch_ms, "search_ms": search_ms, "seed": seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peoplesearch", description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.people, args.seed, args.queries)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
