"""Helpers for devtenant Graph tests: a state over the tiny org, tokens, the mounted app, an SDK client."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)

from devtenant.graph_api import graph_app
from devtenant.model import Org, User
from devtenant.state import AppRegistration, DevTenantConfig, DevTenantState
from devtenant.tokens import TokenIssuer
from tests.devtenant.tiny_org import ADA, NOW, tiny_org

# What Watchword asks for (devtenant.state.GRAPH_PERMISSIONS), enough for every directory read.
WATCHWORD_ROLES = ("User.ReadBasic.All", "User.Read.All", "Group.Read.All", "Directory.Read.All")
CONSISTENT = {"ConsistencyLevel": "eventual"}


# One signing key for every test state: generating an RSA key costs ~100 ms.
ISSUER = TokenIssuer()


def make_state(org: Org | None = None, **config: Any) -> DevTenantState:
    return DevTenantState(config=replace(DevTenantConfig(), **config), org=org or tiny_org(),
                          app=AppRegistration.new(), issuer=ISSUER)


def relative(link: str) -> str:
    """An absolute @odata.nextLink/deltaLink as a path the aiohttp test client accepts."""
    return link[link.index("/v1.0"):] if link else link


def token(state: DevTenantState, *roles: str) -> str:
    value, _ = state.issuer.issue_app_token(
        tenant_id=state.tenant_id, client_id=state.app.client_id, sp_object_id=state.sp_object_id,
        roles=list(roles or WATCHWORD_ROLES), app_name=state.app.display_name)
    return value


def bearer(state: DevTenantState, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(state, *roles)}"}


def mount(graph: web.Application) -> web.Application:
    """A root app with `graph` at /v1.0, as devtenant's server mounts it."""
    root = web.Application()
    root.add_subapp("/v1.0", graph)
    return root


def mounted(state: DevTenantState, **kwargs: Any) -> web.Application:
    return mount(graph_app(state, **kwargs))


def add_staff(org: Org, count: int, *, manager: str = ADA, prefix: str = "Staff") -> list[User]:
    """`count` more people reporting to `manager` (for paging and the $expand cap)."""
    users = []
    for n in range(count):
        uid = str(uuid.UUID(int=0xCCCC0000_0000_4000_8000_000000000000 + n))
        upn = f"{prefix.lower()}{n:03d}@tiny.example"
        users.append(User(
            id=uid, display_name=f"{prefix} {n:03d}", given_name=prefix, surname=f"{n:03d}",
            user_principal_name=upn, mail=upn, job_title="Analyst", department="Operations",
            office_location="London HQ", city="London", country="United Kingdom", usage_location="GB",
            manager_id=manager, employee_id=f"S{n:03d}", business_phones=[], mobile_phone=None,
            created_date_time=NOW - timedelta(days=30), last_password_change_date_time=NOW - timedelta(days=3)))
    org.add_users(users)
    org.index()
    return users


class StaticToken(AccessTokenProvider):
    """Kiota's token source for tests: always the same bearer token."""

    def __init__(self, value: str) -> None:
        self.value = value

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict | None = None) -> str:
        return self.value

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator([])


def sdk_client(base_url: str, bearer_token: str, http: httpx.AsyncClient):
    """The real msgraph-sdk client pointed at devtenant, with its default middleware (retries...)."""
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(bearer_token)),
                                  client=GraphClientFactory.create_with_default_middleware(client=http))
    adapter.base_url = base_url
    return GraphServiceClient(request_adapter=adapter)
