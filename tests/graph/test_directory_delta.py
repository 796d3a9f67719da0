"""The background refresh keeps the directory as a real Graph client does: the first one reads everything through
/users/delta and /groups/delta, each later one only what changed since its delta links (issue 11)."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from graph.client import build_http_client
from graph.context_loader import ContextLoader
from graph.tenant_facts import PACK_OVER, REFRESH_AFTER_S, DirectorySnapshot, TenantFacts
from graph.tokens import TokenSource
from settings import Settings
from tests.devtenant.helpers import ThreadedDevTenant


class Calls:
    def __init__(self) -> None:
        self.sources: list[str] = []

    def graph_call(self, source: str, status: str) -> None:
        self.sources.append(source)


@asynccontextmanager
async def facts_for(dt: ThreadedDevTenant) -> AsyncIterator[tuple[TenantFacts, Callable[[], Any], Calls]]:
    """A tenant's facts with a clock the test moves; `refresh()` runs one background refresh to its end."""
    moment = [0.0]
    calls = Calls()
    settings = Settings().with_devtenant(dt.ready)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file)
    loader = ContextLoader(tokens=tokens, http=http, graph_url=settings.graph_url,
                           clock=lambda: dt.running.state.org.now, monotonic=lambda: moment[0], calls=calls)
    tenant = dt.ready["tenant_id"]

    async def refresh() -> None:
        moment[0] += REFRESH_AFTER_S + 1
        calls.sources.clear()
        loader.tenant_facts.refresh_soon(tenant)
        await loader.settle()

    try:
        yield loader.tenant_facts, refresh, calls
    finally:
        await loader.aclose()
        await http.aclose()
        tokens.close()


def snapshot_of(facts: TenantFacts, tenant: str) -> DirectorySnapshot:
    found = facts.cache.get((tenant, "users"))
    assert isinstance(found, DirectorySnapshot) and found.complete
    return found


def sizes(dt: ThreadedDevTenant) -> dict[str, int]:
    """Every group's transitiveMembers/$count as devtenant answers it (users and nested groups, through nesting)."""
    org = dt.running.state.org

    def members(gid: str) -> set[str]:
        out: set[str] = set()
        stack, seen = [gid], {gid}
        while stack:
            for m in org.groups[stack.pop()].member_ids:
                if m in org.users or m in org.groups:
                    out.add(m)
                if m in org.groups and m not in seen:
                    seen.add(m)
                    stack.append(m)
        return out

    return {gid: len(members(gid)) for gid in org.groups}


async def test_a_later_refresh_reads_only_what_changed_and_keeps_people_managers_and_group_sizes_right(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=2, users=1200)
    tenant = dt.ready["tenant_id"]
    org = dt.running.state.org
    async with facts_for(dt) as (facts, refresh, calls):
        await refresh()
        first_pages = calls.sources.count("delta")
        first = snapshot_of(facts, tenant)
        assert len(first.people) == sum(1 for u in org.users.values()
                                        if u.account_enabled and u.user_type == "Member")
        assert all(first.manager_of.get(u.id) == u.manager_id for u in org.users.values() if u.id in first.by_id)
        assert {gid: facts.count(tenant, gid) for gid in org.groups} == sizes(dt)
        assert first_pages > 12 + len(org.groups) // 100  # everyone, every group and its members: many pages
        packed = [gid for gid, m in facts._groups[tenant].direct.items() if isinstance(m, array)]
        assert packed and all(len(org.groups[gid].member_ids) > PACK_OVER for gid in packed)  # the big ones

        await refresh()  # nobody changed: one page of each round, the same snapshot
        assert calls.sources.count("delta") == 2
        assert snapshot_of(facts, tenant) is first

        people = [u for u in org.users.values() if u.id in first.by_id and u.manager_id]
        moved, leaver, boss = people[10], people[20], people[30]
        small = next(g for g in org.groups.values() if 3 < len(g.member_ids) < 50
                     and not any(m in org.groups for m in g.member_ids) and leaver.id not in g.member_ids)
        outer = next(g for g in org.groups.values() if g.id != small.id and len(g.member_ids) < 40
                     and small.id not in g.member_ids)
        dropped = small.member_ids[0]

        def change() -> None:
            moved.manager_id = boss.id
            moved.department = "Newly Formed Department"
            org.touch(moved)
            org.remove_user(leaver.id)
            org.remove_member(small.id, dropped)
            org.add_member(small.id, boss.id)
            org.add_member(outer.id, small.id)  # nesting: the outer group grows by the small one and its members

        dt.run(change)
        await refresh()
        assert calls.sources.count("delta") == 2  # the changes fit a page of each
        after = snapshot_of(facts, tenant)
        assert after is not first
        assert after.manager_of[moved.id] == boss.id and after.by_id[moved.id].department == "Newly Formed Department"
        assert leaver.id not in after.by_id and leaver.id not in after.manager_of
        assert {gid: facts.count(tenant, gid) for gid in org.groups} == sizes(dt)
        assert facts.members(tenant, small.id) == frozenset(small.member_ids)
        assert small.id in (facts.members(tenant, outer.id) or ())
        assert not any(leaver.id in (facts.members(tenant, g) or ()) for g in org.groups)
        assert all(facts.count(tenant, gid) == sizes(dt)[gid] for gid in packed)  # the leaver left the big ones too


async def test_a_delta_link_graph_no_longer_honours_starts_a_clean_round(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=2, users=300)
    tenant = dt.ready["tenant_id"]
    state = dt.running.state
    async with facts_for(dt) as (facts, refresh, calls):
        await refresh()
        first = snapshot_of(facts, tenant)
        pages = calls.sources.count("delta")
        state.config = dataclasses.replace(state.config, delta_token_lifetime_s=-1.0)  # every delta link expired
        gone = next(iter(first.by_id))
        dt.run(lambda: state.org.remove_user(gone))
        await refresh()  # 400 syncStateNotFound on both rounds: each starts over and reads everything again
        assert calls.sources.count("delta") == pages + 2
        again = snapshot_of(facts, tenant)
        assert gone not in again.by_id and len(again.people) == len(first.people) - 1
        assert {gid: facts.count(tenant, gid) for gid in state.org.groups} == sizes(dt)
