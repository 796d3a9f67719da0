"""The password reset's record on the session row: written ahead, compare-and-set, claims that expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from store import AuditEvent, AuditFilter, Store
from tests.store.support import FakeClock, StoreTarget
from verification import Outcome
from verification.reset import CLAIM_EXPIRY, DEAD_OWNER_TAKEOVER, RESET_WINDOW, ResetClaim, ResetOutcome

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
USER = "00000000-0000-4000-8000-000000000001"
AGENT = "00000000-0000-4000-8000-00000000000a"
OTHER_AGENT = "00000000-0000-4000-8000-00000000000b"
ACTOR = f"teams:{AGENT}"


async def _verified(store: Store, clock: FakeClock, *, agent: str | None = AGENT,
                    outcome: Outcome = Outcome.VERIFIED) -> str:
    session = (await store.sessions.admit(tenant_id=TENANT, target_user_id=USER, agent_id=agent, required_bits=20,
                                          expires_at=clock.now + timedelta(minutes=10))).session
    await store.sessions.finish(session.session_id, outcome)
    return session.session_id


def _outcome_audit(session_id: str, outcome: str, attempt: int) -> AuditEvent:
    return AuditEvent(action="password_reset", outcome=outcome, actor=ACTOR, subject=USER, tenant_id=TENANT,
                      details={"session_id": session_id, "attempt": attempt})


async def _reset_rows(store: Store) -> list[tuple[str, int | None]]:
    entries = (await store.audit.query(AuditFilter(action="password_reset"))).entries
    return [(e.outcome, e.details.get("attempt")) for e in reversed(entries)]


async def test_the_intent_is_recorded_before_the_reset_and_the_outcome_after(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    claimed = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    assert claimed.claim is ResetClaim.CLAIMED and claimed.attempt == 1
    assert await _reset_rows(store) == [("started", 1)]

    assert await store.sessions.settle_reset(session_id, 1, ResetOutcome.DONE,
                                             audit=_outcome_audit(session_id, "success", 1))
    assert await _reset_rows(store) == [("started", 1), ("success", 1)]
    again = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    assert again.claim is ResetClaim.DONE and again.at == store_clock.now


async def test_a_second_click_while_resetting_is_busy_until_the_claim_expires(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    busy = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    assert busy.claim is ResetClaim.BUSY and busy.at == store_clock.now + CLAIM_EXPIRY


async def test_a_claim_left_by_a_killed_process_expires_and_is_recorded_as_unknown(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)  # ...and the process dies
    store_clock.advance(seconds=CLAIM_EXPIRY.total_seconds())

    retried = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)

    assert retried.claim is ResetClaim.CLAIMED and retried.attempt == 2
    assert await _reset_rows(store) == [("started", 1), ("unknown", 1), ("started", 2)]


async def test_an_unknown_outcome_can_be_reset_again_with_a_new_attempt(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    await store.sessions.settle_reset(session_id, 1, ResetOutcome.UNKNOWN,
                                      audit=_outcome_audit(session_id, "unknown", 1))

    assert (await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)).attempt == 2


async def test_a_password_that_never_reached_the_agent_turns_a_done_reset_into_unknown(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    await store.sessions.settle_reset(session_id, 1, ResetOutcome.DONE, audit=_outcome_audit(session_id, "success", 1))
    await store.sessions.settle_reset(session_id, 1, ResetOutcome.UNKNOWN,
                                      audit=_outcome_audit(session_id, "not_delivered", 1))

    assert (await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)).claim is ResetClaim.CLAIMED


async def test_a_late_outcome_of_an_expired_claim_is_audited_but_does_not_overwrite_the_new_attempt(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    store_clock.advance(seconds=CLAIM_EXPIRY.total_seconds())
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)  # attempt 2 is resetting

    moved = await store.sessions.settle_reset(session_id, 1, ResetOutcome.DONE,
                                              audit=_outcome_audit(session_id, "success", 1))

    assert moved is False
    assert (await store.sessions.get(session_id)).reset_state == "resetting"  # type: ignore[union-attr]
    assert ("superseded", 1) in await _reset_rows(store)  # its own outcome kept in recorded_as


async def test_only_the_verifying_agent_may_reset_and_only_a_verified_session(
        store: Store, store_clock: FakeClock) -> None:
    verified = await _verified(store, store_clock)
    failed = await _verified(store, store_clock, outcome=Outcome.NOT_VERIFIED)

    assert (await store.sessions.claim_reset(verified, by=OTHER_AGENT, actor=ACTOR)).claim is ResetClaim.NOT_ALLOWED
    assert (await store.sessions.claim_reset(failed, by=AGENT, actor=ACTOR)).claim is ResetClaim.NOT_ALLOWED
    assert (await store.sessions.claim_reset(USER, by=AGENT, actor=ACTOR)).claim is ResetClaim.NOT_ALLOWED


async def test_self_service_the_person_themselves_may_reset(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock, agent=None)
    assert (await store.sessions.claim_reset(session_id, by=USER, actor=f"teams:{USER}")).claim is ResetClaim.CLAIMED


async def test_a_verification_too_old_to_reset_from_is_expired(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    store_clock.advance(seconds=RESET_WINDOW.total_seconds())
    assert (await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)).claim is ResetClaim.EXPIRED


async def test_not_me_blocks_any_further_reset(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    assert await store.sessions.block_reset(session_id)
    assert (await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)).claim is ResetClaim.BLOCKED


async def test_a_reset_already_done_is_not_undone_by_not_me(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    await store.sessions.settle_reset(session_id, 1, ResetOutcome.DONE, audit=_outcome_audit(session_id, "success", 1))
    assert await store.sessions.block_reset(session_id) is False
    assert (await store.sessions.get(session_id)).reset_state == "done"  # type: ignore[union-attr]


async def test_six_simultaneous_clicks_on_two_instances_claim_one_reset(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    second = await store_target.open(store_clock)
    try:
        results = await asyncio.gather(*(
            (store if i % 2 else second).sessions.claim_reset(session_id, by=AGENT, actor=ACTOR) for i in range(6)))
    finally:
        await second.close()
    assert sorted(r.claim.value for r in results) == ["busy"] * 5 + ["claimed"]


async def test_watchwords_own_resets_are_listed_for_the_risk_check(store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    started = store_clock.now
    store_clock.advance(seconds=2)
    await store.sessions.settle_reset(session_id, 1, ResetOutcome.DONE, audit=_outcome_audit(session_id, "success", 1))

    assert await store.sessions.own_resets(TENANT, USER, since=started - timedelta(hours=24)) == [
        (started, store_clock.now)]


async def test_an_expired_unsettled_claim_is_recorded_unknown_by_one_sweep_only(
        store: Store, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)  # ...and the process dies
    assert await store.sessions.settle_abandoned_resets() == []  # not expired yet: it may still be running
    store_clock.advance(seconds=CLAIM_EXPIRY.total_seconds())

    swept = await asyncio.gather(*(store.sessions.settle_abandoned_resets() for _ in range(3)))

    assert sorted(len(found) for found in swept) == [0, 0, 1]
    [abandoned] = [reset for found in swept for reset in found]
    assert (abandoned.session_id, abandoned.target_user_id, abandoned.attempt) == (session_id, USER, 1)
    assert await _reset_rows(store) == [("started", 1), ("unknown", 1)]
    retried = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    assert retried.claim is ResetClaim.CLAIMED and retried.attempt == 2
    assert await _reset_rows(store) == [("started", 1), ("unknown", 1), ("started", 2)]


# --- a dead process's claim taken over on its heartbeat; fencing against a process only stalled ----------------
async def test_a_dead_processs_claim_is_taken_over_once_its_heartbeat_lapsed_not_after_the_expiry(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    """Killed during a reset: the agent's next try waits DEAD_OWNER_TAKEOVER after the fence, not CLAIM_EXPIRY."""
    session_id = await _verified(store, store_clock)
    killed = await store_target.open(store_clock)  # the instance that claims, then is killed
    try:
        await killed.turns.beat()
        claimed = await killed.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        assert claimed.claim is ResetClaim.CLAIMED
        assert await killed.sessions.fence_reset(session_id, claimed.attempt)  # ...it sent the PATCH, and died
    finally:
        await killed.close()
    store_clock.advance(seconds=10)  # its heartbeat (good for 6 s) has lapsed, but a PATCH may still be in flight
    busy = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    assert busy.claim is ResetClaim.BUSY and busy.at == store_clock.now - timedelta(seconds=10) + DEAD_OWNER_TAKEOVER

    store_clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds() - 10)
    retried = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)

    assert retried.claim is ResetClaim.CLAIMED and retried.attempt == 2
    assert await _reset_rows(store) == [("started", 1), ("refused_busy", 1), ("unknown", 1), ("started", 2)]
    unknown = (await store.audit.query(AuditFilter(action="password_reset", outcome="unknown"))).entries[0]
    assert unknown.details["reason"] == "owner_dead"
    assert (await store.sessions.get(session_id)).reset_owner == store.turns.owner  # type: ignore[union-attr]


