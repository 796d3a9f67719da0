"""What a verification's start asks Graph, once the tenant is warm: pinned, so a new read cannot creep in unseen.

A start, as far as Graph is concerned: the person's context (their profile and everything else in one $batch), and
their sign-in logs read beside it. The people search for the name the agent typed asks nothing: the tenant's
directory snapshot answers it (tests/graph/test_people_search_from_snapshot.py). Each
request costs Watchword CPU (~1 ms through msgraph-core's middleware, httpx and TLS) besides decoding its answer, and
each $batch item is a read Graph counts against the tenant's throttling budget. The helpdesk membership of the agent
is not here: bot/access.py reads the helpdesk group's member list once per tenant for minutes."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import httpx

from graph.batch import source_of
from tests.devtenant.helpers import ThreadedDevTenant
from tests.graph.support import directory_for, state


def reads(sent: list[httpx.Request]) -> list[str]:
    """What each request read: a direct request's source, and a $batch's items' (in order)."""
    out: list[str] = []
    for request in sent:
        if request.url.path.endswith("/$batch"):
            out += [source_of(item["url"]) for item in json.loads(request.content)["requests"]]
        else:
            out.append(source_of(unquote(urlsplit(str(request.url)).path)))
    return out


async def test_a_warm_start_asks_graph_twice_for_nine_reads(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    org = state(dt).org
    people = sorted((u for u in org.users.values() if not u.is_service_account and u.manager_id
                     and u.account_enabled and u.user_type == "Member"), key=lambda u: u.id)
    first, target = people[0], people[1]
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        await (await directory.load_context(tenant, first.id)).with_sign_ins()  # the tenant's first: cold
        await directory.settle()  # the background refresh: the directory snapshot, every group's members
        sent.clear()
        found = await directory.find_people(tenant, target.display_name)
        assert target.id in {p.id for p in found}
        loaded = await (await directory.load_context(tenant, target.id)).with_sign_ins()
    assert loaded.round_trips == 1 and loaded.context.unavailable == {}, loaded.context.unavailable
    assert len(sent) == 2, reads(sent)
    assert sorted(reads(sent)) == sorted([
        # the people search: none (the directory snapshot's)
        # one $batch: the profile (its manager expanded) and the sources (the target's direct reports and direct
        # groups come from the tenant's directory snapshot and groups delta)
        "users", "calendarView", "transitiveMemberOf", "chats", "contacts", "messages",
        "roleAssignments", "roleEligibilityScheduleInstances",
        "signIns",  # in a $batch of its own, within the tenant's reports budget
    ]), reads(sent)


async def test_groups_held_through_nesting_are_told_apart_from_the_tenants_groups_delta_as_memberof_does(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    org = state(dt).org
    target = next(u for u in sorted(org.users.values(), key=lambda u: u.id)
                  if not u.is_service_account and org.groups_of.get(u.id))
    inner = org.groups_of[target.id][0]
    outer = next(g for g in sorted(org.groups) if g not in org.groups_of[target.id] and g != inner)
    dt.run(lambda: org.add_member(outer, inner))  # the target is in `outer` only through `inner`
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        cold = await directory.load_context(tenant, target.id)  # memberOf read from Graph
        await directory.settle()
        before = len(sent)
        warm = await directory.load_context(tenant, target.id)  # from the groups delta
    assert "memberOf" in reads(sent[:before]) and "memberOf" not in reads(sent[before:])
    directness = {g.id: g.is_direct for g in warm.context.groups}
    assert directness == {g.id: g.is_direct for g in cold.context.groups}
    assert directness[inner] and not directness[outer]
