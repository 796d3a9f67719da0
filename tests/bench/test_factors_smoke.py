"""bench.factors end to end on a tiny organisation: it runs, and the code and the manager work as factors.

Not a measurement: the figures are the bench's to report, not this test's to assert.
"""

from __future__ import annotations

import json

import pytest

from bench import factors


def test_bench_runs_and_a_code_reader_passes_more_than_a_code_guesser(capsys: pytest.CaptureFixture[str]) -> None:
    assert factors.main(["--seed", "1", "--users", "120", "--trials", "10", "--code-guesses", "200"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    figures = json.loads(lines[-1])
    assert figures["targets"] > 0 and figures["random_code_guess_matches"] == 0
    assert figures["genuine_pass_rate_with_code"] > figures["informed_impostor_guessing_the_code_pass_rate"]
    assert figures["self_service_reachable_rate"] >= figures["self_service_reachable_rate_before"]
