"""The tenant-wide reads of the directory sync and the policy page: `group_member_ids`, `not_resettable_ids`,
`count_users`, `group_names`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from devtenant.model import Group, GroupKind, RoleAssignment
from devtenant.state import GRAPH_PERMISSIONS
from graph.directory import GraphUnavailable, GroupNotFound, GroupTooLarge
from graph.graph_directory import GraphDirectory, _all_or_first_failure
from tests.devtenant.graph_helpers import add_staff
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import (
    ADA,
    ALAN,
    GLOBAL_ADMIN_ROLE,
    GRACE,
    HELPDESK_GROUP,
    KATHERINE,
    MARGARET,
    NOW,
    USER_ADMIN_ROLE,
    make_eligible,
)
from tests.graph.support import directory_for, state

UNKNOWN_GROUP = "bbbbbbbb-0000-4000-8000-0000000000ff"


def add_group(dt: ThreadedDevTenant, name: str, members: list[str], *, role_assignable: bool = False,
              role: str | None = None) -> str:
    """A security group (role-assignable if asked, holding `role` if given); returns its id."""
    group_id = str(uuid.uuid4())

    def add() -> None:
        org = state(dt).org
        org.groups[group_id] = Group(group_id, name, None, GroupKind.SECURITY, name.lower().replace(" ", ""), None,
                                     None, role_assignable, NOW, members)
        if role is not None:
            org.role_assignments.append(RoleAssignment(str(uuid.uuid4()), role, group_id))
        org.index()

    dt.run(add)
    return group_id


def consent_only(dt: ThreadedDevTenant, *permissions: str) -> None:
    """The tenant's admin consented to these permissions only (before Watchword's first token)."""
    dt.run(lambda: setattr(state(dt), "consented", set(permissions)))


# --- group members ---------------------------------------------------------------------------------------
async def test_group_members_are_its_users_in_lower_case(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    assert await directory.group_member_ids(tiny.ready["tenant_id"], HELPDESK_GROUP.upper()) == {MARGARET}


async def test_group_members_include_those_of_nested_groups_but_not_the_groups(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    outer = add_group(dt, "Support and friends", [HELPDESK_GROUP, GRACE])
    async with directory_for(dt) as directory:
        assert await directory.group_member_ids(dt.ready["tenant_id"], outer) == {MARGARET, GRACE}


async def test_group_members_follow_every_page(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    staff = dt.run(lambda: add_staff(state(dt).org, 1005))  # more than one page of 999
    big = add_group(dt, "Everyone on staff", [u.id for u in staff])
    async with directory_for(dt) as directory:
        members = await directory.group_member_ids(dt.ready["tenant_id"], big)
    assert members == {u.id.lower() for u in staff}


async def test_an_unknown_group_is_not_found(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    with pytest.raises(GroupNotFound) as missing:
        await directory.group_member_ids(tiny.ready["tenant_id"], UNKNOWN_GROUP)
    assert str(missing.value) == f"No group {UNKNOWN_GROUP} in the directory."
    assert missing.value.group_id == UNKNOWN_GROUP


async def test_group_members_without_permission_say_which_one_is_missing(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    consent_only(dt, "User.Read.All")
    async with directory_for(dt) as directory:
        with pytest.raises(GraphUnavailable) as refused:
            await directory.group_member_ids(dt.ready["tenant_id"], HELPDESK_GROUP)
    assert refused.value.reason == "group members: 403: GroupMember.Read.All not granted"


# --- who may never be reset ------------------------------------------------------------------------------
async def test_holders_of_privileged_roles_may_never_be_reset(directory: GraphDirectory,
                                                               tiny: ThreadedDevTenant) -> None:
    flagged = await directory.not_resettable_ids(tiny.ready["tenant_id"])
    # Ada is a Global Administrator, Margaret a Helpdesk Administrator; José (federated) is the sync's to tell.
    # Watchword's own service principal (User Administrator) is a principal too: never a user, so harmless.
    assert flagged == {ADA: ("privileged_admin",), MARGARET: ("privileged_admin",),
                       state(tiny).sp_object_id: ("privileged_admin",)}


async def test_members_of_role_assignable_groups_are_flagged_and_privileged_if_the_group_holds_a_role(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    add_group(dt, "Tier 2 Analysts", [KATHERINE], role_assignable=True)
    admins = add_group(dt, "User Admins", [ALAN], role_assignable=True, role=USER_ADMIN_ROLE)
    add_group(dt, "Not assignable", [GRACE])
    async with directory_for(dt) as directory:
        flagged = await directory.not_resettable_ids(dt.ready["tenant_id"])
    assert flagged == {ADA: ("privileged_admin",), MARGARET: ("privileged_admin",),
                       KATHERINE: ("role_assignable_group",), ALAN: ("privileged_admin", "role_assignable_group"),
                       state(dt).sp_object_id: ("privileged_admin",)}
    assert admins not in flagged  # the group holds the role; its members are who count


async def test_principals_eligible_for_privileged_roles_through_pim_are_privileged(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    dt.run(lambda: make_eligible(state(dt).org, KATHERINE, GLOBAL_ADMIN_ROLE))
    group = add_group(dt, "Eligible User Admins", [ALAN], role_assignable=True)
    dt.run(lambda: make_eligible(state(dt).org, group, USER_ADMIN_ROLE))
    async with directory_for(dt) as directory:
        flagged = await directory.not_resettable_ids(dt.ready["tenant_id"])
    assert flagged[KATHERINE] == ("privileged_admin",)
    assert flagged[ALAN] == ("privileged_admin", "role_assignable_group")
    assert group not in flagged


async def test_without_entra_id_p2_the_active_roles_alone_decide(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(entra_id_p2=False)
    async with directory_for(dt) as directory:
        flagged = await directory.not_resettable_ids(dt.ready["tenant_id"])
    assert flagged == {ADA: ("privileged_admin",), MARGARET: ("privileged_admin",),
                       state(dt).sp_object_id: ("privileged_admin",)}


async def test_unreadable_roles_fail_rather_than_flag_nobody(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    consent_only(dt, *(set(GRAPH_PERMISSIONS) - {"RoleManagement.Read.Directory", "Directory.Read.All"}))
    async with directory_for(dt) as directory:
        with pytest.raises(GraphUnavailable) as refused:
            await directory.not_resettable_ids(dt.ready["tenant_id"])
    assert refused.value.reason == "role assignments: 403: RoleManagement.Read.Directory not granted"


async def test_of_several_failed_reads_the_first_asked_is_reported_whatever_finishes_first() -> None:
    async def fails_after(delay_s: float, what: str) -> None:
        await asyncio.sleep(delay_s)
        raise GraphUnavailable(what)

    with pytest.raises(GraphUnavailable) as refused:
        await _all_or_first_failure(fails_after(0.02, "asked first"), fails_after(0, "finished first"))
    assert refused.value.reason == "asked first"


# --- the user count --------------------------------------------------------------------------------------
async def test_the_user_count_is_the_tenants_size(directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    assert await directory.count_users(tiny.ready["tenant_id"]) == len(state(tiny).org.users) == 6


async def test_the_user_count_is_unknown_rather_than_an_error_when_graph_will_not_say(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    consent_only(dt, "Calendars.Read")
    async with directory_for(dt) as directory:
        assert await directory.count_users(dt.ready["tenant_id"]) is None


# --- group names -----------------------------------------------------------------------------------------
async def test_group_names_once_each_and_none_for_a_group_that_does_not_exist(
        directory: GraphDirectory, tiny: ThreadedDevTenant) -> None:
    names = await directory.group_names(tiny.ready["tenant_id"], [HELPDESK_GROUP, UNKNOWN_GROUP, HELPDESK_GROUP])
    assert names == {HELPDESK_GROUP: "Helpdesk Agents", UNKNOWN_GROUP: None}


async def test_group_names_without_permission_are_unavailable(make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    consent_only(dt, "User.Read.All")
    async with directory_for(dt) as directory:
        with pytest.raises(GraphUnavailable) as refused:
            await directory.group_names(dt.ready["tenant_id"], [HELPDESK_GROUP])
    assert refused.value.reason == "group: 403: Group.Read.All not granted"


async def test_a_group_larger_than_asked_for_is_not_paged_through(make_tenant: Callable[..., ThreadedDevTenant],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The helpdesk member list (bot/access.py) stops at a bound: Graph's @odata.count on the first page says so.
    dt = make_tenant()
    staff = dt.run(lambda: add_staff(state(dt).org, 1005))
    big = add_group(dt, "Everyone on staff", [u.id for u in staff])
    async with directory_for(dt) as directory:
        pages: list[str] = []
        read = directory._get_json

        async def counted(tenant_id: str, url: str, *args: object, **kwargs: object) -> object:
            pages.append(url)
            return await read(tenant_id, url, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(directory, "_get_json", counted)
        with pytest.raises(GroupTooLarge) as too_large:
            await directory.group_member_ids(dt.ready["tenant_id"], big, at_most=1000, budget_s=8.0)
        assert len(pages) == 1 and too_large.value.at_most == 1000
        members = await directory.group_member_ids(dt.ready["tenant_id"], big, at_most=1005, budget_s=8.0)
    assert members == {u.id.lower() for u in staff}
