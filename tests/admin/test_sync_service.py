"""The protected users' sync: full then incremental cycles, resuming, progress, verdicts and scope."""

from __future__ import annotations

import asyncio

import pytest

from admin.sync import SyncProgress, SyncService, SyncStatus
from devtenant.server import running_devtenant
from devtenant.state import DevTenantConfig
from graph.client import build_http_client
from graph.graph_directory import GraphDirectory
from graph.tokens import TokenSource
from settings import Settings
from store import Store, TenantAccess
from tests.admin.sync_fakes import FakeDirectory, person, uid
from tests.devtenant import tiny_org as tiny
from tests.store.support import FakeClock

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"
INCLUDE = "bbbbbbbb-0000-4000-8000-000000000001"
EXCLUDE = "bbbbbbbb-0000-4000-8000-000000000002"


@pytest.fixture
async def connected(store: Store) -> Store:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=["User.Read.All"])
    return store


def directory_of(n: int, **kwargs: object) -> FakeDirectory:
    directory = FakeDirectory(**kwargs)  # type: ignore[arg-type]
    directory.add(*(person(i) for i in range(1, n + 1)))
    return directory


async def stored_ids(store: Store) -> list[str]:
    return [u.user_id for u in await store.protected_users.list_users(TENANT, limit=1000)]


# --- full, then incremental -----------------------------------------------------------------------------
async def test_first_sync_stores_everyone_and_says_who_may_not_be_reset(connected: Store) -> None:
    directory = directory_of(7, not_resettable={uid(2): ("privileged_admin",), uid(3): ("role_assignable_group",)})
    directory.add(person(8, on_premises_sync_enabled=True))

    result = await SyncService(connected, directory).run(TENANT)

    assert result.status == SyncStatus.DONE and result.error is None
    assert (result.pages, result.users_seen, result.full, result.cycle) == (3, 8, True, 1)
    assert await stored_ids(connected) == [uid(i) for i in range(1, 9)]
    admin, grouped, federated, plain = [await connected.protected_users.get(TENANT, uid(i)) for i in (2, 3, 8, 1)]
    assert admin is not None and not admin.resettable and admin.not_resettable_reasons == ("privileged_admin",)
    assert grouped is not None and grouped.not_resettable_reasons == ("role_assignable_group",)
    assert federated is not None and federated.not_resettable_reasons == ("federated",)
    assert plain is not None and plain.resettable and plain.in_scope
    state = await connected.protected_users.get_sync_state(TENANT)
    assert state is not None and not state.in_progress and state.delta_link == f"fake://delta/{directory.version}"


async def test_next_sync_reads_only_the_changes_from_the_delta_link(connected: Store) -> None:
    directory = directory_of(7)
    service = SyncService(connected, directory)
    await service.run(TENANT)
    first_delta = f"fake://delta/{directory.version}"
    directory.add(person(9), person(4, display_name="Renamed Four"))
    directory.remove(uid(1))
    directory.pages_served = 0

    result = await service.run(TENANT)

    assert result.status == SyncStatus.DONE and not result.full and result.cycle == 2
    assert directory.calls[-1] == first_delta and directory.pages_served == 1
    assert (result.users_seen, result.users_removed) == (2, 1)
    assert await stored_ids(connected) == [uid(i) for i in (2, 3, 4, 5, 6, 7, 9)]
    four = await connected.protected_users.get(TENANT, uid(4))
    assert four is not None and four.display_name == "Renamed Four"


# --- stopping and resuming ------------------------------------------------------------------------------
async def test_sync_that_fails_after_page_two_resumes_from_the_stored_next_link(connected: Store) -> None:
    directory = directory_of(10, fail_after_pages=2)
    service = SyncService(connected, directory)

    failed = await service.run(TENANT)

    assert failed.status == SyncStatus.FAILED and failed.error == "Microsoft Graph is unavailable: throttled"
    state = await connected.protected_users.get_sync_state(TENANT)
    assert state is not None and state.in_progress and state.next_link == "fake://next/full/6"
    assert await stored_ids(connected) == [uid(i) for i in range(1, 7)]

    directory.fail_after_pages = None
    resumed = await service.run(TENANT)

    assert directory.calls == [None, "fake://next/full/6"]
    assert resumed.status == SyncStatus.DONE and resumed.resumed and resumed.cycle == 1
    assert (resumed.pages, resumed.users_seen) == (4, 10)
    assert sorted(directory.served) == [uid(i) for i in range(1, 11)]  # every user fetched exactly once
    assert await stored_ids(connected) == [uid(i) for i in range(1, 11)]


