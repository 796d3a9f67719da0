"""Directory role assignments and definitions through devtenant's Graph."""

from __future__ import annotations

import pytest

from tests.devtenant.graph_support import call, make_state, sdk_client, serve_graph
from tests.devtenant.tiny_org import ADA, ALAN, GLOBAL_ADMIN_ROLE, KATHERINE, MARGARET, USER_ADMIN_ROLE, make_eligible

# msgraph's generated request builders (and kiota under them) warn about their own deprecated classes.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:kiota_abstractions")]

READ = ["RoleManagement.Read.Directory"]


async def test_role_assignments_of_a_principal_expand_the_role_definition():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": f"principalId eq '{ADA}'", "$expand": "roleDefinition"}, roles=READ)
    assert resp.status == 200
    (assignment,) = resp.body["value"]
    assert assignment["principalId"] == ADA and assignment["directoryScopeId"] == "/"
    assert assignment["roleDefinitionId"] == GLOBAL_ADMIN_ROLE
    role = assignment["roleDefinition"]
    assert role["displayName"] == "Global Administrator"
    assert role["isBuiltIn"] is True and role["isEnabled"] is True and role["templateId"] == GLOBAL_ADMIN_ROLE
    assert "isPrivileged" not in role  # not in v1.0


async def test_a_user_without_roles_has_no_assignments():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": f"principalId eq '{ALAN}'"}, roles=READ)
    assert resp.status == 200 and resp.body["value"] == []


async def test_assignments_of_a_role_expand_the_principal_typed():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": f"roleDefinitionId eq '{GLOBAL_ADMIN_ROLE}'", "$expand": "principal"},
                      roles=["Directory.Read.All"])
    (assignment,) = resp.body["value"]
    assert assignment["principal"]["@odata.type"] == "#microsoft.graph.user"
    assert assignment["principal"]["displayName"] == "Ada Lovelace"


async def test_the_apps_own_service_principal_shows_its_reset_role():
    state = make_state()
    resp = await call(state, "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": f"principalId eq '{state.sp_object_id}'", "$expand": "roleDefinition,principal"},
                      roles=READ)
    (assignment,) = resp.body["value"]
    assert assignment["roleDefinition"]["displayName"] == "User Administrator"
    assert assignment["principal"]["@odata.type"] == "#microsoft.graph.servicePrincipal"


async def test_role_definitions_filter_by_display_name():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleDefinitions",
                      {"$filter": "displayName eq 'Helpdesk Administrator'"}, roles=READ)
    assert [r["displayName"] for r in resp.body["value"]] == ["Helpdesk Administrator"]


async def test_role_assignments_need_a_role_management_or_directory_permission():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": f"principalId eq '{MARGARET}'"}, roles=["User.Read.All"])
    assert resp.status == 403 and resp.body["error"]["code"] == "Authorization_RequestDenied"


async def test_filter_on_an_unsupported_property_is_400():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$filter": "condition eq 'x'"}, roles=READ)
    assert resp.status == 400


async def test_unknown_expand_is_400():
    resp = await call(make_state(), "GET", "/roleManagement/directory/roleAssignments",
                      {"$expand": "appScope"}, roles=READ)
    assert resp.status == 400


# --- contract: the product's SDK parses these answers ---------------------------------------------------
async def test_sdk_reads_role_assignments_with_the_role_definition_expanded(aiohttp_client):
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
        RoleAssignmentsRequestBuilder,
    )

    state = make_state()
    client = sdk_client(state, await serve_graph(aiohttp_client, state), roles=READ)
    query = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
        filter=f"principalId eq '{ADA}'", expand=["roleDefinition"])
    page = await client.role_management.directory.role_assignments.get(RequestConfiguration(query_parameters=query))
    (assignment,) = page.value
    assert assignment.principal_id == ADA and assignment.directory_scope_id == "/"
    assert assignment.role_definition.display_name == "Global Administrator"
    assert assignment.role_definition.template_id == GLOBAL_ADMIN_ROLE


# --- PIM eligibilities ------------------------------------------------------------------------------------
ELIGIBILITIES = "/roleManagement/directory/roleEligibilityScheduleInstances"


def state_with_eligibilities():
    state = make_state()
    make_eligible(state.org, ALAN, GLOBAL_ADMIN_ROLE)
    make_eligible(state.org, KATHERINE, USER_ADMIN_ROLE)
    return state


async def test_eligibilities_of_a_principal_expand_the_role_definition_and_honour_select():
    resp = await call(state_with_eligibilities(), "GET", ELIGIBILITIES,
                      {"$filter": f"principalId eq '{ALAN}'", "$expand": "roleDefinition",
                       "$select": "id,principalId,roleDefinitionId"}, roles=READ)
    assert resp.status == 200
    (eligibility,) = resp.body["value"]
    assert set(eligibility) == {"id", "principalId", "roleDefinitionId", "roleDefinition"}
    assert eligibility["principalId"] == ALAN and eligibility["roleDefinitionId"] == GLOBAL_ADMIN_ROLE
    assert eligibility["roleDefinition"]["displayName"] == "Global Administrator"


async def test_eligibilities_are_listed_in_full_and_paged():
    state = state_with_eligibilities()
    resp = await call(state, "GET", ELIGIBILITIES, {"$top": "1"}, roles=READ)
    (first,) = resp.body["value"]
    assert first["memberType"] == "Direct" and first["directoryScopeId"] == "/" and first["endDateTime"] is None
    assert "@odata.nextLink" in resp.body
    unfiltered = await call(state, "GET", ELIGIBILITIES, {"$filter": f"principalId eq '{ADA}'"}, roles=READ)
    assert unfiltered.body["value"] == []  # Ada's Global Administrator is active, not eligible


async def test_eligibilities_need_a_role_management_or_directory_permission():
    resp = await call(state_with_eligibilities(), "GET", ELIGIBILITIES, {}, roles=["User.Read.All"])
    assert resp.status == 403 and resp.body["error"]["code"] == "Authorization_RequestDenied"


async def test_a_tenant_without_entra_id_p2_answers_eligibilities_with_a_licence_error():
    resp = await call(make_state(entra_id_p2=False), "GET", ELIGIBILITIES,
                      {"$filter": f"principalId eq '{ALAN}'"}, roles=READ)
    assert resp.status == 400 and resp.body["error"]["code"] == "AadPremiumLicenseRequired"
