"""The app factory and the demo-mode entry point: health, readiness, and the ready line for scripts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from devtenant.server import running_devtenant
from devtenant.state import DevTenantConfig
from settings import Settings
from tests.devtenant.helpers import QUICK_SIGN_INS
from tests.devtenant.tiny_org import tiny_org

ROOT = Path(__file__).resolve().parent.parent


async def _readyz_on_devtenant(aiohttp_client, tmp_path: Path, *, unconsented: bool) -> tuple[int, dict]:
    async with running_devtenant(DevTenantConfig(unconsented=unconsented, **QUICK_SIGN_INS), org=tiny_org(),
                                 ca_dir=tmp_path) as dt:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db").with_devtenant(dt.ready)
        client = await aiohttp_client(create_app(settings))
        response = await client.get("/readyz")
        answer = response.status, await response.json()
        await client.close()  # while devtenant runs: the app's start-up reads of it end, not wait for a timeout
    return answer


async def test_health_answers_without_touching_dependencies(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db")))
    response = await client.get("/healthz")
    assert response.status == 200 and (await response.json())["status"] == "ok"


async def test_ready_when_store_answers_and_graph_token_is_issued(aiohttp_client, tmp_path):
    status, body = await _readyz_on_devtenant(aiohttp_client, tmp_path, unconsented=False)
    assert status == 200
    assert body == {"ready": True, "checks": {"store": "ok", "graph": "ok"}}


async def test_not_ready_says_why_when_the_tenant_has_not_consented(aiohttp_client, tmp_path):
    status, body = await _readyz_on_devtenant(aiohttp_client, tmp_path, unconsented=True)
    assert status == 503
    assert body["checks"] == {"store": "ok", "graph": "no token: invalid_client"}


@pytest.mark.e2e
def test_make_run_prints_one_ready_line_ends_with_the_console_and_whom_to_sign_in_as_stays_quiet_and_stops_on_sigterm(
        tmp_path):
    # One `python app.py` as `make run` starts it (the Playground too, when installed): starting it is most of the
    # cost, so the ready line, the welcome and the quiet log are checked on the same run.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHWORD_", "CONNECTIONS__"))}
    env.update(WATCHWORD_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/demo.db", WATCHWORD_DEMO_USERS="40",
               WATCHWORD_DEMO="true")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["app"].startswith("http://127.0.0.1:")
        assert ready["devtenant"]["graph"].endswith("/v1.0") and ready["devtenant"]["authority"].startswith("https://")
        import urllib.request

        for _ in range(3):  # Graph traffic that used to log a line per request
            with urllib.request.urlopen(ready["app"] + "/readyz", timeout=10) as response:  # noqa: S310 - loopback
                assert json.load(response)["ready"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "DEMO MODE" in err
    assert ready["devtenant"]["client_secret"] not in err  # the secret is for scripts, never for logs
    block = err[err.index("Watchword is running in demo mode"):]
    assert f"Admin console   {ready['app']}/admin" in block
    assert re.search(r"sign in as [^(]+ \([^@]+@[^)]+\), one of \"Watchword Admins\"", block), block
    assert "devtenant.access" not in err and "httpx" not in err  # per-request lines are for DEBUG
    assert "is not set" not in err  # demo mode says once that it made its keys, without a warning
    assert err.count("Demo mode made WATCHWORD_SESSION_KEY and WATCHWORD_STATE_KEY") == 1


async def test_not_ready_when_graph_does_not_answer_although_a_token_is_issued(aiohttp_client, tmp_path):
    async with running_devtenant(DevTenantConfig(**QUICK_SIGN_INS), org=tiny_org(), ca_dir=tmp_path) as dt:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db").with_devtenant(dt.ready)
        # Tokens come from devtenant; Graph is somewhere nothing answers.
        settings = settings.replace(graph_url="https://127.0.0.1:9/v1.0")
        client = await aiohttp_client(create_app(settings))
        response = await client.get("/readyz")
        body = await response.json()
        await client.close()  # while devtenant runs (see _readyz_on_devtenant)
    assert response.status == 503
    assert body["checks"]["store"] == "ok" and body["checks"]["graph"].startswith("readiness check: connection failed")


async def test_a_running_watchword_holds_its_chats_and_frees_them_the_moment_it_stops(aiohttp_client, tmp_path):
    from resources import STORE
    from store import conversation_key, open_store

    url = f"sqlite+aiosqlite:///{tmp_path}/w.db"
    client = await aiohttp_client(create_app(Settings(database_url=url)))
    chat, turns = conversation_key("msteams", "a:chat"), client.app[STORE].turns
    assert (await turns.begin(None, chat, turns.holder()))[1]  # a turn the stop will cut short
    other = await open_store(url)  # another instance
    try:
        assert not await other.turns.take_conversation(chat, other.turns.holder()), "alive: its turn keeps the chat"
        await client.close()
        assert await other.turns.take_conversation(chat, other.turns.holder()), "stopped: the chat is free at once"
    finally:
        await other.close()
