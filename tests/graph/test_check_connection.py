"""`check_connection`: what the admin console shows after consent, and what it must never crash on."""

from __future__ import annotations

from collections.abc import Callable

from devtenant.state import GRAPH_PERMISSIONS
from graph.graph_directory import GraphDirectory
from graph.permissions import PERMISSION_NAMES, PERMISSIONS
from tests.devtenant.helpers import ThreadedDevTenant
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
