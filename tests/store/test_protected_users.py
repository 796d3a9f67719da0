"""Protected users synced from Entra, and the resumable per-tenant sync state."""

from __future__ import annotations

import pytest

from store import Store, TenantNotFoundError, UserSnapshot
from store.work_count import counting
from tests.store.support import FakeClock

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def user(n: int, **fields: object) -> UserSnapshot:
    values: dict = {"upn": f"user{n}@contoso.com", "display_name": f"User {n}"} | fields
    return UserSnapshot(user_id=uid(n), **values)


@pytest.fixture
async def connected(store: Store) -> Store:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=["User.Read.All"])
    return store


async def _full_sync(store: Store, *users: UserSnapshot) -> None:
    await store.protected_users.begin_sync(TENANT)
    await store.protected_users.apply_sync_page(TENANT, upserts=users, delta_link="https://graph/delta?d=1")


async def test_sync_page_stores_users_and_the_next_link(connected: Store, store_clock: FakeClock) -> None:
    started = await connected.protected_users.begin_sync(TENANT)

    state = await connected.protected_users.apply_sync_page(
        TENANT,
        upserts=[user(1, department="Finance", job_title="Analyst"), user(2)],
        next_link="https://graph/users/delta?skiptoken=p2",
    )

    assert started.full and started.in_progress and started.cycle == 1
    assert state.in_progress and state.next_link == "https://graph/users/delta?skiptoken=p2"
    assert (state.pages, state.users_upserted) == (1, 2)
    stored = await connected.protected_users.get(TENANT, uid(1))
    assert stored is not None
    assert (stored.upn, stored.display_name, stored.department, stored.job_title) == (
        "user1@contoso.com", "User 1", "Finance", "Analyst",
    )
    assert stored.resettable and stored.included and not stored.excluded and stored.in_scope
    assert stored.updated_at == store_clock.now


async def test_interrupted_sync_resumes_from_the_stored_next_link(connected: Store) -> None:
    await connected.protected_users.begin_sync(TENANT)
    await connected.protected_users.apply_sync_page(TENANT, upserts=[user(1)], next_link="https://graph/p2")

    # The process restarts: begin_sync hands back the unfinished cycle instead of starting over.
    resumed = await connected.protected_users.begin_sync(TENANT)

    assert resumed.in_progress and resumed.cycle == 1 and resumed.next_link == "https://graph/p2"
    assert resumed.pages == 1
    done = await connected.protected_users.apply_sync_page(TENANT, upserts=[user(2)], delta_link="https://graph/d1")
    assert not done.in_progress and done.next_link is None and done.delta_link == "https://graph/d1"
    assert (done.pages, done.users_upserted, done.completed_at is not None) == (2, 2, True)


async def test_next_cycle_starts_from_the_delta_link(connected: Store) -> None:
    await _full_sync(connected, user(1))

    state = await connected.protected_users.begin_sync(TENANT)

    assert state.cycle == 2 and not state.full and state.delta_link == "https://graph/delta?d=1"
    assert (state.pages, state.users_upserted, state.users_removed) == (0, 0, 0)


async def test_completed_full_sync_removes_users_it_did_not_see(connected: Store) -> None:
    await _full_sync(connected, user(1), user(2), user(3))
    await connected.protected_users.reset_sync(TENANT)

    await _full_sync(connected, user(1), user(3))

    assert await connected.protected_users.get(TENANT, uid(2)) is None
    assert await connected.protected_users.count(TENANT) == 2
    assert (await connected.protected_users.get_sync_state(TENANT)).users_removed == 1  # type: ignore[union-attr]


async def test_delta_sync_removes_only_the_users_it_reports_removed(connected: Store) -> None:
    await _full_sync(connected, user(1), user(2), user(3))
    await connected.protected_users.begin_sync(TENANT)

    state = await connected.protected_users.apply_sync_page(
        TENANT, upserts=[user(1, display_name="Renamed")], removed_user_ids=[uid(3)], delta_link="https://graph/d2"
    )

    assert state.users_removed == 1
    assert await connected.protected_users.get(TENANT, uid(2)) is not None
    assert await connected.protected_users.get(TENANT, uid(3)) is None
    assert (await connected.protected_users.get(TENANT, uid(1))).display_name == "Renamed"  # type: ignore[union-attr]


async def test_admin_exclusion_survives_resync(connected: Store) -> None:
    await _full_sync(connected, user(1))
    assert await connected.protected_users.set_excluded(TENANT, uid(1), True)

    await connected.protected_users.begin_sync(TENANT)
    await connected.protected_users.apply_sync_page(TENANT, upserts=[user(1, job_title="Boss")], delta_link="d3")

    stored = await connected.protected_users.get(TENANT, uid(1))
    assert stored is not None and stored.excluded and not stored.in_scope and stored.job_title == "Boss"


