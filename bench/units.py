"""The CPU of one unit of work (store/units.py), in the whole process and on the event loop's thread (issue 11).

A unit is what every turn runs several of: here a turn's own three (its claim, taking its chat and reading ahead in
one transaction; an audit row; giving the chat up) and the least a unit can be (`SELECT 1`), run one after the
other and 20 at once, in a store opened as Watchword opens it (`open_store`). `process_ms` is the process's CPU per
unit (every thread), `loop_ms` the event loop's thread's: what the other turns waited behind. On SQLite (a file in
a temporary folder, default) units run on the SQLite thread; on PostgreSQL (`--database-url`; a schema of its own is
made in that database and dropped afterwards) on the store's PostgreSQL threads (before 2026-12-07: on the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def measure(database_url: str | None, units: int) -> dict[str, Any]:
    from sqlalchemy import Connection, text

    from store import activity_key, conversation_key, open_store

    schema = f"bench_units_{uuid.uuid4().hex[:8]}" if database_url else None
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(database_url or f"sqlite+aiosqlite:///{folder}/watchword.db", schema=schema)
        try:
            def read_ahead(conn: Connection) -> Any:
                return conn.execute(text("SELECT 1")).all()

            async def turn(i: int) -> None:
                chat = conversation_key("msteams", f"chat-{i % 50}")
                holder = store.turns.holder()
                await store.turns.begin_reading(activity_key("msteams", f"chat-{i % 50}", f"activity-{i}"), chat,
                                                holder, read_ahead)
                await store.audit.append(action="bench_units", outcome="ok", actor="bench", details={"i": i})
                await store.turns.release_conversation(chat, holder)

            async def select_one(_: int) -> None:
                await store.units.read(lambda conn: conn.execute(text("SELECT 1")).scalar())

            kinds: list[tuple[str, Callable[[int], Awaitable[None]], int]] = [
                ("turn", turn, 3), ("select_one", select_one, 1)]
            figures: dict[str, Any] = {}
            for name, run, per in kinds:
                for i in range(200):  # warm: statements compiled and cached, connections open
                    await run(-1 - i)
                for at_once in (1, 20):
                    figures[f"{name}_x{at_once}"] = await _timed(run, units, at_once, per)
                    print(f"  {name}, {at_once} at once: {figures[f'{name}_x{at_once}']}", file=sys.stderr)
            return {"database": "postgresql" if database_url else "sqlite", "units": units, **figures}
        finally:
            await store.close()
            if schema is not None:
                await _drop_schema(str(store.engine.url.render_as_string(hide_password=False)), schema)


async def _timed(run: Callable[[int], Awaitable[None]], n: int, at_once: int, per: int) -> dict[str, float]:
    gate = asyncio.Semaphore(at_once)

    async def one(i: int) -> None:
        async with gate:
            await run(i)

    process, loop, wall = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    process, loop, wall = time.process_time() - process, time.thread_time() - loop, time.perf_counter() - wall
    return {"process_ms": round(1000 * process / (n * per), 3), "loop_ms": round(1000 * loop / (n * per), 3),
            "wall_ms": round(1000 * wall / (n * per), 3)}


async def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="run on this PostgreSQL (in a schema of its own, dropped afterwards); "
                                               "default SQLite in a temporary folder")
    parser.add_argument("--units", type=int, default=1000, help="turns (and SELECT 1s) per measurement")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    print(json.dumps(asyncio.run(measure(args.database_url, args.units))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
