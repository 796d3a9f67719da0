"""`verify <name>`'s people search answered from the tenant's directory snapshot (issue #11): a warm tenant's search
asks Graph nothing and finds what Graph would, disabled accounts and guests included (the start refuses them on what
Graph says then); who the snapshot cannot hold (anyone created since the last delta round) is still found, through
Graph; and a cold tenant asks Graph."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from graph.directory import UserNotFound
from graph.graph_directory import GraphDirectory
from graph.people_search import fetch_size
from tests.devtenant.helpers import ThreadedDevTenant
from tests.graph.support import add_people, directory_for, person, state
from tests.graph.test_requests_per_start import reads

LIMITS = (10, 1)


def ids(people: list) -> list[str]:
    return [p.id for p in people]


async def warm(directory: GraphDirectory, tenant: str) -> None:
    """The tenant's background refresh done: its directory snapshot complete, as after its first verification."""
    directory.warm_up(tenant)
    await directory.settle()


def queries(users: list) -> list[str]:
    """Every form of the search, as agents type it: whole names in either order, a name and the start of another,
    given names and surnames, a few letters (more people than Graph is asked for), addresses and their starts, in
    any case."""
    out: list[str] = []
    for u in users:
        words = u.display_name.split()
        out += [u.display_name, " ".join(reversed(words)), u.display_name.upper(), u.display_name[:1],
                u.display_name[:2], u.display_name[:3].lower(), u.user_principal_name,
                u.user_principal_name.split("@")[0][:6], (u.mail or "").upper()]
        if len(words) > 1:
            out.append(f"{words[0]} {words[-1][:2]}")
        out += [w for w in (u.given_name, u.surname) if w]
    return list(dict.fromkeys(q for q in out if q.strip()))


