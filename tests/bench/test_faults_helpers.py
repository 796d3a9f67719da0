"""bench.faults counts what the issue asks; its arithmetic checked here (the run itself is `make bench`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.faults import Attempt, over_limit

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
