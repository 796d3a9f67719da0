"""Fair limits: which verifications count against a person, counted exactly under concurrency, and lockouts."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from store import AuditEvent, AuditFilter, LockoutRule, Store
from tests.store.sql import scalar
from tests.store.support import FakeClock, StoreTarget
from verification import Outcome

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
OTHER_TENANT = "9e8d7c6b-5a49-4838-a271-605f4e3d2c1b"
USER = "00000000-0000-4000-8000-000000000001"
OTHER_USER = "00000000-0000-4000-8000-000000000002"
AGENT = "00000000-0000-4000-8000-0000000000aa"
RULE = LockoutRule(max_failed=3, duration=timedelta(hours=2), actor=f"teams:{AGENT}")


def _agent(n: int) -> str:
    """The n-th helpdesk agent (several verifying one person, each their own session)."""
    return f"00000000-0000-4000-8000-0000000001{n:02d}"


async def _admit(store: Store, clock: FakeClock, *, tenant: str = TENANT, user: str = USER,
                 agent: str = AGENT, chat: tuple[str, str] | None = None) -> tuple[str, int]:
    admission = await store.sessions.admit(tenant_id=tenant, target_user_id=user, agent_id=agent, required_bits=20,
                                           expires_at=clock.now + timedelta(minutes=10), chat=chat)
    return admission.session.session_id, admission.counted_before


async def _attempt(store: Store, clock: FakeClock, outcome: Outcome, *, user: str = USER,
                   tenant: str = TENANT, rule: LockoutRule | None = None) -> str:
    session_id, _ = await _admit(store, clock, tenant=tenant, user=user)
    await store.sessions.finish(session_id, outcome, lockout=rule)
    return session_id


async def test_failed_abandoned_and_open_verifications_count_against_the_person(
        store: Store, store_clock: FakeClock) -> None:
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)
    await _attempt(store, store_clock, Outcome.TIMED_OUT)
    await _admit(store, store_clock)  # still open: it may yet fail

    assert await store.lockouts.counted_attempts(TENANT, USER) == 3


async def test_verified_cancelled_and_watchword_ended_verifications_do_not_count(
        store: Store, store_clock: FakeClock) -> None:
    for outcome in (Outcome.VERIFIED, Outcome.CANCELLED, Outcome.NOT_ENOUGH_QUESTIONS,
                    Outcome.PRIVILEGED, Outcome.LOCKED_OUT, Outcome.BLOCKED_BY_RISK):
        await _attempt(store, store_clock, outcome)

    assert await store.lockouts.counted_attempts(TENANT, USER) == 0
    assert (await _admit(store, store_clock))[1] == 0


async def test_attempts_older_than_24h_do_not_count(store: Store, store_clock: FakeClock) -> None:
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)
    store_clock.advance(hours=23)
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)

    store_clock.advance(hours=1)  # the first attempt is now exactly 24 hours old
    assert await store.lockouts.counted_attempts(TENANT, USER) == 1
    store_clock.advance(hours=23)
    assert await store.lockouts.counted_attempts(TENANT, USER) == 0


async def test_attempts_are_counted_per_tenant_and_user(store: Store, store_clock: FakeClock) -> None:
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED, user=OTHER_USER)
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED, tenant=OTHER_TENANT)

    assert await store.lockouts.counted_attempts(TENANT, USER) == 1


async def test_each_admission_sees_the_attempts_before_it(store: Store, store_clock: FakeClock) -> None:
    counts = [(await _admit(store, store_clock, agent=_agent(n)))[1] for n in range(4)]
    assert counts == [0, 1, 2, 3]


async def _six_at_once(stores: list[Store], clock: FakeClock) -> list[int]:
    results = await asyncio.gather(*(_admit(stores[i % len(stores)], clock, agent=_agent(i)) for i in range(6)))
    return sorted(count for _, count in results)


async def test_six_simultaneous_admissions_of_one_person_each_see_a_different_count(
        store: Store, store_clock: FakeClock) -> None:
    assert await _six_at_once([store], store_clock) == [0, 1, 2, 3, 4, 5]


async def test_six_simultaneous_admissions_on_two_instances_each_see_a_different_count(
        store: Store, store_target: StoreTarget, store_clock: FakeClock) -> None:
    second = await store_target.open(store_clock)  # another process on the same database
    try:
        assert await _six_at_once([store, second], store_clock) == [0, 1, 2, 3, 4, 5]
    finally:
        await second.close()


class TickingClock(FakeClock):
    """Moves on a millisecond at every reading, as a real clock does between two processes' admissions."""

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


