"""The Agents SDK `Storage` interface over the `conversation_state` table, with optimistic concurrency.

Contract, matching `MemoryStorage` (microsoft-agents-hosting-core 1.9) where it has one:
- `read`, `write` and `delete` raise ValueError for an empty list/dict or an empty key;
- `read` returns only the keys that exist, each built with `target_cls.from_json_to_store_item`;
- `delete` ignores keys that do not exist.

E-tags. The SDK 1.9 `MemoryStorage` has no e_tag handling at all (last writer always wins); this
follows the convention of the Bot Framework storages it replaced, which the SDK's JSON still fits:
- the e_tag travels as the "e_tag" key of the item's JSON: `read` adds the stored etag to the JSON
  before building the item, and `write` takes it out of `store_item_to_json()` again (the document
  column never holds it);
- writing with no e_tag (or "" or "*") always succeeds: last writer wins, as in MemoryStorage;
- writing with any other e_tag succeeds only if it is the stored one, checked and written in one
  conditional UPDATE (`... WHERE key = :key AND etag = :e_tag`); otherwise ETagConflictError, also
  when the item was deleted since it was read (a stale turn must not resurrect cleared state);
- after a successful write the item's e_tag is updated in place where the item carries one
  (`CachedAgentState`, the SDK's conversation/user state, keeps it in its state dict), so a second
  save in the same turn does not conflict with the first;
- a multi-key write is one transaction: on a conflict nothing of it is written.

For the SDK's `ConversationState`/`UserState` this means: two turns of one conversation that run at
the same time and both change state cannot silently overwrite each other; the later save raises
ETagConflictError (a `StoreError`), which the turn-error handler sees. The bot's turns of one conversation run one
at a time (store/turns.py, bot/turn_state.py TurnGate), so this is the backstop, not the everyday guard.

Read ahead. A turn reads its state right after it claimed its activity and took its conversation, and nothing else
may write that state meanwhile (the conversation is the turn's). So the claim's unit of work reads it too
(`reading()`, store/turns.py `begin`), and the turn's `read()` of those keys is answered from what it read
(`read_ahead()`): one transaction a turn fewer. Each key read ahead is answered once, only in the task that read
it, and forgotten once this task writes or deletes it; a stale turn's state is still caught by the e_tag check when
it saves.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import datetime
from typing import Any, TypeVar

from microsoft_agents.hosting.core.state.agent_state import CachedAgentState
from microsoft_agents.hosting.core.storage import Storage, StoreItem
from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from store.errors import ETagConflictError
from store.tables import ConversationStateRow
from store.turns import WITH_STATE
from store.units import Units
from verification.clock import Clock

StoreItemT = TypeVar("StoreItemT", bound=StoreItem)

ETAG_KEY = "e_tag"
_ANY_ETAG = ("", "*")


_GERUND = {"read": "reading", "write": "writing", "delete": "deleting"}
# Core statements, built once: every turn reads and writes its conversation's state.
_READ = select(ConversationStateRow.key, ConversationStateRow.document, ConversationStateRow.etag).where(
    ConversationStateRow.key.in_(bindparam("keys", expanding=True)))
_GUARDED = (update(ConversationStateRow)
            .where(ConversationStateRow.key == bindparam("k"), ConversationStateRow.etag == bindparam("expected"))
            .values(document=bindparam("document"), etag=bindparam("etag"), updated_at=bindparam("updated_at")))


# What this task's turn read ahead (see the module doc): its task, and key -> (document, etag), None where absent.
Rows = dict[str, tuple[dict[str, Any], str] | None]
StateRead = Callable[[Connection], Rows]  # a read of state keys, to run in another unit of work (`reading`)
_READ_AHEAD: ContextVar[tuple[object, Rows] | None] = ContextVar("watchword_state_read_ahead", default=None)


def _check_keys(keys: list[str], operation: str) -> None:
    if not keys:
        raise ValueError(f"Storage.{operation}(): Keys are required when {_GERUND[operation]}.")
    if any(key == "" for key in keys):
        raise ValueError(f"SqlStorage.{operation}(): key cannot be empty")


def _document(key: str, item: StoreItem) -> tuple[dict[str, Any], str | None]:
    """The item's JSON without its e_tag (checked to be plain JSON), and the e_tag it carried."""
    data = item.store_item_to_json()
    if data is None:
        raise ValueError(f"SqlStorage.write(): item for key {key!r} serialised to None")
    try:
        document = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"SqlStorage.write(): item for key {key!r} is not JSON-serialisable: {exc}") from None
    e_tag = document.pop(ETAG_KEY, None)
    return document, (str(e_tag) if e_tag is not None else None)


