"""POST /api/messages through create_app: Bot Framework tokens, demo mode, and bodies that are not Activities."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app import create_app
from settings import Settings
from tests.bot.endpoint import BF_KEYS_URL, OUTBOUND_TOKEN, Connector, Keys, activity, app_with_fakes, bearer
from tests.dialogs.fakes import MARGARET, OTHER_TENANT, TENANT


# --- authentication -------------------------------------------------------------------------------------------
async def test_request_without_a_token_is_refused(client, connector: Connector, keys: Keys) -> None:
    response = await client.post("/api/messages", json=activity(connector))
    assert response.status == 401
    assert connector.replies == []


@pytest.mark.parametrize("problem", ["forged", "expired", "wrong_audience", "wrong_issuer", "not_yet_valid",
                                     "garbled"])
async def test_bad_token_is_refused(client, connector: Connector, keys: Keys, problem: str) -> None:
    token = {
        "forged": lambda: keys.token(service_url=connector.url, key=rsa.generate_private_key(public_exponent=65537,
                                                                                             key_size=2048)),
        "expired": lambda: keys.token(service_url=connector.url, lifetime=-3600),
        "wrong_audience": lambda: keys.token(service_url=connector.url, audience=str(uuid.uuid4())),
        "wrong_issuer": lambda: keys.token(service_url=connector.url, issuer="https://login.evil.example/"),
        "not_yet_valid": lambda: keys.token(service_url=connector.url, nbf=int(time.time()) + 3600),
        "garbled": lambda: "not.a.jwt",
    }[problem]()
    response = await client.post("/api/messages", json=activity(connector), headers=bearer(token))
    assert response.status == 401
    assert connector.replies == []


async def test_valid_token_is_served(client, connector: Connector, keys: Keys) -> None:
    token = keys.token(service_url=connector.url)
    response = await client.post("/api/messages", json=activity(connector), headers=bearer(token))
    assert response.status == 202
    [(path, reply, auth)] = connector.replies
    assert path.startswith(f"/v3/conversations/a:{MARGARET.id}/activities")
    assert reply["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert auth == f"Bearer {OUTBOUND_TOKEN}"
    assert keys.asked == [BF_KEYS_URL]


async def test_an_address_refused_too_often_is_told_to_retry_later_while_teams_is_still_served(
        aiohttp_client, settings: Settings, connector: Connector, keys: Keys) -> None:
    client = await aiohttp_client(app_with_fakes(settings.replace(anonymous_refusals_per_minute=3)))
    statuses = [(await client.post("/api/messages", json=activity(connector))).status for _ in range(3)]
    assert statuses == [401, 401, 401]
    for headers in ({}, bearer("not.a.jwt")):  # no token, or one that fails: both anonymous
        limited = await client.post("/api/messages", json=activity(connector), headers=headers)
        assert limited.status == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # A request with a valid token is never refused, so never limited: Teams is served from the same address.
    served = await client.post("/api/messages", json=activity(connector),
                               headers=bearer(keys.token(service_url=connector.url)))
    assert served.status == 202 and connector.replies


async def test_demo_mode_never_limits_the_anonymous_requests_it_serves(aiohttp_client, settings: Settings,
                                                                       connector: Connector) -> None:
    demo = settings.replace(client_id="", client_secret="", bot_anonymous=True, anonymous_refusals_per_minute=1)
    client = await aiohttp_client(app_with_fakes(demo))
    for _ in range(3):
        assert (await client.post("/api/messages", json=activity(connector))).status == 202


async def test_health_checks_need_no_token(client) -> None:
    assert (await client.get("/healthz")).status == 200


async def test_demo_mode_serves_anonymous_requests(demo_client, connector: Connector) -> None:
    response = await demo_client.post("/api/messages", json=activity(connector))
    assert response.status == 202
    [(_, reply, auth)] = connector.replies
    assert "Watchword" in json.dumps(reply) and auth in ("", "Bearer ", "Bearer")


async def test_demo_mode_is_announced_loudly(settings: Settings, caplog) -> None:
    demo = settings.replace(client_id="", bot_anonymous=True)
    with caplog.at_level("WARNING", logger="watchword.bot"):
        create_app(demo)
    assert "DEMO MODE: /api/messages accepts requests WITHOUT authentication" in caplog.text


# --- bodies that are not Activities ---------------------------------------------------------------------------
BAD_BODIES = {
    "not_json": b"{this is not json",
    "not_utf8": b"\xff\xfe\x00{",
    "json_array": b"[1, 2, 3]",
    "missing_type": json.dumps({"channelId": "msteams", "conversation": {"id": "c"}}).encode(),
    "empty_object": b"{}",
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
async def test_malformed_activity_gets_400(demo_client, connector: Connector, name: str) -> None:
    response = await demo_client.post("/api/messages", data=BAD_BODIES[name],
                                      headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "error" in await response.json()
    # and the bot carries on
    assert (await demo_client.post("/api/messages", json=activity(connector))).status == 202


@pytest.mark.parametrize("missing", ["type", "conversation", "from", "serviceUrl", "channelId"])
async def test_activity_missing_a_required_part_gets_400(demo_client, connector: Connector, missing: str) -> None:
    body = activity(connector)
    del body[missing]
    response = await demo_client.post("/api/messages", json=body)
    assert response.status == 400 and missing.split(".")[0] in (await response.json())["error"]


async def test_oversized_body_gets_400_without_being_read(demo_client, connector: Connector) -> None:
    body = activity(connector, text="x" * (300 * 1024))
    response = await demo_client.post("/api/messages", json=body)
    assert response.status == 400 and "256 KB" in (await response.json())["error"]
    assert connector.replies == []


async def test_oversized_chunked_body_gets_400(demo_client, connector: Connector) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 32 * 1024  # 1.25 MB in all, with no Content-Length
        yield json.dumps(activity(connector)).encode()

    response = await demo_client.post("/api/messages", data=chunks(), headers={"Content-Type": "application/json"})
    assert response.status == 400


async def test_unknown_tenant_over_http_is_refused_and_answered(demo_client, connector: Connector) -> None:
    response = await demo_client.post("/api/messages", json=activity(connector, tenant=OTHER_TENANT))
    assert response.status == 202
    [(_, reply, _)] = connector.replies
    assert "isn't set up for your organisation" in json.dumps(reply)


async def test_card_action_invoke_is_answered_with_a_card(demo_client, connector: Connector) -> None:
    body = activity(connector, type="invoke", name="adaptiveCard/action",
                    value={"action": {"type": "Action.Execute", "verb": "answer", "data": {"verb": "answer"}}})
    body.pop("text")
    response = await demo_client.post("/api/messages", json=body)
    assert response.status == 200
    payload = await response.json()
    assert payload["statusCode"] == 200 and payload["type"] == "application/vnd.microsoft.card.adaptive"




async def alan_says_hi(demo_client, connector: Connector, **extra: Any) -> None:
    """The person opens their own chat with Watchword (so it can reach them later)."""
    from tests.dialogs.fakes import ALAN

    alan = activity(connector, text="hi", **extra)
    alan["from"] = {"id": f"29:{ALAN.id}", "name": ALAN.display_name, "aadObjectId": ALAN.id}
    alan["conversation"] = {"id": f"a:{ALAN.id}", "conversationType": "personal", "tenantId": TENANT}
    assert (await demo_client.post("/api/messages", json=alan)).status == 202


async def test_proactive_code_reaches_the_person_through_the_connector(demo_client, connector: Connector) -> None:
    from tests.dialogs.fakes import ALAN

    await alan_says_hi(demo_client, connector)
    connector.replies.clear()
    response = await demo_client.post("/api/messages", json=activity(connector, text="verify alan turing"))
    assert response.status == 202
    await sends_ended(demo_client)  # the code goes out right after the turn's reply
    # (the SDK posts a proactive message as a reply to its continuation activity's id, as Bot Framework does)
    to_alan = [reply for path, reply, _ in connector.replies if path.startswith(f"/v3/conversations/a:{ALAN.id}/")]
    [asked] = to_alan
    assert "Your code for the IT helpdesk" in json.dumps(asked)
    to_agent = [path for path, _, _ in connector.replies if f"a:{MARGARET.id}" in path]
    assert len(to_agent) >= 2  # the person card and the card asking for the code


async def sends_ended(client) -> None:
    """Until the bot's sends to people's own Teams, started after its turns, have ended (with what follows them)."""
    from bot.hosting import BOT

    await client.server.app[BOT].agent.messenger.sent()


async def test_a_code_that_cannot_reach_the_persons_chat_is_not_left_asked_for(demo_client,
                                                                                connector: Connector) -> None:
    """Their chat's service is gone (Teams closed, the app uninstalled): the adapter's turn-error handler swallows
    the failure, yet the agent must not be left asking for a code nobody can see: the questions follow the card that
    asked for it by themselves (which that card is replaced with: tests/dialogs/test_sends_after_the_turn.py)."""

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    await alan_says_hi(demo_client, connector, serviceUrl=gone)
    connector.replies.clear()
    response = await demo_client.post("/api/messages", json=activity(connector, text="verify alan turing"))
    assert response.status == 202
    await sends_ended(demo_client)
    shown = [json.dumps(reply) for _, reply, _ in connector.replies]
    asked = next(i for i, reply in enumerate(shown) if "Ask for the code in their Teams" in reply)
    assert "Submit answer" in shown[-1] and asked < len(shown) - 1  # the first question, after it


async def test_stopping_while_a_code_is_on_its_way_neither_hangs_nor_leaves_it_running_nor_logs_it(
        aiohttp_client, aiohttp_server, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The process stops (SIGTERM: the app's cleanup) while Teams has not yet answered the send of a code: the send
    gets its moment, is then cancelled, and the store and clients close after it; nothing is left running, and the
    code is in no log line."""
    import asyncio
    import logging

    from aiohttp import web

    from bot.proactive import ProactiveMessenger
    from tests.dialogs.fakes import ALAN
    from verification import VerificationSession

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(ProactiveMessenger.stop, "__defaults__", (0.1,))  # the stop's grace, short for the test
    issued: list[str] = []
    issue = VerificationSession.issue_code
    monkeypatch.setattr(VerificationSession, "issue_code", lambda s: issued.append(code := issue(s)) or code)
    armed, hanging, never = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def reply(request: web.Request) -> web.Response:
        body = await request.json()
        if armed.is_set() and request.match_info["conversation"] == f"a:{ALAN.id}" and body.get("attachments"):
            hanging.set()
            await never.wait()  # Teams takes its time with the code card
        return web.json_response({"id": uuid.uuid4().hex})

    teams = web.Application()
    teams.router.add_post("/v3/conversations/{conversation}/activities", reply)
    teams.router.add_post("/v3/conversations/{conversation}/activities/{activity}", reply)
    connector = Connector(str((await aiohttp_server(teams)).make_url("/")))
    client = await aiohttp_client(app_with_fakes(settings.replace(client_id="", client_secret="",
                                                                  bot_anonymous=True)))
    await alan_says_hi(client, connector)
    armed.set()
    assert (await client.post("/api/messages", json=activity(connector, text="verify alan turing"))).status == 202
    await hanging.wait()
    await client.close()  # the app's cleanup: the bot stops, then the store and clients close
    assert not [t for t in asyncio.all_tasks() if "_send_in_background" in t.get_coro().__qualname__]
    [code] = issued
    assert code not in caplog.text
    assert "could not record that this process stops" not in caplog.text
