"""Short units of work on every turn's path (conversation state, answers, audit rows), each run whole.

A unit of work is a plain synchronous function of a SQLAlchemy `Connection`, run in one transaction: what a
turn writes (its state with the state's version check, its transcript entry, its audit row, store/turns.py's
claim) commits together or not at all, with the same SQL on both databases.

- On a SQLite file: on a dedicated thread that owns a synchronous (pysqlite) connection to the same file, in one
  hop (through aiosqlite each statement would be several hops to its thread and back). Writes begin with BEGIN
  IMMEDIATE, so a unit takes SQLite's write lock before it reads anything and can never fail half-way on a stale
  snapshot; the thread waits for the lock (busy_timeout) while the event loop goes on, so the async engine's own
  transactions can always finish and there is no deadlock between the two.
- On PostgreSQL (asyncpg has no threads to save) and on in-memory SQLite (one shared connection that only the
  async engine holds): through `AsyncConnection.run_sync` on the async engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from store.errors import TurnTakenOver
from store.tables import ConversationTurnRow

T = TypeVar("T")



class Fence:
    """The fence of the turn running in `task` (bot/turn_state.py sets it once the turn has its conversation).

    Every unit of work that task writes first checks, in its own transaction and with the conversation's row locked
    (PostgreSQL; SQLite has one writer), that the turn (`holder`) still holds its conversation: a process stalled
    past its heartbeat is taken for dead and its conversation taken over (store/turns.py), and when it resumes, its
    writes (answers, decisions, audit rows, its state) must not land over the new owner's. Raises TurnTakenOver
    then, and nothing of the unit is written. Once the turn gave the conversation up with the state it saved
    (`released()`), nothing is checked. Tasks the turn starts (work that outlives it, such as a start's late sign-in
    logs) are not fenced: later turns of the chat, on this instance or another, are theirs to run beside."""

    __slots__ = ("conversation", "holder", "task", "released")

    def __init__(self, conversation: str, holder: str, task: object, released: Callable[[], bool]) -> None:
        self.conversation, self.holder, self.task, self.released = conversation, holder, task, released


TURN_FENCE: ContextVar[Fence | None] = ContextVar("watchword_turn_fence", default=None)

_WRITE = "watchword_write"  # Connection.info: does this unit write (BEGIN IMMEDIATE) or only read?


class Units:
    """Runs units of work: `await units.write(fn)` in a transaction, `await units.read(fn)` for reads only."""

    def __init__(self, engine: AsyncEngine, on_connect: Callable[[Any, Any], None] | None = None) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._held: Connection | None = None  # the SQLite thread's connection, kept open between units
        database = engine.url.database or ""
        if engine.dialect.name == "sqlite" and database not in ("", ":memory:"):
            self._sync = _sqlite_engine(engine, on_connect)
            # One thread, one connection: SQLite has one writer at a time anyway, and units are short.
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watchword-sqlite")

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def threaded(self) -> bool:
        """Units run on the dedicated SQLite thread (else on the async engine)."""
        return self._thread is not None

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, committed when it returns and rolled back if it raises (fenced when this
        task is a turn's: see TURN_FENCE)."""
        fence = TURN_FENCE.get()
        if fence is not None and fence.task is asyncio.current_task() and not fence.released():
            work = _fenced(work, fence)
        if self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write_here, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which only reads, without taking the write lock."""
        if self._thread is None:
            async with self._engine.connect() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._read_here, work)

    def engines(self) -> list[Engine]:
        """The synchronous engines units run on (for counting them: store/work_count.py)."""
        return [self._sync if self._sync is not None else self._engine.sync_engine]

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        self._drop()
        if self._sync is not None:
            self._sync.dispose()

    def _connection(self) -> Connection:
        """The SQLite thread's one connection, opened once and kept while units succeed (only that thread uses it):
        checking it out of the pool and back for every unit, with the pool's reset, was a tenth of the thread's
        Python time. A unit that raised gives it back (`_drop`), so the next one starts on a clean connection."""
        if self._held is None:
            assert self._sync is not None
            self._held = self._sync.connect()
        return self._held

    def _drop(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            held.close()

    def _write_here(self, work: Callable[[Connection], T]) -> T:
        conn = self._connection()
        conn.info[_WRITE] = True
        try:
            with conn.begin():  # BEGIN IMMEDIATE (see _sqlite_engine)
                return work(conn)
        except BaseException:
            self._drop()
            raise

    def _read_here(self, work: Callable[[Connection], T]) -> T:
        conn = self._connection()
        conn.info[_WRITE] = False
        try:
            result = work(conn)
            conn.rollback()  # ends the read transaction: WAL keeps no old snapshot alive
            return result
        except BaseException:
            self._drop()
            raise


def _sqlite_engine(engine: AsyncEngine, on_connect: Callable[[Any, Any], None] | None) -> Engine:
    """A synchronous engine on the async engine's SQLite file, with the same PRAGMAs."""
    sync = create_engine(engine.url.set(drivername="sqlite+pysqlite"), poolclass=QueuePool, pool_size=1,
                         max_overflow=0, connect_args={"check_same_thread": False})

    @event.listens_for(sync, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        # SQLAlchemy's documented recipe: let us say when a transaction begins, and how.
        dbapi_connection.isolation_level = None
        if on_connect is not None:
            on_connect(dbapi_connection, record)

    @event.listens_for(sync, "begin")
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE, True) else "BEGIN")

    return sync


# Built once: every write of a turn runs it first.
_HOLDER = (select(ConversationTurnRow.owner).where(ConversationTurnRow.key == bindparam("conversation"))
           .with_for_update())


def _fenced(work: Callable[[Connection], T], fence: Fence) -> Callable[[Connection], T]:
    which = {"conversation": fence.conversation}

    def fenced(conn: Connection) -> T:
        if conn.execute(_HOLDER, which).scalar_one_or_none() != fence.holder:
            raise TurnTakenOver()
        return work(conn)

    return fenced
