"""Replies to the channel: per-turn clients over one shared, bounded pool, with timeouts
(bot/connector_clients.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

import pytest
from aiohttp import web
from microsoft_agents.authentication.msal import MsalAuth
from microsoft_agents.hosting.core import ClaimsIdentity

from bot import connector_clients
from bot.connector_clients import PooledClientsFactory, UserSignInUnsupported
from tests.bot.endpoint import Connector, Keys, activity, bearer

TEAMS = "https://smba.trafficmanager.net/emea/"
OTHER_REGION = "https://smba.trafficmanager.net/amer/"
AUDIENCE = "https://api.botframework.com"


class Tokens:
    """A token provider that hands out a new token every time, as msal does while its cache is cold."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.asked: list[tuple[str, list[str]]] = []

    async def get_access_token(self, audience: str, scopes: list[str], force_refresh: bool = False) -> str:
        self.asked.append((audience, scopes))
        return f"token-{next(self.counter)}"


class Connections:
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def get_token_provider(self, claims_identity: Any, service_url: str) -> Tokens:
        return self.tokens


def identity() -> ClaimsIdentity:
    return ClaimsIdentity({"aud": "bot-app-id", "appid": "bot-app-id"}, authentication_type="Bearer")


async def connector(factory: PooledClientsFactory, service_url: str = TEAMS) -> Any:
    return await factory.create_connector_client(None, identity(), service_url, AUDIENCE)


async def test_a_turns_client_carries_its_own_token_and_no_other_turn_closes_it() -> None:
    factory = PooledClientsFactory(Connections(Tokens()))
    first, second = await connector(factory), await connector(factory)
    assert first.client.headers["Authorization"] == "Bearer token-1"
    assert second.client.headers["Authorization"] == "Bearer token-2"
    assert first.client.headers["User-Agent"].startswith("agents-sdk-py/")
    for _ in range(5):
        await connector(factory)
    assert not first.client.closed and not second.client.closed
    await first.close()  # what the SDK does when the turn ends: it really closes
    assert first.client.closed and not second.client.closed
    await second.close()
    await factory.close()


async def test_turns_share_one_bounded_pool_that_outlives_them_until_the_bot_stops() -> None:
    factory = PooledClientsFactory(Connections(Tokens()))
    emea, amer = await connector(factory, TEAMS), await connector(factory, OTHER_REGION)
    assert emea.base_uri == TEAMS and amer.base_uri == OTHER_REGION
    pool = emea.client.connector
    assert amer.client.connector is pool and pool.limit == connector_clients.POOL_LIMIT
    await emea.close()
    await amer.close()
    assert not pool.closed
    await factory.close()
    assert pool.closed


async def test_every_call_to_the_channel_has_a_timeout() -> None:
    factory = PooledClientsFactory(Connections(Tokens()))
    client = await connector(factory)
    assert client.client.timeout.total == connector_clients.REPLY_TIMEOUT_S
    assert client.client.timeout.connect == connector_clients.CONNECT_TIMEOUT_S
    await client.close()
    await factory.close()


async def test_the_token_is_asked_every_turn_so_msal_decides_when_it_expires() -> None:
    tokens = Tokens()
    factory = PooledClientsFactory(Connections(tokens))
    for _ in range(3):
        await (await connector(factory)).close()
    assert tokens.asked == [(AUDIENCE, identity().get_token_scope())] * 3
    await factory.close()


async def test_the_user_token_client_asks_no_token_and_refuses_sign_in_since_no_user_signs_in() -> None:
    tokens = Tokens()
    factory = PooledClientsFactory(Connections(tokens))
    client = await factory.create_user_token_client(None, identity())  # type: ignore[arg-type]
    assert tokens.asked == []
    with pytest.raises(UserSignInUnsupported):
        await client.get_user_token("29:someone", "SERVICE_CONNECTION", "msteams")
    await client.close()
    await factory.close()


# --- through /api/messages --------------------------------------------------------------------------------
@pytest.fixture
async def slow_connector(aiohttp_server) -> Connector:
    """A channel that takes a moment to answer, so turns overlap while they reply."""
    received: list[tuple[str, dict[str, Any], str]] = []

    async def reply(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(0.05)
        received.append((request.path, body, request.headers.get("Authorization", "")))
        return web.json_response({"id": uuid.uuid4().hex})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities", reply)
    app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", reply)
    server = await aiohttp_server(app)
    return Connector(str(server.make_url("/")), received)


async def test_six_agents_at_once_on_a_fresh_process_all_get_their_reply(client, slow_connector: Connector,
                                                                        keys: Keys,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    counter = itertools.count(1)

    async def cold_cache_token(self: MsalAuth, resource_url: str, scopes: list[str],
                               force_refresh: bool = False) -> str:
        await asyncio.sleep(0)  # msal fetching: the other turns run meanwhile, and each gets a token of its own
        return f"outbound-{next(counter)}"

    monkeypatch.setattr(MsalAuth, "get_access_token", cold_cache_token)
    token = keys.token(service_url=slow_connector.url)
    conversations = [f"a:agent-{n}" for n in range(6)]

    async def say_help(conversation: str) -> int:
        body = activity(slow_connector)
        body["conversation"] = {**body["conversation"], "id": conversation}
        return (await client.post("/api/messages", json=body, headers=bearer(token))).status

    for _ in range(5):  # 30 turns, six at a time
        slow_connector.replies.clear()
        assert await asyncio.gather(*(say_help(c) for c in conversations)) == [202] * 6
        answered = sorted(path.split("/")[3] for path, _, _ in slow_connector.replies)
        assert answered == sorted(conversations), json.dumps(answered)
