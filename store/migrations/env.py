"""Alembic environment for Watchword's store.

Two ways in:
- `open_store()` passes an open synchronous connection in `config.attributes["connection"]` (it runs
  this inside `AsyncConnection.run_sync`), so migrations share its transaction and lock;
- the alembic command line (see store/alembic.ini) passes `-x url=...`; an async engine is made here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from store.tables import Base

DEFAULT_CLI_URL = "sqlite+aiosqlite:///var/watchword.db"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_cli(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")

_given = context.config.attributes.get("connection")
if _given is not None:
    _run(_given)
else:
    asyncio.run(_run_from_cli(context.get_x_argument(as_dictionary=True).get("url", DEFAULT_CLI_URL)))
