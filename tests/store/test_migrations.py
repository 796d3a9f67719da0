"""Opening the store: URLs, the ./var folder, and migrations that match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from store import Store, open_store
from store.db import MIGRATIONS_DIR
from store.tables import Base
from tests.store.sql import scalar
from tests.store.support import FakeClock, StoreTarget

TABLES = {
    "tenants", "protected_users", "directory_sync_state", "verification_sessions", "transcript_entries",
    "attempt_counters", "user_lockouts", "conversation_state", "conversation_references", "audit_log",
    "audit_chain_head", "alembic_version", "tenant_policies", "directory_sync_leases", "verification_plans",
    "console_signouts", "processed_activities", "conversation_turns", "turn_processes",
}
TENANT = "7d3f0b3c-5a7e-4c1e-9a53-0d7e6f1c2b4a"


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()  # type: ignore[return-value]


async def test_migrations_apply_on_empty_database(fresh_store_target: StoreTarget) -> None:
    store = await fresh_store_target.open(FakeClock())
    try:
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))

        assert tables == TABLES
        assert await scalar(store, "SELECT version_num FROM alembic_version") == _head_revision()
        assert (await store.audit.head()).seq == 0
    finally:
        await store.close()


async def test_models_match_migrations(store: Store) -> None:
    def differences(conn: Connection) -> list:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with store.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_reopening_keeps_data_and_migrates_nothing(
    store: Store, store_target: StoreTarget, store_clock: FakeClock
) -> None:
    await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
    await store.audit.append(action="tenant.connected", outcome="success", actor="admin:x", tenant_id=TENANT)

    again = await store_target.open(store_clock)
    try:
        assert (await again.tenants.get(TENANT)) is not None
        assert (await again.audit.verify_chain()).rows_checked == 1
    finally:
        await again.close()


async def test_downgrade_to_base_and_upgrade_again(fresh_store_target: StoreTarget) -> None:
    def downgrade(conn: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.downgrade(config, "base")

    store = await fresh_store_target.open(FakeClock())
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(downgrade)
            assert await conn.run_sync(lambda c: set(inspect(c).get_table_names())) == {"alembic_version"}
    finally:
        await store.close()

    again = await fresh_store_target.open(FakeClock())
    await again.close()


async def test_sqlite_folder_is_created_for_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = await open_store("sqlite+aiosqlite:///var/watchword.db")
    await store.close()

    assert (tmp_path / "var" / "watchword.db").is_file()


async def test_plain_sqlite_url_gets_the_async_driver(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        assert store.engine.url.drivername == "sqlite+aiosqlite"
    finally:
        await store.close()


async def test_in_memory_sqlite_keeps_its_data_across_sessions() -> None:
    store = await open_store("sqlite+aiosqlite://")
    try:
        await store.tenants.connect(TENANT, display_name="Contoso", granted_permissions=[])
        assert await store.tenants.get(TENANT) is not None
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url", ["mysql+aiomysql://u@h/db", "postgresql+psycopg2://u@h/db", "sqlite+pysqlite:///x.db", "not a url"]
)
async def test_unsupported_database_url_is_refused_with_a_hint(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite\\+aiosqlite"):
        await open_store(url)


async def test_schema_is_refused_on_sqlite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        await open_store(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", schema="watchword")
