"""The channel clients outlive the turn: one HTTP session per channel endpoint and token (bot/connector_clients.py)."""

from __future__ import annotations

from typing import Any

from microsoft_agents.hosting.core import ClaimsIdentity

from bot.connector_clients import KeptClientsFactory

TEAMS = "https://smba.trafficmanager.net/emea/"
OTHER_REGION = "https://smba.trafficmanager.net/amer/"
AUDIENCE = "https://api.botframework.com"


class Tokens:
    """A token provider whose token rotates when the test says so."""

    def __init__(self) -> None:
        self.token = "token-1"
        self.asked: list[tuple[str, list[str]]] = []

    async def get_access_token(self, audience: str, scopes: list[str], force_refresh: bool = False) -> str:
        self.asked.append((audience, scopes))
        return self.token


class Connections:
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def get_token_provider(self, claims_identity: Any, service_url: str) -> Tokens:
        return self.tokens


def identity() -> ClaimsIdentity:
    return ClaimsIdentity({"aud": "bot-app-id", "appid": "bot-app-id"}, authentication_type="Bearer")


async def connector(factory: KeptClientsFactory, service_url: str = TEAMS) -> Any:
    return await factory.create_connector_client(None, identity(), service_url, AUDIENCE)


async def test_turns_share_one_client_and_the_turns_close_does_not_close_it() -> None:
    factory = KeptClientsFactory(Connections(Tokens()))
    first = await connector(factory)
    await first.close()  # what the SDK does when the turn ends
    second = await connector(factory)
    assert second is first and not first.client.closed
    assert first.client.headers["Authorization"] == "Bearer token-1"
    assert first.client.headers["User-Agent"].startswith("agents-sdk-py/")
    await factory.close()
    assert first.client.closed


async def test_each_channel_endpoint_has_its_own_client() -> None:
    factory = KeptClientsFactory(Connections(Tokens()))
    emea, amer = await connector(factory, TEAMS), await connector(factory, OTHER_REGION)
    assert emea is not amer and emea.base_uri == TEAMS and amer.base_uri == OTHER_REGION
    await factory.close()


async def test_a_rotated_token_gets_a_new_client_and_the_one_two_rotations_back_is_closed() -> None:
    tokens = Tokens()
    factory = KeptClientsFactory(Connections(tokens))
    first = await connector(factory)
    tokens.token = "token-2"
    second = await connector(factory)
    assert second is not first and second.client.headers["Authorization"] == "Bearer token-2"
    assert not first.client.closed  # a turn that began before the rotation may still be replying with it
    tokens.token = "token-3"
    third = await connector(factory)
    assert first.client.closed and not second.client.closed and not third.client.closed
    await factory.close()
    assert second.client.closed and third.client.closed


async def test_the_token_is_asked_every_turn_so_msal_decides_when_it_expires() -> None:
    tokens = Tokens()
    factory = KeptClientsFactory(Connections(tokens))
    for _ in range(3):
        await connector(factory)
    assert tokens.asked == [(AUDIENCE, identity().get_token_scope())] * 3
    await factory.close()


async def test_one_user_token_client_without_a_token_since_no_user_signs_in() -> None:
    tokens = Tokens()
    factory = KeptClientsFactory(Connections(tokens))
    first = await factory.create_user_token_client(None, identity())  # type: ignore[arg-type]
    await first.close()
    second = await factory.create_user_token_client(None, identity())  # type: ignore[arg-type]
    assert second is first and "Authorization" not in first.client.headers and tokens.asked == []
    await factory.close()
    assert first.client.closed
