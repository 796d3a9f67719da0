"""What the Agents SDK loads for each turn, and `TurnGate`: one turn at a time per conversation, once per activity.

`ConversationTurnState` loads the conversation scope (and the SDK's in-memory temp scope) only, not the SDK's user
state. Not for speed: the user state is one document per person, shared by all their conversations, which the SDK
writes on the person's first turn; under SqlStorage's e_tags (store/conversation_state.py) two first turns of one
person in two conversations at once then conflict, and one of them fails (tests/bot/test_connector_clients.py, six
conversations at once). Watchword keeps nothing per person in the SDK's state. It overrides `TurnState.load` and
adds the scope with `TurnState.add`, both public.

Before the SDK loads a conversation's state, the turn claims its activity and takes its
conversation (store/turns.py), so turns of one conversation run one after the other, on one instance or several,
and each activity once; the conversation is given up in the transaction that saves the turn's state. While the
turn runs, each of its writes first checks, in its own transaction, that the turn still holds the conversation
(store/units.py Fence): a process stalled long enough to be taken for dead, its conversation taken over by another,
writes nothing over the new owner's work when it resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from microsoft_agents.hosting.core import ConversationState, TurnContext, TurnState
from microsoft_agents.hosting.core.storage import Storage

from store.conversation_state import SqlStorage, StateRead
from store.turns import CURRENT_ACTIVITY, RENEW_EVERY, WITH_STATE, TurnClaim, TurnRepository
from store.units import TURN_FENCE, Fence

log = logging.getLogger("watchword.bot")


GATED = "watchword.gated_turn"  # turn_state: this turn's claim and conversation (TurnGate), set by bot/agent.py


class ConversationTurnState(TurnState):
    """TurnState with the conversation and temp scopes; `state.user` is not available (see the module doc)."""

    async def load(self, context: TurnContext, storage: Storage) -> ConversationTurnState:
        conversation = ConversationState(storage)
        await conversation.load(context)
        self.add(conversation)  # the temp scope is there already (TurnState.__init__)
        return self

    async def save(self, turn_context: TurnContext, force: bool = False) -> None:
        """As TurnState.save, except after a gated turn saved its state with the conversation given up (bot/agent.py
        on_activity): the SDK saves again once the handler returns, and that save has nothing left to write (its
        check re-serialised the whole state to hash it), nor may it write: the conversation is the next turn's."""
        gated = turn_context.turn_state.get(GATED)
        if not force and isinstance(gated, GatedTurn) and gated.released:
            return
        await super().save(turn_context, force)


# --- one turn at a time per conversation, once per activity (store/turns.py) ----------------------------------------
WAIT_FOR_CONVERSATION_S = 10.0  # a turn waits this long for the one before it; Teams gives up on a turn after 15 s
POLL_FIRST_S, POLL_MOST_S = 0.02, 0.25  # polling another instance's turn: from 20 ms, doubling up to 250 ms


class Entry(StrEnum):
    FIRST = "first"  # this turn runs: the activity is its own and the conversation is taken
    DUPLICATE = "duplicate"  # processed already, or being processed now by another turn: skipped
    BUSY = "busy"  # the conversation's previous turn did not finish in time: nothing done, the claim given up


@dataclass
class GatedTurn:
    entry: Entry
    activity: str | None
    conversation: str
    holder: str
    released: bool = False  # the conversation was given up with the state this turn saved
    give_back: bool = False  # the turn did nothing (the store was busy): its claim is given up, for the redelivery

    def _given_up(self) -> None:
        self.released = True


