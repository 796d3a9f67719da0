"""`check_connection`: what the admin console shows after consent, and what it must never crash on."""

from __future__ import annotations

from collections.abc import Callable

from devtenant.state import GRAPH_PERMISSIONS
from graph.graph_directory import GraphDirectory
from graph.permissions import PERMISSION_NAMES, PERMISSIONS
from tests.devtenant.helpers import ThreadedDevTenant
from tests.devtenant.tiny_org import ALAN, TENANT_ID
from tests.graph.support import directory_for, state


async def test_a_consented_tenant_with_a_reset_role_is_ready(directory: GraphDirectory,
                                                             tiny: ThreadedDevTenant) -> None:
    check = await directory.check_connection(tiny.ready["tenant_id"])
    assert check.ok and check.token_ok and check.tenant_matches and check.problems == ()
    assert {p.name for p in check.permissions if p.granted} == {p.name for p in PERMISSIONS}  # the optional too
    assert all(p.purpose for p in check.permissions)
    assert check.sp_object_id == state(tiny).sp_object_id
    assert check.sp_roles == ("User Administrator",) and check.can_reset


async def test_an_unconsented_tenant_gives_a_clear_answer_not_an_error(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(unconsented=True)
    async with directory_for(dt) as directory:
        check = await directory.check_connection(dt.ready["tenant_id"])
    assert not check.ok and not check.token_ok
    assert check.token_error == "invalid_client"
    assert "admin consent" in check.problems[0]
    assert not any(p.granted for p in check.permissions)
    assert dt.ready["client_secret"] not in repr(check)


async def test_an_unknown_tenant_gives_a_clear_answer(directory: GraphDirectory) -> None:
    check = await directory.check_connection("99999999-9999-4999-8999-999999999999")
    assert not check.token_ok and not check.ok
    assert check.token_error and "does not know this tenant" in check.problems[0]


async def test_a_service_principal_without_a_directory_role_cannot_reset(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant(sp_reset_role=None)
    async with directory_for(dt) as directory:
        check = await directory.check_connection(dt.ready["tenant_id"])
    assert check.token_ok and check.tenant_matches and not check.missing_permissions
    assert check.sp_object_id == state(dt).sp_object_id and check.sp_roles == ()
    assert not check.can_reset and not check.ok
    assert "Helpdesk Administrator" in check.problems[0]


async def test_a_permission_withdrawn_since_consent_is_reported_missing(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    async with directory_for(dt) as directory:
        tenant = dt.ready["tenant_id"]
        assert (await directory.check_connection(tenant)).ok
        dt.run(lambda: setattr(state(dt), "consented", set(GRAPH_PERMISSIONS) - {"Mail.ReadBasic.All"}))
        check = await directory.check_connection(tenant)  # a fresh token, not msal's cached one
    assert check.missing_permissions == ("Mail.ReadBasic.All",)
    assert "Mail.ReadBasic.All" in check.problems[0]


async def test_a_tenant_without_the_optional_permission_is_still_ready(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    dt = make_tenant()
    state(dt).consented = set(PERMISSION_NAMES)  # every required permission, not the optional one
    async with directory_for(dt) as directory:
        check = await directory.check_connection(dt.ready["tenant_id"])
    assert check.ok and check.problems == () and check.missing_permissions == ()
    [optional] = [p for p in check.permissions if not p.granted]
    assert optional.name == "TeamsAppInstallation.ReadWriteSelfForUser.All" and optional.optional


async def test_the_check_asks_each_gated_source_live_and_names_the_cause_and_the_fix(
        make_tenant: Callable[..., ThreadedDevTenant]) -> None:
    # All permissions granted, yet Microsoft answers 403: no protected-API approval for chats, an Exchange
    # application access policy on mail, no Entra ID P1 for sign-in logs.
    dt = make_tenant(protected_api_approved=False, mail_access_policy_blocks=True, entra_id_p1=False)
    async with directory_for(dt) as directory:
        check = await directory.check_connection(dt.ready["tenant_id"])
        loaded = await (await directory.load_context(dt.ready["tenant_id"], ALAN)).with_sign_ins()
    problems = " ".join(check.problems)
    assert "Teams chats cannot be read" in problems and "aka.ms/teams-api-protected-apis" in problems
    assert "Mail cannot be read" in problems and "application access policy" in problems
    assert "Sign-in logs cannot be read" in problems and "Entra ID P1" in problems
    assert not check.missing_permissions
    why = loaded.context.unavailable
    assert "protected API" in why["chats"] and "application access policy" in why["mail"]
    assert "application access policy" in why["meetings"] and "P1" in why["sign_ins"]


async def test_a_healthy_tenant_reports_no_source_problems(directory: GraphDirectory) -> None:
    check = await directory.check_connection(TENANT_ID)
    assert not [p for p in check.problems if "cannot be read" in p]
