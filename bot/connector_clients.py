"""Keep the HTTP sessions to the channel (Teams' connector) open across turns.

The SDK's RestChannelServiceClientFactory builds a new connector client, and with it a new aiohttp session and
connection, for every turn, plus a user-token client Watchword never uses (no user sign-in, bot/turn_state.py),
and closes both when the turn ends. Against Microsoft that is a new TLS handshake for every reply; in bench.turns
it was a tenth of an answer turn's CPU. This factory gets the token exactly as the SDK does and keeps one
client per channel endpoint and token. When the token rotates (hourly) a new client starts; the one before it
stays open for turns still using it and is closed at the next rotation, or when the bot stops.

Agentic requests and Copilot Studio's connector users keep the SDK's own per-turn clients.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession
from microsoft_agents.activity import RoleTypes
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.connector import ConnectorClientBase, UserTokenClientBase
from microsoft_agents.hosting.core.connector.client import UserTokenClient
from microsoft_agents.hosting.core.connector.get_product_info import get_product_info
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient
from microsoft_agents.hosting.core.rest_channel_service_client_factory import RestChannelServiceClientFactory


class _KeptConnectorClient(TeamsConnectorClient):
    """A connector client the turn may 'close': it stays open until the factory closes it."""

    async def close(self) -> None:
        return None

    async def really_close(self) -> None:
        await super().close()


class _KeptUserTokenClient(UserTokenClient):
    async def close(self) -> None:
        return None

    async def really_close(self) -> None:
        await super().close()


class KeptClientsFactory(RestChannelServiceClientFactory):
    """RestChannelServiceClientFactory whose clients outlive the turn (see the module doc). `close()` at shutdown."""

    def __init__(self, connection_manager: Any, **kwargs: Any) -> None:
        super().__init__(connection_manager, **kwargs)
        self._user_agent = get_product_info()  # the SDK reads package metadata from disk for every client
        self._current: dict[str, tuple[str, _KeptConnectorClient]] = {}  # service URL -> (token, client)
        self._previous: dict[str, _KeptConnectorClient] = {}
        self._user_tokens: dict[str, _KeptUserTokenClient] = {}  # app id -> client (never used for sign-in)

    async def create_connector_client(self, context: TurnContext | None, claims_identity: ClaimsIdentity,
                                      service_url: str, audience: str, scopes: list[str] | None = None,
                                      use_anonymous: bool = False) -> ConnectorClientBase:
        if not service_url or not audience or (context is not None and _needs_sdk_client(context)):
            return await super().create_connector_client(context, claims_identity, service_url, audience, scopes,
                                                         use_anonymous)
        provider = (self._ANONYMOUS_TOKEN_PROVIDER if use_anonymous
                    else self._connection_manager.get_token_provider(claims_identity, service_url))
        token = await provider.get_access_token(audience, scopes or claims_identity.get_token_scope())
        kept = self._current.get(service_url)
        if kept is not None and kept[0] == token:
            return kept[1]
        client = _KeptConnectorClient(endpoint=service_url, token=token, session=self._session(service_url))
        self._current[service_url] = (token, client)
        if kept is not None:  # the token rotated: retire the old client, and close the one retired before it
            older = self._previous.pop(service_url, None)
            self._previous[service_url] = kept[1]
            if older is not None:
                await older.really_close()
        return client

    async def create_user_token_client(self, context: TurnContext, claims_identity: ClaimsIdentity,
                                       use_anonymous: bool = False) -> UserTokenClientBase:
        """Watchword signs no user in, so this client only has to exist: one, without a token."""
        app_id = str(claims_identity.get_app_id() or "")
        client = self._user_tokens.get(app_id)
        if client is None:
            client = _KeptUserTokenClient(app_id=app_id, endpoint=self._token_service_endpoint, token="",
                                          session=self._session(self._token_service_endpoint))
            self._user_tokens[app_id] = client
        return client

    async def close(self) -> None:
        clients: list[Any] = [c for _, c in self._current.values()]
        clients += [*self._previous.values(), *self._user_tokens.values()]
        self._current, self._previous, self._user_tokens = {}, {}, {}
        for client in clients:
            await client.really_close()

    def _session(self, base_url: str) -> ClientSession:
        return ClientSession(base_url=base_url if base_url.endswith("/") else base_url + "/",
                             headers={"User-Agent": self._user_agent})


def _needs_sdk_client(context: TurnContext) -> bool:
    activity = context.activity
    return bool(activity.is_agentic_request()
                or (activity.recipient is not None and activity.recipient.role == RoleTypes.connector_user))
