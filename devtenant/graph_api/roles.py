"""Directory roles through Graph's unified RBAC API (`/roleManagement/directory/...`).
(The legacy `/directoryRoles` belongs with the other directory objects in directory.py.)

Role assignments are direct: a user who holds a role through a role-assignable group shows the
group as the principal, as in Entra. `$filter` supports principalId / roleDefinitionId /
directoryScopeId (eq, and, or, in); `$expand` supports roleDefinition and principal. v1.0's
unifiedRoleDefinition has no isPrivileged property, so none is served.

PIM eligibilities (`roleEligibilityScheduleInstances`) are served the same way; a tenant without Entra ID
P2 (`DevTenantConfig.entra_id_p2=False`) answers 400 AadPremiumLicenseRequired, as Graph does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from devtenant.graph_api import odata, serialize
from devtenant.graph_api.router import GraphError, GraphRequest, GraphResponse, Router, not_found
from devtenant.model import RoleAssignment, RoleDefinition, RoleEligibility

READERS = ["RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All",
           "RoleManagement.ReadWrite.Directory", "Directory.ReadWrite.All"]


def register(router: Router) -> None:
    router.route("GET", "/roleManagement/directory/roleAssignments", permissions=READERS)(list_assignments)
    router.route("GET", "/roleManagement/directory/roleAssignments/{assignment_id}",
                 permissions=READERS)(get_assignment)
    router.route("GET", "/roleManagement/directory/roleEligibilityScheduleInstances",
                 permissions=READERS)(list_eligibilities)
    router.route("GET", "/roleManagement/directory/roleDefinitions", permissions=READERS)(list_definitions)
    router.route("GET", "/roleManagement/directory/roleDefinitions/{definition_id}",
                 permissions=READERS)(get_definition)


# --- JSON -------------------------------------------------------------------------------------------
def definition_json(role: RoleDefinition) -> dict[str, Any]:
    return {
        "id": role.id,
        "description": role.description,
        "displayName": role.display_name,
        "isBuiltIn": True,
        "isEnabled": True,
        "resourceScopes": ["/"],
        "templateId": role.id,
        "version": "1",
        "rolePermissions": [{"allowedResourceActions": [], "condition": None, "excludedResourceActions": []}],
        "inheritsPermissionsFrom": [],
    }


def _principal_role(item_id: str, principal_id: str, role_id: str, scope: str) -> dict[str, Any]:
    """What an assignment and an eligibility share: who, which role, where."""
    return {"id": item_id, "principalId": principal_id, "directoryScopeId": scope, "roleDefinitionId": role_id,
            "appScopeId": None}


def assignment_json(a: RoleAssignment) -> dict[str, Any]:
    return {**_principal_role(a.id, a.principal_id, a.role_definition_id, a.directory_scope_id), "condition": None}


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def eligibility_json(e: RoleEligibility) -> dict[str, Any]:
    return {
        **_principal_role(e.id, e.principal_id, e.role_definition_id, e.directory_scope_id),
        "startDateTime": _iso(e.start_date_time),
        "endDateTime": _iso(e.end_date_time),
        "memberType": e.member_type,
        "roleEligibilityScheduleId": e.id,
    }


def principal_json(req: GraphRequest, principal_id: str) -> dict[str, Any] | None:
    """The expanded principal: a user, group or service principal, typed as directoryObjects are, and
    limited to its type and id when the app may not read that type (Graph's "limited information")."""
    org = req.state.org
    obj = org.users.get(principal_id) or org.groups.get(principal_id)
    if obj is not None:
        return serialize.render_directory_object(obj, req, org, user_default=None, names=("*",))
    for sp in serialize.service_principals(req.state):
        if sp["id"] == principal_id:
            return {"@odata.type": "#microsoft.graph.servicePrincipal", **sp}
    return None


# --- $filter / $expand --------------------------------------------------------------------------------
ASSIGNMENT_FILTER = ("id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId")
DEFINITION_FILTER = ("id", "displayName", "isBuiltIn", "isEnabled", "templateId", "description")


def _expands(req: GraphRequest, allowed: set[str]) -> set[str]:
    names = set(odata.expand_options(req))
    for name in names:
        if name not in allowed:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type "
                             "'microsoft.graph.unifiedRoleAssignment'.")
    return names


