"""Reaching people outside the current conversation: conversation references, the out-of-band
"is that you on the call?" question and its answer, and the "your password was reset" notice.

A user's reference is saved from their 1:1 chat with Watchword (install or any message there), so a
notice never lands in a group chat. Sending goes through the adapter of the turn in progress
(`continue_conversation_with_claims`): CloudAdapter in production, TestAdapter in tests. A notice that
cannot be delivered is logged and reported as False; it never fails the agent's turn.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from microsoft_agents.activity import Activity, ConversationReference
from microsoft_agents.hosting.core import ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.storage import Storage

from bot.access import remember
from bot.cards import Cards
from bot.ledger import OOB_KEY, Record, StorageResetLedger, read_record, write_record
from dialogs.ports import Actor, Clock
from dialogs.times import clock_time, date_and_time
from store import SessionClosedError, SessionOutcome, Store

log = logging.getLogger(__name__)


def user_id_of(activity: Activity) -> str:
    sender = activity.from_property
    return str((sender.aad_object_id if sender else None) or "")


def is_personal(activity: Activity) -> bool:
    conversation = activity.conversation
    kind = getattr(conversation, "conversation_type", None) if conversation else None
    return kind == "personal" or (kind is None and conversation is not None and not conversation.is_group)


class ProactiveMessenger:
    """The dialogs' `Messenger`, plus the out-of-band answer handler and reference keeping for bot/agent.py."""

    def __init__(self, store: Store, storage: Storage, ledger: StorageResetLedger, cards: Cards, clock: Clock,
                 app_id: str, anonymous: bool) -> None:
        self._store = store
        self._storage = storage
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self._app_id = app_id
        self._anonymous = anonymous
        self._known: dict[tuple[str, str], tuple[str, str]] = {}  # (tenant, user) -> (conversation, serviceUrl)

    # --- references ----------------------------------------------------------------------------------------
    async def remember(self, context: TurnContext, tenant_id: str) -> None:
        """Keep the sender's 1:1 conversation reference (once per conversation and service URL)."""
        activity = context.activity
        user_id = user_id_of(activity)
        if not user_id or not is_personal(activity) or activity.conversation is None:
            return
        seen = (activity.conversation.id, activity.service_url or "")
        if self._known.get((tenant_id, user_id)) == seen:
            return
        reference = activity.get_conversation_reference().model_dump(mode="json", by_alias=True, exclude_none=True)
        reference.pop("activityId", None)
        try:
            await self._store.conversation_refs.save(tenant_id, user_id, reference)
        except ValueError:  # not a GUID tenant or user id: nothing we could reach later anyway
            return
        remember(self._known, (tenant_id, user_id), seen)

    async def _reference(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        try:
            stored = await self._store.conversation_refs.get(tenant_id, user_id)
        except ValueError:
            return None
        return dict(stored.reference) if stored is not None else None

    async def send(self, context: TurnContext, reference: dict[str, Any], activity: Activity, what: str) -> bool:
        """Send `activity` into the referenced conversation; False (logged) if that fails."""
        try:
            continuation = ConversationReference.model_validate(reference).get_continuation_activity()

            async def deliver(proactive: TurnContext) -> None:
                await proactive.send_activity(activity)

            claims = ClaimsIdentity() if self._anonymous else ClaimsIdentity({"aud": self._app_id,
                                                                              "appid": self._app_id})
            await context.adapter.continue_conversation_with_claims(claims, continuation, deliver)
        except Exception:  # a notice must never break the agent's turn; the log says why
            log.warning("could not deliver %s", what, exc_info=True)
            return False
        return True

    # --- Messenger (for the dialogs) -----------------------------------------------------------------------
    async def ask_out_of_band(self, context: TurnContext, *, session_id: str, actor: Actor, target_id: str) -> bool:
        if target_id.lower() == actor.user_id.lower():
            return False
        reference = await self._reference(actor.tenant_id, target_id)
        if reference is None:
            return False
        agent_reference = context.activity.get_conversation_reference().model_dump(
            mode="json", by_alias=True, exclude_none=True)
        agent_reference.pop("activityId", None)
        now = self._clock()
        await write_record(self._storage, OOB_KEY.format(session_id), Record({
            "tenant_id": actor.tenant_id, "target_id": target_id, "actor": actor.to_dict(),
            "agent_reference": agent_reference, "asked_at": now.isoformat(), "answer": None}))
        card = self._cards.render("out_of_band", started_at=clock_time(now, None),
                                  agent_name=actor.name or "a helpdesk agent", data={"session": session_id})
        sent = await self.send(context, reference, self._cards.activity(card, "Is that you on the call?"),
                               "the out-of-band question")
        await self._store.audit.append(action="out_of_band.asked", outcome="sent" if sent else "not_delivered",
                                       actor=f"teams:{actor.user_id}", subject=target_id, tenant_id=actor.tenant_id,
                                       details={"session_id": session_id})
        return sent

    async def out_of_band_answer(self, session_id: str) -> bool | None:
        record = await read_record(self._storage, OOB_KEY.format(session_id))
        answer = record.data.get("answer") if record is not None else None
        return answer if isinstance(answer, bool) else None

    async def notify_password_reset(self, context: TurnContext, *, tenant_id: str, target_id: str,
                                    at: datetime) -> bool:
        reference = await self._reference(tenant_id, target_id)
        if reference is None:
            return False
        card = self._cards.render("notice", title="Your password was reset", tone="Warning", lines=[
            f"Your password was reset by the IT helpdesk at {date_and_time(at, None)}.",
            "If this wasn't you, contact security."])
        return await self.send(context, reference, self._cards.activity(card, "Your password was reset"),
                               "the password-reset notice")

    # --- the person's answer (a button in their own chat) --------------------------------------------------
    async def answer_out_of_band(self, context: TurnContext, data: dict[str, Any], confirmed: bool) -> dict[str, Any]:
        """Record "yes, that's me" / "not me", tell the agent, and return the card replacing the question."""
        session_id = str(data.get("session") or "")
        key = OOB_KEY.format(session_id)
        record = await read_record(self._storage, key) if session_id else None
        clicker = user_id_of(context.activity).lower()
        if record is None or str(record.data.get("target_id", "")).lower() != clicker:
            return self._receipt("This question isn't for you", "Nothing was recorded.")
        if record.data.get("answer") is not None:
            return self._receipt("You already answered", "Thank you.")
        record.data.update(answer=confirmed, answered_at=self._clock().isoformat())
        if not await write_record(self._storage, key, record):
            return self._receipt("You already answered", "Thank you.")
        tenant_id, target_id = str(record.data["tenant_id"]), str(record.data["target_id"])
        agent = Actor.from_dict(record.data["actor"])
        await self._store.audit.append(action="out_of_band.answered", outcome="confirmed" if confirmed else "denied",
                                       actor=f"teams:{target_id}", subject=target_id, tenant_id=tenant_id,
                                       details={"session_id": session_id, "agent": f"teams:{agent.user_id}"})
        if confirmed:
            await self._tell_agent(context, record.data, "They confirmed it's them",
                                   "The person you are verifying said in Teams that it is them on the call. "
                                   "Carry on with the questions: their confirmation counts towards the proof.")
            return self._receipt("Thanks, we've told the helpdesk", "You can carry on with your call.")
        try:
            await self._store.sessions.finish(session_id, SessionOutcome.NOT_VERIFIED)
        except SessionClosedError:
            pass  # already decided; the ledger below still blocks any reset
        await self._ledger.block(session_id)
        await self._tell_agent(context, record.data, "STOP: they say it is NOT them",
                               "The account holder said in Teams that they are not on a call with the helpdesk. "
                               "Treat the caller as an attacker: do not reset anything, end the call and report it "
                               "to security. The verification has been stopped.")
        return self._receipt("Thanks: we've stopped it",
                             "The verification was stopped and the helpdesk told. Security may contact you.")

    async def _tell_agent(self, context: TurnContext, record: dict[str, Any], title: str, text: str) -> None:
        reference = record.get("agent_reference")
        if not isinstance(reference, dict):
            return
        tone = "Good" if "confirmed" in title else "Attention"
        card = self._cards.render("notice", title=title, lines=[text], tone=tone)
        await self.send(context, reference, self._cards.activity(card, title), "the out-of-band answer to the agent")

    def _receipt(self, title: str, line: str) -> dict[str, Any]:
        return self._cards.render("notice", title=title, lines=[line], tone=None)
