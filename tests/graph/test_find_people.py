"""`find_people`: what "verify <name>" searches, with user text that must never break the query."""

from __future__ import annotations

from collections.abc import Callable

from graph.graph_directory import GraphDirectory
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ADA, ALAN, GRACE, NOW
from tests.graph.support import add_people, directory_for, person


def ids(people: list) -> list[str]:
    return [p.id for p in people]


async def test_a_given_name_prefix_finds_several_people(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    found = await directory.find_people(tiny.ready["tenant_id"], "a")
    assert set(ids(found)) == {ADA, ALAN}
    assert all(p.upn and p.department for p in found)


async def test_a_surname_prefix_finds_the_person(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    assert ids(await directory.find_people(tiny.ready["tenant_id"], "Hop")) == [GRACE]


async def test_a_upn_prefix_finds_the_person(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    assert ids(await directory.find_people(tenant, "alan.tu")) == [ALAN]
    assert ids(await directory.find_people(tenant, "alan.turing@tiny.example")) == [ALAN]


async def test_several_words_must_all_match_the_name(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    tenant = tiny.ready["tenant_id"]
    assert ids(await directory.find_people(tenant, "ada love")) == [ADA]
    assert ids(await directory.find_people(tenant, "  Lovelace   Ada ")) == [ADA]
    assert await directory.find_people(tenant, "ada turing") == []


async def test_empty_text_finds_nobody(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    assert await directory.find_people(tiny.ready["tenant_id"], "   ") == []


async def test_a_quote_in_a_name_is_escaped_and_finds_everyone_so_named(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    sean, orla = person("Sean", "O'Brien", now=NOW), person("Orla", "O'Brien", now=NOW)
    add_people(dt, sean, orla)
    tenant = dt.ready["tenant_id"]
    async with directory_for(dt) as directory:
        assert set(ids(await directory.find_people(tenant, "o'brien"))) == {sean.id, orla.id}
        assert ids(await directory.find_people(tenant, "sean o'b")) == [sean.id]
        # Text that tries to close the literal and widen the filter is just a name nobody has.
        assert await directory.find_people(tenant, "x') or startswith(displayName,'") == []
        assert await directory.find_people(tenant, 'a" OR "displayName:b') == []


async def test_the_limit_caps_the_answer(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    assert len(await directory.find_people(tiny.ready["tenant_id"], "a", limit=1)) == 1