async def test_stopped_sync_keeps_its_pages_and_resumes_after_them(connected: Store) -> None:
    directory = directory_of(10, hang_after_pages=2)
    service = SyncService(connected, directory)
    task = service.start(TENANT)
    await directory.hanging.wait()
    # The writer runs behind the fetcher: let it store what was fetched, as it would while Graph answers.
    async for progress in service.watch(TENANT):
        if progress.pages >= 2:
            break

    task.cancel()  # Ctrl-C, or the app shutting down
    with pytest.raises(asyncio.CancelledError):
        await task

    stopped = service.progress(TENANT)
    assert stopped is not None and stopped.status == SyncStatus.FAILED and "resumes" in str(stopped.error)
    assert await connected.sync_leases.get(TENANT) is None  # released, so the next run may start at once
    resumed = await service.run(TENANT)
    assert directory.calls == [None, "fake://next/full/6"] and resumed.status == SyncStatus.DONE
    assert sorted(directory.served) == [uid(i) for i in range(1, 11)]
    assert await stored_ids(connected) == [uid(i) for i in range(1, 11)]


async def test_expired_delta_link_restarts_a_full_cycle_that_removes_the_unseen(connected: Store) -> None:
    directory = directory_of(5)
    service = SyncService(connected, directory)
    await service.run(TENANT)
    # Graph forgot our token, and a user vanished without a trace in the changes we could have read.
    directory.users.pop(uid(5))
    directory.refuse_links = True

    result = await service.run(TENANT)

    assert result.status == SyncStatus.DONE and result.full and result.cycle == 3
    assert await stored_ids(connected) == [uid(i) for i in range(1, 5)]


# --- progress and concurrency ---------------------------------------------------------------------------
async def test_subscribers_see_progress_page_by_page_until_done(connected: Store) -> None:
    directory = directory_of(10, total=10)
    service = SyncService(connected, directory)
    seen: list[SyncProgress] = []

    async def watch() -> None:
        async for progress in service.watch(TENANT):
            seen.append(progress)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await service.run(TENANT)
    await asyncio.wait_for(watcher, 5)

    assert seen[0].status == SyncStatus.RUNNING and seen[-1].status == SyncStatus.DONE
    assert [p.pages for p in seen] == sorted(p.pages for p in seen)
    assert seen[-1].pages == 4 and seen[-1].users_seen == 10 and seen[-1].expected_users == 10
    assert seen[-1].percent == 100 and seen[-1].elapsed_s >= 0
    assert any(p.status == SyncStatus.RUNNING and 0 < p.users_seen < 10 for p in seen)
    body = seen[-1].to_json()
    assert body["status"] == "done" and body["users_seen"] == 10 and body["percent"] == 100


async def test_a_second_start_joins_the_running_sync(connected: Store) -> None:
    directory = directory_of(10, hang_after_pages=1)
    service = SyncService(connected, directory)
    first = service.start(TENANT)
    await directory.hanging.wait()

    assert service.start(TENANT) is first and service.running(TENANT)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_another_process_cannot_sync_the_same_tenant_meanwhile(
    connected: Store, store_clock: FakeClock
) -> None:
    directory = directory_of(10, hang_after_pages=1)
    here = SyncService(connected, directory)
    running = here.start(TENANT)
    await directory.hanging.wait()

    elsewhere = await SyncService(connected, directory_of(3)).run(TENANT)

    assert elsewhere.status == SyncStatus.FAILED
    assert elsewhere.error == f"A directory sync of tenant {TENANT} is already running in another process."
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_a_dead_process_lease_expires(connected: Store, store_clock: FakeClock) -> None:
    from datetime import timedelta

    assert await connected.sync_leases.acquire(TENANT, "crashed-host/42/x", timedelta(minutes=2))
    store_clock.advance(minutes=3)

    result = await SyncService(connected, directory_of(3)).run(TENANT)

    assert result.status == SyncStatus.DONE


