"""The cached directory snapshot (people and their managers) is complete for large tenants, although Graph
pages directory objects with $expand by 100 whatever $top says (issue 9 item 3)."""

from __future__ import annotations

import gc
from collections.abc import Callable

from graph.batch import Deadline
from graph.client import build_http_client
from graph.context_loader import ContextLoader
from graph.tenant_facts import REFRESH_AFTER_S
from graph.tokens import TokenSource
from settings import Settings
from tests.devtenant.helpers import ThreadedDevTenant
from tests.graph.support import directory_for


async def test_a_2500_person_tenant_gets_a_complete_snapshot_and_one_round_trip_verifications(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=2, users=2500)
    assert dt.running.state.config.expand_page_cap == 100  # as Graph: on by default
    tenant = dt.ready["tenant_id"]
    people = [u for u in dt.running.state.org.users.values() if u.manager_id and u.department]
    async with directory_for(dt) as directory:
        directory.warm_up(tenant)
        await directory.settle()
        loaded = await directory.load_context(tenant, people[len(people) // 2].id)
    assert "org_chart" in loaded.cached  # peers, skip-level and department read from the complete snapshot
    assert loaded.round_trips == 1


async def test_a_departments_index_is_built_once_per_snapshot_and_shared_until_the_snapshot_is_refreshed(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=2, users=300)
    tenant = dt.ready["tenant_id"]
    org = dt.running.state.org
    departments: dict[str, list[str]] = {}
    for u in org.users.values():
        if u.manager_id and u.department:
            departments.setdefault(u.department, []).append(u.id)
    department, (first_id, second_id, *_) = max(departments.items(), key=lambda kv: len(kv[1]))
    moment = [0.0]
    settings = Settings().with_devtenant(dt.ready)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file)
    loader = ContextLoader(tokens=tokens, http=http, graph_url=settings.graph_url, clock=lambda: org.now,
                           monotonic=lambda: moment[0])
    try:
        loader.tenant_facts.refresh_soon(tenant)
        await loader.settle()
        first = await loader.load(tenant, first_id, Deadline.after(8))
        second = await loader.load(tenant, second_id, Deadline.after(8))
        index = first.org.department_index
        assert index is not None and second.org.department_index is index  # one index, shared
        assert index.names.neighbours is not None  # the name words' typo neighbours came with the snapshot
        walked = {id(o) for o in gc.get_objects()}  # what a full collection walks (frozen objects are not)
        assert id(index) not in walked and id(index.members[0]) not in walked
        assert first.org.department_members is index.members is second.org.department_members
        assert {p.department for p in index.members} == {department}
        # The group catalogue too: mapped once, the same Group objects in both verifications' knowledge.
        catalogue = {g.id: g for g in first.org.groups}
        own = {g.id for g in (*first.context.groups, *second.context.groups)}
        assert all(g is catalogue[g.id] for g in second.org.groups if g.id not in own)

        moment[0] += REFRESH_AFTER_S + 1  # the snapshot gets old: nobody changed, so the refresh keeps it
        loader.tenant_facts.refresh_soon(tenant)
        await loader.settle()
        quiet = await loader.load(tenant, first_id, Deadline.after(8))
        assert quiet.org.department_index is index

        newcomer = next(u for u in org.users.values() if u.department != department and u.manager_id)
        dt.run(lambda: (setattr(newcomer, "job_title", "Apprentice"), org.touch(newcomer)))
        moment[0] += REFRESH_AFTER_S + 1  # someone changed: a new snapshot, prepared from the last one
        loader.tenant_facts.refresh_soon(tenant)
        await loader.settle()
        again = await loader.load(tenant, first_id, Deadline.after(8))
        assert again.org.department_index is not index
        assert again.org.department_index is not None and again.org.department_index.ids == index.ids
        assert again.org.department_index.names._close is index.names._close  # the typo work carries over
        assert again.org.department_index.names.neighbours is not index.names.neighbours
        assert again.org.department_index.names.neighbours.near == index.names.neighbours.near  # same names
        await loader.settle()
    finally:
        await loader.aclose()
        await http.aclose()
        tokens.close()


async def test_a_persons_groups_beyond_the_catalogues_first_page_are_sized_in_the_background_so_one_round_trip_does(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=2, users=4000)  # over 999 groups: more than the catalogue's one page
    tenant = dt.ready["tenant_id"]
    org = dt.running.state.org
    async with directory_for(dt) as directory:
        directory.warm_up(tenant)
        await directory.settle()
        catalogue = {str(g["id"]) for g in directory._loader.tenant_facts.cache.get((tenant, "catalogue"))}
        assert len(catalogue) == 999 < len(org.groups)
        target = next(u for u in org.users.values() if u.manager_id and u.department and any(
            g.id not in catalogue for g in org.transitive_member_of(u.id))
            and not any(g.is_assignable_to_role for g in org.transitive_member_of(u.id)))
        warm = await directory.load_context(tenant, target.id)
    async with directory_for(dt) as fresh:  # a new process: sizes and members read within the verification
        cold = await fresh.load_context(tenant, target.id)
    assert warm.round_trips == 1 and cold.round_trips == 2
    assert any(g.id not in catalogue for g in warm.context.groups)
    assert all(g.member_count is not None for g in warm.context.groups)
    assert warm.context.groups == cold.context.groups  # the same sizes and small groups' members either way


async def test_a_refresh_still_reading_when_the_next_is_due_is_not_joined_by_a_second(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    """A 50,000-person tenant's refresh (500 pages of people, every group sized at a budget-sparing pace) can outlast
    REFRESH_AFTER_S: a verification then must not start another beside it, doubling the background reads."""
    dt = make_tenant(generated=True, seed=2, users=300)
    tenant = dt.ready["tenant_id"]
    moment = [0.0]
    read: list[str] = []

    class Calls:
        def graph_call(self, source: str, status: str) -> None:
            read.append(source)

    settings = Settings().with_devtenant(dt.ready)
    tokens = TokenSource(login_url=settings.login_url, client_id=settings.client_id,
                         client_secret=settings.client_secret.get_secret_value(), ca_file=settings.ca_file)
    http = build_http_client(settings.ca_file)
    loader = ContextLoader(tokens=tokens, http=http, graph_url=settings.graph_url,
                           clock=lambda: dt.running.state.org.now, monotonic=lambda: moment[0], calls=Calls())
    try:
        loader.tenant_facts.refresh_soon(tenant)
        moment[0] += REFRESH_AFTER_S + 1  # due again while the first is still on its way
        loader.tenant_facts.refresh_soon(tenant)
        await loader.settle()
    finally:
        await loader.aclose()
        await http.aclose()
        tokens.close()
    assert read.count("domains") == 1