async def test_not_resettable_reasons_make_a_user_not_resettable(connected: Store) -> None:
    await _full_sync(
        connected,
        user(1, not_resettable_reasons=("privileged_admin",)),
        user(2, not_resettable_reasons=("federated", "privileged_admin", "federated")),
        user(3, included=False),
    )

    admin, federated, out_of_scope = [await connected.protected_users.get(TENANT, uid(n)) for n in (1, 2, 3)]

    assert admin is not None and not admin.resettable and admin.not_resettable_reasons == ("privileged_admin",)
    assert federated is not None and federated.not_resettable_reasons == ("federated", "privileged_admin")
    assert out_of_scope is not None and out_of_scope.resettable and not out_of_scope.in_scope


async def test_find_by_upn_is_case_insensitive(connected: Store) -> None:
    await _full_sync(connected, user(1, upn="Ann.Lee@Contoso.com"))

    found = await connected.protected_users.find_by_upn(TENANT, " ann.lee@contoso.COM ")

    assert found is not None and found.user_id == uid(1) and found.upn == "Ann.Lee@Contoso.com"
    assert await connected.protected_users.find_by_upn(TENANT, "nobody@contoso.com") is None


async def test_a_page_repeating_a_user_keeps_the_last_copy(connected: Store) -> None:
    await _full_sync(connected, user(1, display_name="Old"), user(1, display_name="New"))

    assert (await connected.protected_users.get(TENANT, uid(1))).display_name == "New"  # type: ignore[union-attr]


async def test_large_page_is_stored_whole(connected: Store) -> None:
    await _full_sync(connected, *(user(n) for n in range(1, 1201)))

    assert await connected.protected_users.count(TENANT) == 1200


async def test_users_are_listed_in_pages_by_user_id(connected: Store) -> None:
    await _full_sync(connected, *(user(n) for n in (5, 1, 4, 2, 3)))

    first = await connected.protected_users.list_users(TENANT, limit=2)
    rest = await connected.protected_users.list_users(TENANT, limit=10, after_user_id=first[-1].user_id)

    assert [u.user_id for u in first + rest] == [uid(n) for n in (1, 2, 3, 4, 5)]


async def test_sync_needs_a_connected_tenant(store: Store) -> None:
    with pytest.raises(TenantNotFoundError):
        await store.protected_users.begin_sync(TENANT)


async def test_a_page_needs_exactly_one_link_and_a_started_cycle(connected: Store) -> None:
    with pytest.raises(ValueError, match="begin_sync"):
        await connected.protected_users.apply_sync_page(TENANT, upserts=[user(1)], next_link="p2")
    await connected.protected_users.begin_sync(TENANT)
    with pytest.raises(ValueError, match="exactly one"):
        await connected.protected_users.apply_sync_page(TENANT, upserts=[user(1)])
    with pytest.raises(ValueError, match="exactly one"):
        await connected.protected_users.apply_sync_page(TENANT, next_link="p2", delta_link="d")


async def test_reset_sync_makes_the_next_cycle_full(connected: Store) -> None:
    await _full_sync(connected, user(1))

    await connected.protected_users.reset_sync(TENANT)
    state = await connected.protected_users.begin_sync(TENANT)

    assert state.full and state.delta_link is None and state.cycle == 2
    assert await connected.protected_users.count(TENANT) == 1, "users stay until the full cycle completes"


async def test_whether_any_user_is_stored_is_per_tenant(connected: Store) -> None:
    # Every start asks it (until the first sync stores someone, everyone is protected): one row read, not a count.
    assert await connected.protected_users.any_stored(TENANT) is False
    await _full_sync(connected, user(1))
    assert await connected.protected_users.any_stored(TENANT) is True
    assert await connected.protected_users.any_stored("00000000-0000-4000-8000-0000000000ff") is False


async def test_a_start_looks_the_person_up_and_whether_anyone_is_stored_in_one_transaction(connected: Store) -> None:
    assert await connected.protected_users.lookup(TENANT, uid(1)) == (False, None)  # no sync yet: all protected
    await _full_sync(connected, user(1))
    with counting(connected) as work:
        synced, found = await connected.protected_users.lookup(TENANT, uid(1))
    assert work.transactions == 1 and synced and found is not None and found.display_name == "User 1"
    assert await connected.protected_users.lookup(TENANT, uid(2)) == (True, None)  # synced, not in it
