"""Profiling a served Watchword between two signals (bench.turns, bench.load and bench.wholestart's --profile).

The bench sends SIGUSR1 when its measured phase begins and SIGUSR2 when it ends; the served process writes the
profile of that span to `out` (pstats format). With yappi importable (outside the product's requirements:
`pip install --target DIR yappi`, PYTHONPATH=DIR), every thread's CPU time, and each thread's total in
`out + ".threads"`; otherwise cProfile of the thread that received the signals (the event loop's), in CPU time.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable


def serve_profiled(out: str, serve: Callable[[], int]) -> int:
    """Run `serve()` (it blocks until the process is told to stop), profiled between SIGUSR1 and SIGUSR2."""
    try:
        import yappi
    except ImportError:
        yappi = None
    if yappi is not None:
        yappi.set_clock_type("cpu")

        def stop(*_: object) -> None:
            yappi.stop()
            yappi.get_func_stats().save(out, type="pstat")
            with open(out + ".threads", "w") as f:
                yappi.get_thread_stats().print_all(out=f)

        signal.signal(signal.SIGUSR1, lambda *_: yappi.start(builtins=True, profile_threads=True))
        signal.signal(signal.SIGUSR2, stop)
        return serve()

    import cProfile

    profile = cProfile.Profile(time.thread_time)

    def dump(*_: object) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
    signal.signal(signal.SIGUSR2, dump)
    return serve()
