"""Verification sessions: scores, outcomes and transcripts, and no answers anywhere."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from store import AuditEvent, AuditFilter, SessionClosedError, Store
from tests.store.support import FakeClock
from verification import MatchResult, Outcome, TranscriptEntry
from verification.session import FACTOR_QUESTION_ID

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
USER = "00000000-0000-4000-8000-000000000001"
AGENT = "00000000-0000-4000-8000-00000000000a"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _answered(kind: str, source: str, bits: float, result: MatchResult) -> TranscriptEntry:
    return TranscriptEntry("q", kind, source, "free_recall", bits, bits, result.value, 1, NOW, NOW)


def _factor(kind: str, result: str) -> TranscriptEntry:
    return TranscriptEntry(FACTOR_QUESTION_ID, kind, "teams", "factor", 0.0, 0.0, result, 1, NOW, NOW)


OTHER_AGENTS = ("00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2")


async def _open(store: Store, store_clock: FakeClock, **overrides: object):
    values: dict = {
        "tenant_id": TENANT,
        "target_user_id": USER,
        "agent_id": AGENT,
        "required_bits": 20,
        "expires_at": store_clock.now + timedelta(minutes=10),
        "risk_summary": {"level": "low", "signals": []},
        "policy_snapshot": {"required_bits": 20, "max_questions": 6},
    } | overrides
    return (await store.sessions.admit(**values)).session


async def test_new_session_is_in_progress_with_its_policy_and_risk(store: Store, store_clock: FakeClock) -> None:
    created = await _open(store, store_clock)

    loaded = await store.sessions.get(created.session_id)

    assert loaded == created
    assert loaded.outcome == Outcome.IN_PROGRESS and loaded.is_open
    assert (loaded.required_bits, loaded.earned_bits) == (20, 0)
    assert loaded.created_at == store_clock.now and loaded.ended_at is None
    assert loaded.risk_summary == {"level": "low", "signals": []}
    assert loaded.policy_snapshot["max_questions"] == 6


async def test_self_service_session_has_no_agent(store: Store, store_clock: FakeClock) -> None:
    created = await _open(store, store_clock, agent_id=None)

    assert (await store.sessions.get(created.session_id)).agent_id is None  # type: ignore[union-attr]


async def test_transcript_keeps_the_order_and_the_running_score(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    await store.sessions.add_entry(session.session_id, _answered("meeting_partner", "calendar", 8, MatchResult.CORRECT),
                                   earned_bits=8)
    store_clock.advance(seconds=30)
    await store.sessions.add_entry(session.session_id, _answered("manager", "hierarchy", 3.4, MatchResult.PARTIAL),
                                   earned_bits=11.7)

    transcript = await store.sessions.transcript(session.session_id)

    assert [(e.position, e.kind, e.source, e.bits, e.result) for e in transcript] == [
        (1, "meeting_partner", "calendar", 8, MatchResult.CORRECT),
        (2, "manager", "hierarchy", 3, MatchResult.PARTIAL),
    ]
    assert transcript[1].at == store_clock.now
    assert (await store.sessions.get(session.session_id)).earned_bits == 11  # type: ignore[union-attr]


async def test_a_factor_confirmed_or_denied_is_kept_as_correct_or_wrong(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    for kind, result in (("manager.attestation", "confirmed"), ("manager.attestation", "denied"),
                         ("possession.code", "skipped")):
        await store.sessions.add_entry(session.session_id, _factor(kind, result), earned_bits=0)

    transcript = await store.sessions.transcript(session.session_id)

    assert [e.result for e in transcript] == [MatchResult.CORRECT, MatchResult.WRONG, MatchResult.SKIPPED]


async def test_transcript_table_has_no_place_for_an_answer(store: Store) -> None:
    async with store.engine.connect() as conn:
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("transcript_entries")})

    # turn_key: a hash of the message that recorded it and the entry's index (a redelivery records nothing twice)
    assert columns == {"id", "session_id", "position", "kind", "source", "bits", "result", "at", "turn_key"}


async def test_concurrent_entries_get_distinct_positions(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)

    await asyncio.gather(*(
        store.sessions.add_entry(session.session_id, _answered(f"k{i}", "s", 1, MatchResult.WRONG), earned_bits=0)
        for i in range(5)
    ))

    assert [e.position for e in await store.sessions.transcript(session.session_id)] == [1, 2, 3, 4, 5]


async def test_finishing_records_the_outcome_and_end_time(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    store_clock.advance(minutes=2)

    done = await store.sessions.finish(session.session_id, Outcome.VERIFIED, earned_bits=24)

    assert (done.outcome, done.earned_bits, done.ended_at, done.is_open) == (
        Outcome.VERIFIED, 24, store_clock.now, False,
    )


async def test_finished_session_cannot_finish_again(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    await store.sessions.finish(session.session_id, Outcome.CANCELLED)

    with pytest.raises(SessionClosedError):
        await store.sessions.finish(session.session_id, Outcome.VERIFIED)
    assert (await store.sessions.get(session.session_id)).outcome == Outcome.CANCELLED  # type: ignore[union-attr]


async def test_concurrent_finishes_have_exactly_one_winner(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)

    results = await asyncio.gather(
        store.sessions.finish(session.session_id, Outcome.VERIFIED),
        store.sessions.finish(session.session_id, Outcome.TIMED_OUT),
        store.sessions.finish(session.session_id, Outcome.CANCELLED),
        return_exceptions=True,
    )

    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, SessionClosedError) for r in results if isinstance(r, BaseException))
    assert (await store.sessions.get(session.session_id)).outcome == winners[0].outcome  # type: ignore[union-attr]


async def test_entry_on_a_closed_or_unknown_session_is_refused(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    await store.sessions.finish(session.session_id, Outcome.NOT_VERIFIED)

    for session_id in (session.session_id, "00000000-0000-4000-8000-0000000000ff"):
        with pytest.raises(SessionClosedError):
            await store.sessions.add_entry(session_id, _answered("k", "s", 1, MatchResult.CORRECT), earned_bits=1)


async def test_in_progress_is_not_a_final_outcome(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    with pytest.raises(ValueError):
        await store.sessions.finish(session.session_id, Outcome.IN_PROGRESS)


async def test_overdue_sessions_time_out(store: Store, store_clock: FakeClock) -> None:
    overdue = await _open(store, store_clock, expires_at=store_clock.now + timedelta(minutes=5))
    # Each another agent's: one agent starting again cancels their own session left open (test_lockouts.py).
    still_running = await _open(store, store_clock, expires_at=store_clock.now + timedelta(minutes=30),
                                agent_id=OTHER_AGENTS[0])
    already_done = await _open(store, store_clock, expires_at=store_clock.now + timedelta(minutes=5),
                               agent_id=OTHER_AGENTS[1])
    await store.sessions.finish(already_done.session_id, Outcome.VERIFIED)
    store_clock.advance(minutes=10)

    assert await store.sessions.expire_overdue() == [overdue.session_id]

    outcomes = [(await store.sessions.get(s.session_id)).outcome for s in (overdue, still_running, already_done)]  # type: ignore[union-attr]
    assert outcomes == [Outcome.TIMED_OUT, Outcome.IN_PROGRESS, Outcome.VERIFIED]


@pytest.mark.parametrize("field", ["risk_summary", "policy_snapshot"])
async def test_secret_looking_keys_in_session_json_are_refused(
    store: Store, store_clock: FakeClock, field: str
) -> None:
    with pytest.raises(ValueError, match="looks like a secret"):
        await _open(store, store_clock, **{field: {"signals": [{"sessionToken": "x"}]}})


async def test_sessions_for_a_user_are_listed_newest_first(store: Store, store_clock: FakeClock) -> None:
    first = await _open(store, store_clock)
    store_clock.advance(minutes=1)
    second = await _open(store, store_clock)
    await _open(store, store_clock, target_user_id="00000000-0000-4000-8000-000000000002")

    listed = await store.sessions.list_for_user(TENANT, USER)

    assert [s.session_id for s in listed] == [second.session_id, first.session_id]


async def test_every_outcome_value_round_trips(store: Store, store_clock: FakeClock) -> None:
    for outcome in Outcome:
        if outcome == Outcome.IN_PROGRESS:
            continue
        session = await _open(store, store_clock)
        assert (await store.sessions.finish(session.session_id, outcome)).outcome == outcome


async def test_naive_datetimes_are_refused(store: Store, store_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await _open(store, store_clock, expires_at=store_clock.now.replace(tzinfo=None))


async def test_a_sealed_plan_is_kept_while_the_session_is_open_and_dropped_when_it_ends(
    store: Store, store_clock: FakeClock
) -> None:
    ends = await _open(store, store_clock, sealed_plan="gAAAA-token-1")
    times_out = await _open(store, store_clock, sealed_plan="gAAAA-token-2",
                            expires_at=store_clock.now + timedelta(minutes=5), agent_id=OTHER_AGENTS[0])
    runs_on = await _open(store, store_clock, sealed_plan="gAAAA-token-3", agent_id=OTHER_AGENTS[1])
    assert await store.sessions.sealed_plan(ends.session_id) == "gAAAA-token-1"

    await store.sessions.finish(ends.session_id, Outcome.VERIFIED)
    store_clock.advance(minutes=6)
    await store.sessions.expire_overdue()

    assert await store.sessions.sealed_plan(ends.session_id) is None
    assert await store.sessions.sealed_plan(times_out.session_id) is None
    assert await store.sessions.sealed_plan(runs_on.session_id) == "gAAAA-token-3"


async def test_a_session_without_a_plan_has_none(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    assert await store.sessions.sealed_plan(session.session_id) is None


async def test_an_entry_and_its_audit_row_are_written_together(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    event = AuditEvent(action="verification.answer", outcome="recorded", actor="teams:agent", subject=USER,
                       tenant_id=TENANT, details={"session_id": session.session_id, "question": 1})

    answered = _answered("k", "s", 7, MatchResult.CORRECT)
    entry = await store.sessions.add_entry(session.session_id, answered, earned_bits=7, audit=event)

    assert (entry.position, entry.bits) == (1, 7)
    [row] = (await store.audit.query(AuditFilter(action="verification.answer"))).entries
    assert (row.subject, row.details["question"]) == (USER, 1)
    assert (await store.audit.verify_chain()).ok


async def test_no_audit_row_is_written_for_an_entry_refused_on_a_closed_session(
    store: Store, store_clock: FakeClock
) -> None:
    session = await _open(store, store_clock)
    await store.sessions.finish(session.session_id, Outcome.CANCELLED)
    event = AuditEvent(action="verification.answer", outcome="recorded", actor="teams:agent")

    with pytest.raises(SessionClosedError):
        await store.sessions.add_entry(session.session_id, _answered("k", "s", 7, MatchResult.CORRECT), earned_bits=7,
                                       audit=event)

    assert (await store.audit.query(AuditFilter(action="verification.answer"))).entries == ()


async def test_the_outcome_its_audit_row_and_the_dropped_plan_are_written_together(
    store: Store, store_clock: FakeClock
) -> None:
    session = await _open(store, store_clock, sealed_plan="sealed-plan-token")
    decided = AuditEvent(action="verification.decided", outcome="verified", actor="teams:agent", subject=USER,
                         tenant_id=TENANT, details={"session_id": session.session_id})

    done = await store.sessions.finish(session.session_id, Outcome.VERIFIED, audit=decided)

    assert done.outcome == Outcome.VERIFIED and done.risk_summary == {"level": "low", "signals": []}
    assert await store.sessions.sealed_plan(session.session_id) is None
    [row] = (await store.audit.query(AuditFilter(action="verification.decided"))).entries
    assert row.details["session_id"] == session.session_id and (await store.audit.verify_chain()).ok


async def test_a_refused_finish_writes_no_audit_row(store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    await store.sessions.finish(session.session_id, Outcome.CANCELLED)
    decided = AuditEvent(action="verification.decided", outcome="verified", actor="teams:agent")

    with pytest.raises(SessionClosedError):
        await store.sessions.finish(session.session_id, Outcome.VERIFIED, audit=decided)

    assert (await store.audit.query(AuditFilter(action="verification.decided"))).entries == ()


async def test_a_send_is_audited_whether_or_not_its_session_ended_meanwhile_and_says_which(
        store: Store, store_clock: FakeClock) -> None:
    """The code shown in the person's Teams is audited, and whether the session is still open read, in one unit of
    work (bot/proactive.py show_code): a session that ended while the code was on its way has its card closed."""
    still = await _open(store, store_clock)
    ended = await _open(store, store_clock, target_user_id=OTHER_AGENTS[0])
    await store.sessions.finish(ended.session_id, Outcome.CANCELLED)

    def asked(session_id: str) -> AuditEvent:
        return AuditEvent(action="out_of_band.asked", outcome="sent", actor=f"teams:{AGENT}", subject=USER,
                          tenant_id=TENANT, details={"session_id": session_id, "factor": "possession"})

    assert await store.sessions.audit_and_still_open(still.session_id, asked(still.session_id)) is True
    assert await store.sessions.audit_and_still_open(ended.session_id, asked(ended.session_id)) is False
    rows = (await store.audit.query(AuditFilter(action="out_of_band.asked"))).entries
    assert sorted(row.details["session_id"] for row in rows) == sorted([still.session_id, ended.session_id])
    assert (await store.audit.verify_chain()).ok


async def test_the_late_sign_in_risk_is_kept_for_any_instance_until_the_session_ends(
        store: Store, store_clock: FakeClock) -> None:
    session = await _open(store, store_clock)
    assert await store.sessions.final_risk(session.session_id) is None  # the sign-ins have not arrived
    risk = {"level": "high", "extra_bits_required": 0.0, "block": True, "signals": []}

    assert await store.sessions.keep_final_risk(session.session_id, risk)
    assert await store.sessions.final_risk(session.session_id) == risk
    with pytest.raises(ValueError):
        await store.sessions.keep_final_risk(session.session_id, {"password": "not in a row"})

    await store.sessions.finish(session.session_id, Outcome.BLOCKED_BY_RISK)
    assert not await store.sessions.keep_final_risk(session.session_id, {**risk, "level": "none"})
