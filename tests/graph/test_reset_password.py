"""`reset_password`: refused up front for accounts the helpdesk must not touch; otherwise a strong temporary
password that never shows up in a log, a repr or an exception."""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from devtenant.graph_api.passwords import verify_password
from devtenant.model import Group, GroupKind
from graph.directory import ResetRefusal, ResetRefused
from graph.graph_directory import GraphDirectory
from graph.passwords import DIGITS, LOWER, UPPER, TemporaryPassword, generate_password
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ADA, ALAN, GLOBAL_ADMIN_ROLE, JOSE, KATHERINE, NOW, make_eligible
from tests.graph.support import directory_for, state


def user(dt: ThreadedDevTenant, uid: str):
    return state(dt).org.users[uid]


async def test_an_ordinary_user_gets_a_temporary_password_to_change_at_next_sign_in(
        make_tenant: Callable[..., ThreadedDevTenant], caplog: pytest.LogCaptureFixture) -> None:
    dt = make_tenant()
    caplog.set_level(logging.DEBUG)
    before = datetime.now(UTC)
    async with directory_for(dt) as directory:
        temporary = await directory.reset_password(dt.ready["tenant_id"], ALAN)
    secret = temporary.reveal()
    alan = user(dt, ALAN)
    assert alan.force_change_password_next_sign_in
    assert alan.last_password_change_date_time >= before > NOW
    assert verify_password(alan, secret)
    assert temporary.user_id == ALAN and temporary.must_change_at_next_sign_in
    logging.getLogger("test").info("reset done: %s", temporary)
    for shown in (repr(temporary), str(temporary), f"{temporary}", f"{temporary!s:>40}"):
        assert secret not in shown
    assert caplog.records and not any(secret in r.getMessage() for r in caplog.records)
    with pytest.raises(TypeError):
        pickle.dumps(temporary)


async def test_a_global_administrator_is_refused_before_anything_changes(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    changed = user(dt, ADA).last_password_change_date_time
    async with directory_for(dt) as directory:
        with pytest.raises(ResetRefused) as refused:
            await directory.reset_password(dt.ready["tenant_id"], ADA)
    assert refused.value.reason is ResetRefusal.PRIVILEGED
    assert "Global Administrator" in str(refused.value)
    assert user(dt, ADA).password is None and user(dt, ADA).last_password_change_date_time == changed


async def refused_reset(dt: ThreadedDevTenant, uid: str) -> ResetRefused:
    async with directory_for(dt) as directory:
        with pytest.raises(ResetRefused) as refused:
            await directory.reset_password(dt.ready["tenant_id"], uid)
    assert user(dt, uid).password is None
    return refused.value


async def test_a_user_only_eligible_for_global_administrator_is_refused(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: make_eligible(state(dt).org, ALAN, GLOBAL_ADMIN_ROLE))
    refused = await refused_reset(dt, ALAN)
    assert refused.reason is ResetRefusal.PRIVILEGED
    assert "Global Administrator (eligible through PIM)" in str(refused)


async def test_a_federated_user_is_refused(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    with pytest.raises(ResetRefused) as refused:
        await directory.reset_password(tiny.ready["tenant_id"], JOSE)
    assert refused.value.reason is ResetRefusal.FEDERATED
    assert user(tiny, JOSE).password is None


async def test_a_member_of_a_role_assignable_group_is_refused(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()

    def add_group() -> None:
        org = state(dt).org
        group = Group(str(uuid.uuid4()), "Tier 2 Analysts", None, GroupKind.SECURITY, "tier2", None, None, True, NOW,
                      [KATHERINE])
        org.groups[group.id] = group
        org.index()

    dt.run(add_group)
    refused = await refused_reset(dt, KATHERINE)
    assert refused.reason is ResetRefusal.ROLE_ASSIGNABLE_GROUP
    assert "Tier 2 Analysts" in str(refused)


async def test_an_unknown_user_is_refused_as_not_found(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    with pytest.raises(ResetRefused) as refused:
        await directory.reset_password(tiny.ready["tenant_id"], "aaaaaaaa-0000-4000-8000-0000000000ff")
    assert refused.value.reason is ResetRefusal.NOT_FOUND


async def test_graphs_refusal_when_the_app_holds_no_directory_role_is_explained(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(sp_reset_role=None)
    async with directory_for(dt) as directory:
        with pytest.raises(ResetRefused) as refused:
            await directory.reset_password(dt.ready["tenant_id"], ALAN)
    assert refused.value.reason is ResetRefusal.APP_LACKS_ROLE
    assert user(dt, ALAN).password is None


def test_temporary_passwords_are_strong_and_readable_aloud() -> None:
    ambiguous = set("0O1lIio|`'\" ,.;:#$%&*+=?@_")
    seen = set()
    for _ in range(300):
        password = generate_password(avoid=("Alan Turing", "alan.turing"))
        seen.add(password)
        groups = password.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]  # four groups of four, read out one at a time
        assert all(g.isalnum() for g in groups)
        assert all(any(c in cls for c in password) for cls in (UPPER, LOWER, DIGITS))  # + "-": all 4 classes
        assert 8 <= len(password) <= 256
        assert not set(password) & ambiguous
        assert "alan" not in password.lower() and "turing" not in password.lower()
    assert len(seen) == 300


def test_generated_passwords_meet_entras_complexity_rules() -> None:
    from devtenant.graph_api.passwords import password_meets_complexity

    class _User:  # what Entra's rules read of the account
        user_principal_name = "alan.turing@example.com"
        display_name = "Alan Turing"

    for _ in range(200):
        assert password_meets_complexity(generate_password(avoid=("Alan Turing", "alan.turing")), _User())


def test_a_password_whose_digits_spell_a_banned_word_is_never_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    import graph.passwords as passwords

    draws = iter(["W", "3", "s", "u", "m", "m", "3", "r"] * 2 + ["K", "q", "7", "m", "x", "R", "4", "t"] * 2)
    monkeypatch.setattr(passwords.secrets, "choice", lambda _alphabet: next(draws))
    monkeypatch.setattr(passwords.secrets.SystemRandom, "shuffle", lambda self, chars: None)
    password = passwords.generate_password()
    assert "summ3r" not in password.lower() and password == "Kq7m-xR4t-Kq7m-xR4t"


def test_the_password_splits_into_the_groups_the_agent_reads_out() -> None:
    password = TemporaryPassword("Kq7m-xR4t-9wPe-hN3c", "u1", datetime.now(UTC))
    assert password.groups() == ["Kq7m", "xR4t", "9wPe", "hN3c"]
    assert "Kq7m" not in repr(password) and "Kq7m" not in f"{password}"
