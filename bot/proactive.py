"""Reaching people outside the current conversation: conversation references, the one-time code shown in the
person's own Teams (with "not me"), the manager's "is <name> on the phone with the helpdesk now?", alerts to the
tenant's security contact, and the "your password was reset" notice.

A user's reference is saved from their 1:1 chat with Watchword (install or any message there), so a
notice never lands in a group chat. Sending goes through the adapter of the turn in progress
(`continue_conversation_with_claims`): CloudAdapter in production, TestAdapter in tests. A notice that
cannot be delivered is logged and reported as False; it never fails the agent's turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cachetools import LRUCache
from microsoft_agents.activity import Activity, ActivityTypes, ConversationReference
from microsoft_agents.hosting.core import ChannelAdapter, ClaimsIdentity, TurnContext
from microsoft_agents.hosting.core.storage import Storage

from bot.access import CACHE_LIMIT
from bot.cards import Cards
from bot.ledger import OOB_KEY, Record, StoreResetLedger, read_record, write_record
from bot.release import forget_sent, release_turn
from dialogs.card_prompt import CONTINUATION
from dialogs.ports import Actor, FactorAnswers, Notice
from dialogs.times import clock_time, date_and_time, zone_of
from graph.directory import Directory, DirectoryError
from manifest.package import derive_app_id
from observability.metrics import Metrics
from store import AuditEvent, SessionClosedError, Store
from verification import Outcome
from verification.clock import Clock
from verification.factors import STRONG, Attestation, Factor, spoken
from verification.reset import BLOCKED, ResetOutcome

log = logging.getLogger(__name__)

# The people a turn found reachable (`can_reach`), with their reference and time zone as read then: the sends the turn
# starts (the code, the manager's card: tasks that run after it, in a copy of its context) and its later steps use
# them instead of reading them again. A fresh dict per turn (`ProactiveMessenger.turn`); None outside a turn.
_REACHED: ContextVar[dict[tuple[str, str], tuple[dict[str, Any], tzinfo | None]] | None] = ContextVar(
    "watchword_reached", default=None)

DELIVERED = "{}_delivered"  # the out-of-band record's field: whether the factor's send reached them (absent: unknown)
SEND_GRACE_S = 5.0  # how long a stopping process lets sends in flight end (`stop`)


def user_id_of(activity: Activity) -> str:
    sender = activity.from_property
    return str((sender.aad_object_id if sender else None) or "")


def is_personal(activity: Activity) -> bool:
    conversation = activity.conversation
    kind = conversation.conversation_type if conversation else None
    return kind == "personal" or (kind is None and conversation is not None and not conversation.is_group)


class ProactiveMessenger:
    """The dialogs' `Messenger`, plus the out-of-band answer handler and reference keeping for bot/agent.py."""

    def __init__(self, store: Store, storage: Storage, ledger: StoreResetLedger, cards: Cards, clock: Clock,
                 app_id: str, anonymous: bool, directory: Directory | None = None,
                 metrics: Metrics | None = None) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self._storage = storage
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self._app_id = app_id
        self._anonymous = anonymous
        self._directory = directory
        # The Teams app's id in its manifest (manifest/package.py derives it from the bot's id): how Graph finds it.
        self._manifest_id = _manifest_id(app_id)
        # (tenant, user) -> (conversation, serviceUrl, time zone) as last saved
        self._known: LRUCache[tuple[str, str], tuple[str, str, str | None]] = LRUCache(CACHE_LIMIT)
        # What runs a turn of Watchword's own (`continue_when`): the agent's on_turn, set by bot/agent.py.
        self.resume: Callable[[TurnContext], Awaitable[None]] | None = None
        self._continuations: set[asyncio.Task[None]] = set()
        self._sends: set[asyncio.Task[bool | None]] = set()  # send_in_background's, each with what follows it
        self._sending: dict[str, asyncio.Task[bool | None]] = {}  # those still running, by the key they were given

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """A turn (bot/agent.py on_turn): whom it finds reachable is read once, for the turn and the sends it starts
        (a start asks `can_reach` for the person, then its code goes out right after the turn: one read, not two).
        Every turn reads afresh: a reference the person changed since is used from their next turn on."""
        token = _REACHED.set({})
        try:
            yield
        finally:
            _REACHED.reset(token)

    def close(self) -> None:
        """Stop waiting to continue conversations (`continue_when`): a process that stops leaves them to the agent's
        own click (their cards keep their Check again button). Sends still running are cancelled: their outcome is
        then unknown, as a killed process's (see dialogs/proof_dialog.py)."""
        for task in list(self._continuations | self._sends):
            task.cancel()

    async def stop(self, grace_s: float = SEND_GRACE_S) -> None:
        """The process stops: sends in flight get `grace_s` to end (a code half-way to someone's Teams is better
        delivered, and its outcome kept, than left unknown), then everything still running is cancelled (`close`)
        and awaited, so that nothing outlives the store and clients it uses."""
        if self._sends:
            await asyncio.wait(set(self._sends), timeout=grace_s)
        self.close()
        running = self._continuations | self._sends
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def settle(self) -> None:
        """For tests: until every continuation due, and every send in the background, has run."""
        while self._continuations or self._sends:
            await asyncio.gather(*list(self._continuations | self._sends), return_exceptions=True)

    async def sent(self) -> None:
        """For tests: until every send in the background has ended, with its notice and continuation."""
        while self._sends:
            await asyncio.gather(*list(self._sends), return_exceptions=True)

    # --- sending after the turn ---------------------------------------------------------------------------------
    def send_in_background(self, context: TurnContext, send: Callable[[], Awaitable[bool]], *,
                           tell: Callable[[bool], Activity | None] | None = None, card_id: str | None = None,
                           value: dict[str, Any] | None = None, key: str | None = None) -> None:
        """See dialogs/ports.py Messenger.send_in_background."""
        activity = context.activity
        reference = activity.get_conversation_reference() if activity.conversation is not None else None
        task = asyncio.ensure_future(self._send_in_background(context.adapter, reference, _tenant_of(activity), send,
                                                              tell, card_id, dict(value) if value else None))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        if key is not None:
            self._sending[key] = task
            task.add_done_callback(lambda done: self._sending.pop(key, None) if self._sending.get(key) is done
                                   else None)

    def continue_if_undelivered(self, context: TurnContext, key: str, *, card_id: str | None,
                                value: dict[str, Any]) -> None:
        """See dialogs/ports.py Messenger.continue_if_undelivered."""
        sending = self._sending.get(key)
        if sending is None:
            return

        async def undelivered() -> bool:
            return await asyncio.shield(sending) is False

        self.continue_when(context, undelivered, card_id=card_id, value=value)

    async def _send_in_background(self, adapter: ChannelAdapter, reference: ConversationReference | None,
                                  tenant: dict[str, Any] | None, send: Callable[[], Awaitable[bool]],
                                  tell: Callable[[bool], Activity | None] | None, card_id: str | None,
                                  value: dict[str, Any] | None) -> bool | None:
        """Whether it was delivered; None when that is not known."""
        try:
            delivered = await send()
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the store failed before the outcome was kept: unknown, as after a kill mid-send
            log.warning("a send to someone's own Teams failed half-way; its outcome is unknown", exc_info=True)
            return None
        if reference is None:
            return delivered
        try:
            told = tell(delivered) if tell is not None else None
            if told is not None:
                chat = reference.model_dump(mode="json", by_alias=True, exclude_none=True)
                chat.pop("activityId", None)
                await self._deliver(adapter, chat, told, "a notice of how a send ended")
            if not delivered and value is not None:
                await self._continue(adapter, reference, tenant, card_id, value)
        except asyncio.CancelledError:
            raise
        except Exception:  # the session learns the outcome with the chat's next turn all the same
            log.warning("could not tell the chat how a send ended", exc_info=True)
        return delivered

    # --- continuing a conversation once what it waits for has arrived ------------------------------------------
    def continue_when(self, context: TurnContext, ready: Callable[[], Awaitable[bool | None]], *,
                      card_id: str | None,
                      value: dict[str, Any]) -> None:
        """See dialogs/ports.py Messenger.continue_when."""
        activity = context.activity
        if self.resume is None or activity.conversation is None:
            return
        reference = activity.get_conversation_reference()
        task = asyncio.ensure_future(self._continue_when(context.adapter, reference, _tenant_of(activity), ready,
                                                         card_id, dict(value)))
        self._continuations.add(task)
        task.add_done_callback(self._continuations.discard)

    async def _continue_when(self, adapter: ChannelAdapter, reference: ConversationReference,
                             tenant: dict[str, Any] | None, ready: Callable[[], Awaitable[bool | None]],
                             card_id: str | None, value: dict[str, Any]) -> None:
        try:
            if await ready() is False:  # what it waited for came to nothing to continue for
                return
            await self._continue(adapter, reference, tenant, card_id, value)
        except asyncio.CancelledError:
            raise
        except Exception:  # the agent can still click Check again; the log says why it did not come by itself
            log.warning("could not continue the conversation", exc_info=True)

    async def _continue(self, adapter: ChannelAdapter, reference: ConversationReference,
                        tenant: dict[str, Any] | None, card_id: str | None, value: dict[str, Any]) -> None:
        resume = self.resume
        if resume is None:
            return
        # The agent's click on `card_id`, as Teams sends an Action.Submit, from the agent who started it (only they
        # may act on it), with an id of its own (the turn gate runs it once, after any turn in progress).
        turn = reference.get_continuation_activity().model_copy(update={
            "type": ActivityTypes.message, "name": None, "value": value, "reply_to_id": card_id,
            "id": f"watchword-continue-{uuid.uuid4().hex}",
            "channel_data": {**({"tenant": tenant} if tenant else {}), CONTINUATION: True}})
        claims = ClaimsIdentity() if self._anonymous else ClaimsIdentity({"aud": self._app_id, "appid": self._app_id})
        await adapter.continue_conversation_with_claims(claims, turn, resume)

    # --- references ----------------------------------------------------------------------------------------
    async def remember(self, context: TurnContext, tenant_id: str) -> None:
        """Keep the sender's 1:1 conversation reference and time zone (once per conversation, service URL and zone:
        an activity that names no zone keeps the one known)."""
        activity = context.activity
        user_id = user_id_of(activity)
        if not user_id or not is_personal(activity) or activity.conversation is None:
            return
        zone = zone_of(activity)
        zone_name = zone.key if isinstance(zone, ZoneInfo) else None
        known = self._known.get((tenant_id, user_id))
        seen = (activity.conversation.id, activity.service_url or "", zone_name or (known[2] if known else None))
        if known == seen:
            return
        reference = activity.get_conversation_reference().model_dump(mode="json", by_alias=True, exclude_none=True)
        reference.pop("activityId", None)
        try:
            await self._store.conversation_refs.save(tenant_id, user_id, reference, time_zone=zone_name)
        except ValueError:  # not a GUID tenant or user id: nothing we could reach later anyway
            return
        self._known[tenant_id, user_id] = seen

    async def _reference(self, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        reached = await self._reach(tenant_id, user_id)
        return reached[0] if reached is not None else None

    async def _reach(self, tenant_id: str, user_id: str) -> tuple[dict[str, Any], tzinfo | None] | None:
        """The person's reference and their time zone (None: unknown, so times are given in UTC and say so); as this
        turn's `can_reach` read it, if it did."""
        reached = _REACHED.get()
        if reached is not None and (read := reached.get((tenant_id, user_id))) is not None:
            return dict(read[0]), read[1]
        try:
            stored = await self._store.conversation_refs.get(tenant_id, user_id)
        except ValueError:
            return None
        if stored is None:
            return None
        return dict(stored.reference), _zone(stored.time_zone)

    async def send(self, context: TurnContext, reference: dict[str, Any], activity: Activity, what: str) -> bool:
        """Send `activity` into the referenced conversation; False (logged) if that fails."""
        return await self._send(context, reference, activity, what) is not None

    async def _send(self, context: TurnContext, reference: dict[str, Any], activity: Activity, what: str,
                    *, update: bool = False) -> str | None:
        """Send (or, with `update`, replace the message `activity.id` of) the referenced conversation: the sent
        message's id ("" when the channel gives none), or None (logged) if that fails."""
        return await self._deliver(context.adapter, reference, activity, what, update=update)

    async def _deliver(self, adapter: ChannelAdapter, reference: dict[str, Any], activity: Activity, what: str,
                       *, update: bool = False) -> str | None:
        """`_send` through `adapter`: the turn's, or the bot's own when no turn is in progress (the sweep)."""
        delivered: str | None = None

        async def deliver(proactive: TurnContext) -> None:
            nonlocal delivered
            # The SDK's context for this send is no turn of ours (on_turn never sees it): released as a turn is, so
            # its channel clients and its copy of the card (the code, on the code card) go now (bot/release.py).
            proactive.on_send_activities(forget_sent)
            # Caught here, not around continue_conversation: CloudAdapter hands a failure inside the continuation to
            # the app's turn-error handler and returns normally, so a chat that is gone (Teams closed, the app
            # uninstalled) would count as reached and the agent be told a code was shown that no one can see.
            try:
                sent = await (proactive.update_activity(activity) if update else proactive.send_activity(activity))
            except Exception:  # a notice must never break the agent's turn; the log says why
                log.warning("could not deliver %s", what, exc_info=True)
                return
            finally:
                release_turn(proactive)
            delivered = str(getattr(sent, "id", None) or "")

        try:
            continuation = ConversationReference.model_validate(reference).get_continuation_activity()
            claims = ClaimsIdentity() if self._anonymous else ClaimsIdentity({"aud": self._app_id,
                                                                              "appid": self._app_id})
            await adapter.continue_conversation_with_claims(claims, continuation, deliver)
        except Exception:
            log.warning("could not deliver %s", what, exc_info=True)
            return None
        return delivered

    # --- Messenger (for the dialogs) -----------------------------------------------------------------------
    async def can_reach(self, tenant_id: str, user_id: str) -> bool:
        reach = await self._reach(tenant_id, user_id)
        if reach is not None and (reached := _REACHED.get()) is not None:
            reached[tenant_id, user_id] = (dict(reach[0]), reach[1])
        return reach is not None

    async def can_ask_manager(self, tenant_id: str, manager_id: str) -> bool:
        """A manager who never opened Watchword is reached by installing it for them (as for the reset notice): most
        managers have no reason to chat with a helpdesk bot, and without this their reports' thin data had no way
        through. Installing waits until they are really asked (`ask_manager`)."""
        if await self.can_reach(tenant_id, manager_id):
            return True
        return self._directory is not None and bool(self._manifest_id) \
            and await self._directory.may_install_app(tenant_id)

    async def show_code(self, context: TurnContext, *, session_id: str, actor: Actor, target_id: str, code: str,
                        security_contact_id: str = "") -> bool:
        if target_id.lower() == actor.user_id.lower():
            return await self._not_delivered(context, session_id, actor, target_id, security_contact_id,
                                             Factor.POSSESSION)
        reached = await self._reach(actor.tenant_id, target_id)
        if reached is None:
            return await self._not_delivered(context, session_id, actor, target_id, security_contact_id,
                                             Factor.POSSESSION)
        reference, zone = reached
        now = self._clock()
        opened = await self._open_record(context, session_id, actor, target_id, security_contact_id,
                                         person_asked=True)
        started_at, agent_name = clock_time(now, zone), actor.name or "a helpdesk agent"
        card = self._cards.render("out_of_band", started_at=started_at, code=spoken(code), agent_name=agent_name,
                                  data={"session": session_id})
        del code
        card_id = await self._send(context, reference, self._cards.activity(card, "Your code for the IT helpdesk"),
                                   "the one-time code")
        sent = card_id is not None
        # The outcome, for the session (factor_answers), and the card, so it can lose its code when the verification
        # ends (close_code_card), in one write; a failure also when the record could not be kept above.
        kept = {DELIVERED.format(Factor.POSSESSION.value): sent}
        if card_id:
            kept["code_card"] = {"id": card_id, "reference": reference, "started_at": started_at,
                                 "agent_name": agent_name, "zone": zone.key if isinstance(zone, ZoneInfo) else None}
        if not await self._keep_fields(session_id, kept, known=opened) and not sent:
            await self._not_delivered(context, session_id, actor, target_id, security_contact_id, Factor.POSSESSION,
                                      audit=False)
        asked = AuditEvent(action="out_of_band.asked", outcome="sent" if sent else "not_delivered",
                           actor=f"teams:{actor.user_id}", subject=target_id, tenant_id=actor.tenant_id,
                           details={"session_id": session_id, "factor": "possession"})
        if not card_id:
            await self._store.audit.append_event(asked)
        # Audited, and whether the session ended while the code was on its way (cancelled, a new verify) read, in one
        # unit of work: if it did, its closing found no card then, so the card is closed here.
        elif not await self._store.sessions.audit_and_still_open(session_id, asked):
            await self._close_code_card(context.adapter, session_id)
        return sent

    async def ask_manager(self, context: TurnContext, *, session_id: str, actor: Actor, target: Mapping[str, str],
                          manager_id: str, security_contact_id: str = "", self_service: bool = False) -> bool:
        target_id = str(target["id"])
        if manager_id.lower() == actor.user_id.lower():
            return await self._not_delivered(context, session_id, actor, target_id, security_contact_id,
                                             Factor.MANAGER, manager_id=manager_id)
        reached = await self._reach(actor.tenant_id, manager_id)
        installed_now = reached is None
        if reached is None:  # no chat with Watchword yet: install it for them when the tenant allows (time in UTC)
            installed = await self._installed_chat(context, actor.tenant_id, manager_id)
            reached = (installed, None) if installed is not None else None
        if reached is None:
            return await self._not_delivered(context, session_id, actor, target_id, security_contact_id,
                                             Factor.MANAGER, manager_id=manager_id)
        reference, zone = reached
        record = await self._open_record(context, session_id, actor, target_id, security_contact_id,
                                         manager_id=manager_id)
        if record is None:
            return await self._not_delivered(context, session_id, actor, target_id, security_contact_id,
                                             Factor.MANAGER, manager_id=manager_id)
        name = target["name"]
        started = clock_time(self._clock(), zone)
        if self_service:
            question = f"Is {name} resetting their own password in Teams right now?"
            context_line = (f"Someone signed in to Teams as {name} asked Watchword to reset their password at "
                            f"{started}. A stolen phone or laptop could do that too.")
        else:
            question = f"Is {name} on the phone with the helpdesk now?"
            context_line = (f"{actor.name or 'A helpdesk agent'} of the IT helpdesk is verifying a caller who says "
                            f"they are {name}. Started {started}.")
        card = self._cards.render("manager", person_name=name, question=question, context_line=context_line,
                                  data={"session": session_id})
        activity = self._cards.activity(card, question)
        sent = await self.send(context, reference, activity, "the manager's question")
        if not sent and not installed_now:  # the chat we knew is gone (Watchword removed): install it again, once
            installed = await self._installed_chat(context, actor.tenant_id, manager_id)
            sent = installed is not None and await self.send(context, installed, activity, "the manager's question")
        if not sent:  # kept for the session (factor_answers); a card delivered needs no word: its answer will come
            await self._not_delivered(context, session_id, actor, target_id, security_contact_id, Factor.MANAGER,
                                      audit=False)
        await self._store.audit.append(action="manager.asked", outcome="sent" if sent else "not_delivered",
                                       actor=f"teams:{actor.user_id}", subject=str(target["id"]),
                                       tenant_id=actor.tenant_id,
                                       details={"session_id": session_id, "manager": f"teams:{manager_id}"})
        return sent

    async def close_code_card(self, context: TurnContext, session_id: str) -> bool:
        """Replace the code card in the person's chat with one without the code that says the verification ended
        (once; "Not me" stays: after a reset it still alerts). False (logged) when it could not be replaced."""
        return await self._close_code_card(context.adapter, session_id)

    async def close_code_cards(self, adapter: ChannelAdapter, session_ids: list[str]) -> int:
        """`close_code_card` for sessions that ended with no turn (the sweep timed them out). Returns how many."""
        closed = 0
        for session_id in session_ids:
            try:
                closed += await self._close_code_card(adapter, session_id)
            except Exception:  # the storage is failing: the other cards are still to be closed
                log.warning("could not close the code card of session %s", session_id, exc_info=True)
        return closed

    async def _close_code_card(self, adapter: ChannelAdapter, session_id: str) -> bool:
        key = OOB_KEY.format(session_id)
        record = await read_record(self._storage, key)
        shown = record.data.get("code_card") if record is not None else None
        if record is None or not isinstance(shown, dict) or shown.get("closed"):
            return False
        ended_at = clock_time(self._clock(), _zone(shown.get("zone")))
        card = self._cards.render("out_of_band", ended=True, ended_at=ended_at,
                                  started_at=shown.get("started_at") or "", agent_name=shown.get("agent_name") or "",
                                  code="", data={"session": session_id})
        update = self._cards.activity(card, "Your helpdesk verification has ended")
        update.id = str(shown["id"])
        if await self._deliver(adapter, dict(shown["reference"]), update, "the ended code card", update=True) is None:
            return False
        shown["closed"] = True
        if not await write_record(self._storage, key, record):  # changed meanwhile (an answer): replaced anyway
            log.info("the code card of session %s was replaced; its record changed meanwhile", session_id)
        return True

    async def note_agent_card(self, session_id: str, card_id: str) -> None:
        # Noted by the turn whose card it is, which may come before the send that asked someone has opened the
        # record (it runs after the turn): then the record begins with the card, and the send fills in the rest.
        await self._keep_fields(session_id, {"agent_card_id": card_id}, create=True)

    async def _keep_fields(self, session_id: str, fields: Mapping[str, Any], *, create: bool = False,
                           known: Record | None = None) -> bool:
        """Set fields of the session's out-of-band record, if there is one (nobody asked: nothing to keep, unless
        `create`); False when there is none or it could not be written. `known`: the record as this process just
        wrote it, tried first (its e_tag refuses the write if anyone wrote since: then it is read again)."""
        key = OOB_KEY.format(session_id)
        for _ in range(3):
            record = known if known is not None else await read_record(self._storage, key)
            known = None
            if record is None and create:
                record = Record()
            if record is None:
                return False
            if all(record.data.get(name) == value for name, value in fields.items()):
                return True
            record.data.update(fields)
            if await write_record(self._storage, key, record):
                return True
        return False

    async def factor_answers(self, session_id: str) -> FactorAnswers:
        record = await read_record(self._storage, OOB_KEY.format(session_id))
        if record is None:
            return FactorAnswers()
        manager = record.data.get("manager_answer")
        sends = {factor: record.data.get(DELIVERED.format(factor.value)) for factor in STRONG}
        return FactorAnswers(denied=record.data.get("answer") is False,
                             manager=Attestation(manager) if manager else None,
                             delivered=frozenset(f for f, sent in sends.items() if sent is True),
                             undelivered=frozenset(f for f, sent in sends.items() if sent is False))

    async def out_of_band_answer(self, session_id: str) -> bool | None:
        return False if (await self.factor_answers(session_id)).denied else None

    async def alert_security(self, context: TurnContext, *, tenant_id: str, security_contact_id: str, title: str,
                             lines: list[str], subject: str, session_id: str) -> bool:
        sent = False
        reference = await self._reference(tenant_id, security_contact_id) if security_contact_id else None
        if reference is not None:
            card = self._cards.render("notice", title=title, tone="Attention", lines=lines)
            sent = await self.send(context, reference, self._cards.activity(card, title), "a security alert")
        outcome = "sent" if sent else "not_delivered" if security_contact_id else "no_security_contact"
        await self._store.audit.append(action="security.alert", outcome=outcome, actor="watchword", subject=subject,
                                       tenant_id=tenant_id, details={"session_id": session_id, "title": title[:120],
                                                                     "contact": f"teams:{security_contact_id}"
                                                                     if security_contact_id else ""})
        return sent

    async def notify_password_reset(self, context: TurnContext, *, tenant_id: str, target_id: str,
                                    at: datetime, outcome: ResetOutcome = ResetOutcome.DONE) -> Notice:
        reached = await self._reach(tenant_id, target_id)
        if reached is not None:
            notice = self._reset_notice(at, outcome, reached[1])
            if await self.send(context, reached[0], notice, "the password-reset notice"):
                return Notice.DELIVERED
        reference = await self._installed_chat(context, tenant_id, target_id)
        if reference is not None and await self.send(context, reference, self._reset_notice(at, outcome, None),
                                                     "the password-reset notice"):
            return Notice.INSTALLED
        return Notice.NOT_REACHED

    async def tell_of_abandoned_resets(self, adapter: ChannelAdapter) -> int:
        """Resets whose turn died before their outcome was recorded (perhaps after Graph took the password) and whose
        claim has expired: each is recorded unknown (store: once, across instances) and the person, in their chat
        with Watchword, gets the notice that a reset may have gone through, audited `password_reset.notice`. Not
        for self-service (the person was the one resetting). At most once: an instance killed between the record and
        the notice leaves it untold, as a turn killed there would. Returns how many were recorded."""
        abandoned = await self._store.sessions.settle_abandoned_resets()
        for reset in abandoned:
            if reset.agent_id is None:
                continue
            notice = Notice.NOT_REACHED
            reached = await self._reach(reset.tenant_id, reset.target_user_id)
            if reached is not None and await self._deliver(
                    adapter, reached[0], self._reset_notice(reset.claimed_at, ResetOutcome.UNKNOWN, reached[1]),
                    "the password-reset notice") is not None:
                notice = Notice.DELIVERED
            try:
                await self._store.audit.append(
                    action="password_reset.notice", outcome=notice.value, actor="watchword",
                    subject=reset.target_user_id, tenant_id=reset.tenant_id,
                    details={"session_id": reset.session_id, "attempt": reset.attempt,
                             "reset": ResetOutcome.UNKNOWN.value, "reason": "claim_expired"})
            except Exception:  # the database is failing: the other people are still to be told
                log.warning("could not audit how the person was told of reset %s", reset.session_id, exc_info=True)
        return len(abandoned)

    def _reset_notice(self, at: datetime, outcome: ResetOutcome, zone: tzinfo | None) -> Activity:
        """The person's notice of a reset, with the time as their clock shows it (UTC, named, when unknown)."""
        if outcome is ResetOutcome.DONE:
            title, lines = "Your password was reset", [
                f"Your password was reset by the IT helpdesk at {date_and_time(at, zone)}.",
                "If this wasn't you, contact security."]
        else:  # the reset may have changed it (Graph's answer never came): told all the same, as such
            title, lines = "A password reset was requested for your account", [
                f"The IT helpdesk asked for a reset of your password at {date_and_time(at, zone)}, and it may "
                "have gone through.",
                "If your password no longer works, this is why: call the helpdesk for a new one.",
                "If you didn't call the helpdesk, tell security."]
        card = self._cards.render("notice", title=title, tone="Warning", lines=lines)
        return self._cards.activity(card, title)

    async def _installed_chat(self, context: TurnContext, tenant_id: str, user_id: str) -> dict[str, Any] | None:
        """A reference to the person's chat with Watchword, installing Watchword for them through Graph (the agent
        in this turn has it, which is how its catalog id is found); None when the tenant does not allow it."""
        if self._directory is None or not self._manifest_id:
            return None
        try:
            chat_id = await self._directory.open_app_chat(tenant_id, user_id, via_user_id=user_id_of(context.activity),
                                                          manifest_id=self._manifest_id)
        except DirectoryError as err:
            log.warning("could not install Watchword for user %s in tenant %s: %s", user_id, tenant_id, err)
            return None
        if chat_id is None:
            return None
        activity = context.activity
        bot = activity.recipient.model_dump(mode="json", by_alias=True, exclude_none=True) if activity.recipient \
            else {"id": self._app_id}
        reference = {"channelId": activity.channel_id or "msteams", "serviceUrl": activity.service_url, "bot": bot,
                     "user": {"id": user_id, "aadObjectId": user_id},
                     "conversation": {"id": chat_id, "conversationType": "personal", "tenantId": tenant_id}}
        # Kept like a chat they opened themselves: the next time they are asked or told, no Graph request (installing
        # took three, ~350 ms on the turn of the answer that asks a manager). A kept chat that fails is installed again.
        with contextlib.suppress(ValueError):  # not a GUID tenant or user id: used this once
            await self._store.conversation_refs.save(tenant_id, user_id, reference)
        return reference

    async def _not_delivered(self, context: TurnContext, session_id: str, actor: Actor, target_id: str,
                             security_contact_id: str, factor: Factor, *, manager_id: str = "",
                             audit: bool = True) -> bool:
        """Keep, with the session's record, that `factor`'s send did not reach them (`factor_answers` hands it to the
        session), audited as such (as the send audits its own outcome) unless the caller audits it; False, what the
        send returns."""
        await self._open_record(context, session_id, actor, target_id, security_contact_id,
                                fields={DELIVERED.format(factor.value): False})
        if audit:
            action, details = (("out_of_band.asked", {"session_id": session_id, "factor": "possession"})
                               if factor is Factor.POSSESSION else
                               ("manager.asked", {"session_id": session_id, "manager": f"teams:{manager_id}"}))
            await self._store.audit.append(action=action, outcome="not_delivered", actor=f"teams:{actor.user_id}",
                                           subject=target_id, tenant_id=actor.tenant_id, details=details)
        return False

    async def _open_record(self, context: TurnContext, session_id: str, actor: Actor, target_id: str,
                           security_contact_id: str, *, person_asked: bool = False,
                           manager_id: str | None = None, fields: Mapping[str, Any] | None = None) -> Record | None:
        """The session's record of who was asked (created by the first ask, extended by the next), with `fields`."""
        key = OOB_KEY.format(session_id)
        for _ in range(3):
            record = await read_record(self._storage, key)
            if record is None or "target_id" not in record.data:  # none yet, or only the agent's card (note_agent_card)
                agent_reference = context.activity.get_conversation_reference().model_dump(
                    mode="json", by_alias=True, exclude_none=True)
                agent_reference.pop("activityId", None)
                first = {"tenant_id": actor.tenant_id, "target_id": target_id, "actor": actor.to_dict(),
                         "agent_reference": agent_reference, "asked_at": self._clock().isoformat(),
                         "answer": None, "person_asked": False, "manager_id": None, "manager_answer": None,
                         "security_contact_id": security_contact_id}
                record = Record(first) if record is None else Record({**first, **record.data}, record.e_tag)
            record.data["person_asked"] = record.data.get("person_asked") or person_asked
            if manager_id is not None:
                record.data["manager_id"] = manager_id
            record.data.update(fields or {})
            if await write_record(self._storage, key, record):
                return record
        return None

    # --- answers in the person's or the manager's own chat -------------------------------------------------
    async def answer_out_of_band(self, context: TurnContext, data: dict[str, Any], verb: str) -> dict[str, Any]:
        """The person's "not me" ("oob_no") or the manager's answer ("mgr_yes", "mgr_unsure", "mgr_no"): record it,
        tell the agent (and security, for a denial), and return the card replacing the clicked one. After the
        verification ended, or after the reset, the answer is told the truth and audited."""
        session_id = str(data.get("session") or "")
        key = OOB_KEY.format(session_id)
        record = await read_record(self._storage, key) if session_id else None
        clicker = user_id_of(context.activity).lower()
        manager = verb in MANAGER_VERBS
        asked = str((record.data.get("manager_id") if manager else record.data.get("target_id")) or "") \
            if record is not None else ""
        if record is None or verb not in (*MANAGER_VERBS, "oob_no") or asked.lower() != clicker or not clicker:
            return self._receipt("This question isn't for you", "Nothing was recorded.")
        field = "manager_answer" if manager else "answer"
        if record.data.get(field) is not None:
            return self._receipt("You already answered", "Thank you.")
        answer: Any = MANAGER_VERBS[verb].value if manager else False
        record.data.update({field: answer, f"{field}_at": self._clock().isoformat()})
        if not await write_record(self._storage, key, record):
            return self._receipt("You already answered", "Thank you.")
        tenant_id, target_id = str(record.data["tenant_id"]), str(record.data["target_id"])
        denied = answer in (False, Attestation.DENIED.value)
        late = await self._late(session_id)
        await self._store.audit.append(
            action="manager.answered" if manager else "out_of_band.answered",
            outcome=("denied" if denied else str(answer)) + (f"_after_{late.what}" if late else ""),
            actor=f"teams:{clicker}", subject=target_id, tenant_id=tenant_id,
            details={"session_id": session_id, "agent": f"teams:{Actor.from_dict(record.data['actor']).user_id}"})
        if late is not None:
            return await self._late_answer(context, record.data, session_id, late, denied, manager)
        if not denied:
            await self._tell_agent(context, record.data, *MANAGER_TOLD[Attestation(answer)], tone="Good"
                                   if answer == Attestation.CONFIRMED.value else None)
            return self._receipt("Thanks, we've told the helpdesk", "Nothing else to do.")
        try:
            await self._store.sessions.finish(session_id, Outcome.NOT_VERIFIED)
            self._metrics.verification_ended(Outcome.NOT_VERIFIED.value)
        except SessionClosedError:
            pass  # already decided: blocking the reset below still stops any (further) reset
        await self._ledger.block(session_id)
        who = "Their manager says they are not on a call with the helpdesk" if manager else \
            "The account holder says they are not on a call with the helpdesk"
        title = "STOP: their manager says it is NOT them" if manager else "STOP: they say it is NOT them"
        await self._tell_agent(context, record.data, title, f"{who}. Treat the caller as an attacker: do not reset "
                               "anything, end the call and report it to security. The verification has been "
                               "stopped.", tone="Attention")
        await self._close_agent_card(context, record.data, manager)
        await self.alert_security(context, tenant_id=tenant_id,
                                  security_contact_id=str(record.data.get("security_contact_id") or ""),
                                  title="Watchword: a helpdesk caller was denied", subject=target_id,
                                  session_id=session_id, lines=[f"{who} (user {target_id}).",
                                                                "The verification was stopped; nothing was reset."])
        return self._receipt("Thanks: we've stopped it",
                             "The verification was stopped and the helpdesk told. Security may contact you.")

    async def _late(self, session_id: str) -> Late | None:
        """Whether the verification already ended (and when), or the password was already reset (and when)."""
        session = await self._store.sessions.get(session_id)
        # The reset's record is on the session's row (store/sessions.py): done, or maybe done (unknown).
        done = (ResetOutcome.DONE, ResetOutcome.UNKNOWN)
        if session is not None and session.reset_state in done and session.reset_done_at:
            return Late("reset", session.reset_done_at)
        if session is not None and session.outcome is Outcome.VERIFIED and session.reset_state != BLOCKED:
            return None  # verified but not reset: a denial must still block the reset (see answer_out_of_band)
        if session is not None and not session.is_open:
            return Late("end", session.ended_at or self._clock())
        return None

    async def _late_answer(self, context: TurnContext, record: dict[str, Any], session_id: str, late: Late,
                           denied: bool, manager: bool) -> dict[str, Any]:
        at = clock_time(late.at, zone_of(context.activity))
        if late.what == "end":
            return self._receipt("This verification already ended", f"It ended at {at}. Nothing more will happen; "
                                 "nothing was changed by your answer.")
        if not denied:
            return self._receipt("The password was already reset", f"The helpdesk reset it at {at}. Thank you.")
        target_id = str(record["target_id"])
        who = "their manager says" if manager else "the account holder says"
        lines = [f"The password was reset at {at}, and now {who} it was NOT them on the call.",
                 "Treat the account as compromised: reset the password again, revoke its sessions, and tell "
                 "security."]
        await self._tell_agent(context, record, "ALERT: reset password, caller denied", " ".join(lines),
                               tone="Attention")
        await self.alert_security(context, tenant_id=str(record["tenant_id"]),
                                  security_contact_id=str(record.get("security_contact_id") or ""),
                                  title="Watchword: a reset was denied afterwards", subject=target_id,
                                  session_id=session_id, lines=[f"User {target_id}: {lines[0]}", lines[1]])
        return self._receipt("The password was already reset", f"The helpdesk reset it at {at}. We've told the "
                             "helpdesk and security that it wasn't you: they will contact you.")

    async def _tell_agent(self, context: TurnContext, record: dict[str, Any], title: str, text: str,
                          tone: str | None = None) -> None:
        reference = record.get("agent_reference")
        if not isinstance(reference, dict):
            return
        card = self._cards.render("notice", title=title, lines=[text], tone=tone)
        await self.send(context, reference, self._cards.activity(card, title), "an answer to the agent")

    async def _close_agent_card(self, context: TurnContext, record: dict[str, Any], manager: bool) -> None:
        """The verification was stopped: the agent's open question card must not take an answer any more."""
        reference, card_id = record.get("agent_reference"), record.get("agent_card_id")
        if not isinstance(reference, dict) or not card_id:
            return
        who = "their manager" if manager else "the account holder"
        card = self._cards.render("notice", title="Verification stopped", tone=None, lines=[
            f"This question is closed: {who} said in Teams that it is not them."])
        update = self._cards.activity(card, "Verification stopped")
        update.id = str(card_id)
        await self._send(context, reference, update, "the closed question card", update=True)

    def _receipt(self, title: str, line: str) -> dict[str, Any]:
        return self._cards.render("notice", title=title, lines=[line], tone=None)


def _tenant_of(activity: Activity) -> dict[str, Any] | None:
    """channelData.tenant of the activity, for a turn of Watchword's own in the same conversation."""
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    return data.get("tenant") if isinstance(data.get("tenant"), dict) else None


def _zone(name: object) -> tzinfo | None:
    """A kept IANA zone name as a time zone; None (times in UTC, named) when absent or no longer known."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _manifest_id(app_id: str) -> str | None:
    try:
        return derive_app_id(app_id)
    except ValueError:  # no bot id (anonymous local runs): nothing in a catalog to install
        return None


@dataclass(frozen=True)
class Late:
    what: str  # "end" or "reset"
    at: datetime


MANAGER_VERBS = {"mgr_yes": Attestation.CONFIRMED, "mgr_unsure": Attestation.UNSURE, "mgr_no": Attestation.DENIED}
MANAGER_TOLD = {
    Attestation.CONFIRMED: ("Their manager confirmed", "Their manager said in Teams that the person is on the phone "
                            "with the helpdesk. It counts towards the proof."),
    Attestation.UNSURE: ("Their manager doesn't know", "Their manager could not say whether the person is on the "
                         "phone with the helpdesk. Carry on: it counts for nothing either way."),
}
