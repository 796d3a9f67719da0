"""bench.accuracy end to end on a tiny organisation: it runs, prints its figures, and tells callers apart.

Not a measurement: the targets (pass rates, questions) are the bench's to report, not this test's to assert.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import accuracy
from tests.verification import builders as b
from verification import Policy, assess_risk

IMPOSTORS = ("random", "informed", "teammate", "linkedin", "replay")
KEYS = {
    "genuine_pass_rate_120", "genuine_pass_rate_questions_only_120", "genuine_pass_rate_thin_data",
    "median_questions_genuine", "median_questions_genuine_questions_only", "self_service_reachable_rate",
    "self_service_reachable_rate_without_install_permission", "self_service_genuine_pass_rate",
    "genuine_memory_model", "median_bits_when_verified", "model_predicted_pass_probability", "refused_up_front",
    "federated_targets", "per_size", "targets_met", "seconds",
    *(f"{kind}_impostor_{what}" for kind in IMPOSTORS for what in ("pass_rate", "upper_95", "attempts", "passes")),
}


def test_bench_runs_and_genuine_callers_pass_more_than_impostors(capsys: pytest.CaptureFixture[str]) -> None:
    code = accuracy.main(["--seed", "1", "--sizes", "120", "--trials", "12", "--random-attempts", "5",
                          "--informed-attempts", "2", "--teammate-attempts", "2", "--replay-campaigns", "1"])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) > 5, out  # human-readable figures come first
    figures = json.loads(lines[-1])
    assert KEYS <= figures.keys(), KEYS - figures.keys()
    assert figures["random_impostor_attempts"] > 0 and figures["random_impostor_attempts"] % 6 == 0
    assert figures["teammate_impostor_attempts"] > 0 and figures["replay_impostor_attempts"] > 0
    for kind in IMPOSTORS:
        assert figures["genuine_pass_rate_120"] > figures[f"{kind}_impostor_pass_rate"], kind
    assert figures["genuine_memory_model"]["dont_know_contacts_and_mail"] >= 0.25  # forgetful, as issue 8 asks
    assert "RAISED" in out  # the sign-in throttle was lifted, and the output says so


def test_self_service_counts_the_manager_only_when_watchword_can_ask_them() -> None:
    thin = replace(b.context(), meetings=(), chats=(), mail=(), groups=())  # contacts only: the manager is needed
    risk = assess_risk(thin, Policy())
    assert accuracy.self_service_reachable(thin, b.org(), Policy(), risk, "s", manager_askable=True)
    assert not accuracy.self_service_reachable(thin, b.org(), Policy(), risk, "s", manager_askable=False)
    reach = accuracy.TeamsReach(with_chat=frozenset({"u-grace"}), may_install=False)
    assert reach.can_ask("U-GRACE") and not reach.can_ask("u-tim")
    assert accuracy.TeamsReach(may_install=True).can_ask("u-tim", install=True)
    assert not accuracy.TeamsReach(may_install=True).can_ask("u-tim", install=False)
