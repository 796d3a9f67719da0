"""devtenant's own CPU, for benchmarks: `python -m devtenant --profile FILE` or `--request-cpu FILE`.

Between SIGUSR1 and SIGUSR2 (a benchmark's measured phase) devtenant keeps its CPU per kind of Graph request
(written to FILE.requests.json) and, with --profile, a cProfile (written to FILE; it slows devtenant several
times over on a busy machine, so the table's figures are then only relative). A kind is the route's
pattern and the query options' names, never their values ("GET /users/{id}/directReports ?$select&$top"): a
`$batch` item is counted as its own kind, and its batch's CPU (which holds its items') as "POST /$batch".
A request's CPU is the thread's CPU while its handler runs (summed over each of its steps, so requests that
interleave on the event loop are told apart), plus encoding its JSON answer for direct requests ("encode"
beside the batch's kind: a batch's items are encoded with it).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Generator, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Timed(Awaitable[T]):
    """An awaitable whose thread CPU is added up over each step it runs (not while it is suspended)."""

    def __init__(self, awaitable: Awaitable[T], profiler: RequestProfiler, kind: str) -> None:
        self.awaitable, self.profiler, self.kind = awaitable, profiler, kind

    def __await__(self) -> Generator[Any, Any, T]:
        steps = self.awaitable.__await__()
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            began = time.thread_time()
            try:
                yielded = steps.throw(thrown) if thrown is not None else steps.send(sent)
            except StopIteration as done:
                self.profiler.add(self.kind, time.thread_time() - began, count=True)
                return done.value  # type: ignore[no-any-return]
            except BaseException:
                self.profiler.add(self.kind, time.thread_time() - began, count=True)
                raise
            self.profiler.add(self.kind, time.thread_time() - began)
            try:
                sent, thrown = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaitable, as `await` would
                sent, thrown = None, exc


class RequestProfiler:
    """cProfile and CPU per kind of request, on between `start()` and `stop()` (SIGUSR1, SIGUSR2 with `install`)."""

    def __init__(self, path: Path, *, cprofile: bool = True) -> None:
        self.path = path
        self.on = False
        self.profile = cProfile.Profile() if cprofile else None
        self.cpu_s: Counter[str] = Counter()
        self.count: Counter[str] = Counter()

    def install(self) -> None:
        signal.signal(signal.SIGUSR1, lambda *_: self.start())
        signal.signal(signal.SIGUSR2, lambda *_: self.stop())

    def start(self) -> None:
        self.cpu_s.clear()
        self.count.clear()
        self.on = True
        if self.profile is not None:
            self.profile.enable()

    def stop(self) -> None:
        if not self.on:
            return
        self.on = False
        if self.profile is not None:
            self.profile.disable()
            pstats.Stats(self.profile).dump_stats(str(self.path))
        table = {kind: {"requests": self.count[kind], "cpu_ms": round(1000 * self.cpu_s[kind], 1),
                        "cpu_ms_each": round(1000 * self.cpu_s[kind] / max(1, self.count[kind]), 2)}
                 for kind, _ in self.cpu_s.most_common()}
        Path(f"{self.path}.requests.json").write_text(json.dumps(table, indent=1))

    def add(self, kind: str, seconds: float, *, count: bool = False) -> None:
        if self.on:
            self.cpu_s[kind] += seconds
            self.count[kind] += count

    def timed(self, kind: str, awaitable: Awaitable[T]) -> Awaitable[T]:
        return _Timed(awaitable, self, kind) if self.on else awaitable


def kind_of(method: str, pattern: str, query: Mapping[str, str]) -> str:
    """A request's kind: its method, its route's pattern, its query options' names (no values: no data)."""
    options = "&".join(sorted(k for k in query if k.startswith("$")))
    return f"{method} {pattern}" + (f" ?{options}" if options else "")


PROFILER: RequestProfiler | None = None  # the process's, when devtenant runs with --profile
