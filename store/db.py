"""Opening the store: engine, migrations, and the `Store` that groups the repositories.

Everything is built by `open_store()`; nothing is created at import time, so two stores (two apps,
two tests) can live side by side.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from store.audit import AuditLog
from store.console_sessions import ConsoleSessionRepository
from store.conversation_refs import ConversationReferenceRepository
from store.conversation_state import SqlStorage
from store.errors import StoreUnwritableError
from store.lockouts import LockoutRepository
from store.policies import PolicyRepository
from store.protected_users import ProtectedUserRepository
from store.sessions import SessionRepository
from store.stats import StatsRepository
from store.sync_leases import SyncLeaseRepository
from store.tenants import TenantRepository
from store.turns import TurnRepository
from store.units import PostgresThreads, Units
from verification.clock import Clock, utc_now

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/watchword.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
SQLITE_CONNECTIONS = 4
# Each SQLite connection's page cache, in KiB (SQLite's default is 2,000): it fills as the database grows, a session's
# sealed plan, transcript and audit rows at a time, and then stays, on each of the five connections (the pool's and
# the SQLite thread's, store/units.py). A turn reads a handful of pages; the file's pages are in the OS's cache anyway.
SQLITE_CACHE_KIB = 512
# How long a unit of work waits for a pooled connection (PostgreSQL: for one of its threads) before the turn is told
# "busy" (store/errors.py store_busy): well inside the 15 s Teams waits for a turn, so the person hears it and Teams'
# redelivery is processed.
POOL_WAIT_S = 5.0
# PostgreSQL: a thread and connection of their own for the turns' housekeeping (store/turns.py: this process's
# heartbeat, a running turn's renewals, a turn giving its chat up), so none of it waits behind the turns' units for
# a thread: a heartbeat that could not be written would let the other instances take this live one's chats, and a
# chat not given up would stay held for its lease. Those statements are tiny; they queue for up to HOUSEKEEPING_WAIT_S.
HOUSEKEEPING_WAIT_S = 10.0
# PostgreSQL: how many units of work run at once, each on a thread with a connection of its own (store/units.py).
# A unit is a few round trips and a few ms of Python: four keep the server busy while the process has the GIL.
POSTGRES_UNIT_THREADS = 4
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Any constant will do: it only has to be the same for every Watchword process sharing a database.
_MIGRATION_LOCK_ID = 0x5741_5443_4857_4F52  # "WATCHWOR"


class Store:
    """The repositories, one per concern, sharing one engine. Close it with `await store.close()`.

    Made by `open_store()`. `sessions` are verification sessions; `console_sessions` are the admin console's
    signed-out sessions; `sessionmaker` makes database sessions.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock = utc_now, postgres_units: PostgresThreads | None = None,
                 housekeeping: PostgresThreads | None = None) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = async_sessionmaker(engine, expire_on_commit=False)
        # The turn's hot path (state, answers, audit rows) runs as whole units of work: see store/units.py.
        self.units = Units(engine, _sqlite_pragmas(in_memory=False) if engine.dialect.name == "sqlite" else None,
                           postgres=postgres_units)
        self.tenants = TenantRepository(self.sessionmaker, clock, self.units)
        self.protected_users = ProtectedUserRepository(self.sessionmaker, clock, self.units)
        self.audit = AuditLog(self.sessionmaker, self.units, clock)
        self._housekeeping = Units(engine, postgres=housekeeping) if housekeeping is not None else None
        self.turns = TurnRepository(self.units, clock, housekeeping=self._housekeeping)
        # A reset claim names this process's heartbeat (store/turns.py), so a dead process's claim is taken over.
        self.sessions = SessionRepository(self.sessionmaker, clock, self.audit, self.units, owner=self.turns.owner)
        self.lockouts = LockoutRepository(self.sessionmaker, clock, self.audit, self.units)
        self.conversation_state = SqlStorage(engine, self.units, clock)
        self.conversation_refs = ConversationReferenceRepository(self.sessionmaker, clock, self.units)
        self.policies = PolicyRepository(self.sessionmaker, clock, self.units)
        self.sync_leases = SyncLeaseRepository(self.sessionmaker, clock)
        self.console_sessions = ConsoleSessionRepository(self.sessionmaker, clock)
        self.stats = StatsRepository(self.sessionmaker, clock)

    def engines(self) -> list[Engine]:
        """Every synchronous engine the store runs statements on (store/work_count.py counts them)."""
        engines = [self.engine.sync_engine, *self.units.engines()]
        if self._housekeeping is not None:
            engines.extend(self._housekeeping.engines())
        return list(dict.fromkeys(engines))

    async def ping(self) -> None:
        """Raise unless the database answers (readiness checks)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await asyncio.to_thread(self.units.close)
        if self._housekeeping is not None:
            await asyncio.to_thread(self._housekeeping.close)
        await self.engine.dispose()


async def open_store(database_url: str, *, schema: str | None = None, clock: Clock = utc_now) -> Store:
    """Connect, bring the schema up to date (`alembic upgrade head`), and return the Store.

    `database_url` is `sqlite+aiosqlite:///var/watchword.db` (the parent folder is created) or
    `postgresql+asyncpg://user@host/db`; plain `sqlite://` and `postgresql://` URLs get those drivers.
    `schema` (PostgreSQL only) keeps Watchword's tables in their own schema, created if missing.
    """
    url = _async_url(database_url)
    if schema is not None and (url.get_backend_name() != "postgresql" or not _SCHEMA_NAME.match(schema)):
        raise ValueError("schema must be a lower-case SQL identifier, and is supported on PostgreSQL only")
    engine = _create_engine(url, schema)
    try:
        await _migrate(engine, schema)
        await _probe_write(engine)
    except (DBAPIError, OSError) as err:
        await engine.dispose()
        raise StoreUnwritableError(_unwritable_message(err, url)) from err
    except BaseException:
        await engine.dispose()
        raise
    if url.get_backend_name() == "sqlite":
        return Store(engine, clock)
    units = _postgres_threads(url, schema, POSTGRES_UNIT_THREADS, POOL_WAIT_S, "watchword-postgres")
    return Store(engine, clock, units, _postgres_threads(url, schema, 1, HOUSEKEEPING_WAIT_S, "watchword-housekeeping"))


async def _probe_write(engine: AsyncEngine) -> None:
    """Write one row and commit, so a read-only or full database is found at start, not by the first turn.
    (Migrations write only when there is something to migrate.) The row is rewritten as it was."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_chain_head SET last_seq = last_seq WHERE id = 1"))