# --- scope and changing verdicts -----------------------------------------------------------------------
async def test_group_scope_includes_members_of_include_groups_minus_exclude_groups(connected: Store) -> None:
    await connected.policies.save(TENANT, (await connected.policies.get(TENANT)) or _policy(), "admin@contoso",
                                  TenantAccess(include_group_ids=(INCLUDE,), exclude_group_ids=(EXCLUDE,)))
    directory = directory_of(5)
    directory.set_group(INCLUDE, [uid(1), uid(2), uid(3)])
    directory.set_group(EXCLUDE, [uid(3), uid(4)])

    await SyncService(connected, directory).run(TENANT)

    users = {u.user_id: u for u in await connected.protected_users.list_users(TENANT)}
    assert [i for i in sorted(users) if users[i].included] == [uid(1), uid(2)]
    assert sorted(directory.group_reads) == [INCLUDE, EXCLUDE]  # each scope group read once, not once per user


async def test_unknown_scope_group_fails_the_sync_before_any_user_is_written(connected: Store) -> None:
    await connected.policies.save(TENANT, _policy(), "admin@contoso", TenantAccess(include_group_ids=(INCLUDE,)))

    result = await SyncService(connected, directory_of(5)).run(TENANT)

    assert result.status == SyncStatus.FAILED and f"No group {INCLUDE} in the directory" in str(result.error)
    state = await connected.protected_users.get_sync_state(TENANT)
    assert state is not None and state.pages == 0 and await connected.protected_users.count(TENANT) == 0


async def test_delta_sync_rechecks_roles_and_scope_of_users_who_did_not_change(connected: Store) -> None:
    directory = directory_of(6, not_resettable={uid(1): ("privileged_admin",)})
    service = SyncService(connected, directory)
    await service.run(TENANT)
    # Nobody changed in the directory, but user 1 lost the role and user 5 got one; the scope changed too.
    directory.not_resettable = {uid(5): ("privileged_admin",)}
    directory.set_group(EXCLUDE, [uid(6)])
    await connected.policies.save(TENANT, _policy(), "admin@contoso", TenantAccess(exclude_group_ids=(EXCLUDE,)))

    result = await service.run(TENANT)

    assert result.status == SyncStatus.DONE and not result.full and result.users_rechecked == 3
    one, five, six = [await connected.protected_users.get(TENANT, uid(i)) for i in (1, 5, 6)]
    assert one is not None and one.resettable
    assert five is not None and five.not_resettable_reasons == ("privileged_admin",)
    assert six is not None and not six.included


def _policy():  # noqa: ANN202 - the domain's default policy
    from verification.policy import Policy

    return Policy()


# --- against devtenant, through Graph -------------------------------------------------------------------
async def test_sync_through_graph_marks_administrators_and_synced_accounts(store: Store) -> None:
    async with running_devtenant(DevTenantConfig(seed=1, users=20), org=tiny.tiny_org()) as dt:
        s = Settings().with_devtenant(dt.ready)
        await store.tenants.connect(s.tenant_id, display_name="Tiny", granted_permissions=["User.Read.All"])
        tokens = TokenSource(login_url=s.login_url, client_id=s.client_id,
                             client_secret=s.client_secret.get_secret_value(), ca_file=s.ca_file)
        http = build_http_client(s.ca_file)
        try:
            service = SyncService(store, GraphDirectory(tokens, http, s.graph_url, s.client_id))
            result = await service.run(s.tenant_id)
        finally:
            await http.aclose()
            tokens.close()

    assert result.status == SyncStatus.DONE, result.error
    users = {u.user_id: u for u in await store.protected_users.list_users(s.tenant_id)}
    assert result.users_seen == len(users) == result.expected_users
    assert users[tiny.ADA].not_resettable_reasons == ("privileged_admin",)  # Global Administrator
    assert users[tiny.MARGARET].not_resettable_reasons == ("privileged_admin",)  # Helpdesk Administrator
    assert users[tiny.JOSE].not_resettable_reasons == ("federated",)
    assert users[tiny.GRACE].resettable and users[tiny.ALAN].resettable
