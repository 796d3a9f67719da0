"""Prometheus metrics: what an operator watches (verifications, how long people wait, Graph, resets).

One `Metrics` per app, made in create_app() and handed to the parts that count (constructor injection); it owns
its own CollectorRegistry, never prometheus_client's global one, so two apps in one process (tests) count apart.
Each concept is counted in one place:

    watchword_verifications_started_total{kind}     a verification session opened (bot/records.py); kind: agent
                                                    or self_service
    watchword_verifications_ended_total{outcome}    decided (bot/records.py), denied by the person or their manager
                                                    (bot/proactive.py), or expired unanswered (bot/hosting.py)
    watchword_first_question_seconds                the turn that began a verification, from its arrival to the
                                                    first question sent (bot/agent.py)
    watchword_answer_turn_seconds                   a turn that took an answer (or a code, a skip) (bot/agent.py)
    watchword_open_verifications                    sessions in progress and not expired, all instances (the
                                                    database, read at each scrape)
    watchword_plans_held, _plan_memory_bytes        open verifications' question plans this process holds in
                                                    memory, and their bytes (dialogs/session_keeper.py)
    watchword_graph_calls_total{source,status}      every Graph request, each attempt (graph/client.py), a $batch
                                                    item by item (graph/batch.py); source: the URL's last word
                                                    (users, calendarView, signIns); status: ok, throttled,
                                                    timed_out, not_found (404), refused (other 4xx), failed
    watchword_password_resets_total{outcome}        done, failed, unknown (bot/ledger.py)
    watchword_event_loop_lag_seconds                how late a timer on the event loop fires (LOOP_LAG_EVERY_S
                                                    apart): how long any turn's next step waits for the loop,
                                                    behind other callbacks, a collection, or a CPU (loop_lag)
    watchword_gc_pause_seconds{generation}          each collection of the cyclic garbage collector, in whatever
                                                    thread ran it; a full one (2) holds every turn meanwhile

Served only when WATCHWORD_METRICS_PORT is set, on a listener of its own (`metrics_listener`, loopback unless
WATCHWORD_METRICS_HOST says otherwise, and then behind WATCHWORD_METRICS_TOKEN), never on the bot's listener.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from resources import SETTINGS, STORE

log = logging.getLogger("watchword.metrics")

# Seconds. The first question waits on Graph (a round trip or two, ~100 ms each) and the question engine.
FIRST_QUESTION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0)
ANSWER_TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# The loop's lag and the collector's pauses: an answer turn costs ~25 ms of CPU, so a few ms matter.
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LOOP_LAG_EVERY_S = 0.1  # how often the lag is sampled (~20 us of the loop's CPU each)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the client's *_created series (a start time per label set) say nothing here
        self.registry = CollectorRegistry()
        r = self.registry
        self._started = Counter("watchword_verifications_started", "Verifications begun (a session opened), by who "
                                "asked: a helpdesk agent, or the person themselves (self-service).", ["kind"],
                                registry=r)
        self._ended = Counter("watchword_verifications_ended", "Verifications ended, by outcome.", ["outcome"],
                              registry=r)
        self._first_question = Histogram(
            "watchword_first_question_seconds", "From the arrival of the turn that began a verification to its "
            "first question sent.", buckets=FIRST_QUESTION_BUCKETS, registry=r)
        self._answer_turn = Histogram(
            "watchword_answer_turn_seconds", "Turns that took an answer to a verification's question, from arrival "
            "to reply.", buckets=ANSWER_TURN_BUCKETS, registry=r)
        self._open = Gauge("watchword_open_verifications", "Verifications in progress and not expired, on every "
                           "instance (read from the database at each scrape).", registry=r)
        self._plans = Gauge("watchword_plans_held", "Question plans of open verifications this process holds in "
                            "memory (the least recently used beyond WATCHWORD_PLAN_MEMORY_MB are read back from the "
                            "database when needed).", registry=r)
        self._plan_bytes = Gauge("watchword_plan_memory_bytes", "Bytes of those plans.", registry=r)
        self._graph = Counter("watchword_graph_calls", "Microsoft Graph requests ($batch items one by one), each "
                              "attempt, by what they read or change and how they ended: ok, throttled, timed_out, "
                              "not_found (404), refused (other 4xx), failed.", ["source", "status"], registry=r)
        self._resets = Counter("watchword_password_resets", "Password reset attempts, by outcome: done, failed, "
                               "unknown (the password may have changed).", ["outcome"], registry=r)
        self._loop_lag = Histogram(
            "watchword_event_loop_lag_seconds", "How late a timer on the event loop fires, sampled every "
            f"{LOOP_LAG_EVERY_S} s: the wait of any turn's next step for the loop (other callbacks running, a "
            "garbage collection, the GIL held by another thread, or no CPU free).", buckets=PAUSE_BUCKETS,
            registry=r)
        self._gc_pause = Histogram(
            "watchword_gc_pause_seconds", "Collections of Python's cyclic garbage collector, by generation (2: a full "
            "collection), in whichever thread ran them: no Python code runs meanwhile.", ["generation"],
            buckets=PAUSE_BUCKETS, registry=r)

    # --- counting ------------------------------------------------------------------------------------------
    def verification_started(self, *, self_service: bool) -> None:
        self._started.labels("self_service" if self_service else "agent").inc()

    def verification_ended(self, outcome: str, count: int = 1) -> None:
        if count:
            self._ended.labels(outcome).inc(count)

    def first_question(self, seconds: float) -> None:
        self._first_question.observe(seconds)

    def answer_turn(self, seconds: float) -> None:
        self._answer_turn.observe(seconds)

    def graph_call(self, source: str, status: str) -> None:
        self._graph.labels(source, status).inc()

    def password_reset(self, outcome: str) -> None:
        self._resets.labels(outcome).inc()

    def open_verifications(self, count: int) -> None:
        self._open.set(count)

    def watch_plans(self, *, held: Callable[[], float], size: Callable[[], float]) -> None:
        """Read, at each scrape, how many plans the session keeper holds in memory and their bytes."""
        self._plans.set_function(held)
        self._plan_bytes.set_function(size)

    def loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(seconds)

    def watch_collections(self) -> Callable[[], None]:
        """Time every collection of the cyclic garbage collector (gc.callbacks); returns what stops it."""
        pauses = [self._gc_pause.labels(str(g)) for g in range(3)]
        began: dict[int, float] = {}  # generation -> when its collection began (one runs at a time)

        def collecting(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                began[info["generation"]] = time.perf_counter()
            elif (start := began.pop(info["generation"], None)) is not None:
                pauses[info["generation"]].observe(time.perf_counter() - start)

        gc.callbacks.append(collecting)
        return lambda: gc.callbacks.remove(collecting)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def watch_loop_lag(metrics: Metrics, every_s: float = LOOP_LAG_EVERY_S) -> None:
    """Sleep `every_s`, again and again, and count how late each wake-up came (until cancelled)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + every_s
        await asyncio.sleep(every_s)
        metrics.loop_lag(max(0.0, loop.time() - due))


