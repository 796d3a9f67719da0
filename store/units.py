"""Short units of work on every turn's path (conversation state, answers, audit rows), each run whole.

Why not simply `async with engine.begin()`: through aiosqlite every statement is three or four hops to the
connection's thread and back, and bench.turns measured 0.26 ms of CPU per statement and 0.4 ms per
transaction that way, more than half of an answer turn's database cost. A unit of work here is a plain
synchronous function of a SQLAlchemy `Connection`, and it runs in one go.

On a SQLite file, with a synchronous (pysqlite) engine on the same file:
- first right here, on the event loop: a unit takes tens of microseconds, far less than a hop to a thread and
  back. It must never wait, so this connection has no busy timeout: a write begins with BEGIN IMMEDIATE, and
  if another connection (the async engine's, say) holds SQLite's write lock, SQLite answers "busy" at once and
  nothing has happened yet;
- then, in that case only, on a dedicated thread with a connection of its own, which waits for the lock
  (busy_timeout) while the event loop goes on, so the lock holder can always finish: no deadlock.
BEGIN IMMEDIATE also means a unit takes the write lock before it reads anything, so it can never fail
half-way on a stale snapshot. Reads never wait in WAL mode; a rare "busy" read goes to the thread too. The
loop's connection leaves WAL checkpoints (which sync the disk) to the thread.

On PostgreSQL (asyncpg has no threads to save) and on in-memory SQLite (one shared connection that only the
async engine holds), units run through `AsyncConnection.run_sync` on the async engine. The same SQL runs
every way, so tests on both databases cover it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

T = TypeVar("T")
log = logging.getLogger("watchword.store")

_WRITE = "watchword_write"  # Connection.info: does this unit write (BEGIN IMMEDIATE) or only read?
CHECKPOINT_EVERY = 500  # commits on the loop's connection between two WAL checkpoints on the thread


class _Busy(Exception):
    """SQLite's lock is taken: run the unit on the thread instead."""


class Units:
    """Runs units of work: `await units.write(fn)` in a transaction, `await units.read(fn)` for reads only."""

    def __init__(self, engine: AsyncEngine, on_connect: Callable[[Any, Any], None] | None = None) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._here: Connection | None = None  # the event loop's own connection, opened on first use
        self._commits_here = 0
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
        """Units run on the synchronous SQLite engine (else on the async engine)."""
        return self._thread is not None

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, committed when it returns and rolled back if it raises."""
        if self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(work)
        try:
            result = self._write_on(self._loop_connection(), work)
        except _Busy:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._write_on_thread, work)
        self._after_commit_here()
        return result

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which only reads, without taking the write lock."""
        if self._thread is None:
            async with self._engine.connect() as conn:
                return await conn.run_sync(work)
        try:
            return self._read_on(self._loop_connection(), work)
        except _Busy:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._read_on_thread, work)

    def close(self) -> None:
        if self._here is not None:
            self._here.close()
            self._here = None
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync is not None:
            self._sync.dispose()

    # --- where units run ------------------------------------------------------------------------------------
    def _loop_connection(self) -> Connection:
        if self._here is None:
            assert self._sync is not None
            self._here = self._sync.connect()
            raw = self._here.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA busy_timeout = 0")  # never wait on the event loop: "busy" goes to the thread
            raw.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints sync the disk: the thread does them
        return self._here

    def _write_on_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return self._write_on(conn, work)

    def _read_on_thread(self, work: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return self._read_on(conn, work)

    @staticmethod
    def _write_on(conn: Connection, work: Callable[[Connection], T]) -> T:
        conn.info[_WRITE] = True  # (not an execution option: setting one costs more than a short unit)
        try:
            transaction = conn.begin()  # BEGIN IMMEDIATE (see _sqlite_engine): "busy" here means nothing ran
        except OperationalError as err:
            if _is_busy(err):
                raise _Busy from None
            raise
        with transaction:
            return work(conn)

    @staticmethod
    def _read_on(conn: Connection, work: Callable[[Connection], T]) -> T:
        conn.info[_WRITE] = False
        try:
            return work(conn)
        except OperationalError as err:
            if _is_busy(err):
                raise _Busy from None
            raise
        finally:
            conn.rollback()  # ends the read transaction: WAL keeps no old snapshot alive

    def _after_commit_here(self) -> None:
        self._commits_here += 1
        if self._commits_here % CHECKPOINT_EVERY == 0 and self._thread is not None:
            done = asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
            done.add_done_callback(_log_failure)

    def _checkpoint(self) -> None:
        assert self._sync is not None
        with self._sync.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")  # outside any transaction, or SQLite refuses it


def _is_busy(err: OperationalError) -> bool:
    return getattr(err.orig, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("WAL checkpoint failed (the next one will retry)", exc_info=done.exception())


def _sqlite_engine(engine: AsyncEngine, on_connect: Callable[[Any, Any], None] | None) -> Engine:
    """A synchronous engine on the async engine's SQLite file, with the same PRAGMAs."""
    sync = create_engine(engine.url.set(drivername="sqlite+pysqlite"), poolclass=QueuePool, pool_size=2,
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