async def test_admissions_are_stamped_in_the_order_they_were_counted_across_instances(
        store_target: StoreTarget) -> None:
    clock = TickingClock()
    stores = [await store_target.open(clock), await store_target.open(clock)]
    try:
        results = await asyncio.gather(*(_admit(stores[i % 2], clock, agent=_agent(i)) for i in range(6)))
        created = {s.session_id: s.created_at
                   for s in [await stores[0].sessions.get(session_id) for session_id, _ in results] if s}
    finally:
        for opened in stores:
            await opened.close()
    # the later a session was stamped, the more attempts it saw before it: an auditor's order is the limit's order
    assert [count for _, count in sorted(results, key=lambda r: created[r[0]])] == [0, 1, 2, 3, 4, 5]


async def test_an_agent_starting_again_cancels_their_own_session_left_open_so_a_killed_verify_costs_nothing(
        store: Store, store_clock: FakeClock) -> None:
    """A `verify` turn killed after its admission leaves its session open, unreachable (the chat's state was never
    saved): the same agent's next `verify` of the person in that chat cancels it (not counted), as a new
    verification in a chat cancels the one before it there. Another agent's, or this agent's in another chat, stand."""
    chat, other_chat = ("msteams", "a:agent-chat"), ("msteams", "19:group@thread.v2")
    left_open, _ = await _admit(store, store_clock, chat=chat)  # ...and the turn is killed
    other_agents, _ = await _admit(store, store_clock, agent=_agent(1), chat=chat)
    elsewhere, _ = await _admit(store, store_clock, chat=other_chat)

    again, counted = await _admit(store, store_clock, chat=chat)

    assert counted == 2  # the other agent's open session, and this agent's in the other chat
    assert (await store.sessions.get(left_open)).outcome is Outcome.CANCELLED  # type: ignore[union-attr]
    for standing in (other_agents, elsewhere, again):
        assert (await store.sessions.get(standing)).outcome is Outcome.IN_PROGRESS  # type: ignore[union-attr]
    [cancelled] = (await store.audit.query(AuditFilter(action="verification.decided"))).entries
    assert (cancelled.outcome, cancelled.details["session_id"], cancelled.details["reason"]) == (
        "cancelled", left_open, "restarted")
    assert await store.lockouts.counted_attempts(TENANT, USER) == 3


async def test_the_failure_that_reaches_the_limit_locks_the_person_out_in_the_same_step(
        store: Store, store_clock: FakeClock) -> None:
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED, rule=RULE)
    await _attempt(store, store_clock, Outcome.TIMED_OUT, rule=RULE)
    assert await store.lockouts.active_lockout(TENANT, USER) is None
    third = await _attempt(store, store_clock, Outcome.NOT_VERIFIED, rule=RULE)

    lockout = await store.lockouts.active_lockout(TENANT, USER)
    assert lockout is not None and lockout.locked_until == store_clock.now + RULE.duration
    [locked] = (await store.audit.query(AuditFilter(action="verification.locked"))).entries
    assert locked.subject == USER and locked.details["session_id"] == third and locked.details["failed_attempts"] == 3
    # The lockout consumed the failures that caused it: once it ends, the person starts afresh.
    assert await store.lockouts.counted_attempts(TENANT, USER) == 0
    store_clock.advance(hours=2)
    assert await store.lockouts.active_lockout(TENANT, USER) is None