async def test_a_warm_tenants_search_asks_graph_nothing(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    target = next(u for u in sorted(state(dt).org.users.values(), key=lambda u: u.id)
                  if u.account_enabled and u.user_type == "Member" and not u.is_service_account)
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        await warm(directory, tenant)
        sent.clear()
        for query in (target.display_name, target.given_name, target.user_principal_name):
            assert target.id in ids(await directory.find_people(tenant, query)), query
    assert sent == [], reads(sent)


async def test_a_cold_tenants_search_asks_graph(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    target = next(u for u in sorted(state(dt).org.users.values(), key=lambda u: u.id)
                  if u.account_enabled and u.user_type == "Member")
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        found = await directory.find_people(dt.ready["tenant_id"], target.display_name)
    assert target.id in ids(found)
    assert reads(sent) == ["users"]


async def test_the_snapshot_finds_the_same_people_in_the_same_order_as_graph(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    """For every form of the query and a few limits. Graph is asked for more people than it keeps (it does not rank):
    for a letter or two that is an arbitrary part of those found, so there the snapshot's answer is compared with the
    best of all Graph finds (asked with a limit above the organisation's size)."""
    dt = make_tenant(generated=True, seed=7, users=300)
    now = state(dt).org.now
    add_people(dt, person("Sean", "O'Brien-McKay", now=now), person("Siobhan", "McKay", now=now),
               person("Ana", "de la Cruz", now=now), person("Ana", "de la Cruz", now=now))  # namesakes
    users = sorted(state(dt).org.users.values(), key=lambda u: u.id)  # guests and disabled accounts too
    assert len(users) < 333  # `everyone` below is all Graph finds: fetch_size(333) is Graph's largest page
    outsiders = [u for u in users if u.user_type == "Guest" or not u.account_enabled]
    asked = queries(users[::20]) + queries(outsiders) + [
        "o'brien", "sean o'b", "mck", "Mc Kay", "kay", "brien mckay", "de la", "cruz ana", "ana-de", "guest",
        "x') or startswith(displayName,'", 'a" OR "displayName:b']
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        everyone = {q: ids(await directory.find_people(tenant, q, limit=333)) for q in asked}
        by_graph = {(q, limit): ids(await directory.find_people(tenant, q, limit=limit))
                    for q in asked for limit in LIMITS}
        assert set(reads(sent)) == {"users"}  # Graph's answers (some throttled and asked again)
        await warm(directory, tenant)
        sent.clear()
        by_snapshot = {(q, limit): ids(await directory.find_people(tenant, q, limit=limit))
                       for q in asked for limit in LIMITS}
    local = {key for key, found in by_snapshot.items() if found}
    assert len(local) > len(by_snapshot) * 0.9  # the snapshot's answers are compared, not Graph's twice
    assert len(sent) == len(by_snapshot) - len(local)  # Graph asked only when the snapshot finds nobody
    assert by_snapshot == {(q, limit): everyone[q][:limit] for q, limit in by_snapshot}
    whole = {(q, limit) for q, limit in by_graph if len(everyone[q]) <= fetch_size(limit)}
    assert len(whole) > len(by_graph) * 0.7
    assert {key: by_snapshot[key] for key in whole} == {key: by_graph[key] for key in whole}


@pytest.mark.parametrize("who", ["guest", "disabled"])
async def test_a_disabled_person_or_a_guest_is_found_as_graph_finds_them_and_read_as_such_at_the_start(
        make_tenant: Callable[..., ThreadedDevTenant], who: str) -> None:
    """devtenant names them as real tenants do: a guest "Ada Lovelace (Guest)", a former employee as someone working
    there now. The snapshot does not verify them, but it finds them: the agent sees both namesakes, as from Graph."""
    dt = make_tenant(generated=True, seed=5, users=40)
    users = sorted(state(dt).org.users.values(), key=lambda u: u.id)
    outsider = next(u for u in users if (u.user_type == "Guest" if who == "guest" else not u.account_enabled))
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        by_graph = ids(await directory.find_people(tenant, outsider.display_name))
        await warm(directory, tenant)
        sent.clear()
        found = ids(await directory.find_people(tenant, outsider.display_name))
        assert sent == []
        loaded = await directory.load_context(tenant, outsider.id)  # the start reads what the dialogs refuse on
    assert outsider.id in found and found == by_graph
    assert loaded.context.is_guest if who == "guest" else not loaded.context.account_enabled


async def test_someone_created_since_the_last_delta_round_is_found_through_graph(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    tenant = dt.ready["tenant_id"]
    newcomer = person("Quilla", "Zephyrine", now=state(dt).org.now)
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        await warm(directory, tenant)
        add_people(dt, newcomer)
        sent.clear()
        assert ids(await directory.find_people(tenant, "quilla zeph")) == [newcomer.id]
    assert reads(sent) == ["users"]


async def test_someone_disabled_since_the_snapshot_is_found_there_and_read_as_disabled_at_the_start(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    org = state(dt).org
    target = next(u for u in sorted(org.users.values(), key=lambda u: u.id)
                  if u.account_enabled and u.user_type == "Member" and not u.is_service_account)
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        await warm(directory, tenant)

        def disable() -> None:
            target.account_enabled = False
            org.touch(target)

        dt.run(disable)
        sent.clear()
        assert target.id in ids(await directory.find_people(tenant, target.display_name))
        assert sent == []  # the snapshot still holds them...
        loaded = await directory.load_context(tenant, target.id)
    assert not loaded.context.account_enabled  # ...and the start reads them as Graph says now: the dialogs refuse


async def test_someone_deleted_since_the_snapshot_is_found_there_and_unknown_at_the_start(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(generated=True, seed=3, users=60)
    org = state(dt).org
    target = next(u for u in sorted(org.users.values(), key=lambda u: u.id)
                  if u.account_enabled and u.user_type == "Member" and not u.is_service_account and not
                  org.reports_of.get(u.id))
    tenant = dt.ready["tenant_id"]
    sent: list[httpx.Request] = []
    async with directory_for(dt, sent=sent) as directory:
        await warm(directory, tenant)
        dt.run(lambda: org.remove_user(target.id))
        sent.clear()
        assert target.id in ids(await directory.find_people(tenant, target.display_name))
        assert sent == []
        with pytest.raises(UserNotFound):
            await directory.load_context(tenant, target.id)
