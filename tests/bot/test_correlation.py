"""One Teams turn, one correlation id: on its JSON log lines, on its Graph requests (`client-request-id`) and in
its audit rows, so an operator can follow a turn from the log to Microsoft's support and to the audit log. A console
request and each pass of the background sweep get one the same way."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from app import STORE, create_app
from bot.hosting import sweep
from bot.sealing import FernetSealer
from devtenant.server import running_devtenant
from devtenant.state import DevTenantConfig
from observability.logs import JsonFormatter
from resources import GRAPH_HTTP
from settings import Settings
from store import AuditFilter
from tests.admin.support import sign_in_as
from tests.devtenant import tiny_org as tiny
from tests.devtenant.helpers import QUICK_SIGN_INS
from tests.store.support import sqlite_copy


@pytest.fixture
async def bot(aiohttp_client, aiohttp_server, tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Any]:
    async def connector(request: web.Request) -> web.Response:
        return web.json_response({"id": uuid.uuid4().hex})

    channel = web.Application()
    channel.router.add_post("/v3/conversations/{c}/activities", connector)
    channel.router.add_post("/v3/conversations/{c}/activities/{a}", connector)
    server = await aiohttp_server(channel)
    async with running_devtenant(DevTenantConfig(**QUICK_SIGN_INS), org=tiny.tiny_org(), ca_dir=tmp_path) as dt:
        settings = Settings(database_url=sqlite_copy(sqlite_template, tmp_path).url, bot_anonymous=True,
                            state_key=FernetSealer.generate_key()).with_devtenant(dt.ready)
        client = await aiohttp_client(create_app(settings))
        client.service_url = str(server.make_url("/"))
        yield client
        await client.close()  # while devtenant runs: the app's reads of it end now, not at their timeouts


@pytest.fixture
def json_log() -> Any:
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.removeHandler(handler)
    root.setLevel(level)


def verify(client: Any, text: str) -> dict[str, Any]:
    sender = tiny.MARGARET
    return {"type": "message", "id": uuid.uuid4().hex, "channelId": "msteams", "serviceUrl": client.service_url,
            "from": {"id": f"29:{sender}", "name": "Margaret Hamilton", "aadObjectId": sender},
            "recipient": {"id": "28:watchword", "name": "Watchword"},
            "conversation": {"id": f"a:{sender}", "conversationType": "personal", "tenantId": tiny.TENANT_ID},
            "channelData": {"tenant": {"id": tiny.TENANT_ID}}, "text": text}


async def test_a_turns_log_lines_graph_requests_and_audit_rows_share_one_correlation_id(bot, json_log) -> None:
    await connected(bot)  # start-up's own Graph requests are done (they have an id of their own)
    sent: list[str | None] = []

    async def seen(request: httpx.Request) -> None:
        sent.append(request.headers.get("client-request-id"))

    bot.app[GRAPH_HTTP].event_hooks["request"].append(seen)
    assert (await bot.post("/api/messages", json=verify(bot, "verify alan turing"))).status == 202

    rows = (await bot.app[STORE].audit.query(AuditFilter(action=("verification.requested", "verification.search",
                                                                 "verification.started")))).entries
    assert len(rows) == 3
    [turn] = {row.details["correlation_id"] for row in rows}
    assert str(uuid.UUID(turn)) == turn  # a GUID, as Graph's client-request-id wants
    assert turn in sent and set(sent) == {turn}, sent
    assert (await bot.app[STORE].audit.verify_chain()).ok  # the id is hashed with the row, like any detail
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    ours = [line for line in lines if line.get("correlation_id") == turn]
    assert ours and all({"time", "level", "logger", "message"} <= line.keys() for line in ours)

    assert (await bot.post("/api/messages", json=verify(bot, "help"))).status == 202  # the next turn: its own id
    later = {json.loads(line).get("correlation_id") for line in json_log.getvalue().splitlines()[len(lines):]}
    assert later - {None} and turn not in later


def correlated_lines(json_log: io.StringIO, since: int = 0) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, json_log.getvalue().splitlines()[since:]) if "correlation_id" in line]


async def connected(client: Any) -> None:
    """The configured tenant recorded as connected (app start does it in the background)."""
    for _ in range(500):
        if await client.app[STORE].tenants.get(tiny.TENANT_ID) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the configured tenant was never recorded as connected")


async def test_a_console_actions_log_lines_graph_requests_and_audit_rows_share_one_correlation_id(bot, json_log
                                                                                                  ) -> None:
    await connected(bot)
    sent: list[str | None] = []

    async def seen(request: httpx.Request) -> None:
        sent.append(request.headers.get("client-request-id"))

    bot.app[GRAPH_HTTP].event_hooks["request"].append(seen)
    session = sign_in_as(bot)
    before = len(json_log.getvalue().splitlines())
    response = await bot.post("/admin/entra/check", data={"csrf_token": session.csrf}, allow_redirects=False)
    assert response.status == 303

    [row] = (await bot.app[STORE].audit.query(AuditFilter(action="entra.check"))).entries
    action = row.details["correlation_id"]
    assert str(uuid.UUID(action)) == action
    assert sent and set(sent) == {action}  # each Graph request of the check
    assert {line["correlation_id"] for line in correlated_lines(json_log, before)} <= {action}

    # an anonymous caller's refused POST: its own id, on the log line and the audit row
    bot.session.cookie_jar.clear()
    before = len(json_log.getvalue().splitlines())
    assert (await bot.post("/admin/policy", data={"csrf_token": "forged"})).status == 403
    [refused] = (await bot.app[STORE].audit.query(AuditFilter(action="console.request_refused"))).entries
    other = refused.details["correlation_id"]
    assert other != action
    assert [line["correlation_id"] for line in correlated_lines(json_log, before)
            if "refused" in line["message"]] == [other]


async def test_each_pass_of_the_background_sweep_has_a_correlation_id_of_its_own(bot, json_log) -> None:
    sessions, now = bot.app[STORE].sessions, datetime.now(UTC)
    ids = []
    for _ in range(2):
        await sessions.admit(tenant_id=tiny.TENANT_ID, target_user_id=str(uuid.uuid4()), agent_id=str(uuid.uuid4()),
                             required_bits=20, expires_at=now - timedelta(seconds=1))
        before = len(json_log.getvalue().splitlines())
        await sweep(bot.app)
        [line] = [line for line in correlated_lines(json_log, before) if "timed out" in line["message"]]
        assert str(uuid.UUID(line["correlation_id"])) == line["correlation_id"]
        ids.append(line["correlation_id"])
    assert ids[0] != ids[1]
