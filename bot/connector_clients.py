"""Clients for replying to the channel (Teams' connector): one per turn, over a shared pool, with timeouts.

`PooledClientsFactory` implements the Agents SDK's public factory interface (`ChannelServiceClientFactoryBase`,
which `CloudAdapter` takes as `channel_service_client_factory`) with the SDK's public pieces: the connection
manager's token provider, and `TeamsConnectorClient`, which accepts the aiohttp session it should use. As with the
SDK's own `RestChannelServiceClientFactory`, each turn gets a client of its own that carries the token the turn
asked for and that the SDK closes when the turn ends, so no turn can close another's (issue 10 item 3). Added:

- every call to the channel has a timeout, so a serviceUrl that never answers fails that reply (the turn-error
  handler takes over) instead of holding the turn, and its conversation, for ever (issue 10 item 4);
- the per-turn sessions share one bounded connection pool (a TCPConnector they do not own; idle connections close
  after a keep-alive; closed when the bot stops), so a reply reuses the TLS connection an earlier turn opened
  instead of a handshake each time. Nothing is kept per serviceUrl.

The user-token client serves OAuth sign-in, which Watchword never uses (no user signs in through the bot): each turn
gets `NoUserSignIn`, the SDK's `UserTokenClientBase` interface answered with an error that says so, which holds no
token, session or connection. (The SDK's `UserTokenClient` would open an aiohttp session each turn and look up the
version of a package that is not installed, ~0.15 ms of CPU scanning sys.path, only to be closed unused.) Agentic
requests and Copilot Studio's connector users get the SDK's own clients.
"""

from __future__ import annotations

from typing import NoReturn

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from microsoft_agents.activity import (
    Activity,
    RoleTypes,
    SignInResource,
    TokenExchangeRequest,
    TokenOrSignInResourceResponse,
    TokenResponse,
    TokenStatus,
)
from microsoft_agents.hosting.core import (
    AnonymousTokenProvider,
    ChannelServiceClientFactoryBase,
    ClaimsIdentity,
    Connections,
    RestChannelServiceClientFactory,
    TurnContext,
)
from microsoft_agents.hosting.core.connector import ConnectorClientBase, UserTokenClientBase
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient

# A reply normally takes well under a second; Teams itself gives a bot 15 s to answer an invoke.
REPLY_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 5.0
POOL_LIMIT = 100  # connections to the channel at once; more turns wait for one
POOL_LIMIT_PER_HOST = 50
KEEPALIVE_S = 60.0


class PooledClientsFactory(ChannelServiceClientFactoryBase):
    """Per-turn channel clients over one bounded connection pool, with timeouts. `close()` when the bot stops."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections
        self._sdk = RestChannelServiceClientFactory(connections)  # agentic and connector-user requests
        self._pool: TCPConnector | None = None  # made on first use, inside the running event loop

    async def create_connector_client(self, context: TurnContext | None, claims_identity: ClaimsIdentity,
                                      service_url: str, audience: str, scopes: list[str] | None = None,
                                      use_anonymous: bool = False) -> ConnectorClientBase:
        if not service_url or not audience or (context is not None and _needs_sdk_client(context)):
            return await self._sdk.create_connector_client(context, claims_identity, service_url, audience, scopes,
                                                           use_anonymous)
        provider = (AnonymousTokenProvider() if use_anonymous
                    else self._connections.get_token_provider(claims_identity, service_url))
        token = await provider.get_access_token(audience, scopes or claims_identity.get_token_scope())
        return TeamsConnectorClient(endpoint=service_url, token=token, session=self._session(service_url))

    async def create_user_token_client(self, context: TurnContext, claims_identity: ClaimsIdentity,
                                       use_anonymous: bool = False) -> UserTokenClientBase:
        """Watchword signs no user in, so this client only has to exist: it holds nothing, and refuses every call."""
        return NoUserSignIn()

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
                             connector=self._pool, connector_owner=False,
                             timeout=ClientTimeout(total=REPLY_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))


def _needs_sdk_client(context: TurnContext) -> bool:
    activity = context.activity
    return bool(activity.is_agentic_request()
                or (activity.recipient is not None and activity.recipient.role == RoleTypes.connector_user))


class UserSignInUnsupported(NotImplementedError):
    """Something asked the user-token service for a user's token: Watchword signs no user in through the bot."""


class NoUserSignIn(UserTokenClientBase):
    """The turn's user-token client: Watchword signs no user in (no OAuth prompt, no auth handlers), so every
    operation refuses, and there is nothing to close."""

    @property
    def agent_sign_in(self) -> NoReturn:
        raise UserSignInUnsupported("Watchword signs no user in")

    @property
    def user_token(self) -> NoReturn:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def get_user_token(self, user_id: str, connection_name: str, channel_id: str,
                             magic_code: str | None = None) -> TokenResponse:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def get_sign_in_resource(self, connection_name: str, activity: Activity,
                                   final_redirect: str | None = None) -> SignInResource:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def sign_out_user(self, user_id: str, connection_name: str, channel_id: str) -> None:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def get_token_status(self, user_id: str, channel_id: str, include: str | None = None) -> list[TokenStatus]:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def get_aad_tokens(self, user_id: str, connection_name: str, resource_urls: list[str],
                             channel_id: str) -> dict[str, TokenResponse]:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def exchange_token(self, user_id: str, connection_name: str, channel_id: str,
                             exchange_request: TokenExchangeRequest) -> TokenResponse:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def get_token_or_sign_in_resource(self, connection_name: str, activity: Activity, code: str | None = None,
                                            final_redirect: str | None = None,
                                            fwd_url: str | None = None) -> TokenOrSignInResourceResponse:
        raise UserSignInUnsupported("Watchword signs no user in")

    async def close(self) -> None:
        return None  # it holds no session, token or connection