async def test_a_live_processs_claim_is_not_taken_over_before_it_expires(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    slow = await store_target.open(store_clock)  # resetting slowly, but beating
    try:
        await slow.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        for _ in range(int(CLAIM_EXPIRY.total_seconds() // 2) - 1):
            await slow.turns.beat()
            store_clock.advance(seconds=2)
        busy = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        assert busy.claim is ResetClaim.BUSY
    finally:
        await slow.close()


async def test_a_stalled_process_taken_for_dead_sends_no_patch_and_cannot_record_over_the_new_owner(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    """Fencing: a process stalled past its heartbeat is taken for dead and its claim taken over; when it resumes,
    its fence fails (no second PATCH) and its late outcome is audited as superseded, leaving the new one's alone."""
    session_id = await _verified(store, store_clock)
    stalled = await store_target.open(store_clock)
    try:
        await stalled.turns.beat()
        first = await stalled.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        store_clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds())  # ...its event loop stalls
        second = await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        assert second.claim is ResetClaim.CLAIMED and second.attempt == 2

        assert await stalled.sessions.fence_reset(session_id, first.attempt) is False  # resumed: no PATCH
        assert await stalled.sessions.holds_reset(session_id, first.attempt) is False  # nor its card
        assert await stalled.sessions.settle_reset(session_id, first.attempt, ResetOutcome.DONE,
                                                   audit=_outcome_audit(session_id, "success", 1)) is False
    finally:
        await stalled.close()
    assert await store.sessions.fence_reset(session_id, second.attempt)
    assert await store.sessions.settle_reset(session_id, 2, ResetOutcome.DONE,
                                             audit=_outcome_audit(session_id, "success", 2))
    assert await _reset_rows(store) == [("started", 1), ("unknown", 1), ("started", 2), ("superseded", 1),
                                        ("success", 2)]
    superseded = (await store.audit.query(AuditFilter(action="password_reset", outcome="superseded"))).entries[0]
    assert superseded.details["recorded_as"] == "success"
    assert (await store.sessions.get(session_id)).reset_state == "done"  # type: ignore[union-attr]


async def test_a_fence_just_before_a_take_over_keeps_the_claim(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    """The take-over and the fence race: the fence moves the claim's time, so a take-over judged on the old one
    fails its compare-and-set (and a fresh fence is DEAD_OWNER_TAKEOVER away from being taken over again)."""
    session_id = await _verified(store, store_clock)
    stalled = await store_target.open(store_clock)
    try:
        await stalled.turns.beat()
        first = await stalled.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
        store_clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds())
        assert await stalled.sessions.fence_reset(session_id, first.attempt)  # it resumed first: it may PATCH
    finally:
        await stalled.close()
    assert (await store.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)).claim is ResetClaim.BUSY


async def test_a_dead_processs_claim_is_swept_as_unknown_once_taken_over_is_allowed(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    session_id = await _verified(store, store_clock)
    killed = await store_target.open(store_clock)
    try:
        await killed.turns.beat()
        await killed.sessions.claim_reset(session_id, by=AGENT, actor=ACTOR)
    finally:
        await killed.close()
    store_clock.advance(seconds=DEAD_OWNER_TAKEOVER.total_seconds() - 1)
    assert await store.sessions.settle_abandoned_resets() == []
    store_clock.advance(seconds=1)
    [abandoned] = await store.sessions.settle_abandoned_resets()
    assert abandoned.session_id == session_id
    unknown = (await store.audit.query(AuditFilter(action="password_reset", outcome="unknown"))).entries[0]
    assert unknown.details["reason"] == "owner_dead"
