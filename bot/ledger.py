"""The reset ledger, over the store, and small records beside conversation state (out-of-band answers).

The reset's record lives on the verified session's own row in the store (store/sessions.py claim_reset and
settle_reset): the one place that guards a reset, compare-and-set with its audit row in one transaction.

Out-of-band answers live in the bot's `Storage` (store/'s SqlStorage: a write carrying the e_tag it read succeeds
only if nobody wrote since, across processes), under a key of their own:
    watchword/oob/<session id>       who was asked, which agent conversation to tell, and their answer
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from microsoft_agents.hosting.core.storage import Storage, StoreItem

from dialogs.ports import Actor
from observability.metrics import Metrics
from store import AuditEvent, ETagConflictError, Store, StoreUnavailable
from verification.reset import ResetClaim, ResetClaimResult, ResetOutcome, Settled

log = logging.getLogger(__name__)

# A database that stops answering after Graph already changed the password: retry the outcome's record briefly.
SETTLE_RETRY_DELAYS = (0.2, 1.0)

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


class StoreResetLedger:
    """The dialogs' `ResetLedger` over the verified session's reset record in the store (store/sessions.py)."""

    def __init__(self, store: Store, metrics: Metrics | None = None) -> None:
        self._store = store
        self._metrics = metrics or Metrics()

    async def claim(self, session_id: str, *, actor: Actor) -> ResetClaimResult:
        try:
            return await self._store.sessions.claim_reset(session_id, by=actor.user_id, actor=f"teams:{actor.user_id}")
        except ValueError:  # not a session id at all (a tampered card): nothing allows a reset
            return ResetClaimResult(ResetClaim.NOT_ALLOWED, 0)

    async def fence(self, session_id: str, attempt: int) -> bool:
        return await self._store.sessions.fence_reset(session_id, attempt)

    async def holds(self, session_id: str, attempt: int) -> bool:
        try:
            return await self._store.sessions.holds_reset(session_id, attempt)
        except Exception:  # cannot tell: the password was changed, so show it (its record says if it stands)
            log.warning("could not read the reset record of session %s", session_id, exc_info=True)
            return True

    async def settle(self, session_id: str, attempt: int, outcome: ResetOutcome, *, actor: Actor, target_id: str,
                     audit_outcome: str, details: Mapping[str, Any] | None = None, blocked: bool = False) -> Settled:
        event = AuditEvent(action="password_reset", outcome=audit_outcome, actor=f"teams:{actor.user_id}",
                           subject=target_id, tenant_id=actor.tenant_id,
                           details={"session_id": session_id, "attempt": attempt, **(details or {})})
        self._metrics.password_reset(outcome.value)
        for delay in (*SETTLE_RETRY_DELAYS, None):
            try:
                moved = await self._store.sessions.settle_reset(session_id, attempt, outcome, audit=event,
                                                                blocked=blocked)
                return Settled.RECORDED if moved else Settled.SUPERSEDED
            except StoreUnavailable:
                log.warning("could not record the outcome (%s) of reset attempt %d of session %s%s", audit_outcome,
                            attempt, session_id, "; retrying" if delay is not None else "", exc_info=True)
                if delay is None:
                    return Settled.UNRECORDED
                await asyncio.sleep(delay)
        return Settled.UNRECORDED

    async def block(self, session_id: str) -> None:
        await self._store.sessions.block_reset(session_id)
