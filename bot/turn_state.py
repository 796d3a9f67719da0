"""What the Agents SDK loads for each turn, trimmed to what Watchword uses.

On every message the SDK's `AgentApplication` reads three documents from storage: the conversation state, the
user state, and the user's OAuth sign-in state. Watchword keeps its dialogs in the conversation state and
everything else in the store; it signs no one in through the SDK (no OAuth handlers: the admin console has its
own sign-in, and the bot reads Graph with the app's own token). The other two reads always come back empty,
and each one costs a database round trip per turn, a quarter of a short turn's time. So:

- `ConversationTurnState` loads the conversation scope (and the in-memory temp scope) only;
- `NoUserSignIn` is the SDK's `Authorization` with no handlers, which knows there is never a sign-in flow to
  continue instead of reading storage to find out.

tests/bot/test_turns.py checks that a turn reads the conversation state only, so an SDK upgrade that changes
these fails loudly.
"""

from __future__ import annotations

from microsoft_agents.hosting.core import ConversationState, TempState, TurnContext, TurnState
from microsoft_agents.hosting.core.app.oauth import Authorization
from microsoft_agents.hosting.core.authorization import Connections
from microsoft_agents.hosting.core.storage import Storage


class ConversationTurnState(TurnState):
    """TurnState with the conversation and temp scopes; `state.user` is not available."""

    async def load(self, context: TurnContext, storage: Storage) -> ConversationTurnState:
        conversation, temp = ConversationState(storage), TempState()
        await conversation.load(context)
        await temp.load(context)
        self._scopes = {ConversationState.__name__: conversation, TempState.SCOPE_NAME: temp}
        return self


class NoUserSignIn(Authorization):
    """The SDK's Authorization without handlers: no sign-in state to look up on each turn."""

    def __init__(self, storage: Storage, connection_manager: Connections) -> None:
        super().__init__(storage=storage, connection_manager=connection_manager, auth_handlers=None,
                         auto_sign_in=False)

    async def _load_sign_in_state(self, context: TurnContext) -> None:
        return None
