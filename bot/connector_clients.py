"""Clients for replying to the channel (Teams' connector): the SDK's own, one per turn, over a shared pool.

The SDK's RestChannelServiceClientFactory builds a connector client, with its own aiohttp session, for each turn
and closes it when the turn ends. That stays as it is: a turn's client carries the token the turn asked for, and
no other turn can close it. Two things are added, both through aiohttp's public API:

- the per-turn sessions share one connection pool (a TCPConnector they do not own), so a turn reuses the TLS
  connection an earlier turn opened instead of a handshake for every reply. The pool is bounded (connections
  per host; idle ones are closed after a keep-alive), and closed when the bot stops;
- every call to the channel has a timeout, so a serviceUrl that never answers fails that reply (the turn-error
  handler takes over) instead of holding the turn, and its conversation, for ever.

The user-token client serves OAuth sign-in, which Watchword never uses (no user signs in: bot/turn_state.py), so
it is made without a token, sparing a token request every turn. Agentic requests and Copilot Studio's connector
users keep the SDK's own clients.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from microsoft_agents.activity import RoleTypes
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase, UserTokenClientBase
from microsoft_agents.hosting.core.connector.client import UserTokenClient
from microsoft_agents.hosting.core.connector.get_product_info import get_product_info
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient
from microsoft_agents.hosting.core.rest_channel_service_client_factory import RestChannelServiceClientFactory

# A reply normally takes well under a second; Teams itself gives a bot 15 s to answer an invoke.
REPLY_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 5.0
POOL_LIMIT = 100  # connections to the channel at once; more turns wait for one
POOL_LIMIT_PER_HOST = 50
KEEPALIVE_S = 60.0


class PooledClientsFactory(RestChannelServiceClientFactory):
    """RestChannelServiceClientFactory whose per-turn clients share one bounded connection pool and time out.
    `close()` when the bot stops."""

    def __init__(self, connection_manager: Any, **kwargs: Any) -> None:
        super().__init__(connection_manager, **kwargs)
        self._user_agent = get_product_info()
        self._pool: TCPConnector | None = None  # made on first use, inside the running event loop

    async def create_connector_client(self, context: TurnContext | None, claims_identity: ClaimsIdentity,
                                      service_url: str, audience: str, scopes: list[str] | None = None,
                                      use_anonymous: bool = False) -> ConnectorClientBase:
        if not service_url or not audience or (context is not None and _needs_sdk_client(context)):
            return await super().create_connector_client(context, claims_identity, service_url, audience, scopes,
                                                         use_anonymous)
        provider = (self._ANONYMOUS_TOKEN_PROVIDER if use_anonymous
                    else self._connection_manager.get_token_provider(claims_identity, service_url))
        token = await provider.get_access_token(audience, scopes or claims_identity.get_token_scope())
        return TeamsConnectorClient(endpoint=service_url, token=token, session=self._session(service_url))

    async def create_user_token_client(self, context: TurnContext, claims_identity: ClaimsIdentity,
                                       use_anonymous: bool = False) -> UserTokenClientBase:
        """Watchword signs no user in, so this client only has to exist: without a token, and never used."""
        return UserTokenClient(app_id=str(claims_identity.get_app_id() or ""), endpoint=self._token_service_endpoint,
                               token="", session=self._session(self._token_service_endpoint))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _session(self, base_url: str) -> ClientSession:
        """A session of the turn's own (its headers carry the turn's token) over the shared pool."""
        if self._pool is None or self._pool.closed:
            self._pool = TCPConnector(limit=POOL_LIMIT, limit_per_host=POOL_LIMIT_PER_HOST,
                                      keepalive_timeout=KEEPALIVE_S)
        return ClientSession(base_url=base_url if base_url.endswith("/") else base_url + "/",
                             headers={"User-Agent": self._user_agent}, connector=self._pool, connector_owner=False,
                             timeout=ClientTimeout(total=REPLY_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))


def _needs_sdk_client(context: TurnContext) -> bool:
    activity = context.activity
    return bool(activity.is_agentic_request()
                or (activity.recipient is not None and activity.recipient.role == RoleTypes.connector_user))
