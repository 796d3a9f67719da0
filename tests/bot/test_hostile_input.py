"""POST /api/messages under hostile input: never a 5xx, and a channel that never answers holds no turn forever."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from microsoft_agents.hosting.core.authorization.jwt.jwt_token_validator import JwtTokenValidator, _JwkClientManager

from bot import connector_clients
from tests.bot.endpoint import APP_ID, Connector, Keys, activity, bearer


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [200, 1_000, 50_000])
async def test_a_body_nested_deep_gets_400(demo_client, connector: Connector, depth: int) -> None:
    body = json.dumps(activity(connector)).replace('"text": "help"', f'"text": "help", "value": {nested(depth)}')
    response = await demo_client.post("/api/messages", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 400 and "nested" in (await response.json())["error"]
    assert (await demo_client.post("/api/messages", json=activity(connector))).status == 202


@pytest.mark.parametrize("service_url", ["not a url", "/v3/relative", "ftp://smba.example/", "https://",
                                         "http://smba.trafficmanager.net/emea/", "javascript:alert(1)",
                                         "https://user:pw@smba.trafficmanager.net/", "https://[::1"])
async def test_a_service_url_that_is_not_an_absolute_https_url_gets_400(client, connector: Connector, keys: Keys,
                                                                        service_url: str) -> None:
    token = keys.token(service_url=service_url)
    response = await client.post("/api/messages", json={**activity(connector), "serviceUrl": service_url},
                                 headers=bearer(token))
    assert response.status == 400 and "serviceUrl" in (await response.json())["error"]
    assert connector.replies == []


async def test_plain_http_is_served_only_to_a_channel_on_this_machine(demo_client, connector: Connector) -> None:
    # devtenant, the Playground and these tests' fake connector listen on loopback over http; nothing else may
    assert (await demo_client.post("/api/messages", json=activity(connector))).status == 202
    for elsewhere in ("http://smba.example.com/", "http://10.0.0.5/", "http://169.254.169.254/latest/"):
        response = await demo_client.post("/api/messages", json={**activity(connector), "serviceUrl": elsewhere})
        assert response.status == 400, elsewhere


@pytest.mark.parametrize("header", [{}, {"kid": ""}, {"kid": ["a"]}])
async def test_a_bearer_token_without_a_usable_kid_gets_401(client, connector: Connector, keys: Keys,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            header: dict[str, object]) -> None:
    # the SDK's own key lookup (which reads header["kid"] before asking anyone), not the tests' stand-in
    monkeypatch.setattr(JwtTokenValidator, "_jwk_client_manager", _JwkClientManager())
    token = _signed({"aud": APP_ID, "iss": "https://api.botframework.com", "serviceurl": connector.url},
                    keys, header)
    response = await client.post("/api/messages", json=activity(connector), headers=bearer(token))
    assert response.status == 401
    assert connector.replies == []


@pytest.mark.parametrize("token", ["a.b", "....", "eyJhbGciOiJub25lIn0.e30.", "x" * 9000])
async def test_a_garbled_bearer_token_gets_401(client, connector: Connector, keys: Keys, token: str) -> None:
    response = await client.post("/api/messages", json=activity(connector), headers=bearer(token))
    assert 400 <= response.status < 500


def _signed(claims: dict[str, object], keys: Keys, header: dict[str, object]) -> str:
    """A JWT with exactly this header (PyJWT refuses to write a kid that is not a string)."""
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signing_input = f"{part({'alg': 'RS256', 'typ': 'JWT', **header})}.{part(claims)}"
    signature = keys.private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


async def test_a_channel_that_never_answers_does_not_hold_the_turn(demo_client, aiohttp_server,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connector_clients, "REPLY_TIMEOUT_S", 0.5)
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    silent = web.Application()
    silent.router.add_post("/v3/conversations/{conversation}/activities", hang)
    silent.router.add_post("/v3/conversations/{conversation}/activities/{activity}", hang)
    server = await aiohttp_server(silent)
    body = activity(Connector(str(server.make_url("/"))))
    response = await asyncio.wait_for(demo_client.post("/api/messages", json=body), timeout=30)
    assert response.status < 500
    never.set()


@pytest.mark.parametrize("name", ["composeExtension/query", "task/fetch", "", "x" * 300])
async def test_an_invoke_watchword_does_not_handle_is_a_client_error_not_501(demo_client, connector: Connector,
                                                                             name: str) -> None:
    body = {**activity(connector), "type": "invoke", "name": name, "value": {"commandId": "search"}}
    body.pop("text")
    response = await demo_client.post("/api/messages", json=body)
    assert response.status == 400
