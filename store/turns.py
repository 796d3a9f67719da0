"""Turns processed once per activity, and one at a time per conversation, across processes.

Once per activity. Teams redelivers a slow turn, and the same activity can arrive twice at once, on one instance
or two. Each incoming activity is claimed by its id before the turn does anything; the mark that it is done is
committed in the same transaction as the conversation state the turn saves (with its e_tag check), so
"processed" means "its state is saved". A claim is one row, keyed by a SHA-256 of (channel, conversation,
activity id) so any id fits, and names its owner (this process: host, pid, start) and a short lease, renewed while
the turn runs. A second delivery finds the row: done, or claimed under a live lease (another turn has it), and is
skipped. A claim that was never finished and whose lease ran out (its process died: nothing renews it) is taken
over by the next delivery, well within Teams' redeliveries.

One at a time per conversation. Two *different* activities of one conversation at once (an answer typed while the
card's Submit is clicked, or two clients served by two instances) would both load the same state, both record an
answer, and the later one fail when it saves. So a turn first takes its conversation (a row per conversation with
an owner and a lease, compare-and-set like the claim, in the same unit of work as the claim), then loads the state;
the next turn of that conversation waits until the row is given up, which happens in the transaction that saves
the first turn's state (or when the turn ends without saving; or when its lease runs out). What a turn writes
(answers, audit rows) therefore always starts from the state the previous turn saved. The state's e_tag check
stays, as the backstop for a turn whose lease ran out while it still ran.

A dead process's turns are taken over at once. Each process that runs turns writes a heartbeat (`beat`, every
BEAT_EVERY, good for OWNER_ALIVE). A claim or a conversation whose process's heartbeat has lapsed (it was killed)
is taken over by the next turn without waiting for its lease: otherwise, after a kill, the next turn of that chat
(waiting at most 10 s, bot/turn_state.py) would give up before the dead turn's 15 s lease ran out, and Teams'
redelivery of the dead turn's activity would be dropped as a duplicate for as long. The lease still governs a
live process (a turn that is slow, or a process whose event loop stalls): only the heartbeat of a process that is
gone lapses in OWNER_ALIVE. A holder with no heartbeat row (from before 0011) is judged by its lease alone.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import ConversationTurnRow, ProcessedActivityRow, TurnProcessRow
from store.units import Units
from verification.clock import Clock, utc_now

T = TypeVar("T")

# A claim's and a conversation's lease: renewed every RENEW_EVERY while the turn runs, so only a dead process's
# lapses. Shorter than Teams' redelivery of an unanswered activity, so the redelivery is processed.
TURN_LEASE = timedelta(seconds=15)
RENEW_EVERY = TURN_LEASE / 3
KEEP = timedelta(days=1)  # Teams redelivers within minutes: a day of keys is plenty
# A process's heartbeat: three missed beats and it is taken for dead. Well inside the 10 s a turn waits for the one
# before it (bot/turn_state.py), so a turn waiting on a killed process's turn takes the chat over in time.
BEAT_EVERY = timedelta(seconds=2)
OWNER_ALIVE = BEAT_EVERY * 3

# The activity key of the turn running in this task (bot/turn_state.py sets it): what it records is keyed by it, so
# Teams' redelivery of a turn killed half-way records nothing twice (store/sessions.py add_entry).
CURRENT_ACTIVITY: ContextVar[str | None] = ContextVar("watchword_current_activity", default=None)

# Units of work to commit with the next conversation-state write of this turn (see SqlStorage.write).
WITH_STATE: ContextVar[tuple[Callable[[Connection], None], ...]] = ContextVar("watchword_with_state", default=())

# Core statements, built once (every turn runs them): building and keying a statement per call cost more CPU than
# running it. Parameters: k (a claim's or a conversation's key), now, until (a lease's end), o (this process),
# h (the turn that holds a conversation).
_PA, _CT, _TP = ProcessedActivityRow, ConversationTurnRow, TurnProcessRow
_CLAIMED = select(_PA.claimed_at, _PA.done_at, _PA.lease_until, _PA.owner).where(_PA.key == bindparam("k"))
_CLAIM_OVER = (update(_PA).where(_PA.key == bindparam("k"), _PA.done_at.is_(None),
                                 _PA.claimed_at == bindparam("was_claimed"),
                                 or_(_PA.lease_until.is_(None), _PA.lease_until == bindparam("was_until")))
               .values(claimed_at=bindparam("now"), owner=bindparam("o"), lease_until=bindparam("until")))
_TAKE = (update(_CT).where(_CT.key == bindparam("k"),
                           or_(_CT.lease_until <= bindparam("now"), _CT.owner == bindparam("h"),
                               _CT.process.in_(select(_TP.owner).where(_TP.alive_until <= bindparam("now")))))
         .values(owner=bindparam("h"), process=bindparam("o"), lease_until=bindparam("until")))
_DEAD = select(_TP.owner).where(_TP.owner == bindparam("o"), _TP.alive_until <= bindparam("now"))
_RENEW_CLAIM = (update(_PA).where(_PA.key == bindparam("k"), _PA.owner == bindparam("o"), _PA.done_at.is_(None))
                .values(lease_until=bindparam("until")))
_RENEW_CONVERSATION = (update(_CT).where(_CT.key == bindparam("k"), _CT.owner == bindparam("h"))
                       .values(lease_until=bindparam("until")))
_DONE = update(_PA).where(_PA.key == bindparam("k")).values(done_at=bindparam("now"))
_RELEASE = delete(_CT).where(_CT.key == bindparam("k"), _CT.owner == bindparam("h"))
_FORGET = delete(_PA).where(_PA.key == bindparam("k"), _PA.owner == bindparam("o"), _PA.done_at.is_(None))


class TurnClaim(StrEnum):
    FIRST = "first"  # this delivery processes the activity
    DUPLICATE = "duplicate"  # processed already, or being processed by another turn right now


def activity_key(channel_id: str, conversation_id: str, activity_id: str) -> str:
    return _key(channel_id, conversation_id, activity_id)


def conversation_key(channel_id: str, conversation_id: str) -> str:
    return _key(channel_id, conversation_id)


def _key(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def process_owner() -> str:
    """Who holds a claim: this host and process, and this start of it (a pid is reused after a restart)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{utc_now():%Y%m%dT%H%M%S}:{uuid.uuid4().hex[:8]}"


