"""bench.accuracy end to end on a tiny organisation: it runs, prints its figures, and tells callers apart.

Not a measurement: the targets (pass rates, questions) are the bench's to report, not this test's to assert.
"""

from __future__ import annotations

import json

import pytest

from bench import accuracy

KEYS = {
    "genuine_pass_rate", "informed_impostor_pass_rate", "random_impostor_pass_rate", "median_bits_when_verified",
    "median_questions_genuine", "genuine_sessions", "informed_impostor_attempts", "random_impostor_attempts",
    "informed_impostor_upper_95", "random_impostor_upper_95", "model_predicted_pass_probability",
    "refused_up_front", "federated_targets", "seconds",
}


def test_bench_runs_and_genuine_callers_pass_more_than_impostors(capsys: pytest.CaptureFixture[str]) -> None:
    code = accuracy.main(["--seed", "1", "--users", "120", "--trials", "12", "--random-attempts", "5",
                          "--informed-attempts", "5"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) > 5, out  # human-readable figures come first
    figures = json.loads(lines[-1])
    assert KEYS <= figures.keys()
    assert figures["genuine_sessions"] > 0
    assert figures["random_impostor_attempts"] == figures["genuine_sessions"] * 6
    assert figures["genuine_pass_rate"] > figures["informed_impostor_pass_rate"]
    assert figures["genuine_pass_rate"] > figures["random_impostor_pass_rate"]
    assert "RAISED" in out  # the sign-in throttle was lifted, and the output says so
