"""The whole bot over HTTP, with the real GraphDirectory talking to devtenant (the tiny organisation).

Demo-mode wiring, as `make run` does it: anonymous /api/messages, devtenant's tenant connected at start and
its "Helpdesk Agents" group as the helpdesk. Margaret Hamilton is in that group; Alan Turing is not.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from app import DIRECTORY, STORE, create_app
from bot.cards import card_text
from bot.sealing import FernetSealer
from devtenant.server import running_devtenant
from devtenant.state import DevTenantConfig
from graph.directory import GraphUnavailable, Unavailability
from settings import Settings
from store import AuditFilter
from tests.devtenant import tiny_org as tiny
from tests.devtenant.helpers import QUICK_SIGN_INS
from tests.store.support import sqlite_copy
from verification.policy import Policy

MAX_QUESTIONS = Policy().max_questions  # what the question cards count up to

KEY = FernetSealer.generate_key()


@pytest.fixture
async def bot_on_devtenant(aiohttp_client, aiohttp_server, tmp_path: Path, sqlite_template: Path
                           ) -> AsyncIterator[tuple[Any, list[dict[str, Any]]]]:
    replies: list[dict[str, Any]] = []

    async def connector(request: web.Request) -> web.Response:
        replies.append(await request.json())
        return web.json_response({"id": uuid.uuid4().hex})

    channel = web.Application()
    channel.router.add_post("/v3/conversations/{c}/activities", connector)
    channel.router.add_post("/v3/conversations/{c}/activities/{a}", connector)
    server = await aiohttp_server(channel)
    org = tiny.tiny_org()
    async with running_devtenant(DevTenantConfig(**QUICK_SIGN_INS), org=org, ca_dir=tmp_path) as dt:
        settings = Settings(database_url=sqlite_copy(sqlite_template, tmp_path).url, bot_anonymous=True,
                            state_key=KEY).with_devtenant(dt.ready)
        client = await aiohttp_client(create_app(settings))
        client.service_url = str(server.make_url("/"))
        client.org = org  # the devtenant's organisation: a test may change it (same event loop)
        yield client, replies
        await client.close()  # while devtenant runs: the app's reads of it end now, not at their timeouts


def message(client: Any, sender: str, name: str, text: str) -> dict[str, Any]:
    return {"type": "message", "id": uuid.uuid4().hex, "channelId": "msteams", "serviceUrl": client.service_url,
            "from": {"id": f"29:{sender}", "name": name, "aadObjectId": sender},
            "recipient": {"id": "28:watchword", "name": "Watchword"},
            "conversation": {"id": f"a:{sender}", "conversationType": "personal", "tenantId": tiny.TENANT_ID},
            "channelData": {"tenant": {"id": tiny.TENANT_ID}}, "text": text}


def texts(replies: list[dict[str, Any]]) -> str:
    out = []
    for reply in replies:
        for attachment in reply.get("attachments") or []:
            out.append(card_text(attachment.get("content")))
        out.append(reply.get("text") or "")
    return "\n".join(out)


async def test_helpdesk_agent_verifies_a_caller_against_the_directory(bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    response = await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton",
                                                                "verify alan turing"))
    assert response.status == 202
    shown = texts(replies)
    assert "Verifying\nAlan Turing\nSoftware Engineer · Engineering · alan.turing@tiny.example" in shown
    assert f"Question 1 of at most {MAX_QUESTIONS}" in shown or "Can't verify this way" in shown
    store = client.app[STORE]
    [session] = await store.sessions.list_for_user(tiny.TENANT_ID, tiny.ALAN)
    assert session.agent_id == tiny.MARGARET


async def test_someone_outside_the_helpdesk_group_gets_the_end_user_experience(bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    await client.post("/api/messages", json=message(client, tiny.ALAN, "Alan Turing", "verify grace hopper"))
    assert "Only the IT helpdesk can verify callers" in texts(replies)


async def test_privileged_administrator_in_the_directory_is_refused(bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify ada"))
    shown = texts(replies)
    assert "Refused: privileged administrator" in shown and "Global Administrator" in shown
    assert "Question 1" not in shown
    assert json.dumps(replies).count("Temporary password") == 0


async def test_someone_only_eligible_for_global_administrator_through_pim_is_refused(bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    tiny.make_eligible(client.org, tiny.ALAN, tiny.GLOBAL_ADMIN_ROLE)
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan turing"))
    shown = texts(replies)
    assert "Refused: privileged administrator" in shown
    assert "eligible for a privileged administrator role through PIM (Global Administrator)" in shown
    assert "Question 1" not in shown
    assert json.dumps(replies).count("Temporary password") == 0


async def test_an_agent_is_told_graph_cannot_be_reached_not_that_they_are_no_agent(bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    directory = client.app[DIRECTORY]
    directory._graph_url = "https://127.0.0.1:9"  # Graph unreachable: nothing listens there
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan"))
    shown = texts(replies)
    assert "Microsoft Graph can't be reached, try again in a minute" in shown
    assert "Only the IT helpdesk" not in shown and "not in your organisation's helpdesk group" not in shown
    rows = (await client.app[STORE].audit.query(AuditFilter(action="verification.refused"))).entries
    assert [r.outcome for r in rows] == ["graph_unreachable"]


async def test_a_membership_check_that_times_out_is_unknown_not_no(bot_on_devtenant, monkeypatch) -> None:
    client, replies = bot_on_devtenant
    directory = client.app[DIRECTORY]

    async def slow(*args: Any, **kwargs: Any) -> bool:
        raise GraphUnavailable("membership check: timed out", Unavailability.TIMED_OUT)

    monkeypatch.setattr(directory, "group_member_ids", slow)  # the member list cannot be read: ask per person
    monkeypatch.setattr(directory, "is_member_of", slow)
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan"))
    shown = texts(replies)
    assert "try again in a minute" in shown and "Only the IT helpdesk" not in shown
    rows = (await client.app[STORE].audit.query(AuditFilter(action="verification.refused"))).entries
    assert [r.outcome for r in rows] == ["membership_unknown"]
    monkeypatch.undo()  # Graph answers again: the retry works, nothing "no" was remembered
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan turing"))
    assert "Verifying\nAlan Turing" in texts(replies)


async def found_in_the_snapshot_then_changed(client: Any, change: Any) -> None:
    """The tenant's directory snapshot complete and holding Alan Turing (the search answers from it, asking Graph
    nothing), then Alan changed in the directory, after the snapshot."""
    directory = client.app[DIRECTORY]
    await directory.settle()  # the start-up refresh: the snapshot
    held = directory._loader.tenant_facts.directory(tiny.TENANT_ID)  # noqa: SLF001 - which path the search takes
    assert held is not None and [p.id for p in held.people_index.find("alan turing", 8)] == [tiny.ALAN]
    change(client.org)


async def test_someone_disabled_since_the_directory_snapshot_is_found_and_refused_at_the_start(
        bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant

    def disable(org: Any) -> None:
        org.users[tiny.ALAN].account_enabled = False
        org.touch(org.users[tiny.ALAN])

    await found_in_the_snapshot_then_changed(client, disable)
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan turing"))
    shown = texts(replies)
    assert "has a disabled account" in shown and "Question 1" not in shown
    assert not await client.app[STORE].sessions.list_for_user(tiny.TENANT_ID, tiny.ALAN)


async def test_someone_deleted_since_the_directory_snapshot_is_found_and_reported_gone_at_the_start(
        bot_on_devtenant) -> None:
    client, replies = bot_on_devtenant
    await found_in_the_snapshot_then_changed(client, lambda org: org.remove_user(tiny.ALAN))
    await client.post("/api/messages", json=message(client, tiny.MARGARET, "Margaret Hamilton", "verify alan turing"))
    shown = texts(replies)
    assert "Alan Turing is no longer in the directory" in shown and "Question 1" not in shown
    assert not await client.app[STORE].sessions.list_for_user(tiny.TENANT_ID, tiny.ALAN)
