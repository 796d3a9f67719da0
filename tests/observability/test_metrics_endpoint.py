"""/metrics: off unless asked for, never on the bot's listener, and behind a token when it has one."""

from __future__ import annotations

import asyncio
import gc
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from app import STORE, create_app
from bot.hosting import sweep
from observability.metrics import LOOP_LAG_EVERY_S, METRICS, METRICS_ADDRESS
from settings import Settings

TOKEN = "a-long-random-string-for-the-scraper"
TENANT = "5f0b3c52-9c53-4a43-9d7b-2f0f3b0c3e11"


def settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db").replace(**changes)


async def scrape(client, headers: dict[str, str] | None = None) -> tuple[int, str]:
    host, port = client.app[METRICS_ADDRESS]
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://{host}:{port}/metrics", headers=headers or {}) as response:
        return response.status, await response.text()


async def test_metrics_are_off_by_default(aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path)))
    assert (await client.get("/metrics")).status == 404
    assert METRICS_ADDRESS not in client.app


async def test_metrics_are_served_on_a_listener_of_their_own_never_the_bots(aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, metrics_port=0)))
    assert (await client.get("/metrics")).status == 404  # the bot's listener faces Teams: nothing operational there
    client.app[METRICS].verification_started(self_service=False)
    status, text = await scrape(client)
    assert status == 200
    assert 'watchword_verifications_started_total{kind="agent"} 1.0' in text
    assert "watchword_open_verifications 0.0" in text
    assert client.app[METRICS_ADDRESS][0] == "127.0.0.1"


async def test_metrics_with_a_token_need_it(aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, metrics_port=0, metrics_token=TOKEN)))
    assert (await scrape(client))[0] == 401
    assert (await scrape(client, {"Authorization": "Bearer not-the-token"}))[0] == 401
    status, text = await scrape(client, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "watchword_graph_calls_total" in text


async def test_two_apps_in_one_process_count_apart(aiohttp_client, tmp_path) -> None:
    first, second = create_app(settings(tmp_path)), create_app(settings(tmp_path))
    first[METRICS].password_reset("done")
    assert b'watchword_password_resets_total{outcome="done"} 1.0' in first[METRICS].render()
    assert b"outcome=" not in second[METRICS].render()


async def test_open_verifications_come_from_the_database_and_expired_ones_end_as_timed_out(aiohttp_client,
                                                                                         tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, metrics_port=0)))
    sessions, now = client.app[STORE].sessions, datetime.now(UTC)
    for expires in (now + timedelta(minutes=10), now - timedelta(seconds=1)):
        await sessions.admit(tenant_id=TENANT, target_user_id=str(uuid.uuid4()), agent_id=str(uuid.uuid4()),
                             required_bits=20, expires_at=expires)
    assert "watchword_open_verifications 1.0" in (await scrape(client))[1]  # the overdue one is not open
    await sweep(client.app)
    assert 'watchword_verifications_ended_total{outcome="timed_out"} 1.0' in (await scrape(client))[1]


async def test_the_event_loops_lag_is_measured_while_metrics_are_served(aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, metrics_port=0)))
    await asyncio.sleep(LOOP_LAG_EVERY_S / 2)  # the lag timer waits for its next wake-up
    time.sleep(3 * LOOP_LAG_EVERY_S)  # noqa: ASYNC251 - the loop held on purpose: its wake-up comes >= 2x late
    await asyncio.sleep(2 * LOOP_LAG_EVERY_S)
    text = (await scrape(client))[1]
    count = float(re.search(r"^watchword_event_loop_lag_seconds_count (\S+)$", text, re.M)[1])
    total = float(re.search(r"^watchword_event_loop_lag_seconds_sum (\S+)$", text, re.M)[1])
    assert count >= 2 and total >= 2 * LOOP_LAG_EVERY_S


async def test_full_collections_are_timed_while_metrics_are_served(aiohttp_client, tmp_path) -> None:
    client = await aiohttp_client(create_app(settings(tmp_path, metrics_port=0)))
    gc.collect()
    assert re.search(r'^watchword_gc_pause_seconds_count\{generation="2"\} [1-9]', (await scrape(client))[1], re.M)


async def test_nothing_is_timed_once_the_app_stopped(tmp_path) -> None:
    callbacks = list(gc.callbacks)
    app = create_app(settings(tmp_path, metrics_port=0))
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    assert len(gc.callbacks) == len(callbacks) + 1
    await runner.cleanup()
    assert gc.callbacks == callbacks
