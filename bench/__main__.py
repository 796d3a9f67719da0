"""`make bench`: run every benchmark in turn; each prints its figures and a last line of JSON.

Figures are for comparing within one run (ratios), not across machines: ours are shared and noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys

# (module, arguments): each is also runnable on its own as `python -m bench.NAME --help`.
BENCHMARKS: list[tuple[str, list[str]]] = [
    ("bench.devtenant_generate", ["--users", "50000", "--seed", "1"]),
    ("bench.accuracy", ["--seed", "1"]),  # organisations of 150, 300 and 2,000 people
    ("bench.factors", ["--seed", "1", "--users", "300", "--trials", "100"]),
    ("bench.latency", ["--latency-ms", "100"]),
    ("bench.startcost", ["--sizes", "2000,12000,50000", "--starts", "9", "--seed", "1"]),  # issue 11's start_cpu_ms
    # issue 11's kb_per_open_verification without bench.load's whole run: 60 verifications left at their first question
    ("bench.openmem", ["--people", "12000", "--open", "60", "--seed", "1"]),
    ("bench.openmem", ["--people", "50000", "--open", "60", "--seed", "1"]),
    ("bench.sync", ["--users", "50000", "--seed", "1"]),
    ("bench.refresh", ["--users", "12000", "--users", "50000", "--seed", "1"]),  # the directory's refresh
    ("bench.units", ["--units", "1000"]),  # one unit of work's CPU, the event loop's share of it (SQLite)
    ("bench.turns", ["--conversations", "20", "--rounds", "8", "--users", "2000", "--seed", "1"]),
    ("bench.turns", ["--conversations", "20", "--rounds", "8", "--users", "2000", "--seed", "1",
                     "--answer-with", "card"]),
    # The whole helpdesk at once, smaller than issue 11's 200 agents and 50,000 people so `make bench` stays short.
    ("bench.load", ["--agents", "50", "--people", "12000", "--ramp-s", "20", "--think-scale", "0.2", "--seed", "1"]),
    ("bench.fuzz", ["--examples", "500"]),
    ("bench.faults", ["--verifications", "24", "--agents", "4", "--fault-rate", "0.2", "--latency-ms", "200"]),
]


def main() -> int:
    summary: dict[str, object] = {}
    failed = []
    for module, args in BENCHMARKS:
        print(f"== {module} {' '.join(args)}", flush=True)
        proc = subprocess.run(  # noqa: S603 - our own modules, fixed arguments
            [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True, check=False)
        print(proc.stdout, end="", flush=True)
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        if proc.returncode != 0 or not lines:
            failed.append(module)
            continue
        summary[" ".join([module, *args])] = json.loads(lines[-1])
    print(json.dumps({"benchmarks": summary, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