async def test_a_verified_session_never_locks_anyone_out(store: Store, store_clock: FakeClock) -> None:
    for _ in range(2):
        await _attempt(store, store_clock, Outcome.NOT_VERIFIED, rule=RULE)
    await _admit(store, store_clock)  # open, counted
    await _attempt(store, store_clock, Outcome.VERIFIED, rule=RULE)

    assert await store.lockouts.active_lockout(TENANT, USER) is None


async def test_an_admin_lifting_a_lockout_restarts_the_count_and_is_audited(
        store: Store, store_clock: FakeClock) -> None:
    for _ in range(3):
        await _attempt(store, store_clock, Outcome.NOT_VERIFIED)
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=5), reason="a")
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)  # after the lockout began
    lifted = AuditEvent(action="admin.lockout_lifted", outcome="lifted", actor="console:admin", subject=USER,
                        tenant_id=TENANT)

    assert await store.lockouts.unlock(TENANT, USER, audit=lifted) is True
    assert await store.lockouts.active_lockout(TENANT, USER) is None
    assert await store.lockouts.counted_attempts(TENANT, USER) == 0
    assert len((await store.audit.query(AuditFilter(action="admin.lockout_lifted"))).entries) == 1
    assert await store.lockouts.unlock(TENANT, USER) is False


async def test_the_console_lists_the_people_locked_out_now(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")
    await store.lockouts.lock(TENANT, OTHER_USER, until=store_clock.now + timedelta(hours=3), reason="b")
    await store.lockouts.lock(OTHER_TENANT, USER, until=store_clock.now + timedelta(hours=3), reason="c")

    assert [lockout.user_id for lockout in await store.lockouts.active_lockouts(TENANT)] == [OTHER_USER, USER]
    store_clock.advance(hours=2)
    assert [lockout.user_id for lockout in await store.lockouts.active_lockouts(TENANT)] == [OTHER_USER]


async def test_lockout_is_active_until_its_time(store: Store, store_clock: FakeClock) -> None:
    until = store_clock.now + timedelta(hours=1)
    await store.lockouts.lock(TENANT, USER, until=until, reason="too_many_attempts")

    active = await store.lockouts.active_lockout(TENANT, USER)
    assert active is not None and active.locked_until == until and active.reason == "too_many_attempts"
    assert await store.lockouts.active_lockout(TENANT, OTHER_USER) is None

    store_clock.advance(hours=1)
    assert await store.lockouts.active_lockout(TENANT, USER) is None


async def test_relocking_replaces_the_lockout(store: Store, store_clock: FakeClock) -> None:
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=5), reason="b")

    active = await store.lockouts.active_lockout(TENANT, USER)

    assert active is not None and active.reason == "b"
    assert active.locked_until == store_clock.now + timedelta(hours=5)


async def test_lockout_time_in_another_zone_comes_back_as_utc(store: Store, store_clock: FakeClock) -> None:
    plus_two = timezone(timedelta(hours=2))
    until = (store_clock.now + timedelta(hours=1)).astimezone(plus_two)

    await store.lockouts.lock(TENANT, USER, until=until, reason="a")

    active = await store.lockouts.active_lockout(TENANT, USER)
    assert active is not None and active.locked_until == until
    assert active.locked_until.utcoffset() == timedelta(0)


async def test_prune_removes_expired_lockouts_and_idle_counters(store: Store, store_clock: FakeClock) -> None:
    await _attempt(store, store_clock, Outcome.NOT_VERIFIED)
    await store.lockouts.lock(TENANT, USER, until=store_clock.now + timedelta(hours=1), reason="a")
    store_clock.advance(hours=25)

    assert await store.lockouts.prune() == 1
    assert await scalar(store, "SELECT count(*) FROM attempt_counters") == 0  # nothing left to count
    assert await store.lockouts.unlock(TENANT, USER) is False, "the expired lockout was removed"
    assert (await _admit(store, store_clock))[1] == 0
