"""Fixtures shared across the test suite. Each concern has its own section."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.store.support import (
    POSTGRES_SKIP_REASON,
    POSTGRES_URL_VARIABLE,
    FakeClock,
    StoreTarget,
    drop_postgres_schema,
    fresh_postgres_schema,
    make_sqlite_template,
    migrate_postgres_schema,
    reset_postgres_schema,
    sqlite_copy,
)

if TYPE_CHECKING:
    from store import Store

# --- the collector: a test's objects are collectable again after it ---
@pytest.fixture(autouse=True)
def collectable_after_the_test() -> Iterator[None]:
    """The product freezes what is alive when a directory snapshot is prepared (graph/tenant_facts.py), as app.py does
    at start: in a test run that is the test's app, loop and organisation, whose cycles would then never be freed."""
    yield
    gc.unfreeze()


# --- store: each test on SQLite, and on PostgreSQL too when WATCHWORD_TEST_DATABASE_URL is set ---
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def store_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sqlite_template(tmp_path_factory.mktemp("store-template") / "watchword.db")


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[StoreTarget | None]:
    """One migrated schema for the whole run (emptied before each test), dropped at the end."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        yield None
        return
    target = migrate_postgres_schema(fresh_postgres_schema(url))
    yield target
    asyncio.run(drop_postgres_schema(target))


@pytest.fixture(params=BACKENDS)
async def store_target(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, postgres_schema: StoreTarget | None
) -> StoreTarget:
    """An empty, migrated database: a copied SQLite file, or the run's PostgreSQL schema, emptied."""
    if request.param == "sqlite":
        return sqlite_copy(sqlite_template, tmp_path)
    if postgres_schema is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    await reset_postgres_schema(postgres_schema)
    return postgres_schema


@pytest.fixture(params=BACKENDS)
async def fresh_store_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreTarget]:
    """A database nothing has touched (no tables at all), for tests of migrations themselves."""
    if request.param == "sqlite":
        yield StoreTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'var' / 'watchword.db'}")
        return
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(POSTGRES_SKIP_REASON)
    target = fresh_postgres_schema(url)
    try:
        yield target
    finally:
        await drop_postgres_schema(target)


@pytest.fixture
async def store(store_target: StoreTarget, store_clock: FakeClock) -> AsyncIterator[Store]:
    """A migrated, empty Store driven by `store_clock`, once per backend."""
    opened = await store_target.open(store_clock)
    try:
        yield opened
    finally:
        await opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, plainly, when the PostgreSQL variants did not run (instead of one line per test)."""
    skipped = terminalreporter.stats.get("skipped", [])
    on_postgres = [r for r in skipped if POSTGRES_SKIP_REASON in str(r.longrepr)]
    if on_postgres:
        terminalreporter.write_line(f"{len(on_postgres)} {POSTGRES_SKIP_REASON}", yellow=True)
    other = len(skipped) - len(on_postgres)
    if other:
        terminalreporter.write_line(f"{other} other tests skipped; run pytest -rs to see why", yellow=True)