# What a database error at start means, by the driver's own code (SQLite's result names, PostgreSQL's SQLSTATE).
_READ_ONLY = frozenset({"SQLITE_READONLY", "SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_DBMOVED",
                        "SQLITE_READONLY_RECOVERY", "SQLITE_READONLY_CANTINIT", "SQLITE_READONLY_ROLLBACK",
                        "SQLITE_PERM", "SQLITE_AUTH", "SQLITE_CANTOPEN", "SQLITE_CANTOPEN_ISDIR",
                        "25006", "42501"})  # read_only_sql_transaction, insufficient_privilege
_FULL = frozenset({"SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_SHMSIZE", "53100", "53000", "54000"})


def _unwritable_message(err: BaseException, url: URL) -> str:
    where = (f"the SQLite database {_sqlite_path(url)}" if url.get_backend_name() == "sqlite"
             else f"the PostgreSQL database {url.database or ''} on {url.host or 'localhost'}")
    orig = err.orig if isinstance(err, DBAPIError) else err
    code = str(getattr(orig, "sqlite_errorname", "") or getattr(orig, "sqlstate", "") or "")
    if code in _READ_ONLY:
        how = ("give the user running Watchword write access to the file and its folder (SQLite also writes the "
               "-wal and -shm files next to it), or point WATCHWORD_DATABASE_URL at a writable place"
               if url.get_backend_name() == "sqlite" else
               "connect to the primary (not a read-only replica) as a role that may create tables and write "
               "(CREATE on the schema, INSERT/UPDATE/DELETE on Watchword's tables)")
        return f"Watchword cannot write to {where}: it is read-only ({code}). Fix: {how}."
    if code in _FULL:
        return (f"Watchword cannot write to {where}: the disk (or the database's quota) is full ({code}). Fix: "
                "free space on the volume holding it, or move it to a larger one, then start Watchword again.")
    if isinstance(orig, OSError) or isinstance(err, OSError):
        return (f"Watchword cannot reach {where} ({type(orig).__name__}). Fix: check that the database is running "
                "and WATCHWORD_DATABASE_URL names the right host, port and database.")
    return (f"Watchword cannot use {where} ({type(orig).__name__}{' ' + code if code else ''}). Fix: check "
            "WATCHWORD_DATABASE_URL and that the database accepts writes; the log has the details at DEBUG level.")


