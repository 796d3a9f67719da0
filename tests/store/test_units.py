"""Units of work on a SQLite file run whole on the store's SQLite thread, never on the event loop
(store/units.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from store import Store
from tests.store.support import FakeClock, StoreTarget, sqlite_copy


@pytest.fixture
async def store(tmp_path: Path, sqlite_template: Path):
    opened = await sqlite_copy(sqlite_template, tmp_path).open(FakeClock())
    await opened.units.write(make_probe_table)
    try:
        yield opened
    finally:
        await opened.close()


def database_file(store: Store) -> str:
    return str(store.engine.url.database)


def make_probe_table(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE IF NOT EXISTS unit_probe (id TEXT PRIMARY KEY)"))


def count_rows(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM unit_probe")).scalar_one())


def add_row(row_id: str):
    """A unit that writes one row and says which thread it ran on."""
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO unit_probe (id) VALUES (:id)"), {"id": row_id})
        return threading.current_thread().name
    return work


async def test_a_unit_runs_on_the_stores_sqlite_thread_not_on_the_event_loop(store: Store) -> None:
    where = await store.units.write(add_row("11111111-1111-4111-8111-111111111111"))
    assert where.startswith("watchword-sqlite") and where != threading.current_thread().name
    assert await store.units.read(count_rows) == 1


async def test_a_unit_waits_on_the_thread_while_another_connection_holds_the_lock(store: Store) -> None:
    other = sqlite3.connect(database_file(store), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (or the async engine) is writing
    pending = asyncio.create_task(store.units.write(add_row("22222222-2222-4222-8222-222222222222")))
    await asyncio.sleep(0.2)
    assert not pending.done()  # it waits, on the thread: the event loop (this test) goes on meanwhile
    other.execute("COMMIT")
    where = await asyncio.wait_for(pending, 10)
    assert where.startswith("watchword-sqlite")
    assert await store.units.read(count_rows) == 1
    other.close()


async def test_a_unit_that_raises_writes_nothing(store: Store) -> None:
    def half_then_fail(conn: Connection) -> None:
        add_row("33333333-3333-4333-8333-333333333333")(conn)
        raise RuntimeError("crash mid-unit")

    with pytest.raises(RuntimeError, match="crash mid-unit"):
        await store.units.write(half_then_fail)
    assert await store.units.read(count_rows) == 0
    await store.units.write(add_row("44444444-4444-4444-8444-444444444444"))  # the connection is still good
    assert await store.units.read(count_rows) == 1


async def test_in_memory_sqlite_runs_units_on_the_async_engine() -> None:
    memory = await StoreTarget("sqlite", "sqlite+aiosqlite://").open(FakeClock())
    try:
        assert not memory.units.threaded
        await memory.units.write(make_probe_table)
        await memory.units.write(add_row("66666666-6666-4666-8666-666666666666"))
        assert await memory.units.read(count_rows) == 1
    finally:
        await memory.close()


async def test_every_sqlite_connection_keeps_a_small_page_cache(store: Store) -> None:
    """A page cache fills as the database grows and then stays, on each connection: bounded to SQLITE_CACHE_KIB, not
    SQLite's 2 MB a connection."""
    from store.db import SQLITE_CACHE_KIB

    def cache_kib(conn: Connection) -> int:
        return -int(conn.execute(text("PRAGMA cache_size")).scalar_one())

    assert await store.units.read(cache_kib) == SQLITE_CACHE_KIB  # the SQLite thread's connection
    async with store.engine.connect() as conn:  # the pool's
        assert await conn.run_sync(cache_kib) == SQLITE_CACHE_KIB
