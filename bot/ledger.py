"""Small records beside conversation state, with compare-and-set: the reset ledger and out-of-band answers.

Both live in the bot's `Storage` (store/'s SqlStorage: a write carrying the e_tag it read succeeds only if
nobody wrote since, across processes), under keys of their own:
    watchword/reset/<session id>     {"status": allowed | resetting | done | blocked, "at": ...}
    watchword/oob/<session id>       who was asked, which agent conversation to tell, and their answer
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from microsoft_agents.hosting.core.storage import Storage, StoreItem

from dialogs.ports import Clock, ResetClaim
from store import ETagConflictError

RESET_KEY = "watchword/reset/{}"
OOB_KEY = "watchword/oob/{}"


class Record(StoreItem):
    """A JSON document and the e_tag it was read with (None for a new one)."""

    def __init__(self, data: Mapping[str, Any] | None = None, e_tag: str | None = None) -> None:
        self.data = dict(data or {})
        self.e_tag = e_tag

    def store_item_to_json(self) -> dict[str, Any]:
        return {**self.data, "e_tag": self.e_tag}

    @staticmethod
    def from_json_to_store_item(json_data: Any) -> Record:
        data = dict(json_data or {})
        e_tag = data.pop("e_tag", None)
        return Record(data, e_tag)


async def read_record(storage: Storage, key: str) -> Record | None:
    return (await storage.read([key], target_cls=Record)).get(key)


async def write_record(storage: Storage, key: str, record: Record) -> bool:
    """Write; False when the record changed since it was read (someone else won)."""
    try:
        await storage.write({key: record})
    except ETagConflictError:
        return False
    return True


class StorageResetLedger:
    def __init__(self, storage: Storage, clock: Clock) -> None:
        self._storage = storage
        self._clock = clock

    async def allow(self, session_id: str, *, tenant_id: str, target_id: str) -> None:
        key = RESET_KEY.format(session_id)
        if await read_record(self._storage, key) is not None:
            return  # never reopen a done or blocked reset
        await write_record(self._storage, key, Record({"status": "allowed", "tenant_id": tenant_id,
                                                       "target_id": target_id, "at": None}))

    async def claim(self, session_id: str) -> tuple[ResetClaim, datetime | None]:
        key = RESET_KEY.format(session_id)
        record = await read_record(self._storage, key)
        if record is None:
            return ResetClaim.UNKNOWN, None
        status = record.data.get("status")
        at = datetime.fromisoformat(record.data["at"]) if record.data.get("at") else None
        if status == "done":
            return ResetClaim.DONE, at
        if status == "resetting":
            return ResetClaim.BUSY, None
        if status != "allowed":
            return ResetClaim.BLOCKED, None
        record.data.update(status="resetting", at=None)
        if not await write_record(self._storage, key, record):
            return ResetClaim.BUSY, None
        return ResetClaim.CLAIMED, None

    async def settle(self, session_id: str, *, done: bool, at: datetime | None = None, blocked: bool = False) -> None:
        key = RESET_KEY.format(session_id)
        record = await read_record(self._storage, key) or Record()
        status = "done" if done else "blocked" if blocked else "allowed"
        record.data.update(status=status, at=(at or self._clock()).isoformat() if done else None)
        await self._storage.write({key: Record(record.data)})  # the claimant owns the record now

    async def block(self, session_id: str) -> None:
        """The person said "not me": no reset for this session, ever (unless it is already done)."""
        key = RESET_KEY.format(session_id)
        for _ in range(3):
            record = await read_record(self._storage, key) or Record()
            if record.data.get("status") == "done":
                return
            record.data["status"] = "blocked"
            if await write_record(self._storage, key, record):
                return
