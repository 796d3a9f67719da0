"""Counting what the store does: transactions begun and statements run, on every engine a `Store` uses.

    with counting(store) as work:
        ... a turn ...
    work.transactions, work.statements

For tests that pin a turn's cost in the database (tests/bot/test_store_work.py) and for looking at it by hand.
Counted with SQLAlchemy's public engine events ("begin", "before_cursor_execute"), on the async engine, the SQLite
thread's engine (store/units.py) and the housekeeping engine (store/db.py); the BEGIN (IMMEDIATE) that store/units.py
issues itself on SQLite is a transaction's start, not a statement, and is not listed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event

if TYPE_CHECKING:
    from store.db import Store


@dataclass
class StoreWork:
    transactions: int = 0
    statements: list[str] = field(default_factory=list)  # each statement's SQL, as run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> str:
        """One line per statement (its first 100 characters), for an assertion's message."""
        return "\n".join(" ".join(s.split())[:100] for s in self.statements)


@contextmanager
def counting(store: Store) -> Iterator[StoreWork]:
    """Count the transactions and statements `store` runs while the block runs (any thread, any task)."""
    work = StoreWork()

    def began(_conn: Any) -> None:
        with work._lock:
            work.transactions += 1

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("BEGIN"):
            return
        with work._lock:
            work.statements.append(statement)

    engines: list[Engine] = store.engines()
    for engine in engines:
        event.listen(engine, "begin", began)
        event.listen(engine, "before_cursor_execute", executed)
    try:
        yield work
    finally:
        for engine in engines:
            event.remove(engine, "begin", began)
            event.remove(engine, "before_cursor_execute", executed)
