"""A database Watchword cannot write (read-only, full) is found at start and explained, never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from store import StoreUnwritableError, open_store
from store import db as store_db

ROOT = Path(__file__).resolve().parents[2]


def read_only_url(path: Path) -> str:
    # SQLite's own read-only mode: a chmod would not stop the root user the tests may run as
    return f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"


async def migrated(tmp_path: Path) -> Path:
    path = tmp_path / "watchword.db"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    await store.close()
    return path


async def test_a_read_only_database_is_refused_at_start_with_how_to_fix_it(tmp_path: Path) -> None:
    path = await migrated(tmp_path)
    with pytest.raises(StoreUnwritableError) as raised:
        await open_store(read_only_url(path))
    message = str(raised.value)
    assert "read-only" in message and str(path) in message and "write access" in message
    assert not (Path.cwd() / "file:").exists()  # the URI's "file:" is not taken for a folder to create


async def test_a_full_database_is_refused_at_start_with_how_to_fix_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    original = store_db._sqlite_pragmas

    def tiny_disk(in_memory: bool):
        pragmas = original(in_memory)

        def on_connect(dbapi_connection, record) -> None:
            pragmas(dbapi_connection, record)
            dbapi_connection.cursor().execute("PRAGMA max_page_count = 8")  # SQLite reports SQLITE_FULL past it

        return on_connect

    monkeypatch.setattr(store_db, "_sqlite_pragmas", tiny_disk)
    with pytest.raises(StoreUnwritableError) as raised:
        await open_store(f"sqlite+aiosqlite:///{tmp_path}/new.db")
    assert "full" in str(raised.value) and "free space" in str(raised.value)


def test_watchword_stops_with_a_message_and_a_non_zero_exit_not_a_traceback(tmp_path: Path) -> None:
    path = asyncio.run(migrated(tmp_path))
    env = {**os.environ, "WATCHWORD_DATABASE_URL": read_only_url(path), "WATCHWORD_PORT": "0",
           "WATCHWORD_CLIENT_ID": "22222222-2222-4222-8222-222222222222", "WATCHWORD_CLIENT_SECRET": "s",
           "WATCHWORD_PUBLIC_URL": "https://watchword.example.com",
           "WATCHWORD_LOGIN_URL": "https://login.invalid", "WATCHWORD_GRAPH_URL": "https://graph.invalid/v1.0"}
    command = [sys.executable, str(ROOT / "app.py")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 3
    assert "watchword: database error: Watchword cannot write to the SQLite database" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrating_once_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from store.__main__ import main

    assert main(["migrate", "--database-url", f"sqlite+aiosqlite:///{tmp_path}/w.db"]) == 0
    assert main(["migrate", "--database-url", read_only_url(tmp_path / "w.db")]) == 3
    assert "read-only" in capsys.readouterr().err
