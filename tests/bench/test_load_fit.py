"""bench.load's start_cpu_ms_fitted: each kind of turn's CPU under the run's own load, fitted over the run's windows."""

from __future__ import annotations

import argparse
import random

import pytest

from bench.load import Samples, figures_of, fitted_cpu_s, solve


def run_of(costs: dict[str, float], idle_rate: float, seconds: int = 120) -> tuple[Samples, list[tuple[float, str]]]:
    """A run whose mix of turns shifts as a ramp's does (starts early, answers later), each turn costing `costs`."""
    rng = random.Random(7)
    samples, ended, cpu = Samples(), [], 0.0
    for tick in range(seconds * 4):
        at = tick * 0.25
        samples.at.append(at)
        samples.cpu_s.append(cpu)
        cpu += idle_rate * 0.25
        start_odds = 0.9 if at < 60 else 0.05
        for kind, odds in (("start", start_odds), ("answer", 0.3 + at / 200), ("reset", 0.1)):
            if rng.random() < odds:
                ended.append((at + 0.1, kind))
                cpu += costs[kind]
    return samples, ended


def test_the_fit_recovers_each_kinds_cpu_when_the_mix_shifts_through_the_run() -> None:
    costs = {"start": 0.020, "answer": 0.008, "reset": 0.030}
    samples, ended = run_of(costs, idle_rate=0.001)
    fitted = fitted_cpu_s(samples, ended, idle_rate=0.001)
    assert fitted is not None
    for kind, cost in costs.items():
        assert abs(fitted[kind] - cost) < 1e-6, (kind, fitted)


def test_kinds_that_never_vary_apart_are_no_figure() -> None:
    samples = Samples(at=[0.25 * i for i in range(200)], cpu_s=[0.01 * i for i in range(200)])
    together = [(t, kind) for t in (0.25 * i + 0.1 for i in range(200)) for kind in ("start", "answer")]
    assert fitted_cpu_s(samples, together, idle_rate=0.0) is None


def test_a_run_too_short_for_the_windows_is_no_figure() -> None:
    samples = Samples(at=[0.0, 5.0, 10.0], cpu_s=[0.0, 0.1, 0.2])
    assert fitted_cpu_s(samples, [(1.0, "start"), (6.0, "answer")], idle_rate=0.0) is None


def test_solve_finds_the_exact_solution_and_refuses_a_singular_system() -> None:
    assert solve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]) == pytest.approx([0.8, 1.4])
    assert solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]) is None


def test_a_kind_no_turn_was_of_is_a_null_figure_and_the_others_are_still_fitted() -> None:
    samples, ended = run_of({"start": 0.020, "answer": 0.008, "reset": 0.030}, idle_rate=0.0)
    no_resets = [(at, kind) for at, kind in ended if kind != "reset"]
    args = argparse.Namespace(agents=200, people=50000, latency_ms=100.0, ramp_s=60, think_scale=1.0,
                              database_url=None, seed=1)
    figures = figures_of(args, [], [], samples, 0, 0.0, 1.0, 120.0, no_resets)
    assert figures["reset_cpu_ms_fitted"] is None
    assert figures["start_cpu_ms_fitted"] is not None and figures["answer_cpu_ms_fitted"] is not None
