"""The turn-error handler: it cannot itself fail, and it never shows an exception in chat.

1. log the exception with a correlation id (the only place the details go);
2. tell the user something neutral, with that id, so IT can find the log line;
3. clear the conversation's state, which may be what broke (a concurrent-write conflict is not broken
   state: the other turn's save won, so nothing is cleared then).
Each step is guarded on its own, so a failure in one (the channel is down, the database is down) still
lets the others run, and nothing escapes to the SDK's default handler (which would post `str(error)`).
"""

from __future__ import annotations

import logging
import uuid

from microsoft_agents.activity import Activity, ActivityTypes, InvokeResponse
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.core.storage import Storage

from bot.cards import Cards
from dialogs.card_prompt import CARD_ACTION_INVOKE
from dialogs.reset_dialog import ACCOUNT_CHANGED
from store import ETagConflictError

log = logging.getLogger("watchword.bot")

NEUTRAL = "Something went wrong on my side, so I stopped what I was doing."


def correlation_id() -> str:
    return uuid.uuid4().hex[:12]


def conversation_key(context: TurnContext) -> str | None:
    """The SDK's ConversationState storage key for this turn's conversation."""
    activity = context.activity
    if activity is None or not activity.channel_id or activity.conversation is None or not activity.conversation.id:
        return None
    return f"{activity.channel_id}/conversations/{activity.conversation.id}"


class TurnErrorHandler:
    def __init__(self, storage: Storage, cards: Cards) -> None:
        self._storage = storage
        self._cards = cards

    async def handle(self, context: TurnContext, error: Exception) -> None:
        reference = correlation_id()
        try:
            activity = context.activity
            log.error("turn failed, reference %s (activity type %s, conversation %s)", reference,
                      getattr(activity, "type", None), conversation_key(context), exc_info=error)
        except Exception:  # noqa: S110 - logging itself failed; nothing better can be done here
            pass
        try:
            await self._tell_user(context, reference, conflict=isinstance(error, ETagConflictError),
                                  changed=bool(context.turn_state.get(ACCOUNT_CHANGED)))
        except Exception:
            log.warning("turn error %s: could not tell the user", reference, exc_info=True)
        if isinstance(error, ETagConflictError):
            return
        try:
            key = conversation_key(context)
            if key is not None:
                await self._storage.delete([key])
        except Exception:
            log.warning("turn error %s: could not clear the conversation state", reference, exc_info=True)

    async def _tell_user(self, context: TurnContext, reference: str, *, conflict: bool, changed: bool = False) -> None:
        if changed:  # the reset went through (or may have) before the failure: saying "nothing happened" is false
            lines = ["The password may have been changed before this went wrong. If no temporary password is shown "
                     "above, verify the caller again and reset; tell your security team either way."]
        elif conflict:
            lines = ["Two actions arrived at the same time and this one was not applied. Please try it again."]
        else:
            lines = ["Please start again. Any verification in progress was stopped and nothing more will happen to "
                     "the account."]
        lines.append(f"If it happens again, give IT this reference: {reference}")
        card = self._cards.render("notice", title=NEUTRAL if not conflict else "That didn't go through",
                                  lines=lines, tone="Warning")
        activity = context.activity
        if activity is not None and activity.type == ActivityTypes.invoke:
            body = ({"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive", "value": card}
                    if activity.name == CARD_ACTION_INVOKE else None)
            await context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                 value=InvokeResponse(status=200, body=body)))
            return
        await context.send_activity(self._cards.activity(card, "Something went wrong"))
