"""bench.units end to end, tiny: a few units on SQLite (and on PostgreSQL when the tests have one), the JSON it ends
with. Not a measurement: what a unit costs is the bench's to report."""

from __future__ import annotations

import json
import os

import pytest

from bench import units
from tests.store.support import POSTGRES_SKIP_REASON, POSTGRES_URL_VARIABLE


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert units.main(["--units", "5", *args]) == 0
    return json.loads(capsys.readouterr().out.splitlines()[-1])


def test_bench_units_reports_each_units_cpu_and_the_event_loops_share_on_sqlite(
        capsys: pytest.CaptureFixture[str]) -> None:
    figures = run(capsys)
    assert figures["database"] == "sqlite"
    for kind in ("turn_x1", "turn_x20", "select_one_x1", "select_one_x20"):
        cost = figures[kind]
        assert isinstance(cost, dict) and cost["process_ms"] > 0 and cost["loop_ms"] >= 0


@pytest.mark.postgres
def test_bench_units_runs_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(POSTGRES_SKIP_REASON)
    figures = run(capsys, "--database-url", url)
    assert figures["database"] == "postgresql"
    assert figures["turn_x1"]["process_ms"] > 0  # type: ignore[index]
