"""Test support for the store: a movable clock and the databases tests run on (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from store import Store

POSTGRES_URL_VARIABLE = "WATCHWORD_TEST_DATABASE_URL"
POSTGRES_SKIP_REASON = (
    f"PostgreSQL tests skipped: set {POSTGRES_URL_VARIABLE}=postgresql+asyncpg://postgres@127.0.0.1:5432/test "
    "to run them"
)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class StoreTarget:
    """Where a test's store lives: open more Stores on it to play a second process."""

    backend: str
    url: str
    schema: str | None = None

    async def open(self, clock: FakeClock) -> Store:
        # Imported late so tests that never use the store do not load it.
        from store import open_store

        return await open_store(self.url, schema=self.schema, clock=clock)


def make_sqlite_template(path: Path) -> Path:
    """A SQLite file migrated by open_store(), to copy per test (much faster than migrating each time)."""

    async def migrate() -> None:
        await (await StoreTarget("sqlite", f"sqlite+aiosqlite:///{path}").open(FakeClock())).close()

    asyncio.run(migrate())
    return path


def sqlite_copy(template: Path, folder: Path) -> StoreTarget:
    path = folder / "var" / "watchword.db"
    path.parent.mkdir(parents=True)
    shutil.copyfile(template, path)
    return StoreTarget("sqlite", f"sqlite+aiosqlite:///{path}")


def fresh_postgres_schema(url: str) -> StoreTarget:
    """A schema name of our own in the shared database; open_store() creates it."""
    return StoreTarget("postgresql", url, f"watchword_test_{uuid.uuid4().hex[:12]}")


def migrate_postgres_schema(target: StoreTarget) -> StoreTarget:
    async def migrate() -> None:
        await (await target.open(FakeClock())).close()

    asyncio.run(migrate())
    return target


async def reset_postgres_schema(target: StoreTarget) -> None:
    """Empty every table of a migrated schema and restore the audit chain's genesis row.

    Much cheaper than migrating a new schema per test (and DELETE is cheaper than TRUNCATE on tables
    this small). The append-only guard is lifted only inside this one transaction (PostgreSQL DDL is
    transactional), so tests still see it in place.
    """
    from sqlalchemy import text

    from store.audit import GENESIS_HASH
    from store.tables import Base

    async with _engine(target) as engine, engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        await conn.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 0, :h)"), {"h": GENESIS_HASH}
        )


async def drop_postgres_schema(target: StoreTarget) -> None:
    from sqlalchemy import text

    async with _engine(target) as engine, engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.schema}" CASCADE'))


@asynccontextmanager
async def _engine(target: StoreTarget) -> AsyncIterator[AsyncEngine]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        target.url, connect_args={"server_settings": {"search_path": target.schema or "public"}}
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def take_every_connection(engine: AsyncEngine) -> list[AsyncConnection]:
    """Check out connections until the pool has none left to give (what hundreds of turns at once do)."""
    from store import store_busy

    held: list[AsyncConnection] = []
    while len(held) < 100:
        try:
            connection = await engine.connect()
            await connection.exec_driver_sql("SELECT 1")
        except Exception as err:
            assert store_busy(err), err
            return held
        held.append(connection)
    raise AssertionError("the pool never ran out")