class TurnGate:
    """Runs each turn of a conversation alone, across processes, and each activity once (store/turns.py).

    `async with gate.enter(activity_key, conversation_key) as turn:` claims the activity and takes the
    conversation (one unit of work when nobody else is in it; otherwise it waits for the turn before: on an event
    when that turn is in this process, by polling when it is in another), renews both leases while the turn runs,
    and gives the conversation up when it ends, unless `done_with_state` already had it given up in the
    transaction that saved the turn's state. A turn killed with its process leaves leases that lapse on their own.
    Given the turn's `context` (and a SqlStorage), the conversation's state, which the turn reads first
    (ConversationTurnState.load), is read in that same unit of work when it takes the conversation at once
    (store/conversation_state.py, read ahead).
    """

    def __init__(self, turns: TurnRepository, state: SqlStorage | None = None) -> None:
        self._turns = turns
        self._state = state
        self._running: dict[str, asyncio.Event] = {}  # conversations a turn of this process has: set when it ends

    @asynccontextmanager
    async def enter(self, activity: str | None, conversation: str, context: TurnContext | None = None
                    ) -> AsyncIterator[GatedTurn]:
        WITH_STATE.set(())  # nothing left over from an earlier turn run in this task
        holder = self._turns.holder()
        claim, taken, read = await self._turns.begin_reading(activity, conversation, holder, self._reading(context))
        turn = GatedTurn(Entry.FIRST, activity, conversation, holder)
        if claim is TurnClaim.DUPLICATE:
            turn.entry = Entry.DUPLICATE
            yield turn
            return
        if not taken and not await self._wait(turn):
            if activity is not None:
                await self._turns.give_up(activity, conversation, holder)
            turn.entry = Entry.BUSY
            yield turn
            return
        ended = self._running[conversation] = asyncio.Event()
        SqlStorage.read_ahead(read)
        renewing = asyncio.create_task(self._renew(turn))
        # What this turn writes lands only while it holds the conversation (store/units.py Fence).
        TURN_FENCE.set(Fence(conversation, holder, asyncio.current_task(), lambda: turn.released))
        CURRENT_ACTIVITY.set(activity)  # what it records is keyed by its message: a redelivery records it once
        try:
            yield turn
        finally:
            TURN_FENCE.set(None)
            CURRENT_ACTIVITY.set(None)
            SqlStorage.read_ahead(None)
            renewing.cancel()
            WITH_STATE.set(())
            if self._running.get(conversation) is ended:
                del self._running[conversation]
            try:
                if turn.give_back and not turn.released and activity is not None:
                    await self._turns.give_up(activity, conversation, holder)
                elif not turn.released:
                    await self._turns.release_conversation(conversation, holder)
            except Exception:  # its lease lapses on its own: the next turn waits that long at most
                log.warning("could not give up conversation turn %s", holder, exc_info=True)
            finally:
                ended.set()

    def _reading(self, context: TurnContext | None) -> StateRead | None:
        """The read of the turn's conversation state, for its claim's unit of work (None: the SDK reads it)."""
        if self._state is None or context is None:
            return None
        try:
            return self._state.reading([ConversationState(self._state).get_storage_key(context)])
        except ValueError:  # no channel or conversation id: the SDK refuses the turn itself
            return None

    def done_with_state(self, turn: GatedTurn) -> None:
        """Mark the turn's activity done and give its conversation up, both with the state it saves next."""
        self._turns.done_with_state(turn.activity, turn.conversation, turn.holder, committed=turn._given_up)

    async def _wait(self, turn: GatedTurn) -> bool:
        """Wait for the conversation's turn before this one to end; False if it did not in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_FOR_CONVERSATION_S
        pause = POLL_FIRST_S
        while (left := deadline - loop.time()) > 0:
            running = self._running.get(turn.conversation)
            try:
                if running is not None:  # a turn of this process: it says when it ends
                    await asyncio.wait_for(running.wait(), left)
                else:
                    await asyncio.sleep(min(pause, left))
                    pause = min(pause * 2, POLL_MOST_S)
            except TimeoutError:
                break
            if await self._turns.take_conversation(turn.conversation, turn.holder):
                await self._turns.renew(turn.activity, None, turn.holder)  # its claim's lease ran while it waited
                return True
        return False

    async def _renew(self, turn: GatedTurn) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            try:
                await self._turns.renew(turn.activity, turn.conversation, turn.holder)
            except Exception:  # the next renewal tries again; a lapsed lease only lets a redelivery in
                log.warning("could not renew the leases of turn %s", turn.holder, exc_info=True)