def _expanded(req: GraphRequest, a: RoleAssignment | RoleEligibility, expand: set[str]) -> dict[str, Any]:
    out = assignment_json(a) if isinstance(a, RoleAssignment) else eligibility_json(a)
    org = req.state.org
    if "roleDefinition" in expand:
        role = org.role_definitions.get(a.role_definition_id)
        out["roleDefinition"] = definition_json(role) if role else None
    if "principal" in expand:
        out["principal"] = principal_json(req, a.principal_id)
    return out


# --- handlers ---------------------------------------------------------------------------------------
async def list_assignments(req: GraphRequest) -> GraphResponse:
    expand = _expands(req, {"roleDefinition", "principal"})
    items = odata.apply_filter([assignment_json(a) for a in req.state.org.role_assignments], req,
                               properties=ASSIGNMENT_FILTER, resource="unifiedRoleAssignment", functions=(),
                               directory=False)
    by_id = {a.id: a for a in req.state.org.role_assignments}
    return odata.page(req, items, default_size=100, max_size=999, context="roleManagement/directory/roleAssignments",
                      directory=False, render=lambda item: odata.select(
                          _expanded(req, by_id[item["id"]], expand), req,
                          type_name="microsoft.graph.unifiedRoleAssignment"))


async def get_assignment(req: GraphRequest) -> GraphResponse:
    expand = _expands(req, {"roleDefinition", "principal"})
    for a in req.state.org.role_assignments:
        if a.id == req.params["assignment_id"]:
            body = {"@odata.context": f"{req.base_url}/$metadata#roleManagement/directory/roleAssignments/$entity",
                    **_expanded(req, a, expand)}
            return GraphResponse(body=odata.select(body, req, type_name="microsoft.graph.unifiedRoleAssignment"))
    raise not_found(f"Resource '{req.params['assignment_id']}'")


ELIGIBILITY_FILTER = ("id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId", "memberType")
ELIGIBILITY_TYPE = "microsoft.graph.unifiedRoleEligibilityScheduleInstance"


async def list_eligibilities(req: GraphRequest) -> GraphResponse:
    if not req.state.config.entra_id_p2:
        raise GraphError(400, "AadPremiumLicenseRequired",
                         "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.")
    expand = _expands(req, {"roleDefinition", "principal"})
    odata.check_select(req, eligibility_json(RoleEligibility("", "", "", req.state.org.now)), ELIGIBILITY_TYPE)
    eligibilities = req.state.org.role_eligibilities
    items = odata.apply_filter([eligibility_json(e) for e in eligibilities], req, properties=ELIGIBILITY_FILTER,
                               resource="unifiedRoleEligibilityScheduleInstance", functions=(), directory=False)
    by_id = {e.id: e for e in eligibilities}
    return odata.page(req, items, default_size=100, max_size=999,
                      context="roleManagement/directory/roleEligibilityScheduleInstances", directory=False,
                      render=lambda item: odata.select(_expanded(req, by_id[item["id"]], expand), req,
                                                       type_name=ELIGIBILITY_TYPE))


async def list_definitions(req: GraphRequest) -> GraphResponse:
    items = odata.apply_filter([definition_json(r) for r in req.state.org.role_definitions.values()], req,
                               properties=DEFINITION_FILTER, resource="unifiedRoleDefinition",
                               functions=("startswith",), directory=False)
    return odata.page(req, items, default_size=1000, max_size=1000,
                      context="roleManagement/directory/roleDefinitions", directory=False,
                      render=lambda item: odata.select(item, req, type_name="microsoft.graph.unifiedRoleDefinition"))


async def get_definition(req: GraphRequest) -> GraphResponse:
    role = req.state.org.role_definitions.get(req.params["definition_id"])
    if role is None:
        raise not_found(f"Resource '{req.params['definition_id']}'")
    body = {"@odata.context": f"{req.base_url}/$metadata#roleManagement/directory/roleDefinitions/$entity",
            **definition_json(role)}
    return GraphResponse(body=odata.select(body, req, type_name="microsoft.graph.unifiedRoleDefinition"))
