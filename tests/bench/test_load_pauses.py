"""bench.load reads what an answer turn waits for beyond its CPU from Watchword's own metrics: the event loop's lag
and the garbage collector's pauses, their growth over the ramp."""

from __future__ import annotations

import gc

from bench.load import pause_figures, pause_series
from observability.metrics import Metrics


def test_the_ramps_loop_lag_and_collections_are_what_grew_between_two_scrapes() -> None:
    metrics = Metrics()
    unwatch = metrics.watch_collections()
    try:
        for _ in range(50):
            metrics.loop_lag(0.3)  # before the ramp: not counted
        before = pause_series(metrics.render().decode())
        for lag in [0.002] * 98 + [0.03, 0.2]:
            metrics.loop_lag(lag)
        gc.collect()
        figures = pause_figures(before, pause_series(metrics.render().decode()))
    finally:
        unwatch()
    assert figures["loop_lag_p99_ms"] == 50.0  # the 99th of 100 wake-ups came 30 ms late: in the 50 ms bucket
    assert figures["gc_full_collections"] == 1 and figures["gc_pause_s"] > 0


def test_no_lag_sampled_is_no_figure() -> None:
    empty = pause_series(Metrics().render().decode())
    assert pause_figures(empty, empty) == {"loop_lag_p99_ms": None, "gc_full_collections": 0,
                                           "gc_pauses_over_25ms": 0, "gc_pause_s": 0.0}
