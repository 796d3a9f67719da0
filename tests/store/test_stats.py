"""The console home's figures, from the sessions table and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from store import LockoutRule, Store
from tests.store.support import FakeClock
from verification import Outcome

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
OTHER_TENANT = "9e8d7c6b-5a49-4838-a271-605f4e3d2c1b"
USER = "00000000-0000-4000-8000-000000000001"
AGENT = "00000000-0000-4000-8000-0000000000aa"


async def _verification(store: Store, clock: FakeClock, outcome: Outcome, seconds: int, *,
                        tenant: str = TENANT, rule: LockoutRule | None = None) -> None:
    admission = await store.sessions.admit(tenant_id=tenant, target_user_id=USER, agent_id=AGENT, required_bits=20,
                                           expires_at=clock.now + timedelta(minutes=10))
    clock.now += timedelta(seconds=seconds)
    await store.sessions.finish(admission.session.session_id, outcome, lockout=rule)


async def test_a_month_is_counted_per_day_and_outcome_with_the_median_time_to_verify(store: Store,
                                                                                   store_clock: FakeClock) -> None:
    start = store_clock.now
    store_clock.now = start - timedelta(days=40)
    await _verification(store, store_clock, Outcome.VERIFIED, 1)  # older than 30 days: not counted
    store_clock.now = start - timedelta(days=1)
    await _verification(store, store_clock, Outcome.VERIFIED, 60)
    await _verification(store, store_clock, Outcome.VERIFIED, 180)
    await _verification(store, store_clock, Outcome.VERIFIED, 100, tenant=OTHER_TENANT)  # another tenant
    store_clock.now = start
    rule = LockoutRule(max_failed=1, duration=timedelta(hours=2), actor=f"teams:{AGENT}")
    await _verification(store, store_clock, Outcome.NOT_VERIFIED, 30, rule=rule)
    await store.audit.append(action="password_reset", outcome="success", actor="a", subject=USER, tenant_id=TENANT)
    await store.audit.append(action="graph.sources_unavailable", outcome="partial", actor="a", subject=USER,
                             tenant_id=TENANT, details={"sources": ["chats"]})

    glance = await store.stats.glance(TENANT, 30)

    assert len(glance.days) == 30 and glance.days[-1] == store_clock.now.date()
    assert glance.outcomes == {"verified": 2, "not_verified": 1} and glance.verifications == 3
    assert glance.verifications_per_day[-2:] == (2, 1) and sum(glance.verifications_per_day) == 3
    assert glance.resets_per_day[-1] == 1 and sum(glance.lockouts_per_day) == 1
    assert glance.median_seconds_to_verify == 120
    assert glance.unavailable_sources == {"chats": 1}


async def test_a_quiet_month_has_nothing_to_show(store: Store) -> None:
    glance = await store.stats.glance(TENANT, 30)
    assert glance.verifications == 0 and glance.median_seconds_to_verify is None and not glance.unavailable_sources
