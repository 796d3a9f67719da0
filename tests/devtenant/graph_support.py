"""Helpers for the tests of devtenant's Graph workloads (mailbox, chats, sign-ins, roles, passwords).

`make_state()` builds a devtenant over the tiny organisation whose app service principal holds
User Administrator (demo mode). `call()` dispatches one request through a Router with every
workload module registered, without HTTP; the contract tests use the real server and SDK.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from aiohttp import web
from msgraph import GraphServiceClient
from multidict import CIMultiDict

from devtenant.graph_api import audit_logs, chats, mailbox, passwords, roles
from devtenant.graph_api.router import GraphRequest, GraphResponse, Router
from devtenant.model import RoleAssignment
from devtenant.state import AppRegistration, DevTenantConfig, DevTenantState
from tests.devtenant import graph_helpers
from tests.devtenant.tiny_org import TENANT_ID, USER_ADMIN_ROLE, tiny_org

ALL_READ_ROLES = [
    "Calendars.Read", "Mail.ReadBasic.All", "Contacts.Read", "Chat.Read.All", "AuditLog.Read.All",
    "Directory.Read.All", "RoleManagement.Read.Directory", "User.Read.All", "User-PasswordProfile.ReadWrite.All",
]


_ISSUER = graph_helpers.ISSUER


def make_state(*, sp_role_id: str | None = USER_ADMIN_ROLE, **config: Any) -> DevTenantState:
    state = DevTenantState(config=DevTenantConfig(**config), org=tiny_org(), app=AppRegistration.new(),
                           issuer=_ISSUER)
    if sp_role_id:
        state.org.role_assignments.append(RoleAssignment(str(uuid.uuid4()), sp_role_id, state.sp_object_id))
    return state


def claims(state: DevTenantState, roles: Iterable[str] = ALL_READ_ROLES) -> dict[str, Any]:
    return {"tid": TENANT_ID, "appid": state.app.client_id, "oid": state.sp_object_id, "roles": sorted(roles)}


def workload_router() -> Router:
    router = Router()
    for module in (mailbox, chats, audit_logs, roles, passwords):
        module.register(router)
    return router


async def call(state: DevTenantState, method: str, path: str, query: Mapping[str, str] | None = None, *,
               roles: Iterable[str] = ALL_READ_ROLES, headers: Mapping[str, str] | None = None,
               body: Any = None, router: Router | None = None) -> GraphResponse:
    request = GraphRequest(method=method, path=path, query=dict(query or {}), headers=CIMultiDict(headers or {}),
                           body=body, claims=claims(state, roles), state=state,
                           base_url="http://127.0.0.1/v1.0")
    return await (router or workload_router()).dispatch(request)


# --- contract tests: the real msgraph-sdk against devtenant's Graph over loopback http ------------------
async def serve_graph(aiohttp_client: Any, state: DevTenantState) -> str:
    """Serve `graph_app(state)` under /v1.0 on 127.0.0.1; returns the Graph base URL."""
    from devtenant.graph_api import graph_app  # the framework's app: auth, $batch, response writing

    app = web.Application()
    app.add_subapp("/v1.0", graph_app(state))
    client = await aiohttp_client(app)
    base = str(client.make_url("/v1.0"))
    state.base_url = base.removesuffix("/v1.0")
    return base


def app_token(state: DevTenantState, roles: Iterable[str] = ALL_READ_ROLES) -> str:
    token, _ = state.issuer.issue_app_token(tenant_id=state.tenant_id, client_id=state.app.client_id,
                                            sp_object_id=state.sp_object_id, roles=list(roles),
                                            app_name="Watchword")
    return token


def sdk_client(state: DevTenantState, base_url: str, roles: Iterable[str] = ALL_READ_ROLES) -> GraphServiceClient:
    """The real msgraph-sdk client pointed at devtenant, with a token holding `roles`."""
    return graph_helpers.sdk_client(base_url, app_token(state, roles), httpx.AsyncClient())
