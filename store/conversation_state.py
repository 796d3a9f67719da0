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
"""

from __future__ import annotations

import json
import uuid
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
        wanted = {"keys": sorted(set(keys))}
        rows = await self._units.read(lambda conn: conn.execute(_READ, wanted).all())
        return {key: target_cls.from_json_to_store_item({**document, ETAG_KEY: etag}) for key, document, etag in rows}

    async def write(self, changes: dict[str, StoreItem]) -> None:
        if not changes:
            raise ValueError("SqlStorage.write(): changes cannot be None")
        _check_keys(list(changes), "write")
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
