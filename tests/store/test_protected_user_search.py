"""Searching and paging protected users for the console (ProtectedUserRepository.search)."""

from __future__ import annotations

import pytest

from store import Store, UserFilter, UserSnapshot

TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"


def uid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
async def people(store: Store) -> Store:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
    users = [UserSnapshot(uid(n), f"user{n}@contoso.com", f"Person {n:03d}") for n in range(1, 26)]
    users += [
        UserSnapshot(uid(101), "ada@contoso.com", "Ada Lovelace", not_resettable_reasons=("privileged_admin",)),
        UserSnapshot(uid(102), "a_b@contoso.com", "Adam Smith", included=False),
        UserSnapshot(uid(103), "zed@contoso.com", "100% Zed"),
    ]
    await store.protected_users.begin_sync(TENANT)
    await store.protected_users.apply_sync_page(TENANT, upserts=users, delta_link="https://graph/d")
    return store


async def names(store: Store, text: str = "", **kwargs: object) -> list[str]:
    return [u.display_name for u in await store.protected_users.search(TENANT, text, **kwargs)]  # type: ignore[arg-type]


async def test_prefix_of_name_or_upn_case_insensitive(people: Store) -> None:
    assert await names(people, "ADA") == ["Ada Lovelace", "Adam Smith"]
    assert await names(people, "zed@") == ["100% Zed"]
    assert await people.protected_users.count_matching(TENANT, "person 01") == 10


async def test_like_wildcards_in_the_text_match_only_themselves(people: Store) -> None:
    assert await names(people, "100%") == ["100% Zed"]
    assert await names(people, "1%") == []
    assert await names(people, "a_") == ["Adam Smith"]  # the UPN a_b@..., not "Ada..."


async def test_pages_forward_and_back_in_name_order(people: Store) -> None:
    repo = people.protected_users
    first = await repo.search(TENANT, "person", limit=10)
    second = await repo.search(TENANT, "person", limit=10, after=(first[-1].display_name, first[-1].user_id))
    back = await repo.search(TENANT, "person", limit=10, before=(second[0].display_name, second[0].user_id))

    assert [u.display_name for u in first] == [f"Person {n:03d}" for n in range(1, 11)]
    assert [u.display_name for u in second] == [f"Person {n:03d}" for n in range(11, 21)]
    assert back == first


async def test_filters(people: Store) -> None:
    assert await names(people, show=UserFilter.NOT_RESETTABLE) == ["Ada Lovelace"]
    await people.protected_users.set_excluded(TENANT, uid(1), True)
    assert await names(people, show=UserFilter.OUT_OF_SCOPE) == ["Adam Smith", "Person 001"]
