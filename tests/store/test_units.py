"""Units of work run whole on threads of the store's own, never on the event loop (store/units.py): on a SQLite file
on its SQLite thread, on PostgreSQL on a few threads each with its own connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from store import Store, store_busy
from store import db as store_db
from tests.store.support import (
    POSTGRES_SKIP_REASON,
    FakeClock,
    StoreTarget,
    reset_postgres_schema,
    sqlite_copy,
)


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


async def raising_unit_writes_nothing(store: Store) -> None:
    """A unit that raises half-way leaves nothing written, and the next unit on the same thread runs as usual."""
    def half_then_fail(conn: Connection) -> None:
        add_row("33333333-3333-4333-8333-333333333333")(conn)
        raise RuntimeError("crash mid-unit")

    with pytest.raises(RuntimeError, match="crash mid-unit"):
        await store.units.write(half_then_fail)
    assert await store.units.read(count_rows) == 0
    await store.units.write(add_row("44444444-4444-4444-8444-444444444444"))  # the connection is still good
    assert await store.units.read(count_rows) == 1


async def test_a_unit_that_raises_writes_nothing(store: Store) -> None:
    await raising_unit_writes_nothing(store)


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


# --- PostgreSQL: a few threads, each with its own connection ----------------------------------------------------
@pytest.fixture
async def postgres(postgres_schema: StoreTarget | None, monkeypatch: pytest.MonkeyPatch):
    if postgres_schema is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    monkeypatch.setattr(store_db, "POOL_WAIT_S", 0.5)  # how long a unit waits for a thread, read when the store opens
    await reset_postgres_schema(postgres_schema)
    opened = await postgres_schema.open(FakeClock())
    await opened.units.write(make_probe_table)
    await opened.units.write(lambda conn: conn.execute(text("DELETE FROM unit_probe")))
    try:
        yield opened
    finally:
        await opened.units.write(lambda conn: conn.execute(text("DROP TABLE unit_probe")))
        await opened.close()


async def hold_row(postgres: Store, row_id: str):
    """Another transaction (another instance's turn) that has the row locked until it commits."""
    other = await postgres.engine.connect()
    await other.begin()
    await other.execute(text("SELECT id FROM unit_probe WHERE id = :id FOR UPDATE"), {"id": row_id})
    return other


def touch_row(row_id: str):
    """A unit that locks the row (waiting for whoever has it) and says which thread it ran on."""
    def work(conn: Connection) -> str:
        conn.execute(text("SELECT id FROM unit_probe WHERE id = :id FOR UPDATE"), {"id": row_id})
        return threading.current_thread().name
    return work


@pytest.mark.postgres
async def test_a_postgresql_unit_runs_on_a_thread_of_its_own_not_on_the_event_loop(postgres: Store) -> None:
    assert postgres.units.threaded
    where = await postgres.units.write(add_row("11111111-1111-4111-8111-111111111111"))
    assert where.startswith("watchword-postgres") and where != threading.current_thread().name
    assert await postgres.units.read(count_rows) == 1


@pytest.mark.postgres
async def test_a_postgresql_unit_waiting_for_a_row_lock_holds_up_neither_the_loop_nor_other_units(
        postgres: Store) -> None:
    locked, free = "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
    await postgres.units.write(add_row(locked))
    other = await hold_row(postgres, locked)
    try:
        waiting = asyncio.create_task(postgres.units.write(touch_row(locked)))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # it waits for the lock, on its thread: the event loop (this test) goes on
        assert (await postgres.units.write(add_row(free))).startswith("watchword-postgres")  # and so do other units
    finally:
        await other.commit()
        await other.close()
    assert (await asyncio.wait_for(waiting, 10)).startswith("watchword-postgres")
    assert await postgres.units.read(count_rows) == 2


@pytest.mark.postgres
async def test_a_postgresql_unit_that_raises_writes_nothing(postgres: Store) -> None:
    await raising_unit_writes_nothing(postgres)


@pytest.mark.postgres
async def test_a_postgresql_read_that_tries_to_write_is_refused_and_writes_nothing(postgres: Store) -> None:
    # A read ends with COMMIT there (store/units.py: psycopg keeps its prepared statements), so it runs READ ONLY.
    with pytest.raises(DBAPIError):
        await postgres.units.read(add_row("33333333-3333-4333-8333-333333333333"))
    assert await postgres.units.read(count_rows) == 0
    await postgres.units.write(add_row("44444444-4444-4444-8444-444444444444"))  # writes still write
    assert await postgres.units.read(count_rows) == 1


@pytest.mark.postgres
async def test_postgresql_statements_stay_prepared_across_reads(postgres_schema: StoreTarget | None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # psycopg prepares a statement once it has run it prepare_threshold times on a connection and forgets them all on
    # a ROLLBACK: reads end with COMMIT so they stay, and PostgreSQL does not parse and plan each statement again.
    if postgres_schema is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    monkeypatch.setattr(store_db, "POSTGRES_UNIT_THREADS", 1)  # one connection, so every read lands on it
    opened = await postgres_schema.open(FakeClock())
    try:
        for _ in range(10):
            await opened.units.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        prepared = await opened.units.read(
            lambda conn: conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one())
        assert prepared >= 1
    finally:
        await opened.close()


@pytest.mark.postgres
async def test_a_postgresql_unit_that_gets_no_thread_in_time_is_busy_and_does_nothing(postgres: Store) -> None:
    locked = "66666666-6666-4666-8666-666666666666"
    await postgres.units.write(add_row(locked))
    other = await hold_row(postgres, locked)
    try:
        waiting = [asyncio.create_task(postgres.units.write(touch_row(locked)))
                   for _ in range(store_db.POSTGRES_UNIT_THREADS)]  # every thread waits for the lock
        await asyncio.sleep(0.2)
        with pytest.raises(Exception) as raised:
            await postgres.units.write(add_row("77777777-7777-4777-8777-777777777777"))
        assert store_busy(raised.value)
    finally:
        await other.commit()
        await other.close()
    await asyncio.wait_for(asyncio.gather(*waiting), 10)
    assert await postgres.units.read(count_rows) == 1


@pytest.mark.postgres
async def test_closing_the_store_waits_for_its_postgresql_units(postgres_schema: StoreTarget | None) -> None:
    if postgres_schema is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    await reset_postgres_schema(postgres_schema)
    closing = await postgres_schema.open(FakeClock())
    finished = threading.Event()

    def slow(conn: Connection) -> None:
        conn.execute(text("SELECT pg_sleep(0.3)"))
        conn.execute(text("UPDATE audit_chain_head SET last_seq = 41 WHERE id = 1"))
        finished.set()

    running = asyncio.create_task(closing.units.write(slow))
    await asyncio.sleep(0.05)
    await closing.close()
    assert finished.is_set()
    await running
    reopened = await postgres_schema.open(FakeClock())
    try:
        assert await reopened.units.read(
            lambda conn: conn.execute(text("SELECT last_seq FROM audit_chain_head")).scalar_one()) == 41
    finally:
        await reopened.close()


@pytest.mark.postgres
async def test_a_postgresql_unit_after_its_idle_connection_was_dropped_by_the_server_runs(
        postgres: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A restart, a failover or an idle timeout drops connections while no unit runs: the next unit gets a live one."""
    from store import units

    def backend(conn: Connection) -> int:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    pids = {await postgres.units.read(backend) for _ in range(store_db.POSTGRES_UNIT_THREADS * 3)}
    async with postgres.engine.connect() as other:
        for pid in pids:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    monkeypatch.setattr(units, "POSTGRES_IDLE_S", 0.0)  # every connection counts as idle now

    for n in range(store_db.POSTGRES_UNIT_THREADS * 2):
        await postgres.units.write(add_row(f"88888888-8888-4888-8888-88888888888{n}"))
    assert await postgres.units.read(count_rows) == store_db.POSTGRES_UNIT_THREADS * 2


@pytest.mark.postgres
async def test_a_cancelled_wait_for_a_postgresql_unit_keeps_its_thread_taken_until_the_unit_ends(
        postgres: Store) -> None:
    """A turn given up while its unit runs (a timeout) does not free the unit's thread early: the units after it
    still get a thread within POOL_WAIT_S, or are told busy, never queued behind it without a limit."""
    locked = "99999999-9999-4999-8999-999999999999"
    await postgres.units.write(add_row(locked))
    other = await hold_row(postgres, locked)
    try:
        waiting = [asyncio.create_task(postgres.units.write(touch_row(locked)))
                   for _ in range(store_db.POSTGRES_UNIT_THREADS)]
        await asyncio.sleep(0.2)
        for task in waiting:
            task.cancel()  # their units go on waiting for the lock, on their threads
        await asyncio.gather(*waiting, return_exceptions=True)
        with pytest.raises(Exception) as raised:
            await postgres.units.read(count_rows)
        assert store_busy(raised.value)
    finally:
        await other.commit()
        await other.close()
    assert await asyncio.wait_for(postgres.units.read(count_rows), 10) == 1