def _sqlite_path(url: URL) -> str:
    database = url.database or ":memory:"
    return database.removeprefix("file:") if url.query.get("uri") == "true" else database


def _async_url(database_url: str) -> URL:
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ValueError(
            f"database URL is malformed; use e.g. {DEFAULT_DATABASE_URL} or postgresql+asyncpg://user@host/db"
        ) from None
    driver = _DRIVERS.get(url.get_backend_name())
    if driver is None or ("+" in url.drivername and url.drivername != driver):
        raise ValueError(
            f"unsupported database URL scheme {url.drivername!r}: use sqlite+aiosqlite:///path/to.db "
            "or postgresql+asyncpg://user@host/db"
        )
    return url.set(drivername=driver)


def _create_engine(url: URL, schema: str | None) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    return create_async_engine(url, pool_pre_ping=True, pool_timeout=POOL_WAIT_S,
                               connect_args=_postgres_connect_args(schema))


def _postgres_threads(url: URL, schema: str | None, threads: int, wait_s: float, name: str) -> PostgresThreads:
    """PostgreSQL: threads for units of work, each with a synchronous (psycopg) connection to the same database, with
    the same settings as the async engine's (store/units.py). SQLite needs none: on a file every unit runs on the
    SQLite thread's own connection, the turns' housekeeping too."""
    options = " ".join(f"-c {setting}={value}" for setting, value in _postgres_settings(schema).items())
    # preserve_rowcount: psycopg 3.3 forgets a cursor's rowcount once it is closed, which SQLAlchemy does before an
    # INSERT's result is read (a turn's claim is `INSERT ... ON CONFLICT DO NOTHING`, judged by its rowcount).
    sync = create_engine(url.set(drivername="postgresql+psycopg"), pool_size=threads, max_overflow=0,
                         pool_pre_ping=True, connect_args={"options": options},
                         execution_options={"preserve_rowcount": True})
    return PostgresThreads(sync, threads, wait_s, name)


def _postgres_connect_args(schema: str | None) -> dict[str, Any]:
    return {"server_settings": _postgres_settings(schema)}


def _postgres_settings(schema: str | None) -> dict[str, str]:
    settings = {"application_name": "watchword"}
    if schema is not None:
        settings["search_path"] = schema
    return settings


def _create_sqlite_engine(url: URL) -> AsyncEngine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if in_memory:
        # One shared connection, or every pooled connection would see its own empty database.
        engine = create_async_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(_sqlite_path(url).split("?")[0]).parent.mkdir(parents=True, exist_ok=True)
        # A fixed set of connections, no overflow: each aiosqlite connection is a thread plus an open file plus
        # its PRAGMAs, and overflow connections are opened and closed again under every burst (bench.turns saw
        # a third of a busy turn's CPU go there). SQLite has one writer anyway; a waiting turn queues here.
        engine = create_async_engine(url, pool_size=SQLITE_CONNECTIONS, max_overflow=0, pool_timeout=POOL_WAIT_S)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas(in_memory))
    return engine


def _sqlite_pragmas(in_memory: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # SQLite ignores foreign keys unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
        # Wait for another writer instead of failing at once with "database is locked".
        cursor.execute("PRAGMA busy_timeout = 10000")
        if not in_memory:
            # WAL: readers do not block the writer, nor the writer the readers.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        cursor.close()

    return on_connect


async def _migrate(engine: AsyncEngine, schema: str | None) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several instances may start together: let one migrate while the others wait.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            if schema is not None:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.run_sync(_upgrade_to_head)


def _upgrade_to_head(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # env.py uses this connection (and its transaction) instead of opening its own.
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
