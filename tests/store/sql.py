"""Raw SQL for tests that inspect the database, or tamper with it as an attacker with DDL rights would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from store import Store


async def execute(store: Store, sql: str, **params: Any) -> int:
    async with store.engine.begin() as conn:
        return (await conn.execute(text(sql), params)).rowcount


async def scalar(store: Store, sql: str, **params: Any) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def tamper(store: Store, sql: str, **params: Any) -> None:
    """Run `sql` against audit_log with its append-only triggers lifted, then put them back."""
    async with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            await conn.execute(text(sql), params)
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
            return
        triggers = (
            await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        ).all()
        for name, _ in triggers:
            await conn.execute(text(f'DROP TRIGGER "{name}"'))
        await conn.execute(text(sql), params)
        for _, create in triggers:
            await conn.execute(text(create))
