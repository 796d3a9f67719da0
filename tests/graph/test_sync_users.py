"""`sync_users`: /users/delta pages to a delta link, then only changes; resumable after a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from graph.directory import SyncPage
from graph.graph_directory import GraphDirectory
from tests.devtenant.graph_helpers import add_staff
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN, JOSE, KATHERINE, NOW
from tests.graph.support import add_people, directory_for, person, state


class Pages:
    def __init__(self, crash_after: int | None = None) -> None:
        self.pages: list[SyncPage] = []
        self.crash_after = crash_after

    async def __call__(self, page: SyncPage) -> None:
        self.pages.append(page)
        if self.crash_after is not None and len(self.pages) >= self.crash_after:
            raise RuntimeError("the process died after storing this page")

    @property
    def user_ids(self) -> list[str]:
        return [u.id for p in self.pages for u in p.users]

    @property
    def removed(self) -> list[str]:
        return [r for p in self.pages for r in p.removed_ids]


async def test_a_full_sync_then_only_the_changes(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    tenant = dt.ready["tenant_id"]
    async with directory_for(dt) as directory:
        first = Pages()
        delta_link = await directory.sync_users(tenant, None, first)
        assert sorted(first.user_ids) == sorted(state(dt).org.users)
        assert first.pages[-1].delta_link == delta_link and first.pages[-1].next_link is None
        jose = next(u for p in first.pages for u in p.users if u.id == JOSE)
        assert jose.on_premises_sync_enabled and jose.upn.endswith("@corp.tiny.example")
        alan = next(u for p in first.pages for u in p.users if u.id == ALAN)
        assert alan.department == "Engineering" and alan.account_enabled and alan.user_type == "Member"

        newcomer = person("Ida", "Rhodes", now=NOW)
        add_people(dt, newcomer)
        dt.run(lambda: state(dt).org.remove_user(KATHERINE))
        second = Pages()
        next_delta = await directory.sync_users(tenant, delta_link, second)
        assert second.user_ids == [newcomer.id]
        assert second.removed == [KATHERINE]
        assert not second.pages[0].restarted and next_delta != delta_link

        quiet = Pages()
        await directory.sync_users(tenant, next_delta, quiet)
        assert quiet.user_ids == [] and quiet.removed == []


async def test_a_sync_resumes_from_the_stored_next_link_after_a_crash(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: add_staff(state(dt).org, 150))  # more than one page of 100
    tenant = dt.ready["tenant_id"]
    async with directory_for(dt) as directory:
        crashed = Pages(crash_after=1)
        with pytest.raises(RuntimeError):
            await directory.sync_users(tenant, None, crashed)
        stored = crashed.pages[-1].next_link
        assert stored and crashed.pages[-1].delta_link is None
        resumed = Pages()
        delta_link = await directory.sync_users(tenant, stored, resumed)
    everyone = crashed.user_ids + resumed.user_ids
    assert len(everyone) == len(set(everyone)) == len(state(dt).org.users)
    assert resumed.pages[-1].delta_link == delta_link and not resumed.pages[0].restarted


async def test_a_refused_delta_link_starts_over_cleanly(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    link = await directory.sync_users(tenant, None, Pages())
    broken = link.split("$deltatoken=")[0] + "$deltatoken=bm90LWEtdG9rZW4.AAAA"
    again = Pages()
    new_link = await directory.sync_users(tenant, broken, again)
    assert again.pages[0].restarted and not any(p.restarted for p in again.pages[1:])
    assert sorted(again.user_ids) == sorted(state(tiny).org.users)
    assert new_link.startswith(tiny.ready["graph"])


async def test_an_expired_delta_link_syncstatenotfound_starts_a_full_round(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # Graph keeps a directory delta token about seven days, then answers 400 syncStateNotFound.
    dt = make_tenant(delta_token_lifetime_s=0.5)
    tenant = dt.ready["tenant_id"]
    async with directory_for(dt) as directory:
        link = await directory.sync_users(tenant, None, Pages())
        await asyncio.sleep(1.0)
        again = Pages()
        await directory.sync_users(tenant, link, again)
    assert again.pages[0].restarted
    assert sorted(again.user_ids) == sorted(state(dt).org.users)
