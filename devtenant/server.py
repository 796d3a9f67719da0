"""Start a devtenant: its organisation, state, https and the identity platform and Graph on one port.

    running = await start_devtenant(DevTenantConfig(seed=7, users=200))
    running.ready["authority"]  # https://127.0.0.1:PORT/{tenant_id}, for msal
    running.ready["graph"]      # https://127.0.0.1:PORT/v1.0, for msgraph-sdk's adapter.base_url
    running.ready["ca_file"]    # the CA that signed the server certificate
    await running.stop()

or, in tests, `async with running_devtenant(config, org=tiny_org()) as running: ...`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from devtenant.entra import ROLE_TEMPLATE_IDS
from devtenant.graph_api import INJECTED_MS, graph_app
from devtenant.identity import setup_identity
from devtenant.model import Org, RoleAssignment, RoleDefinition
from devtenant.state import GRAPH_PERMISSIONS, AppRegistration, DevTenantConfig, DevTenantState
from devtenant.tls import create_tls

logger = logging.getLogger(__name__)
STOP_GRACE_S = 1.0  # how long stopping waits for requests in flight

_ROLE_DESCRIPTIONS = {
    "User Administrator": "Can manage all aspects of users and groups, including resetting passwords for "
                          "limited admins.",
}


class _AccessLogger(AbstractAccessLogger):
    """Method, path, status, time: never the query string, which may carry an id_token_hint. A Graph request's line
    also says how much of its time was injected latency (--latency-ms, an endpoint's own): the rest is devtenant's."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        injected = request.get(INJECTED_MS)
        if injected is None:
            self.logger.info("%s %s %s %.1f ms", request.method, request.path, response.status, time * 1000)
        else:
            self.logger.info("%s %s %s %.1f ms (%.1f ms injected)", request.method, request.path, response.status,
                             time * 1000, injected)


@dataclass
class RunningDevTenant:
    """A listening devtenant: its live state, the facts clients need (`ready`), and how to stop it."""

    state: DevTenantState
    ready: dict[str, Any]
    stop: Callable[[], Awaitable[None]]


def build_state(config: DevTenantConfig, org: Org, app: AppRegistration | None = None) -> DevTenantState:
    """The state a devtenant starts with: consent as configured, the app's service principal's role."""
    state = DevTenantState(config=config, org=org, app=app or AppRegistration.new())
    state.consented = None if config.unconsented else set(GRAPH_PERMISSIONS)
    if config.sp_reset_role:
        _assign_service_principal_role(state, config.sp_reset_role)
    return state


def _assign_service_principal_role(state: DevTenantState, role_name: str) -> None:
    org = state.org
    role = next((r for r in org.role_definitions.values() if r.display_name == role_name), None)
    if role is None:
        template_id = ROLE_TEMPLATE_IDS.get(role_name)
        if template_id is None:
            raise ValueError(f"sp_reset_role {role_name!r} is not a role devtenant knows; use one of "
                             f"{sorted(ROLE_TEMPLATE_IDS)}")
        role = RoleDefinition(template_id, role_name, _ROLE_DESCRIPTIONS.get(role_name, role_name),
                              is_privileged=True)
        org.role_definitions[role.id] = role
    if not any(a.principal_id == state.sp_object_id and a.role_definition_id == role.id
               for a in org.role_assignments):
        org.role_assignments.append(RoleAssignment(str(uuid.uuid4()), role.id, state.sp_object_id))


def build_app(state: DevTenantState) -> web.Application:
    """The whole devtenant as one aiohttp application: Graph under /v1.0, the identity platform at /."""
    app = web.Application()
    app.add_subapp("/v1.0", graph_app(state))
    setup_identity(app, state)
    return app


async def start_devtenant(
    config: DevTenantConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    org: Org | None = None,
    ca_dir: Path | None = None,
) -> RunningDevTenant:
    """Build the organisation (unless given), the state and TLS, listen on host:port (0 = a free port)."""
    if org is None:
        # Imported here: the generator (and Faker) are only needed when no organisation is given.
        from devtenant.generate import generate_org

        # Off the event loop: 50,000 users take seconds, and a host app may already be serving.
        org = await asyncio.to_thread(lambda: generate_org(config.seed, config.users, strangers=config.strangers))
        # The org lives as long as the server: keep the collector from re-scanning it on every pass.
        gc.freeze()
    state = build_state(config, org)
    tls = create_tls(host, ca_dir)
    # Stopping waits at most a second for requests in flight (aiohttp's default is a minute): one sleeping through
    # an injected latency (sign-in logs, 1.5 s or more) has nobody left to answer to.
    runner = web.AppRunner(build_app(state), access_log_class=_AccessLogger,
                           access_log=logging.getLogger("devtenant.access"), shutdown_timeout=STOP_GRACE_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls.server_context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        tls.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    state.base_url = f"https://{_url_host(host)}:{bound_port}"
    logger.info("devtenant for %s (%s) listening on %s", org.display_name, org.tenant_id, state.base_url)

    stopped = False

    async def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        await runner.cleanup()
        tls.cleanup()
        logger.info("devtenant on %s stopped", state.base_url)

    return RunningDevTenant(state=state, ready=ready_info(state, str(tls.ca_file)), stop=stop)


@asynccontextmanager
async def running_devtenant(config: DevTenantConfig, **kwargs: Any) -> AsyncIterator[RunningDevTenant]:
    """`start_devtenant` as an async context manager: stopped on exit, whatever happens."""
    running = await start_devtenant(config, **kwargs)
    try:
        yield running
    finally:
        await running.stop()


def ready_info(state: DevTenantState, ca_file: str) -> dict[str, Any]:
    """What a client needs to talk to this devtenant (the CLI prints it as one JSON line)."""
    base = state.base_url
    org = state.org
    domain = next((d.id for d in org.domains if d.is_default), org.domains[0].id if org.domains else "")
    return {
        "authority": f"{base}/{org.tenant_id}",
        "graph": f"{base}/v1.0",
        "login": base,
        "tenant_id": org.tenant_id,
        "domain": domain,
        "client_id": state.app.client_id,
        "client_secret": state.app.client_secret,
        "ca_file": ca_file,
        "seed": state.config.seed,
        "users": sum(1 for u in org.users.values() if u.account_enabled and u.user_type == "Member"),
        "helpdesk_group_id": org.helpdesk_group_id,
        "admins_group_id": org.admins_group_id,
    }


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):  # noqa: S104 - a listening address, mapped to one a client can dial
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
