"""Contract: the real msgraph-sdk, over https, parses devtenant's directory answers into its models.

devtenant runs as the product meets it (`start_devtenant`: TLS with its own CA, Graph at /v1.0);
the SDK is built the product's way (GraphClientFactory's default middleware, a bearer-token
provider, `adapter.base_url`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
import pytest_asyncio
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User

from devtenant.graph_api.wire import Faults
from devtenant.server import RunningDevTenant, running_devtenant
from devtenant.state import DevTenantConfig
from tests.devtenant.graph_helpers import WATCHWORD_ROLES, sdk_client, token
from tests.devtenant.tiny_org import ALAN, ALL_COMPANY, COMPILERS_TEAM, GRACE, JOSE, KATHERINE, tiny_org

# msgraph-sdk's request builders warn about their own query-parameter classes when imported and
# used: the tests import them inside the test functions, where this mark silences them.
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions.*"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tenant() -> AsyncIterator[RunningDevTenant]:
    """A devtenant over the tiny org shared by the read-only tests of this module."""
    async with running_devtenant(DevTenantConfig(), org=tiny_org()) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http(tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=tenant.ready["ca_file"]),
                                 trust_env=False) as client:
        yield client


def graph(running: RunningDevTenant, http: httpx.AsyncClient, *roles: str):
    return sdk_client(running.ready["graph"], token(running.state, *(roles or WATCHWORD_ROLES)), http)


def consistent(query_parameters=None) -> RequestConfiguration:
    config = RequestConfiguration(query_parameters=query_parameters)
    config.headers.add("ConsistencyLevel", "eventual")
    return config


async def test_sdk_lists_users_with_select_and_pages_to_the_end(tenant, http):
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    client = graph(tenant, http)
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=["id", "displayName", "department"],
                                                                       top=2)
    result = await client.users.get(RequestConfiguration(query_parameters=params))
    users: list[User] = list(result.value)
    pages = 1
    while result.odata_next_link:
        result = await client.users.with_url(result.odata_next_link).get()
        users += result.value
        pages += 1
    assert pages == 3
    assert sorted(u.id for u in users) == sorted(tenant.state.org.users)
    alan = next(u for u in users if u.id == ALAN)
    assert (alan.display_name, alan.department, alan.mail) == ("Alan Turing", "Engineering", None)


async def test_sdk_gets_a_user_by_upn_with_select_and_expanded_manager(tenant, http):
    from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

    client = graph(tenant, http)
    params = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=["id", "displayName", "accountEnabled", "onPremisesSyncEnabled", "createdDateTime",
                "lastPasswordChangeDateTime", "userType", "usageLocation"],
        expand=["manager($select=id,displayName)"])
    jose = await client.users.by_user_id("jose.muller@corp.tiny.example").get(
        RequestConfiguration(query_parameters=params))
    assert jose.id == JOSE and jose.on_premises_sync_enabled is True and jose.account_enabled is True
    assert isinstance(jose.created_date_time, datetime) and jose.created_date_time.tzinfo is not None
    assert jose.user_type == "Member" and jose.usage_location == "GB"
    assert isinstance(jose.manager, User) and jose.manager.display_name == "Grace Hopper"


async def test_sdk_reads_transitive_groups_through_the_cast_with_count(tenant, http):
    from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
        GraphGroupRequestBuilder,
    )

    client = graph(tenant, http)
    params = GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(
        select=["id", "displayName", "groupTypes", "mailEnabled", "securityEnabled"], count=True)
    result = await client.users.by_user_id(ALAN).transitive_member_of.graph_group.get(consistent(params))
    assert result.odata_count == 2
    assert all(isinstance(g, Group) for g in result.value)
    by_id = {g.id: g for g in result.value}
    assert set(by_id) == {ALL_COMPANY, COMPILERS_TEAM}
    assert by_id[COMPILERS_TEAM].group_types == ["Unified"] and by_id[COMPILERS_TEAM].mail_enabled is True


async def test_sdk_reads_manager_and_direct_reports(tenant, http):
    client = graph(tenant, http)
    manager = await client.users.by_user_id(ALAN).manager.get()
    reports = await client.users.by_user_id(GRACE).direct_reports.get()
    assert isinstance(manager, User) and manager.id == GRACE
    assert all(isinstance(r, User) for r in reports.value)
    assert sorted(r.id for r in reports.value) == sorted([ALAN, KATHERINE, JOSE])


async def test_sdk_reads_a_groups_transitive_member_count(tenant, http):
    client = graph(tenant, http)
    count = await client.groups.by_group_id(ALL_COMPANY).transitive_members.count.get(consistent())
    assert count == 6


async def test_sdk_reads_organization_domains_and_service_principal(tenant, http):
    from msgraph.generated.service_principals.service_principals_request_builder import (
        ServicePrincipalsRequestBuilder,
    )

    client = graph(tenant, http)
    state = tenant.state
    organization = (await client.organization.get()).value[0]
    assert organization.id == state.tenant_id and organization.display_name == "Tiny Example Ltd"
    assert {d.name for d in organization.verified_domains} == {"tiny.example", "corp.tiny.example"}
    domains = (await client.domains.get()).value
    assert {d.id: d.authentication_type for d in domains}["corp.tiny.example"] == "Federated"
    sp = await client.service_principals_with_app_id(state.app.client_id).get()
    assert (sp.id, sp.app_id, sp.display_name) == (state.sp_object_id, state.app.client_id, "Watchword")
    params = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
        filter=f"appId eq '{state.app.client_id}'", select=["id", "appId"])
    listed = await client.service_principals.get(RequestConfiguration(query_parameters=params))
    assert [s.id for s in listed.value] == [state.sp_object_id]


async def test_sdk_raises_odata_errors_with_graphs_codes(tenant, http):
    client = graph(tenant, http)
    with pytest.raises(ODataError) as missing:
        await client.users.by_user_id("nobody@tiny.example").get()
    assert (missing.value.response_status_code, missing.value.error.code) == (404, "Request_ResourceNotFound")

    with pytest.raises(ODataError) as denied:
        await graph(tenant, http, "Calendars.Read").users.get()
    assert (denied.value.response_status_code, denied.value.error.code) == (403, "Authorization_RequestDenied")

    with pytest.raises(ODataError) as uncounted:
        await client.groups.by_group_id(ALL_COMPANY).transitive_members.count.get()
    assert uncounted.value.response_status_code == 400

    anonymous = sdk_client(tenant.ready["graph"], "not-a-token", http)
    with pytest.raises(ODataError) as unauthenticated:
        await anonymous.users.get()
    assert (unauthenticated.value.response_status_code,
            unauthenticated.value.error.code) == (401, "InvalidAuthenticationToken")


async def test_sdk_delta_pages_to_the_delta_link_then_sees_changes_and_removals():
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

    async with running_devtenant(DevTenantConfig(), org=tiny_org()) as running:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=running.ready["ca_file"]),
                                     trust_env=False) as own_http:
            client = graph(running, own_http)
            params = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["displayName", "jobTitle"],
                                                                               top=4)
            page = await client.users.delta.get(RequestConfiguration(query_parameters=params))
            seen = list(page.value)
            while page.odata_next_link:
                page = await client.users.delta.with_url(page.odata_next_link).get()
                seen += page.value
            assert page.odata_delta_link and len(seen) == 6
            assert all(u.display_name and u.id for u in seen)

            org = running.state.org
            org.users[ALAN].job_title = "Principal Engineer"
            org.touch(org.users[ALAN])
            org.remove_user(KATHERINE)
            changes = await client.users.delta.with_url(page.odata_delta_link).get()
            assert [(u.id, u.job_title) for u in changes.value] == [(ALAN, "Principal Engineer"), (KATHERINE, None)]
            assert changes.value[1].additional_data["@removed"] == {"reason": "changed"}
            assert changes.odata_delta_link and not changes.odata_next_link


def _seed_whose_first_request_faults_then_recovers(rate: float) -> int:
    for seed in range(1000):
        faults = Faults(rate, seed)
        first, second = faults.draw(), faults.draw()
        if first in ("throttled", "unavailable") and second is None:
            return seed
    raise AssertionError("no such seed")


async def test_sdk_retries_an_injected_fault_and_succeeds():
    seed = _seed_whose_first_request_faults_then_recovers(0.5)
    async with running_devtenant(DevTenantConfig(fault_rate=0.5, seed=seed), org=tiny_org()) as running:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=running.ready["ca_file"]),
                                     trust_env=False) as own_http:
            user = await graph(running, own_http).users.by_user_id(ALAN).get()
    assert user.display_name == "Alan Turing"
