"""bench.faults counts what the issue asks; its arithmetic checked here (the run itself is `make bench`)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.faults import Attempt, Bench, Trail, busy_answer, over_limit, replies, reset_again_after, write_trails

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def attempt(n: int, *, ended_after_s: float | None, outcome: str, plain: bool) -> Attempt:
    start = T0 + timedelta(seconds=n)
    end = start + timedelta(seconds=ended_after_s) if ended_after_s is not None else None
    return Attempt(f"s{n}", start, end, outcome, plain)


def test_a_session_admitted_while_the_limit_was_reached_and_verified_by_questions_beats_the_limit() -> None:
    # six at once: three open when the fourth is admitted, which then verifies by questions alone
    burst = [attempt(n, ended_after_s=60, outcome="verified", plain=True) for n in range(6)]
    assert over_limit(burst, 3) == 3


def test_sessions_after_the_limit_that_needed_a_strong_factor_do_not() -> None:
    burst = [attempt(n, ended_after_s=60, outcome="verified", plain=n < 3) for n in range(6)]
    assert over_limit(burst, 3) == 0


def test_verified_sessions_that_ended_before_the_next_began_do_not_count_against_it() -> None:
    # one after another, each over before the next: successful verifications are not attempts against the person
    serial = [attempt(n * 100, ended_after_s=10, outcome="verified", plain=True) for n in range(6)]
    assert over_limit(serial, 3) == 0
    failed = [attempt(n * 100, ended_after_s=10, outcome="not_verified", plain=False) for n in range(3)]
    assert over_limit([*failed, attempt(400, ended_after_s=10, outcome="verified", plain=True)], 3) == 1


def test_the_trail_of_a_stuck_verification_is_kept_with_its_kills_and_the_log_lines_naming_its_activities(
        tmp_path: Path) -> None:
    bench = Bench(argparse.Namespace(seed=1, instances=2), tmp_path)
    stuck, fine = Trail("Agent A", "stuck@example.test", stuck="no reply"), Trail("Agent B", "fine@example.test")
    bench.trails += [stuck, fine]
    bench.note(stuck, "sent", id="act-1")
    stuck.activity_ids.append("act-1")
    bench.kills.append({"t": bench.now(), "what": "killed", "instance": 1, "aimed": False})
    bench.note(fine, "sent", id="act-2")
    log = tmp_path / "instance.log"
    log.write_text('{"message": "activity act-1: the previous turn did not finish"}\n{"message": "act-2"}\n')
    bench.logs.append(log)

    write_trails(bench, str(tmp_path / "trail.jsonl"))

    [kept] = [json.loads(line) for line in (tmp_path / "trail.jsonl").read_text().splitlines()]
    assert kept["person"] == "stuck@example.test" and kept["stuck"] == "no reply"
    assert [e["what"] for e in kept["events"]] == ["sent", "killed"]
    assert kept["log_lines"] == ['{"message": "activity act-1: the previous turn did not finish"}']


def test_a_clicked_cards_answer_saying_watchword_is_still_working_is_sent_again_and_others_are_not() -> None:
    def answer(value: str) -> bytes:
        return json.dumps({"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                           "value": value}).encode()

    assert busy_answer(answer("I'm still working on your previous message. Nothing was done with this one: "
                              "send it again in a moment."))
    assert busy_answer(answer("Watchword is busy — try again in a few seconds. Nothing was done."))
    assert not busy_answer(answer("Already handled."))
    assert not busy_answer(b"") and not busy_answer(b"not json")


def test_the_agent_reads_every_card_of_a_turn_and_acts_on_the_last() -> None:
    from bench.turns import Connector, Received

    def card(title: str) -> dict[str, object]:
        return {"attachments": [{"content": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": title}]}}]}

    connector = Connector()
    connector.inbox["chat"] = [Received(0.0, "POST", card("Question 3 of at most 8")),  # the turn before's
                               Received(1.0, "POST", card("I've asked Ada Lovelace too")),
                               Received(1.1, "PUT", card("Question 3 of at most 8")),
                               Received(1.2, "POST", card("Question 1 of at most 8"))]

    turn = replies(connector, "chat", 1, lambda activity: True)
    assert [c["body"][0]["text"] for c in turn] == ["I've asked Ada Lovelace too", "Question 1 of at most 8"]
    assert replies(connector, "chat", 4, lambda activity: True) == []


def test_an_agent_told_to_reset_again_after_a_time_waits_until_the_minute_after_it() -> None:
    notice = {"body": [{"type": "TextBlock", "text": "A reset of this password has not finished"},
                       {"type": "TextBlock", "text": "A reset started earlier and has not reported back. If no "
                                                     "password appears, reset again after 02:13 UTC: the password..."}]}
    now = datetime(2026, 12, 7, 2, 10, 30, tzinfo=UTC)
    assert reset_again_after([notice, {"body": []}], now) == datetime(2026, 12, 7, 2, 14, tzinfo=UTC)
    assert reset_again_after([notice], datetime(2026, 12, 7, 23, 59, tzinfo=UTC)).day == 8  # type: ignore[union-attr]
    assert reset_again_after([{"body": [{"type": "TextBlock", "text": "Reset this password?"}]}], now) is None
