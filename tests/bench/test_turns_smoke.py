"""bench.turns end to end, small: the servers start, answer turns are measured and so are the echo and floor agents'
replays.

Not a measurement: whether the ratio meets its target is the bench's to report, not this test's to assert.
"""

from __future__ import annotations

import json

import pytest

from bench import turns

pytestmark = pytest.mark.e2e  # starts `python app.py` and the echo agent as processes

KEYS = {"turns_per_s", "echo_turns_per_s", "ratio", "p50_ms", "p99_ms", "echo_p50_ms", "echo_p99_ms",
        "cpu_ms_per_turn", "echo_cpu_ms_per_turn", "turns", "echo_turns", "outcomes", "floor_turns_per_s",
        "floor_ratio", "floor_cpu_ms_per_turn"}


@pytest.mark.parametrize("answer_with", ["chat", "card"])
def test_bench_measures_answer_turns_and_replays_them_on_the_echo_agent(
        answer_with: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = turns.main(["--conversations", "3", "--rounds", "1", "--users", "200", "--answer-with", answer_with])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    figures = json.loads(lines[-1])
    assert KEYS <= figures.keys()
    assert figures["turns"] >= 3 and figures["echo_turns"] == figures["turns"]
    assert figures["turns_per_s"] > 0 and figures["echo_turns_per_s"] > 0 and figures["floor_turns_per_s"] > 0
    assert figures["p50_ms"] <= figures["p99_ms"]
    decided = sum(n for outcome, n in figures["outcomes"].items() if not outcome.startswith("refused"))
    assert decided == 3, figures["outcomes"]  # every agent's verification reached a decision
    assert "echo agent" in out and "floor agent" in out and figures["answer_with"] == answer_with
