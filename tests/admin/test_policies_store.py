"""Each tenant's saved policy and access settings (store.policies)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import Store, TenantAccess, TenantNotFoundError
from tests.store.support import FakeClock
from verification.context import Source
from verification.policy import Policy

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
OTHER = "0f8fad5b-d9cb-469f-a165-70867728950e"
GROUP = "BBBBBBBB-0000-4000-8000-000000000001"


@pytest.fixture
async def connected(store: Store) -> Store:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
    return store


async def test_a_tenant_that_never_saved_has_no_policy_and_default_access(connected: Store) -> None:
    assert await connected.policies.get(TENANT) is None
    assert await connected.policies.get_stored(TENANT) is None
    assert await connected.policies.get_access(TENANT) == TenantAccess()


async def test_put_returns_before_and_after(connected: Store, store_clock: FakeClock) -> None:
    first = Policy(required_bits=24, sources=frozenset({Source.MEETINGS}), session_timeout=timedelta(minutes=5))

    assert await connected.policies.put(TENANT, first, "ada@contoso") == (None, first)
    store_clock.advance(minutes=1)
    second = Policy(required_bits=28)
    assert await connected.policies.put(TENANT, second, "grace@contoso") == (first, second)

    stored = await connected.policies.get_stored(TENANT)
    assert stored is not None and stored.policy == second
    assert (stored.updated_by, stored.updated_at) == ("grace@contoso", store_clock.now)


async def test_every_knob_survives_the_round_trip(connected: Store) -> None:
    policy = Policy(required_bits=22.5, max_questions=8, max_wrong=3, session_timeout=timedelta(minutes=7),
                    max_attempts_per_day=5, sources=frozenset({Source.CHATS, Source.ROLES}),
                    block_on_high_risk=False, medium_risk_extra_bits=6.0, low_risk_extra_bits=1.5,
                    sign_ins_unavailable_extra_bits=2.0, refuse_when_roles_unknown=False, show_subjects=True)

    await connected.policies.put(TENANT, policy, "ada@contoso")

    assert await connected.policies.get(TENANT) == policy


async def test_save_keeps_access_unless_given_and_put_never_touches_it(connected: Store) -> None:
    access = TenantAccess(helpdesk_group_id=GROUP, self_service=True, include_group_ids=(GROUP,))

    before, after = await connected.policies.save(TENANT, Policy(), "ada@contoso", access)
    await connected.policies.put(TENANT, Policy(required_bits=30), "ada@contoso")

    assert before is None and after.access == access
    assert await connected.policies.get_access(TENANT) == access
    assert access.helpdesk_group_id == GROUP.lower()  # GUIDs are stored in one spelling


async def test_policies_are_per_tenant(connected: Store) -> None:
    await connected.tenants.connect(OTHER, display_name="Fabrikam", granted_permissions=[])

    await connected.policies.put(TENANT, Policy(required_bits=30), "ada@contoso")

    assert await connected.policies.get(OTHER) is None


async def test_an_unconnected_tenant_cannot_have_a_policy(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        await store.policies.put(TENANT, Policy(), "ada@contoso")


async def test_access_settings_refuse_malformed_group_ids() -> None:
    with pytest.raises(ValueError, match="include_group_ids must be a GUID"):
        TenantAccess(include_group_ids=("engineering",))


async def test_the_actor_is_required(connected: Store) -> None:
    with pytest.raises(ValueError, match="actor"):
        await connected.policies.put(TENANT, Policy(), " ")
