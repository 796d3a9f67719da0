"""One directory sync per tenant at a time, across processes (store.sync_leases)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from store import Store, TenantNotFoundError
from tests.store.support import FakeClock, StoreTarget

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
TTL = timedelta(minutes=2)


@pytest.fixture
async def connected(store: Store) -> Store:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
    return store


async def test_one_holder_at_a_time_until_release(connected: Store) -> None:
    leases = connected.sync_leases

    assert await leases.acquire(TENANT, "a", TTL)
    assert not await leases.acquire(TENANT, "b", TTL)
    assert await leases.acquire(TENANT, "a", TTL)  # renewing
    await leases.release(TENANT, "b")  # not b's to release
    assert (await leases.get(TENANT)).holder == "a"  # type: ignore[union-attr]
    await leases.release(TENANT, "a")
    assert await leases.get(TENANT) is None
    assert await leases.acquire(TENANT, "b", TTL)


async def test_an_expired_lease_can_be_taken_over(connected: Store, store_clock: FakeClock) -> None:
    leases = connected.sync_leases
    assert await leases.acquire(TENANT, "crashed", TTL)
    store_clock.advance(minutes=1)
    assert await leases.acquire(TENANT, "crashed", TTL)  # renewed: expires two minutes from now
    store_clock.advance(minutes=1, seconds=59)
    assert not await leases.acquire(TENANT, "b", TTL)

    store_clock.advance(seconds=2)

    assert await leases.get(TENANT) is None
    assert await leases.acquire(TENANT, "b", TTL)
    lease = await leases.get(TENANT)
    assert lease is not None and lease.holder == "b" and lease.acquired_at == store_clock.now


async def test_two_processes_race_for_a_lease_and_one_wins(
    connected: Store, store_target: StoreTarget, store_clock: FakeClock
) -> None:
    import asyncio

    other = await store_target.open(store_clock)
    try:
        results = await asyncio.gather(connected.sync_leases.acquire(TENANT, "a", TTL),
                                       other.sync_leases.acquire(TENANT, "b", TTL))
    finally:
        await other.close()

    assert sorted(results) == [False, True]


async def test_a_lease_needs_a_connected_tenant(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        await store.sync_leases.acquire(TENANT, "a", TTL)
