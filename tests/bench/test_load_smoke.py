"""bench.load end to end, tiny: devtenant, Watchword and the echo agent start as processes, three agents start
verifications within a second, answer with the card's Submit at once, and reach decisions.

Not a measurement: whether the figures meet issue 11's targets is the bench's to report, not this test's to assert.
"""

from __future__ import annotations

import gc
import json

import pytest

from bench import load

KEYS = {"agents", "people", "errors", "refused_by_load", "start_cpu_ms", "first_question_p50_ms",
        "first_question_p99_ms", "answer_p99_ms", "kb_per_open_verification", "echo_p99_ms", "targets", "decisions",
        "resets", "outcomes", "quiet_start_cpu_ms", "loop_lag_p99_ms", "gc_full_collections", "gc_pause_s",
        "client_lag_p99_ms", "client_lag_max_ms"}


@pytest.mark.e2e  # starts devtenant, `app.py` (through bench.load --serve-app) and the echo agent
def test_three_agents_start_at_once_answer_with_the_card_and_reach_decisions(capsys: pytest.CaptureFixture[str]
                                                                             ) -> None:
    code = load.main(["--agents", "3", "--people", "200", "--ramp-s", "1", "--think-scale", "0",
                      "--careless-share", "0", "--calibrate", "1"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads([line for line in out.splitlines() if line.strip()][-1])
    assert KEYS <= figures.keys()
    assert figures["agents"] == 3 and figures["people"] == 200
    assert figures["errors"] == 0 and figures["refused_by_load"] == 0, figures["outcomes"]
    assert figures["questions_shown"] >= 2 and sum(figures["decisions"].values()) == figures["questions_shown"]
    # Every one decided, or left waiting for the manager: a person's sign-ins, read seconds after the start, may call
    # for their manager's word, and the bench's managers are never among its agents, so nobody answers.
    assert all(end in {"Verified", "Not verified"} or end.startswith("Waiting for ")
               for end in figures["decisions"]), figures["decisions"]
    assert figures["first_question_p50_ms"] <= figures["first_question_p99_ms"]
    assert figures["answer_p99_ms"] > 0 and figures["echo_p99_ms"] > 0 and figures["start_cpu_ms"] is not None
    assert figures["kb_per_open_verification"] is None  # three open at most: too few to say
    assert figures["loop_lag_p99_ms"] is not None  # Watchword's own metrics were read over the ramp
    assert figures["client_lag_max_ms"] is not None  # and the measuring client's own steadiness
    assert set(figures["targets"]) == {"refused_by_load", "start_cpu_ms", "first_question_p99_ms", "answer_p99_ms",
                                       "kb_per_open_verification"}
    assert "target" in out  # the report prints the targets beside the figures


def test_the_measuring_client_never_collects_while_the_agents_run() -> None:
    # its pauses would be counted in every latency it measures, and bunch the agents' answers into bursts
    assert gc.isenabled()
    with pytest.raises(RuntimeError), load.steady_client():
        assert not gc.isenabled()
        raise RuntimeError("an agent failed")
    assert gc.isenabled()


def test_a_busy_card_and_graph_refusals_count_as_refused_by_load_a_person_refusal_does_not() -> None:
    def notice(title: str, *lines: str) -> dict[str, object]:
        return {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": t} for t in (title, *lines)]}

    assert load.refused_by_load(notice("Watchword is busy — try again in a few seconds", "Too many at once."))
    assert load.refused_by_load(notice("Microsoft Graph didn't answer in time, try again in a minute"))
    assert load.refused_by_load(notice("I can't read their Microsoft 365 data right now", "Graph said no."))
    assert load.refused_by_load(notice("I can't search the directory right now"))
    assert not load.refused_by_load(notice("Can't verify Ada Lovelace", "Ada Lovelace is a privileged administrator."))
    assert not load.refused_by_load(notice("No one found"))


def test_graph_is_judged_on_its_own_time_not_on_the_latency_it_injected_on_purpose(tmp_path) -> None:
    lines = [f"2026-12-07 INFO devtenant.access: POST /v1.0/$batch 200 {ms} ms ({injected} ms injected)"
             for ms, injected in [(105.0, 100.0)] * 90 + [(1620.0, 1600.0)] * 10]
    log = tmp_path / "devtenant.log"
    log.write_text("\n".join(lines) + "\n")
    health = load.graph_health(log, 0, cpu_s=1.0, run_s=10.0, latency_ms=100.0)
    assert health["graph_p99_ms"] == 1620.0  # the sign-in logs' 1.5 s, as devtenant timed them
    assert health["graph_own_p99_ms"] == 20.0 and health["graph_fine"]
    log.write_text("\n".join(lines + ["2026-12-07 INFO devtenant.access: GET /v1.0/users 200 900.0 ms (100.0 ms "
                                      "injected)"] * 5) + "\n")
    assert not load.graph_health(log, 0, cpu_s=1.0, run_s=10.0, latency_ms=100.0)["graph_fine"]


def test_the_manager_asked_notice_is_read_on_the_way_to_the_question_not_taken_as_the_turns_answer() -> None:
    def notice(title: str) -> dict[str, object]:
        body = [{"type": "TextBlock", "text": title}, {"type": "TextBlock", "text": "."}]
        return {"attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                 "content": {"type": "AdaptiveCard", "body": body}}]}

    for passing in ("I've asked Cameron Byrne too", "I've asked Åse Jakobsen to confirm it's you",
                    "I'm asking Cameron Byrne too", "I'm asking Åse Jakobsen to confirm it's you",
                    "I couldn't ask Cameron Byrne", "Previous verification cancelled"):
        assert not load.first_card(notice(passing)) and not load.next_card_after_answer(notice(passing))
    assert load.first_card(notice("I can't search the directory right now"))
    assert load.next_card_after_answer(notice("Verification expired"))
