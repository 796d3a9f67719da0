"""Short units of work on every turn's path (conversation state, answers, audit rows), each run whole.

A unit of work is a plain synchronous function of a SQLAlchemy `Connection`, run in one transaction: what a
turn writes (its state with the state's version check, its transcript entry, its audit row, store/turns.py's
claim) commits together or not at all, with the same SQL on both databases.

- On a SQLite file: on a dedicated thread that owns a synchronous (pysqlite) connection to the same file, in one
  hop (through aiosqlite each statement would be several hops to its thread and back). Writes begin with BEGIN
  IMMEDIATE, so a unit takes SQLite's write lock before it reads anything and can never fail half-way on a stale
  snapshot; the thread waits for the lock (busy_timeout) while the event loop goes on, so the async engine's own
  transactions can always finish and there is no deadlock between the two.
- On PostgreSQL: on one of a few threads (store/db.py POSTGRES_UNIT_THREADS), each with a synchronous (psycopg)
  connection of its own, in one hop (`PostgresThreads`): run on the event loop through asyncpg and
  `AsyncConnection.run_sync`, all of a unit's CPU (compiling, the driver, greenlet hops, rows) was the loop's, and
  under a burst every turn waited behind it. Several units run at once there, ordered by PostgreSQL's row locks.
  The rest of the store (the console's reads, the directory sync) stays on the async engine.
- On in-memory SQLite (one shared connection that only the async engine holds): through `AsyncConnection.run_sync`
  on the async engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, select
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
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
# PostgreSQL: a thread's connection idle this long is checked out again, pinged, before its next unit.
POSTGRES_IDLE_S = 10.0


class Units:
    """Runs units of work: `await units.write(fn)` in a transaction, `await units.read(fn)` for reads only."""

    def __init__(self, engine: AsyncEngine, on_connect: Callable[[Any, Any], None] | None = None,
                 postgres: PostgresThreads | None = None) -> None:
        self._engine = engine
        self._postgres = postgres  # PostgreSQL: units on its threads (else on the async engine)
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
        """Units run on threads of their own: the dedicated SQLite thread, or PostgreSQL's (else on the async
        engine)."""
        return self._thread is not None or self._postgres is not None

    async def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one transaction, committed when it returns and rolled back if it raises (fenced when this
        task is a turn's: see TURN_FENCE)."""
        fence = TURN_FENCE.get()
        if fence is not None and fence.task is asyncio.current_task() and not fence.released():
            work = _fenced(work, fence)
        if self._postgres is not None:
            return await self._postgres.write(work)
        if self._thread is None:
            async with self._engine.begin() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write_here, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, which only reads, without taking the write lock."""
        if self._postgres is not None:
            return await self._postgres.read(work)
        if self._thread is None:
            async with self._engine.connect() as conn:
                return await conn.run_sync(work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._read_here, work)

    def engines(self) -> list[Engine]:
        """The synchronous engines units run on (for counting them: store/work_count.py)."""
        if self._postgres is not None:
            return [self._postgres.engine]
        return [self._sync if self._sync is not None else self._engine.sync_engine]

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.close()
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


class PostgresThreads:
    """PostgreSQL's units of work, each run whole on one of a few threads with a synchronous (psycopg) connection of
    its own, so none of a unit's CPU (compiling, the driver's protocol, its rows) is the event loop's: the SQLite
    thread's way, with several threads, since PostgreSQL runs several transactions at once (ordered by its row locks:
    the fence's `SELECT ... FOR UPDATE`, the audit chain's head). A unit waits at most `wait_s` for a free thread and
    then raises the pool's TimeoutError, so its turn is told Watchword is busy (store/errors.py store_busy), as when
    a pool runs dry, with nothing of it done."""

    def __init__(self, engine: Engine, threads: int, wait_s: float, name: str) -> None:
        self.engine = engine
        self._threads = threads
        self._wait_s = wait_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._free = asyncio.Semaphore(threads)
        self._held: dict[int, tuple[Connection, float]] = {}  # each thread's connection, and when it was last used
        self._lock = threading.Lock()

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._write_here, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._read_here, work)

    def close(self) -> None:
        """Wait for the units running and queued, then close the threads' connections and the engine."""
        self._executor.shutdown(wait=True)
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for conn, _ in held:
            conn.close()
        self.engine.dispose()

    async def _run(self, here: Callable[[Callable[[Connection], T]], T], work: Callable[[Connection], T]) -> T:
        try:
            if self._free.locked():  # every thread is busy: wait for one, at most wait_s
                await asyncio.wait_for(self._free.acquire(), self._wait_s)
            else:  # a thread is free: taken at once (wait_for would make a task for it)
                await self._free.acquire()
        except TimeoutError:
            raise PoolTimeoutError(f"all {self._threads} threads for units of work stayed busy for "
                                   f"{self._wait_s:g} s") from None
        loop = asyncio.get_running_loop()
        running = self._executor.submit(here, work)
        # The thread is free again once the unit ended there, even when its awaiter was cancelled meanwhile.
        running.add_done_callback(lambda _: loop.call_soon_threadsafe(self._free.release))
        return await asyncio.wrap_future(running)

    def _connection(self) -> Connection:
        """This thread's connection, kept between units while they come often (checking one out of the pool and back
        per unit is a pool reset and, with pre-ping, a round trip). One left idle for POSTGRES_IDLE_S goes back to the
        pool, and the next unit checks one out, pinged first: a connection the server dropped meanwhile (a restart, a
        failover, an idle timeout) is replaced, not failed on."""
        me, now = threading.get_ident(), time.monotonic()
        held = self._held.get(me)
        if held is not None and now - held[1] > POSTGRES_IDLE_S:
            self._drop()
            held = None
        conn = held[0] if held is not None else self.engine.connect()
        with self._lock:
            self._held[me] = (conn, now)
        return conn

    def _drop(self) -> None:
        with self._lock:
            held = self._held.pop(threading.get_ident(), None)
        if held is not None:
            held[0].close()

    def _write_here(self, work: Callable[[Connection], T]) -> T:
        conn = self._connection()
        conn.execution_options(postgresql_readonly=False)
        try:
            with conn.begin():
                return work(conn)
        except BaseException:
            self._drop()  # rolled back; the next unit starts on a connection fresh from the pool
            raise

    def _read_here(self, work: Callable[[Connection], T]) -> T:
        """A read runs in a READ ONLY transaction (psycopg says so in its BEGIN, no extra round trip) ended by COMMIT,
        not ROLLBACK: psycopg forgets its prepared statements (and sends DEALLOCATE ALL) on every ROLLBACK, so with a
        read in nearly every turn no statement was ever prepared, and PostgreSQL parsed and planned each one again
        (~25% of the server's CPU per start). With nothing written, COMMIT and ROLLBACK end it alike; READ ONLY makes
        a write here fail instead of being committed."""
        conn = self._connection()
        conn.execution_options(postgresql_readonly=True)
        try:
            result = work(conn)
            conn.commit()
            return result
        except BaseException:
            self._drop()
            raise


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
