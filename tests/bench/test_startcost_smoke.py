"""bench.startcost end to end, tiny: a 200-person devtenant, two counted starts, the JSON it ends with.

Not a measurement: whether a start costs less than issue 11's 20 ms is the bench's to report, not this test's.
"""

from __future__ import annotations

import json

import pytest

from bench import startcost


@pytest.mark.e2e  # starts devtenant and a process per size
def test_start_cost_reports_load_and_choice_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    code = startcost.main(["--sizes", "200", "--starts", "2"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads([line for line in out.splitlines() if line.strip()][-1])
    size = figures["sizes"]["200"]
    assert size["starts"] == 2 and figures["start_cpu_ms"]["200"] == size["start_cpu_ms"] > 0
    assert size["load_cpu_ms"] > 0 and size["choose_cpu_ms"] > 0
    assert figures["target_ms"] == 20 and isinstance(figures["met"], bool)
    assert "200 people: a start" in out


@pytest.mark.e2e  # starts devtenant and Watchword (bench.load --serve-app) per size
def test_whole_start_through_the_bot_reports_its_cpu_and_threads(capsys: pytest.CaptureFixture[str]) -> None:
    code = startcost.main(["--sizes", "200", "--starts", "2", "--whole"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads([line for line in out.splitlines() if line.strip()][-1])
    size = figures["sizes"]["200"]
    assert size["starts"] >= 1 and figures["whole_start_cpu_ms"]["200"] == size["whole_start_cpu_ms"] > 0
    assert size["turn_cpu_ms"] > 0 and size["turn_cpu_ms_by_thread"]
    assert "200 people: a whole start" in out