class TurnRepository:
    def __init__(self, units: Units, clock: Clock, owner: str | None = None, housekeeping: Units | None = None
                 ) -> None:
        self._units = units
        # Beats, renewals and giving a chat up: on a connection of their own where the pool could run dry (store/db.py)
        self._keeping = housekeeping or units
        self._clock = clock
        self.owner = owner or process_owner()
        self._turns = itertools.count(1)
        insert = (postgresql if units.dialect == "postgresql" else sqlite).insert
        self._first_claim = insert(_PA).on_conflict_do_nothing(index_elements=["key"])
        self._first_take = insert(_CT).on_conflict_do_nothing(index_elements=["key"])
        beat = insert(_TP)
        self._beat = beat.on_conflict_do_update(index_elements=["owner"],
                                                set_={"alive_until": beat.excluded.alive_until})

    def holder(self) -> str:
        """A name for one turn of this process: what holds a conversation (two turns of one process are two)."""
        return f"{self.owner}/{next(self._turns)}"

    async def claim(self, key: str) -> TurnClaim:
        """Claim the activity for this turn (compare-and-set), or say it is a duplicate."""
        now = self._clock()
        return await self._units.write(lambda conn: self._claim(conn, key, now))

    async def begin(self, activity: str | None, conversation: str, holder: str) -> tuple[TurnClaim, bool]:
        """Claim the activity (when it has an id) and, if this turn is its first, take the conversation for
        `holder`, in one unit of work: (the claim, whether the conversation was taken). Not taken: another turn
        runs in it now."""
        claim, taken, _ = await self.begin_reading(activity, conversation, holder, None)
        return claim, taken

    async def begin_reading(self, activity: str | None, conversation: str, holder: str,
                            read: Callable[[Connection], T] | None) -> tuple[TurnClaim, bool, T | None]:
        """`begin`, and once the conversation is taken, `read` in the same transaction (what the turn reads first,
        its state: store/conversation_state.py `reading`): (the claim, taken, what `read` returned, else None)."""
        now = self._clock()

        def begin(conn: Connection) -> tuple[TurnClaim, bool, T | None]:
            claim = self._claim(conn, activity, now) if activity is not None else TurnClaim.FIRST
            taken = claim is TurnClaim.FIRST and self._take(conn, conversation, holder, now)
            return claim, taken, read(conn) if taken and read is not None else None

        return await self._units.write(begin)

    async def take_conversation(self, conversation: str, holder: str) -> bool:
        """Take the conversation for `holder`; False while another turn (with a live lease) has it."""
        now = self._clock()
        return await self._units.write(lambda conn: self._take(conn, conversation, holder, now))

    async def renew(self, activity: str | None, conversation: str | None, holder: str) -> None:
        """Extend the leases of a turn still running: its activity's claim, and its conversation."""
        until = self._clock() + TURN_LEASE

        def renew(conn: Connection) -> None:
            if activity is not None:
                conn.execute(_RENEW_CLAIM, {"k": activity, "o": self.owner, "until": until})
            if conversation is not None:
                conn.execute(_RENEW_CONVERSATION, {"k": conversation, "h": holder, "until": until})

        await self._keeping.write(renew)

    def done_with_state(self, key: str | None, conversation: str | None = None, holder: str = "",
                        committed: Callable[[], None] | None = None) -> None:
        """Mark the activity done, and give the conversation up, in the transaction of this turn's next
        conversation-state write; `committed` is called in that transaction once its statements ran."""
        now = self._clock()

        def with_state(conn: Connection) -> None:
            if key is not None:
                conn.execute(_DONE, {"k": key, "now": now})
            if conversation is not None:
                conn.execute(_RELEASE, {"k": conversation, "h": holder})
            if committed is not None:
                committed()

        WITH_STATE.set((*WITH_STATE.get(), with_state))

    async def release_conversation(self, conversation: str, holder: str) -> None:
        """Give the conversation up (only if `holder` still has it)."""
        await self._keeping.write(lambda conn: conn.execute(_RELEASE, {"k": conversation, "h": holder}))

    async def give_up(self, activity: str, conversation: str, holder: str) -> None:
        """Forget this process's unfinished claim of the activity (so its redelivery is processed), and give the
        conversation up if `holder` has it."""

        def give_up(conn: Connection) -> None:
            conn.execute(_FORGET, {"k": activity, "o": self.owner})
            conn.execute(_RELEASE, {"k": conversation, "h": holder})

        await self._keeping.write(give_up)

    async def beat(self) -> None:
        """This process's heartbeat: alive for OWNER_ALIVE from now (call it every BEAT_EVERY while it runs)."""
        values = {"owner": self.owner, "alive_until": self._clock() + OWNER_ALIVE}
        await self._keeping.write(lambda conn: conn.execute(self._beat, values))

    async def retire(self) -> None:
        """This process stops: its claims and conversations still held are free at once."""
        stmt = update(TurnProcessRow).where(TurnProcessRow.owner == self.owner).values(alive_until=self._clock())
        await self._keeping.write(lambda conn: conn.execute(stmt))

    async def prune(self) -> int:
        """Housekeeping: forget activities older than `KEEP` (and conversations whose lease ran out long ago, and
        processes gone as long)."""
        now = self._clock()
        old = delete(ProcessedActivityRow).where(ProcessedActivityRow.claimed_at <= now - KEEP)
        lapsed = delete(ConversationTurnRow).where(ConversationTurnRow.lease_until <= now - KEEP)
        gone = delete(TurnProcessRow).where(TurnProcessRow.alive_until <= now - KEEP)

        def prune(conn: Connection) -> int:
            conn.execute(lapsed)
            conn.execute(gone)
            return int(conn.execute(old).rowcount)

        return await self._units.write(prune)

    # --- in a unit of work ---------------------------------------------------------------------------------
    def _claim(self, conn: Connection, key: str, now: datetime) -> TurnClaim:
        until = now + TURN_LEASE
        # First seen (nearly every turn): the insert is the claim, one statement. A concurrent first delivery's
        # insert wins over ours, or ours over it.
        if conn.execute(self._first_claim, {"key": key, "claimed_at": now, "done_at": None, "owner": self.owner,
                                            "lease_until": until}).rowcount == 1:
            return TurnClaim.FIRST
        row = conn.execute(_CLAIMED, {"k": key}).one_or_none()
        if row is None:  # pruned since the insert found it: as good as done long ago
            return TurnClaim.DUPLICATE
        # A claim from before leases were kept (lease_until NULL) is as old as its claimed_at.
        lease = row.lease_until if row.lease_until is not None else row.claimed_at
        if row.done_at is not None or (lease > now and not _dead(conn, row.owner, now)):
            return TurnClaim.DUPLICATE
        taken = conn.execute(_CLAIM_OVER, {"k": key, "was_claimed": row.claimed_at, "was_until": row.lease_until,
                                           "now": now, "o": self.owner, "until": until}).rowcount == 1
        return TurnClaim.FIRST if taken else TurnClaim.DUPLICATE

    def _take(self, conn: Connection, key: str, holder: str, now: datetime) -> bool:
        until = now + TURN_LEASE
        # A conversation's row is deleted when its turn gives it up, so a turn nearly always finds none: the insert
        # first, the take-over (a row left by a turn whose lease ran out or whose process died) only if one is there.
        if conn.execute(self._first_take, {"key": key, "owner": holder, "process": self.owner,
                                           "lease_until": until}).rowcount == 1:
            return True
        return conn.execute(_TAKE, {"k": key, "now": now, "h": holder, "o": self.owner, "until": until}).rowcount == 1


def dead_processes(now: datetime) -> Any:
    """The processes whose heartbeat has lapsed (killed, or stopped)."""
    return select(TurnProcessRow.owner).where(TurnProcessRow.alive_until <= now)


def _dead(conn: Connection, owner: str | None, now: datetime) -> bool:
    return owner is not None and conn.execute(_DEAD, {"o": owner, "now": now}).first() is not None