METRICS = web.AppKey("metrics", Metrics)
# Where the metrics listener is bound, (host, port), when it runs.
METRICS_ADDRESS = web.AppKey("metrics_address", tuple)


async def metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx: serve GET /metrics on its own listener when WATCHWORD_METRICS_PORT is set."""
    settings = app[SETTINGS]
    if settings.metrics_port is None:
        yield
        return
    metrics, store, token = app[METRICS], app[STORE], settings.metrics_token.get_secret_value()

    async def scrape(request: web.Request) -> web.Response:
        if token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                             f"Bearer {token}".encode()):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        try:
            metrics.open_verifications(await store.stats.open_verifications())
        except Exception:  # the rest of the metrics are still worth serving; the log says why this one is stale
            log.warning("metrics: could not count the open verifications", exc_info=True)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    served = web.Application()
    served.router.add_get("/metrics", scrape)
    runner = web.AppRunner(served, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    host, port = runner.addresses[0][:2]
    app[METRICS_ADDRESS] = (host, port)
    log.info("Prometheus metrics at http://%s:%d/metrics%s", host, port, " (bearer token required)" if token else "")
    lag = asyncio.create_task(watch_loop_lag(metrics))
    unwatch = metrics.watch_collections()
    yield
    unwatch()
    lag.cancel()
    await runner.cleanup()
