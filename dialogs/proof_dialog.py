"""ProofDialog: a verification from its start to its decision, factor by factor.

Each turn: open the sealed session, take in what the person and their manager answered in their own Teams, ask
the factors the session offers (the code shown in the person's Teams; the manager's card), then either the code
card (the agent types what the caller reads out), the questions (QuestionDialog, until it decides or has no
question to ask), or a "waiting for their manager" card. Ends with {"session": <sealed>} once decided (None: lost).

Asking a factor is a send to someone else's Teams (installing Watchword for them first, when needed): hundreds of
ms, seconds under load. The turn does not wait for it: the session takes the factor as asked, its delivery not yet
known (VerificationSession.requested(factor, None)), the turn answers with its next card, and the send runs right
after it (Messenger.send_in_background). The send keeps its outcome with the session's answers in the store, so the
conversation's next turn, on any instance, learns it (take_factor_answers): a code or a manager's card that could
not be delivered is out, as if never asked, and costs the caller nothing. A failure is told in the chat at once:
the card that waits for that factor (the code card; "waiting for their manager") is continued by itself, as if
Check again had been clicked, and the manager's failure is said in a notice. A send whose outcome never comes (its
process was killed mid-send) leaves the factor asked, its delivery unknown: nothing waits for it, and
VerificationSession.decline_code says how the code is then judged.

Options: {"session": sealed, "actor": Actor.to_dict(), "audience": "agent" | "self", "target": {"id", "name"},
"manager": {"id", "name"} | None, "security_contact_id": str}.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from microsoft_agents.activity import Activity
from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from dialogs.card_prompt import REPLACEMENT_CARD, CardPrompt, prompt_options
from dialogs.factor_answers import take_factor_answers
from dialogs.ports import Actor, CardRenderer, Messenger, SealError, VerificationRecords
from dialogs.question_dialog import QuestionDialog, prompted_card_id
from dialogs.session_keeper import RISK_DEADLINE, SessionKeeper
from verification import Outcome, Step, VerificationSession
from verification.clock import Clock
from verification.factors import CodeCheck, Factor

CODE_NOTES = {
    CodeCheck.MALFORMED: "That isn't a 6-digit code. Ask them to read it again and type all six digits.",
    CodeCheck.NEAR_MISS: "That code doesn't match. Ask them to read it once more, digit by digit. Another wrong "
                         "code stops the verification.",
}


@dataclass(frozen=True)
class _Asked:
    """A factor this turn asked, whose send runs once the turn's card is out. Its `send` may hold the code: never
    kept in state, never logged (the dataclass's repr shows only that it is a function)."""

    factor: Factor
    send: Callable[[], Awaitable[bool]]
    tell: Callable[[bool], Activity | None] | None = None


def _sending(session_id: str, factor: Factor) -> str:
    """The key of the send that asks `factor` for the session (Messenger.send_in_background)."""
    return f"{session_id}/{factor.value}"


class ProofDialog(ComponentDialog):
    def __init__(self, records: VerificationRecords, messenger: Messenger, sessions: SessionKeeper,
                 cards: CardRenderer, clock: Clock) -> None:
        super().__init__(ProofDialog.__name__)
        self._records = records
        self._messenger = messenger
        self._sessions = sessions
        self._cards = cards
        self._clock = clock
        self._loop_id = f"{ProofDialog.__name__}.loop"
        self.add_dialog(WaterfallDialog(self._loop_id, [self.next_step, self.answer_step]))
        self.add_dialog(CardPrompt())
        self.add_dialog(QuestionDialog(records, messenger, sessions, cards, clock))
        self.initial_dialog_id = self._loop_id

    async def next_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = dict(step.options)
        try:
            session, _ = await self._sessions.open(step.context, options["session"])
        except SealError:
            return await step.end_dialog({"session": None})
        current = await take_factor_answers(step.context, self._messenger, self._records, session)
        asked: list[_Asked] = []
        # Back from waiting for the sign-in risk with a question to ask: the questions go on as they would have had
        # the risk come during them (QuestionDialog asks what the session offers only once it has no question).
        if not (options.pop("questions_first", False) and current.prompt is not None):
            current, asked = await self._ask_offered(step.context, session, current, options)
        sealed, _ = self._sessions.seal(step.context, session)
        if current.decision is not None:  # nothing is sent for a session that has decided (the code died with it)
            return await step.end_dialog({"session": sealed})
        # One sealed copy of the progress in the conversation's state at a time: the child's while it asks the
        # questions, ours while a card of ours waits. The options we began with give theirs up.
        step.options.pop("session", None)
        if current.prompt is not None:
            step.values["options"] = {k: v for k, v in options.items() if k != "session"}
            turn = await step.begin_dialog(QuestionDialog.__name__, {
                "session": sealed, "actor": options["actor"], "audience": options.get("audience", "agent"),
                "out_of_band": False})  # the factors' answers are taken by QuestionDialog too
            self._send(step.context, asked, session_id=session.id)  # a failure: the session learns it next turn
            return turn
        step.values["options"] = {**options, "session": sealed}
        ref = uuid.uuid4().hex[:12]
        if current.awaiting_risk:  # what was asked already meets the policy: only the sign-in risk stands in the way
            turn = await self._await_risk(step, session, ref, self_service=options.get("audience") == "self")
            self._send(step.context, asked, session_id=session.id)
            return turn
        if Factor.POSSESSION in current.awaiting:
            card = self._cards.render("code_entry", note=CODE_NOTES.get(current.code) if current.code else
                                      step.options.get("note"), data={"ref": ref})
            # "check": no button; the turn Watchword runs itself when the code could not be shown (see _send)
            turn = await step.prompt(CardPrompt.__name__, prompt_options(
                self._cards.activity(card, "Ask for the code in their Teams"),
                "Type the code the caller reads out, or choose “They can't see a code”.",
                verbs=["code", "no_code", "cancel", "check"], ref=ref, text_verb="code", words={"cancel": "cancel"}))
            self._send(step.context, asked, session_id=session.id, waiting_for=Factor.POSSESSION,
                       card_id=prompted_card_id(step), ref=ref)
            return turn
        if current.awaiting:
            manager = (options.get("manager") or {}).get("name") or "their manager"
            whom = "it's you" if options.get("audience") == "self" else "the caller is on the phone with you"
            card = self._cards.render("waiting", title=f"Waiting for {manager}", data={"ref": ref}, lines=[
                f"I've asked {manager} in Teams whether {whom}. The questions are done: their answer decides.",
                "When they have answered, choose Check again."])
            turn = await step.prompt(CardPrompt.__name__, prompt_options(
                self._cards.activity(card, f"Waiting for {manager}"), "Choose Check again or Cancel.",
                verbs=["check", "cancel"], ref=ref, words={"cancel": "cancel", "check": "check"}))
            card_id = prompted_card_id(step)
            self._send(step.context, asked, session_id=session.id, waiting_for=Factor.MANAGER, card_id=card_id,
                       ref=ref)
            if not asked:  # their card was sent by an earlier turn, and may still be on its way
                self._messenger.continue_if_undelivered(step.context, _sending(session.id, Factor.MANAGER),
                                                        card_id=card_id, value={"verb": "check", "ref": ref})
            return turn
        # Nothing to ask and undecided: its plan is gone. Decided by a turn whose state was never saved (killed)?
        if await self._records.stored_outcome(session.id) is Outcome.VERIFIED:
            return await step.end_dialog({"session": None, "recovered": session.id})
        return await step.end_dialog({"session": None})

    async def answer_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options: dict[str, Any] = dict(step.values["options"])
        result: Mapping[str, Any] = step.result or {}
        if "verb" not in result:  # QuestionDialog ended: decided, lost, or a factor is needed
            if result.get("session") is None:  # lost, or decided by a turn that was killed ("recovered")
                return await step.end_dialog(dict(result))
            return await step.replace_dialog(self._loop_id, {**options, "session": result["session"], "note": None})
        actor = Actor.from_dict(options["actor"])
        try:
            session, _ = await self._sessions.open(step.context, options["session"])
        except SealError:
            return await step.end_dialog({"session": None})
        # How the sends ended and what was answered in Teams, before the click: "they can't see a code" after a code
        # that could not be shown is no longer the caller's to decline (it is out already), nor is a code typed.
        undelivered = session.undelivered
        await take_factor_answers(step.context, self._messenger, self._records, session)
        lost = session.undelivered - undelivered
        before = len(session.transcript)
        verb = result["verb"]
        receipt = {"code": "Code checked.", "no_code": "No code: questions only.", "check": "Checked.",
                   "cancel": "Cancelled."}[verb]
        if verb == "check" and step.values.get("awaiting_risk"):
            receipt = "Questions complete; sign-in logs checked."
        elif verb in ("check", "code", "no_code") and Factor.POSSESSION in lost:
            receipt = "The code couldn't be shown in their Teams."
        elif verb == "check" and Factor.MANAGER in lost:
            receipt = f"{(options.get('manager') or {}).get('name') or 'Their manager'} couldn't be asked in Teams."
        if verb == "code":
            current = session.enter_code(str(result["data"].get("code") or result.get("text") or ""))
            if current.code in CODE_NOTES:
                receipt = "Code not accepted."
        elif verb == "no_code":
            out = session.undelivered
            current = session.decline_code()
            # Audited whichever way it went: said before the code was known to be shown, it leaves no "skipped"
            # entry (costing the caller nothing), and would otherwise leave no trace that the agent declined it.
            declined = ("declined" if len(session.transcript) > before else
                        "declined_before_shown" if Factor.POSSESSION in session.undelivered - out else "not_asked")
        elif verb == "cancel":
            current = session.cancel("Cancelled by the agent." if options.get("audience", "agent") == "agent"
                                     else "Cancelled.")
        else:
            current = session.check()
        sealed, snapshot = self._sessions.seal(step.context, session)
        earned = float(snapshot["earned"])
        for i, entry in enumerate(session.transcript[before:], before):
            await self._records.record_answer(session.id, entry, earned, index=i)
        if verb == "no_code":
            await self._records.audit("verification.code", declined, actor=actor, subject=snapshot["target_id"],
                                      details={"session_id": session.id})
        if verb == "code":
            await self._records.audit("verification.code", current.code.value if current.code else "not_asked",
                                      actor=actor, subject=snapshot["target_id"], details={"session_id": session.id})
            if current.code is CodeCheck.MATCH:  # used: it must not stay on the person's screen
                await self._messenger.close_code_card(step.context, session.id)
        step.context.turn_state[REPLACEMENT_CARD] = self._cards.render("notice", title=receipt, lines=[], tone=None)
        if current.decision is not None:
            return await step.end_dialog({"session": sealed})
        return await step.replace_dialog(self._loop_id, {**options, "session": sealed,
                                                          "note": CODE_NOTES.get(current.code) if current.code
                                                          else None,
                                                          "questions_first": bool(step.values.get("awaiting_risk"))})

    async def _await_risk(self, step: WaterfallStepContext, session: VerificationSession, ref: str, *,
                          self_service: bool) -> DialogTurnResult:
        """The questions are done and the sign-in risk is still being read: say so at once (the answer's turn never
        waits for Microsoft's sign-in logs), and continue by ourselves when the risk is known or its budget ends
        (the session keeper's RISK_DEADLINE): the decision, or more questions when the risk asks for them, follow in
        this chat. Check again does the same by hand."""
        step.values["awaiting_risk"] = True
        left = max(1, round((session.started_at + RISK_DEADLINE - self._clock()).total_seconds()))
        title = "Questions complete: checking Microsoft's sign-in logs"
        card = self._cards.render("waiting", title=title, data={"ref": ref}, lines=[
            "Nothing is decided yet. Before deciding, Watchword weighs the account's recent sign-ins, and "
            "Microsoft's sign-in logs can take a while to read, more so when many verifications start at once.",
            f"The decision follows here by itself, within {left} seconds at most; if it hasn't by then, choose "
            "Check again." + ("" if self_service else " Keep the caller on the line.")])
        turn = await step.prompt(CardPrompt.__name__, prompt_options(
            self._cards.activity(card, title), "Choose Check again or Cancel.",
            verbs=["check", "cancel"], ref=ref, words={"cancel": "cancel", "check": "check"}))
        session_id, started_at = session.id, session.started_at
        self._messenger.continue_when(step.context, lambda: self._sessions.risk_settled(session_id, started_at),
                                      card_id=prompted_card_id(step), value={"verb": "check", "ref": ref})
        return turn

    async def _ask_offered(self, context: TurnContext, session: VerificationSession, current: Step,
                           options: dict[str, Any]) -> tuple[Step, list[_Asked]]:
        """Ask what the session offers: the code in the person's Teams, the manager's card. Asked at once, sent once
        the turn's card is out (`_send`): the session takes each as asked, its delivery not known yet."""
        actor = Actor.from_dict(options["actor"])
        target = options["target"]
        contact = str(options.get("security_contact_id") or "")
        self_service = options.get("audience") == "self"
        asked: list[_Asked] = []
        for _ in range(2):  # the code first; asking it may make the manager worth asking too (always, by policy)
            if current.decision is not None or not current.offer:
                break
            if Factor.POSSESSION in current.offer:
                asked.append(_Asked(Factor.POSSESSION, self._code_sender(
                    context, session_id=session.id, actor=actor, target_id=str(target["id"]),
                    code=session.issue_code(), security_contact_id=contact)))
                current = session.requested(Factor.POSSESSION, None)
            elif Factor.MANAGER in current.offer:
                manager = options.get("manager") or {}
                if not manager:
                    current = session.requested(Factor.MANAGER, False)
                    continue
                asked.append(_Asked(Factor.MANAGER, self._manager_asker(
                    context, session_id=session.id, actor=actor, target=target, manager_id=str(manager["id"]),
                    security_contact_id=contact, self_service=self_service),
                    self._manager_told(str(manager["name"]), self_service=self_service)))
                current = session.requested(Factor.MANAGER, None)
                title, line = (
                    (f"I'm asking {manager['name']} to confirm it's you",
                     f"{manager['name']}, your manager, is being asked in Teams whether it's really you. They may "
                     "call you. Carry on with the questions meanwhile.") if self_service else
                    (f"I'm asking {manager['name']} too",
                     f"{manager['name']}, their manager, is being asked in Teams whether the caller is on the phone "
                     "with you. Carry on; I'll tell you what they say."))
                await self._notice(context, title, line)
        return current, asked

    def _code_sender(self, context: TurnContext, *, session_id: str, actor: Actor, target_id: str, code: str,
                     security_contact_id: str) -> Callable[[], Awaitable[bool]]:
        """The send of the code, for after the turn: the code lives in this closure only, until it has been sent."""

        async def send() -> bool:
            return await self._messenger.show_code(context, session_id=session_id, actor=actor, target_id=target_id,
                                                   code=code, security_contact_id=security_contact_id)

        return send

    def _manager_asker(self, context: TurnContext, *, session_id: str, actor: Actor, target: Mapping[str, str],
                       manager_id: str, security_contact_id: str, self_service: bool) -> Callable[[], Awaitable[bool]]:
        async def send() -> bool:
            return await self._messenger.ask_manager(context, session_id=session_id, actor=actor, target=target,
                                                     manager_id=manager_id, security_contact_id=security_contact_id,
                                                     self_service=self_service)

        return send

    def _manager_told(self, name: str, *, self_service: bool) -> Callable[[bool], Activity | None]:
        """What the chat is told once the manager's card was sent: nothing more when it was (the notice that they
        are being asked was in the turn), that it could not be when it was not."""

        def told(delivered: bool) -> Activity | None:
            if delivered:
                return None
            title = f"I couldn't ask {name}"
            line = (f"{name}, your manager, couldn't be reached in Teams, so they won't be asked." if self_service
                    else f"{name}, their manager, couldn't be reached in Teams, so they won't be asked.")
            card = self._cards.render("notice", title=title, lines=[line, "The verification goes on without them."],
                                      tone=None)
            return self._cards.activity(card, title)

        return told

    def _send(self, context: TurnContext, asked: list[_Asked], *, session_id: str, waiting_for: Factor | None = None,
              card_id: str | None = None, ref: str | None = None) -> None:
        """Send what this turn asked, now that its card is out. A send that fails continues the card on screen when
        that card waits for its factor (`waiting_for`), as Check again would: the session learns it and the next
        card follows. (A "waiting for their manager" card shown by a later turn while the send still runs does the
        same: Messenger.continue_if_undelivered.)"""
        for each in asked:
            waits = each.factor is waiting_for
            self._messenger.send_in_background(context, each.send, tell=each.tell, card_id=card_id if waits else None,
                                               value={"verb": "check", "ref": ref} if waits else None,
                                               key=_sending(session_id, each.factor))

    async def _notice(self, context: TurnContext, title: str, *lines: str) -> None:
        card = self._cards.render("notice", title=title, lines=list(lines), tone=None)
        await context.send_activity(self._cards.activity(card, title))
