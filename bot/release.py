"""Letting go of what a TurnContext holds once it is done with: the turns of bot/agent.py, and the SDK's own contexts
that bot/proactive.py sends through (the code card, the manager's card, notices), which are not turns of ours.

The Agents SDK leaves every TurnContext in reference cycles (see `release_turn`): what a context still holds when its
work is over is freed only by a full collection, one every few dozen starts under load, after the collector walked it
in every younger collection meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from microsoft_agents.activity import Activity, ResourceResponse
from microsoft_agents.hosting.core import ChannelAdapter, ConnectorClientBase, TurnContext, UserTokenClientBase
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogState

from bot.dialog_state import LIVE


def release_turn(context: TurnContext) -> None:
    """Let go of what a finished turn holds, but for what the adapter reads after it: the invoke response.

    The Agents SDK leaves every TurnContext in reference cycles: `TurnContext._emit` builds a closure that refers to
    itself on each send, update and delete, and each DialogContext and its DialogStateManager refer to each other.
    Only a full collection frees those cycles (one every few dozen starts under load), and by then the turn, having
    awaited I/O, sits in the collector's old generation. Until then they kept all the turn held: its `turn_state`
    (the conversation's state, the decoded dialog stack, our keys), the DialogContexts' stacks (every open dialog's
    values), the turn's channel clients in `context.services` (an aiohttp session each, closed but whole) and, in each
    send's closure, the SDK's copies of the activities sent (every card). With those emptied (the copies by
    `forget_sent`, once each send is done; the rest here), the cycles hold the SDK's own small objects and the
    received activity only, and the rest is freed now by reference counting, not walked by a full collection later
    (tests/bot/test_turns.py, what a turn leaves to the collector).

    Safe because the turn is over: AgentApplication saved its state before on_turn returned; after on_turn the adapter
    reads only the invoke response from `turn_state` and closes the clients it holds itself (ChannelServiceAdapter's
    process_activity); the sends that go on after the turn (Messenger.send_in_background) use the context's adapter
    and activity only, and open clients of their own. The same holds for the context the SDK makes for each of those
    sends (bot/proactive.py `_deliver`, through continue_conversation_with_claims): once its send or update returned,
    nothing reads it again, and ChannelServiceAdapter's process_proactive closes the clients it made itself.
    """
    for state in _dialog_states(context.turn_state.get(LIVE)):
        state.dialog_stack.clear()
    invoke_response = context.turn_state.get(ChannelAdapter.INVOKE_RESPONSE_KEY)
    context.turn_state.clear()
    context.services.set(ConnectorClientBase, None)
    context.services.set(UserTokenClientBase, None)
    if invoke_response is not None:
        context.turn_state[ChannelAdapter.INVOKE_RESPONSE_KEY] = invoke_response


async def forget_sent(context: TurnContext, activities: list[Activity],
                      send: Callable[[], Awaitable[list[ResourceResponse]]]) -> list[ResourceResponse]:
    """A turn's send handler (`TurnContext.on_send_activities`): once sent, the SDK's copies go (see release_turn).
    `activities` is the SDK's own list of copies for this send, which nothing reads once the send has returned."""
    try:
        return await send()
    finally:
        activities.clear()


def _dialog_states(state: object) -> list[DialogState]:
    """The decoded dialog stack `state` and every inner dialog's stack inside it (a ComponentDialog keeps its own)."""
    if not isinstance(state, DialogState):
        return []
    found = [state]
    for instance in state.dialog_stack:
        if isinstance(instance.state, dict):
            found += _dialog_states(instance.state.get(ComponentDialog.persisted_dialog_state))
    return found
