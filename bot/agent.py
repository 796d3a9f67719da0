"""The AgentApplication and its one route: who is talking, what they asked, which dialog answers.

Every message and card click first passes `WatchwordAgent.on_turn`: once per activity, one turn at a time per
conversation (bot/turn_state.py TurnGate). Then every activity goes through `WatchwordAgent.on_activity`:
1. a tenant that is not connected gets a polite refusal (and one audit row per person per ten minutes);
2. the sender's 1:1 conversation reference is kept, for proactive messages later;
3. a person's "not me" beside their one-time code, and a manager's answer, are handled wherever they arrive;
4. a dialog in progress gets the activity; otherwise a command starts one: `verify <name>` (helpdesk
   agents only), `reset my password` (self-service, when the tenant turned it on), `help`; anything else
   gets a short help card. In a group chat a dialog in progress belongs to whoever started it: anyone else's
   answer, `cancel` or `verify` is refused politely (and audited), only `help` is answered for everyone;
5. the clicked card is replaced: the invoke response for Action.Execute, update_activity for a submit.

Thin on purpose: the conversations are in dialogs/, the rules in verification/.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from cachetools import TTLCache
from microsoft_agents.activity import Activity, ActivityTypes, InvokeResponse
from microsoft_agents.hosting.core import (
    AgentApplication,
    Authorization,
    MemoryStorage,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.authorization import Connections
from microsoft_agents.hosting.core.storage import Storage
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogInstance, DialogSet, DialogState

from bot.access import CACHE_LIMIT, Access, AgentCheck, Membership, canonical
from bot.cards import CARD_CONTENT_TYPE, Cards, clip
from bot.dialog_state import DialogStateProperty
from bot.ledger import StoreResetLedger
from bot.proactive import ProactiveMessenger, is_personal, user_id_of
from bot.records import StoreRecords
from bot.release import forget_sent, release_turn
from bot.turn_errors import TurnErrorHandler
from bot.turn_state import GATED, ConversationTurnState, Entry, GatedTurn, TurnGate
from dialogs.card_prompt import CARD_ACTION_INVOKE, REJECTED_CLICK, REPLACEMENT_CARD, card_action, is_continuation
from dialogs.ports import Actor, Sealer
from dialogs.question_dialog import REPLACED_CARD_ID
from dialogs.self_service_dialog import SelfServiceDialog, can_self_serve
from dialogs.session_keeper import BEGUN, OPEN_SESSION, PLAN_MEMORY_BYTES, SessionKeeper, StartLimits
from dialogs.verify_dialog import VerifyDialog
from graph.directory import Directory, Unavailability
from observability.metrics import Metrics
from store import SqlStorage, Store, TurnTakenOver, activity_key, conversation_key, store_busy
from verification.clock import Clock

log = logging.getLogger("watchword.bot")

REFUSAL_AUDIT_EVERY = timedelta(minutes=10)
OWN_TEAMS_ANSWERS = ("oob_no", "mgr_yes", "mgr_unsure", "mgr_no")
SELF_SERVICE_WORDS = ("reset my password", "reset password", "forgot my password", "i forgot my password")
HELP_WORDS = ("help", "?")
OWNER = "dialog_owner"  # conversation state: who started the dialog in progress ({"user_id", "name"})
STARTED = "watchword.dialog_started_by"  # turn_state: this turn began a dialog, for this actor
MESSAGE_RESPONSE = "application/vnd.microsoft.activity.message"  # an Action.Execute answer that leaves the card


# Why a helpdesk membership could not be checked -> (audit outcome, notice title, what the agent should do).
_UNKNOWN_MEMBERSHIP: dict[Unavailability, tuple[str, str, str]] = {
    Unavailability.UNREACHABLE: (
        "graph_unreachable", "Microsoft Graph can't be reached, try again in a minute",
        "I couldn't check that you're in your organisation's helpdesk group, so nothing was started."),
    Unavailability.TIMED_OUT: (
        "membership_unknown", "Microsoft Graph didn't answer in time, try again in a minute",
        "I couldn't check that you're in your organisation's helpdesk group, so nothing was started."),
    Unavailability.THROTTLED: (
        "membership_unknown", "Microsoft Graph is busy, try again in a minute",
        "I couldn't check that you're in your organisation's helpdesk group, so nothing was started."),
    Unavailability.REFUSED: (
        "membership_unknown", "I'm not allowed to check the helpdesk group",
        "Microsoft Graph refused Watchword's request. Ask an administrator to open Watchword's admin console and "
        "check the connection to Microsoft Entra."),
    Unavailability.FAILED: (
        "membership_unknown", "Microsoft Graph couldn't answer, try again in a minute",
        "I couldn't check that you're in your organisation's helpdesk group, so nothing was started."),
}


def tenant_of(activity: Activity) -> str | None:
    """conversation.tenantId, else channelData.tenant.id (Teams sends both)."""
    if activity.conversation is not None and activity.conversation.tenant_id:
        return activity.conversation.tenant_id
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = data.get("tenant") if isinstance(data.get("tenant"), dict) else {}
    value = tenant.get("id")
    return str(value) if value else None


def finished_verification(instance: DialogInstance) -> str | None:
    """What a verification still open in the chat already decided ("Verified: Alan Turing", with "password reset"
    once done), or None while it is still asking (or choosing whom). A decided verification waits on its decision
    or password card; ending it then must not read as if the result, or the reset, were undone."""
    frames = _frames(instance)
    view = next((values["decision_view"] for values in frames if isinstance(values.get("decision_view"), dict)),
                None)
    if view is None:
        return None
    said = f"{view.get('title', 'Decided')}: {view.get('person_name', '')}".rstrip(": ")
    return said + ", password reset" if any(values.get("password_card_id") for values in frames) else said


def _frames(instance: DialogInstance) -> list[dict[str, Any]]:
    """The waterfall values of every dialog open inside `instance`, outermost first."""
    inner = instance.state.get(ComponentDialog.persisted_dialog_state) if isinstance(instance.state, dict) else None
    found: list[dict[str, Any]] = []
    for frame in inner.dialog_stack if isinstance(inner, DialogState) else []:
        values = frame.state.get("values") if isinstance(frame.state, dict) else None
        if isinstance(values, dict):
            found.append(values)
        found += _frames(frame)
    return found


class WatchwordAgent:
    """Builds the AgentApplication[TurnState] and routes every activity (see the module doc)."""

    def __init__(self, *, store: Store, storage: Storage, directory: Directory, sealer: Sealer, clock: Clock,
                 connection_manager: Connections, app_id: str, anonymous: bool, connected_at_start: str = "",
                 fallback_helpdesk_group: str = "", metrics: Metrics | None = None,
                 start_limits: StartLimits | None = None, plan_memory_bytes: int = PLAN_MEMORY_BYTES) -> None:
        self.cards = Cards()
        self.storage = storage
        self.metrics = metrics or Metrics()
        self.records = StoreRecords(store, clock, self.metrics)
        self.ledger = StoreResetLedger(store, self.metrics)
        self.messenger = ProactiveMessenger(store, storage, self.ledger, self.cards, clock, app_id, anonymous,
                                            directory, self.metrics)
        self.access = Access(store, directory, clock, connected_at_start=connected_at_start,
                             fallback_helpdesk_group=fallback_helpdesk_group)
        self.on_error = TurnErrorHandler(storage, self.cards)
        self.gate = TurnGate(store.turns, storage if isinstance(storage, SqlStorage) else None)
        self._store = store
        self._clock = clock
        self._refusals: TTLCache[tuple[str, str], bool] = TTLCache(CACHE_LIMIT, REFUSAL_AUDIT_EVERY, timer=clock)
        self._dialog_state = DialogStateProperty()
        self._dialogs = DialogSet(self._dialog_state)
        # One keeper for both dialogs: one budget of plan memory, one count of starts at once.
        self.sessions = SessionKeeper(self.records, sealer, clock, plan_memory_bytes,
                                      limits=start_limits or StartLimits())
        self.metrics.watch_plans(held=lambda: self.sessions.plans_held, size=lambda: self.sessions.plan_bytes)
        self._dialogs.add(VerifyDialog(directory, self.records, self.messenger, self.ledger, self.sessions,
                                       self.cards, clock))
        self._dialogs.add(SelfServiceDialog(directory, self.records, self.messenger, self.ledger, self.sessions,
                                            self.cards, clock))
        # The SDK reads a user's OAuth sign-in state from its Authorization's storage on every message and invoke
        # (before any handler runs). Watchword signs no user in (no auth handlers, no auto sign-in: nothing is ever
        # written there), so that storage is an empty MemoryStorage, not a database read each turn.
        no_sign_in = Authorization(MemoryStorage(), connection_manager)
        self.application: AgentApplication[TurnState] = AgentApplication[TurnState](
            storage=storage, authorization=no_sign_in, start_typing_timer=False,
            remove_recipient_mention=True, agent_name="Watchword", turn_state_factory=ConversationTurnState)
        self.application.add_route(lambda _context: True, self.on_activity)
        self.application.error(self._on_error)
        self.messenger.resume = self.on_turn  # a dialog's card continued once what it waits for arrived

    def close(self) -> None:
        """Stop what the agent runs beside the turns (the threads that choose a start's questions, the reads of
        helpdesk member lists, the sends to people's own Teams and the conversations waiting to continue)."""
        self.sessions.close()
        self.access.close()
        self.messenger.close()

    async def stop(self) -> None:
        """`close`, once the sends to people's own Teams in flight have had a moment to end (messenger.stop)."""
        await self.messenger.stop()
        self.close()

    # --- the route -----------------------------------------------------------------------------------------
    async def on_activity(self, context: TurnContext, state: TurnState) -> None:
        arrived = time.perf_counter()
        activity = context.activity
        if activity.type not in (ActivityTypes.message, ActivityTypes.invoke, ActivityTypes.conversation_update,
                                 ActivityTypes.installation_update):
            return
        tenant = canonical(tenant_of(activity))
        if tenant is None or not await self.access.tenant_connected(tenant):
            await self._refuse_tenant(context, tenant_of(activity))
            return
        await self.messenger.remember(context, tenant)
        if activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update):
            if self._bot_added(activity):
                await self._welcome(context, tenant)
            return
        if activity.type == ActivityTypes.invoke and activity.name != CARD_ACTION_INVOKE:
            # Not ours (Watchword declares no messaging extension, task module...): a client error, where the
            # SDK would answer 501, a server error, to anyone who sends one.
            await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(
                status=400, body={"error": "Watchword does not handle this invoke"})))
            return
        await self._turn(context, state, tenant)
        gated = context.turn_state.get(GATED)
        if isinstance(gated, GatedTurn):  # done, and the conversation free for its next turn, in the same
            self.gate.done_with_state(gated)  # transaction as the state this turn saves (and its e_tag check)
            await state.save(context, force=True)
        self._time_turn(context, time.perf_counter() - arrived)

    # --- the turn: once per activity, one at a time per conversation ------------------------------------------
    async def on_turn(self, context: TurnContext) -> None:
        """The SDK's `Agent`: what the adapter calls with each activity. A message or a card's click runs alone in
        its conversation (its state loaded after the turn before saved its own) and once (Teams redelivers slow
        turns, and the same activity can arrive twice at once, on one instance or two): bot/turn_state.py."""
        context.on_send_activities(forget_sent)
        try:
            with self.messenger.turn():  # whom it can reach, read once for the turn and the sends it starts
                await self._gated_turn(context)
        except BaseException:  # the adapter's turn-error handler reads this turn's state next (ACCOUNT_CHANGED)
            context.turn_state.pop(OPEN_SESSION, None)  # but the session, with its decoded plan, ends with the turn
            raise
        release_turn(context)

    async def _gated_turn(self, context: TurnContext) -> None:
        activity = context.activity
        gated = activity.type == ActivityTypes.message or (
            activity.type == ActivityTypes.invoke and activity.name == CARD_ACTION_INVOKE)
        if not gated or activity.conversation is None:
            await self.application.on_turn(context)
            return
        channel, conversation = activity.channel_id or "", activity.conversation.id
        key = activity_key(channel, conversation, activity.id) if activity.id else None
        try:
            async with self.gate.enter(key, conversation_key(channel, conversation), context) as turn:
                if turn.entry is Entry.DUPLICATE:
                    await self._skip_duplicate(context)
                elif turn.entry is Entry.BUSY:
                    log.warning("activity %s: the conversation's previous turn did not finish in time",
                                context.activity.id)
                    await self._busy(context)
                else:
                    context.turn_state[GATED] = turn
                    await self.application.on_turn(context)
        except Exception as err:  # the store failed to claim or take: the turn-error handler says so
            await self._on_error(context, err)

    async def _on_error(self, context: TurnContext, error: Exception) -> None:
        """A turn that failed. The store busy (every database connection in use for as long as a turn may wait
        for one) is not a failure: the person is told to try again, the conversation's state is kept, and the
        activity's claim is given up (bot/turn_state.py) so Teams' redelivery of it is processed. A turn whose
        conversation another process took over (this one stalled and was taken for dead) says nothing: the new owner
        runs the chat, and what this one would have written was not (store/units.py Fence)."""
        if isinstance(error, TurnTakenOver):
            log.warning("activity %s: its conversation was taken over by another process's turn; this turn wrote "
                        "nothing more", context.activity.id)
            return
        if not store_busy(error):
            await self.on_error.handle(context, error)
            return
        log.warning("activity %s: no database connection came free in time", context.activity.id)
        gated = context.turn_state.get(GATED)
        if isinstance(gated, GatedTurn):
            gated.give_back = True
        try:
            await self._busy(context, "Watchword is busy — try again in a few seconds",
                             "Nothing was done with this message: send it again in a few seconds.")
        except Exception:
            log.warning("activity %s: could not say Watchword is busy", context.activity.id, exc_info=True)

    async def _busy(self, context: TurnContext, title: str = "I'm still working on your previous message",
                    line: str = "Nothing was done with this one: send it again in a moment.") -> None:
        """Nothing was done with this activity, and Teams' redelivery of it will be processed: the conversation's
        previous turn is still running (a reset waiting on Microsoft, say), or the store was busy."""
        if context.activity.type == ActivityTypes.invoke:
            await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(
                status=200, body={"statusCode": 200, "type": MESSAGE_RESPONSE, "value": f"{title}. {line}"})))
            return
        await self._notice(context, title, line)

    async def _turn(self, context: TurnContext, state: TurnState, tenant: str) -> None:
        activity = context.activity
        action = card_action(activity)
        if action is not None and action[0] in OWN_TEAMS_ANSWERS:  # the person's "not me", the manager's answer
            card = await self.messenger.answer_out_of_band(context, action[1], action[0])
            context.turn_state[REPLACEMENT_CARD] = card
            await self._replace_clicked_card(context)
            return
        DialogStateProperty.bind(context, state.conversation)
        dialog = await self._dialogs.create_context(context)
        if is_continuation(activity) and dialog.active_dialog is None:  # what it was for has ended: nothing to say
            return
        owner = state.conversation.get_value(OWNER) if dialog.active_dialog is not None else None
        if owner and owner.get("user_id") != user_id_of(activity) and not self._asks_help(context):
            await self._not_the_starter(context, tenant, owner)
            return
        if dialog.active_dialog is not None and not self._interrupts(context):
            await dialog.continue_dialog()
        else:
            await self._command(context, dialog, tenant)
        self._keep_owner(context, state, dialog)
        self._dialog_state.flush(context)
        await self._replace_clicked_card(context)

    def _time_turn(self, context: TurnContext, seconds: float) -> None:
        """A turn that began a verification and asked its first question, or that took an answer: how long it took
        (to the end of the turn, when the question or the reply has been sent)."""
        opened = context.turn_state.get(OPEN_SESSION)
        if opened is None or is_continuation(context.activity):  # Watchword's own turn: nobody waited for it
            return
        if context.turn_state.get(BEGUN) is None:
            self.metrics.answer_turn(seconds)
        elif opened[1].decision is None:  # decided at once (refused, locked out) asks nothing
            self.metrics.first_question(seconds)

    async def _skip_duplicate(self, context: TurnContext) -> None:
        """A delivery of an activity another turn processed (or is processing): nothing is done twice. A clicked
        card still needs its invoke answered; the first delivery's answer is the one that replaces the card."""
        log.info("activity %s delivered again: skipped", context.activity.id)
        if context.activity.type == ActivityTypes.invoke:
            body = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                    "value": "Already handled."}
            await context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                 value=InvokeResponse(status=200, body=body)))

    # --- who may act on a dialog in progress ---------------------------------------------------------------
    @staticmethod
    def _asks_help(context: TurnContext) -> bool:
        return card_action(context.activity) is None and (context.activity.text or "").strip().lower() in HELP_WORDS

    @staticmethod
    def _keep_owner(context: TurnContext, state: TurnState, dialog: Any) -> None:
        """Remember who started the dialog in progress (a dialog from before owners were kept has none)."""
        if dialog.active_dialog is None:
            state.conversation.delete_value(OWNER)
        elif (starter := context.turn_state.get(STARTED)) is not None:
            state.conversation.set_value(OWNER, {"user_id": starter.user_id, "name": starter.name})

    async def _not_the_starter(self, context: TurnContext, tenant: str, owner: dict[str, Any]) -> None:
        """Someone else in a group chat tried to answer, cancel or replace the starter's dialog: nothing changes."""
        activity = context.activity
        action = card_action(activity)
        verb = action[0] if action is not None else None
        word = " ".join((activity.text or "").split()).lower()
        attempted = ("cancel" if "cancel" in (verb, word) else
                     "verify" if verb == "verify" or word.split(" ", 1)[0] == "verify" else "answer")
        user = user_id_of(activity)
        actor = Actor(tenant, user, str(activity.from_property.name or "") if activity.from_property else "",
                      is_personal(activity))
        await self.records.audit("verification.refused", "not_the_starter", actor=actor, subject=None,
                                 details={"attempted": attempted})
        starter = clip(str(owner.get("name") or "the agent who started it"), 100)
        title = f"Only {starter} can answer or cancel this verification"
        line = (f"{starter} started it in this chat, so only they can continue it. To verify someone yourself, "
                "message me in a 1:1 chat.")
        if activity.type == ActivityTypes.invoke:  # a message for the one who clicked; the card stays for all
            await context.send_activity(Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(
                status=200, body={"statusCode": 200, "type": MESSAGE_RESPONSE, "value": f"{title}. {line}"})))
            return
        await self._notice(context, title, line)

    # --- commands ------------------------------------------------------------------------------------------
    async def _command(self, context: TurnContext, dialog: Any, tenant: str) -> None:
        activity = context.activity
        action = card_action(activity)
        verb, data = action if action is not None else (None, {})
        text = " ".join((activity.text or "").split())
        word = text.lower()
        user = user_id_of(activity)
        actor = Actor(tenant, user, str(activity.from_property.name or "") if activity.from_property else "",
                      is_personal(activity))
        if verb is not None and verb != "verify":
            context.turn_state[REJECTED_CLICK] = True
            await self._notice(context, "That card is no longer active",
                               "It belongs to a conversation that has ended. Type help to see what I can do.")
            return
        if verb == "verify" or word.startswith("verify ") or word == "verify":
            query = str(data.get("query") or "") if verb == "verify" else text[len("verify"):]
            check = await self.access.check_agent(tenant, user)
            if check.membership is Membership.UNKNOWN:
                await self._membership_unknown(context, actor, check)
                return
            if not check.is_agent:
                await self.records.audit("verification.refused", "not_an_agent", actor=actor, subject=None)
                await self._notice(context, "Only the IT helpdesk can verify callers",
                                   "You're not in your organisation's helpdesk group. Type help to see what I can "
                                   "do for you.")
                return
            if dialog.active_dialog is not None:  # the agent moved on: end the old one
                finished = finished_verification(dialog.active_dialog)
                await dialog.cancel_all_dialogs()
                if finished is None:
                    await self._notice(context, "Previous verification cancelled", "Starting the new one.")
                else:  # its result stands: never call a finished verification (or a done reset) cancelled
                    await self._notice(context, "Previous verification closed",
                                       f"{finished}: that result stands. Starting the new one.")
            await self.records.audit("verification.requested", "started", actor=actor, subject=None,
                                     details={"query_length": len(query.strip())})
            context.turn_state[STARTED] = actor
            await dialog.begin_dialog(VerifyDialog.__name__, {"query": query.strip(), "actor": actor.to_dict()})
            return
        if word in SELF_SERVICE_WORDS:
            if not await self.records.self_service_enabled(tenant):
                await self._notice(context, "Self-service password reset is off",
                                   "Your organisation has not turned on self-service password reset in Watchword. "
                                   "To reset your password, call the IT helpdesk.")
                return
            context.turn_state[STARTED] = actor
            await dialog.begin_dialog(SelfServiceDialog.__name__, {"actor": actor.to_dict()})
            return
        if word == "cancel":
            if dialog.active_dialog is not None:
                finished = finished_verification(dialog.active_dialog)
                await dialog.cancel_all_dialogs()
                if finished is None:
                    await self._notice(context, "Cancelled", "Nothing more will happen.")
                else:
                    await self._notice(context, "Closed", f"{finished}: that result stands. Nothing more will "
                                                          "happen.")
            else:
                await self._notice(context, "Nothing to cancel", "Type help to see what I can do.")
            return
        await self._help(context, tenant, short=word not in ("help", "?", "hi", "hello", ""))

    def _interrupts(self, context: TurnContext) -> bool:
        """Typed `verify ...` (ends the dialog and starts anew) or `help` (answered, the dialog keeps waiting)."""
        action = card_action(context.activity)
        if action is not None:
            return action[0] == "verify"  # the help card's Verify button
        word = " ".join((context.activity.text or "").split()).lower()
        return word.startswith("verify ") or word == "help"

    async def _membership_unknown(self, context: TurnContext, actor: Actor, check: AgentCheck) -> None:
        """Graph could not say whether this is an agent: say so truthfully (an outage is not "you're not one")."""
        cause = check.cause or Unavailability.FAILED
        outcome, title, line = _UNKNOWN_MEMBERSHIP.get(cause, _UNKNOWN_MEMBERSHIP[Unavailability.FAILED])
        await self.records.audit("verification.refused", outcome, actor=actor, subject=None,
                                 details={"cause": cause.value})
        await self._notice(context, title, line)

    # --- replies -------------------------------------------------------------------------------------------
    async def _help(self, context: TurnContext, tenant: str, *, short: bool) -> None:
        user = user_id_of(context.activity)
        agent = await self.access.is_agent(tenant, user)
        # Offered only to people who can use it (on for the tenant, someone Watchword may reset, not locked out).
        self_service = bool(user) and await can_self_serve(self.records, tenant, user)
        card = self.cards.render("help", audience="agent" if agent else "user", short=short,
                                 self_service=self_service)
        await context.send_activity(self.cards.activity(card, "What Watchword does"))

    async def _welcome(self, context: TurnContext, tenant: str) -> None:
        await self._help(context, tenant, short=False)

    async def _notice(self, context: TurnContext, title: str, *lines: str) -> None:
        card = self.cards.render("notice", title=title, lines=list(lines), tone=None)
        await context.send_activity(self.cards.activity(card, title))

    async def _refuse_tenant(self, context: TurnContext, tenant: str | None) -> None:
        activity = context.activity
        user = user_id_of(activity) or str(activity.from_property.id if activity.from_property else "")
        if activity.type in (ActivityTypes.conversation_update, ActivityTypes.installation_update) \
                and not self._bot_added(activity):
            return
        key = (str(tenant), user)
        if key not in self._refusals:  # audited at most every REFUSAL_AUDIT_EVERY per person and tenant
            self._refusals[key] = True
            await self._store.audit.append(action="bot.tenant_refused", outcome="refused",
                                           actor=clip(f"teams:{user or 'unknown'}", 200), subject=None,
                                           details={"tenant": clip(tenant or "none", 64),
                                                    "activity": clip(activity.type, 32)})
        context.turn_state[REPLACEMENT_CARD] = card = self.cards.render(
            "notice", title="Watchword isn't set up for your organisation", tone=None, lines=[
                "Your organisation hasn't connected Watchword yet, so I can't help here.",
                "Ask your IT administrator to connect it in the Watchword admin console."])
        if activity.type == ActivityTypes.invoke:
            await self._replace_clicked_card(context)
        else:
            await context.send_activity(self.cards.activity(card, "Watchword isn't set up for your organisation"))

    @staticmethod
    def _bot_added(activity: Activity) -> bool:
        """The bot joined this conversation. Teams sends both a conversationUpdate (bot in membersAdded) and
        an installationUpdate on install: the welcome goes with the first only, so it is said once."""
        if activity.type == ActivityTypes.installation_update:
            return False
        recipient = activity.recipient.id if activity.recipient else None
        return any(m.id == recipient for m in activity.members_added or [])

    async def _replace_clicked_card(self, context: TurnContext) -> None:
        """Replace the card whose button was pressed (or, for typed answers, the card that asked)."""
        activity = context.activity
        card = context.turn_state.get(REPLACEMENT_CARD)
        if activity.type == ActivityTypes.invoke:
            if card is None:
                card = self.cards.render("notice", tone=None, lines=[], title=(
                    "This card is no longer active." if context.turn_state.get(REJECTED_CLICK) else "Done."))
            body = {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}
            await context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                 value=InvokeResponse(status=200, body=body)))
            return
        if card is None:
            return
        card_id = activity.reply_to_id if isinstance(activity.value, dict) else None
        card_id = card_id or context.turn_state.get(REPLACED_CARD_ID)
        if card_id:
            update = self.cards.activity(card, "Updated")
            update.id = card_id
            try:
                await context.update_activity(update)
            except Exception:  # cosmetic: the old card keeps its buttons, and a click on it is refused
                log.warning("could not replace card %s", card_id, exc_info=True)