def _stamp(item: StoreItem, etag: str) -> None:
    """Give the written item its new etag, so writing it again is not mistaken for a stale write."""
    if isinstance(item, CachedAgentState):
        item.state[ETAG_KEY] = etag
    elif hasattr(item, ETAG_KEY):
        setattr(item, ETAG_KEY, etag)


class SqlStorage(Storage):
    """Every read, write and delete is one unit of work (store/units.py): state is on every turn's path."""

    def __init__(self, engine: AsyncEngine, units: Units, clock: Clock) -> None:
        self._units = units
        self._clock = clock
        upsert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(ConversationStateRow)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=["key"], set_={"document": upsert.excluded.document, "etag": upsert.excluded.etag,
                                          "updated_at": upsert.excluded.updated_at})

    async def read(self, keys: list[str], *, target_cls: type[StoreItemT], **kwargs: Any) -> dict[str, StoreItemT]:
        _check_keys(keys, "read")
        rows = _take_ahead(keys)
        if rows is None:
            wanted = {"keys": sorted(set(keys))}
            rows = await self._units.read(lambda conn: conn.execute(_READ, wanted).all())
        return {key: target_cls.from_json_to_store_item({**document, ETAG_KEY: etag}) for key, document, etag in rows}

    @staticmethod
    def reading(keys: Iterable[str]) -> StateRead:
        """A step for another unit of work (store/turns.py `begin`): read `keys` in its transaction. Hand what it
        returns to `read_ahead()`."""
        wanted = {"keys": sorted(set(keys))}

        def read(conn: Connection) -> Rows:
            found: Rows = {key: (document, etag) for key, document, etag in conn.execute(_READ, wanted)}
            return {key: found.get(key) for key in wanted["keys"]}

        return read

    @staticmethod
    def read_ahead(rows: Rows | None) -> None:
        """This task's next `read()` of those keys is answered from `rows`, each key once (None: forget them)."""
        _READ_AHEAD.set((asyncio.current_task(), dict(rows)) if rows else None)

    async def write(self, changes: dict[str, StoreItem]) -> None:
        if not changes:
            raise ValueError("SqlStorage.write(): changes cannot be None")
        _check_keys(list(changes), "write")
        _forget_ahead(changes)
        documents = {key: _document(key, item) for key, item in changes.items()}
        updated_at = self._clock()

        # What this turn asked to commit with its state (store/turns.py: the activity is done): all or nothing,
        # and only with this write (a failed one drops it: the activity is then not done).
        also = WITH_STATE.get()
        if also:
            WITH_STATE.set(())

        def write_all(conn: Connection) -> dict[str, str]:
            etags = {key: self._write_one(conn, key, document, e_tag, updated_at)
                     for key, (document, e_tag) in documents.items()}
            for work in also:
                work(conn)
            return etags

        new_etags = await self._units.write(write_all)
        for key, item in changes.items():
            _stamp(item, new_etags[key])

    async def delete(self, keys: list[str]) -> None:
        _check_keys(keys, "delete")
        _forget_ahead(keys)
        stmt = delete(ConversationStateRow).where(ConversationStateRow.key.in_(set(keys)))
        await self._units.write(lambda conn: conn.execute(stmt))

    def _write_one(self, conn: Connection, key: str, document: dict[str, Any], e_tag: str | None,
                   updated_at: datetime) -> str:
        new_etag = uuid.uuid4().hex
        values = {"document": document, "etag": new_etag, "updated_at": updated_at}
        if e_tag is None or e_tag in _ANY_ETAG:
            conn.execute(self._upsert, {"key": key, **values})
            return new_etag
        if conn.execute(_GUARDED, {"k": key, "expected": e_tag, **values}).rowcount != 1:
            raise ETagConflictError(key)
        return new_etag


def _take_ahead(keys: list[str]) -> list[tuple[str, dict[str, Any], str]] | None:
    """The rows of `keys` this task read ahead (taken: answered once), or None if it did not read them all."""
    ahead = _READ_AHEAD.get()
    if ahead is None or ahead[0] is not asyncio.current_task() or not ahead[1].keys() >= set(keys):
        return None
    taken = [(key, ahead[1].pop(key)) for key in set(keys)]
    return [(key, *row) for key, row in taken if row is not None]


def _forget_ahead(keys: Iterable[str]) -> None:
    ahead = _READ_AHEAD.get()
    if ahead is not None:
        for key in keys:
            ahead[1].pop(key, None)
