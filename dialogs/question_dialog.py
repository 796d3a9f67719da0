"""QuestionDialog: one question at a time until the verification session decides.

Each turn: open the sealed session, take in the person's own Teams answer if they gave one, show the
current question (progress, never how well it is going), then feed what the caller said (or "doesn't
know", or cancel) to the session and record the transcript entry. It loops by replacing its own waterfall
and ends with {"session": <sealed session>} once the session has a decision (which may be timed_out).

Every answer gets the same next card whether it was right or wrong: each question is asked once (no "ask again"
after a wrong answer), and the session chooses what comes next without looking at right or wrong.

Options: {"session": sealed, "actor": Actor.to_dict(), "audience": "agent" | "self", "out_of_band": bool} (whether
the person was asked in Teams "is that you on the call?": their answer is looked for only then; absent means yes).
"""

from __future__ import annotations

import uuid
from typing import Any

from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import (
    ComponentDialog,
    DialogInstance,
    DialogReason,
    DialogTurnResult,
    WaterfallDialog,
    WaterfallStepContext,
)

from dialogs.card_prompt import REPLACEMENT_CARD, CardPrompt, prompt_options, waterfall_frames
from dialogs.factor_answers import take_factor_answers
from dialogs.ports import Actor, AuditNote, CardRenderer, Messenger, SealError, VerificationRecords
from dialogs.session_keeper import SessionKeeper
from dialogs.wording import progress
from verification import Outcome, Policy, VerificationSession
from verification.clock import Clock

OUT_OF_BAND_KIND = "out_of_band"
REPLACED_CARD_ID = "watchword.replaced_card_id"

_LABELS = {
    "agent": {"label": "What the caller says", "placeholder": "Type their answer as they say it",
              "hint": "Read the question exactly as written and type what the caller says. Don't suggest names or "
                      "say how an answer sounds: you won't see whether it was right either. Ctrl+Enter in the box "
                      "sends the answer; fastest of all, type it straight into the chat box.",
              "skip": "Caller doesn't know"},
    "self": {"label": "Your answer", "placeholder": "Type your answer",
             "hint": "Answer from memory. Ctrl+Enter sends it, or type it straight into the chat box.",
             "skip": "I don't know"},
}


def prompted_card_id(step: WaterfallStepContext) -> str | None:
    """The id of the card the CardPrompt just begun by `step` sent (None when the channel gave none)."""
    prompt = step.active_dialog
    state = prompt.state.get("state") if prompt is not None else None
    card_id = state.get("card_id") if isinstance(state, dict) else None
    return str(card_id) if card_id else None


def questions_asked(session: VerificationSession) -> int:
    return sum(1 for t in session.transcript if t.question_id != OUT_OF_BAND_KIND)


class QuestionDialog(ComponentDialog):
    def __init__(self, records: VerificationRecords, messenger: Messenger, sessions: SessionKeeper,
                 cards: CardRenderer, clock: Clock) -> None:
        super().__init__(QuestionDialog.__name__)
        self._records = records
        self._messenger = messenger
        self._sessions = sessions
        self._cards = cards
        self._clock = clock
        self._loop_id = f"{QuestionDialog.__name__}.loop"
        self.add_dialog(WaterfallDialog(self._loop_id, [self.ask_step, self.answer_step]))
        self.add_dialog(CardPrompt())
        self.initial_dialog_id = self._loop_id

    # --- steps ---------------------------------------------------------------------------------------------
    async def ask_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = dict(step.options)
        try:
            session, _ = await self._sessions.open(step.context, options["session"])
        except SealError:
            return await self._lost(step)
        before = len(session.transcript)
        current = await take_factor_answers(step.context, self._messenger, self._records, session)
        if current.decision is not None:
            return await step.end_dialog({"session": self._sessions.seal(step.context, session)[0]})
        if len(session.transcript) != before:  # the person's own answer changed it: keep the new version
            step.values["session"], _ = self._sessions.seal(step.context, session)
        prompt = current.prompt
        if prompt is None and (current.offer or current.awaiting or current.awaiting_risk):
            # a factor to ask or wait for, or the sign-in risk to wait for: ProofDialog's
            return await step.end_dialog({"session": step.values.get("session") or options["session"]})
        if prompt is None:  # its plan is gone (ended elsewhere) and nothing above decided it
            return await self._lost(step, session.id)
        number = questions_asked(session) + 1  # a full-name follow-up is still the same question
        most = session.policy.max_questions  # parsed when the session was opened, not again
        heading = f"Question {number} of at most {most}"
        note = None
        if current.clarify:  # after every bare first name or surname, right or wrong
            heading, note = f"Question {number}, follow-up", "Ask for the full name: first name and surname."
        ref = f"{session.id[:8]}.{number}{'c' if current.clarify else ''}.{uuid.uuid4().hex[:6]}"
        labels = _LABELS[options.get("audience", "agent")]
        card = self._cards.render("question", heading=heading, progress=progress(number, most), note=note,
                                  text=prompt.text, options=list(prompt.options), labels=labels,
                                  data={"ref": ref, "question": prompt.question_id})
        retry = "Use the buttons on the latest question card, or type the answer."
        turn = await step.prompt(CardPrompt.__name__, prompt_options(
            self._cards.activity(card, heading), retry, verbs=["answer", "skip", "cancel"], ref=ref,
            text_verb="answer", words={"cancel": "cancel"}))
        card_id = prompted_card_id(step)
        # "Not me" in the person's Teams closes it; kept only once someone was asked (no store write otherwise)
        if card_id and session.factors_asked and options.get("audience", "agent") == "agent":
            await self._messenger.note_agent_card(session.id, card_id)
        return turn

    async def answer_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        options = dict(step.options)
        actor = Actor.from_dict(options["actor"])
        result: dict[str, Any] = dict(step.result)
        try:
            session, _ = await self._sessions.open(step.context, step.values.get("session") or options["session"])
        except SealError:
            return await self._lost(step)
        if session.decision is None and session.asking is None:  # ended elsewhere: ask_step settles it
            return await step.replace_dialog(self._loop_id, {
                **options, "session": step.values.get("session") or options["session"]})
        number = questions_asked(session) + 1
        # "Not me" (or the manager's no) given while this question was on screen ends it first: the answer typed or
        # clicked after it is not taken, nor counted as a question asked.
        if (await take_factor_answers(step.context, self._messenger, self._records, session)).decision is not None:
            self._replace_card(step.context, result, f"Question {number}: not recorded, the verification was stopped.")
            return await step.end_dialog({"session": self._sessions.seal(step.context, session)[0]})
        before = len(session.transcript)
        verb = result["verb"]
        if verb == "cancel":
            current = session.cancel("Cancelled by the agent." if options.get("audience", "agent") == "agent"
                                     else "Cancelled.")
            receipt = "Cancelled."
        elif verb == "skip":
            current = session.skip()
            receipt = f"Question {number}: skipped."
        else:
            current = session.answer(str(result["data"].get("answer") or ""))
            receipt = f"Question {number}: answer recorded."
        sealed, snapshot = self._sessions.seal(step.context, session)
        await self._record(session, before, actor, snapshot, AuditNote(
            f"verification.{verb}", "recorded", actor, snapshot["target_id"],
            {"session_id": session.id, "question": number}))
        self._replace_card(step.context, result, receipt)
        if current.decision is not None:
            return await step.end_dialog({"session": sealed})
        return await step.replace_dialog(self._loop_id, {**options, "session": sealed})

    # --- helpers -------------------------------------------------------------------------------------------
    async def _lost(self, step: WaterfallStepContext, session_id: str | None = None) -> DialogTurnResult:
        """The session cannot be continued (restarted with another WATCHWORD_STATE_KEY, or its plan is gone):
        end cleanly. A session the store has as verified was decided by a turn whose conversation state was never
        saved (killed right after the deciding answer): it ends with {"recovered": session id}, so the caller can
        still offer the reset the store allows."""
        if session_id is not None and await self._records.stored_outcome(session_id) is Outcome.VERIFIED:
            return await step.end_dialog({"session": None, "recovered": session_id})
        card = self._cards.render("notice", title="This verification can't be continued", tone="Warning", lines=[
            "Watchword restarted and can no longer read it. Nothing was changed on the account.",
            "Start again with verify and the caller's name."])
        await step.context.send_activity(self._cards.activity(card, "This verification can't be continued"))
        return await step.end_dialog({"session": None})

    async def _record(self, session: VerificationSession, before: int, actor: Actor,
                      snapshot: dict[str, Any] | None = None, audit: AuditNote | None = None) -> None:
        """The transcript entries since `before`, with `audit` committed along with the last one (or alone, when
        the turn added none: a retry or a full-name follow-up)."""
        earned = float((snapshot or session.to_dict())["earned"])
        entries = session.transcript[before:]
        for i, entry in enumerate(entries):
            await self._records.record_answer(session.id, entry, earned, audit if i == len(entries) - 1 else None,
                                              index=before + i)
        if audit is not None and not entries:
            await self._records.audit(audit.action, audit.outcome, actor=audit.actor, subject=audit.subject,
                                      details=audit.details)

    def _replace_card(self, context: TurnContext, result: dict[str, Any], text: str) -> None:
        context.turn_state[REPLACEMENT_CARD] = self._cards.render("notice", title=text, lines=[], tone=None)
        if result.get("card_id"):
            context.turn_state[REPLACED_CARD_ID] = result["card_id"]

    async def end_dialog(self, context: TurnContext, instance: DialogInstance, reason: DialogReason) -> None:
        if reason == DialogReason.CancelCalled:  # before the base class empties the inner stack
            await self._on_cancel(context, instance)
        await super().end_dialog(context, instance, reason)

    async def _on_cancel(self, context: TurnContext, instance: DialogInstance) -> None:
        """Cancelled from outside (the agent typed cancel elsewhere, or state was cleared): end the session."""
        for values, options in waterfall_frames(instance, self.persisted_dialog_state):
            sealed = values.get("session") or options.get("session")
            if isinstance(sealed, dict) and "actor" in options:
                try:
                    session, snapshot = await self._sessions.open(context, sealed)
                except SealError:
                    return  # unreadable: nothing to close here; the store's expiry sweep ends it
                if session.decision is None:
                    decision = session.cancel("Cancelled.").decision
                    assert decision is not None
                    await self._records.close_session(session.id, decision, actor=Actor.from_dict(options["actor"]),
                                                      target_id=snapshot["target_id"],
                                                      policy=Policy.from_dict(snapshot["policy"]))
                await self._messenger.close_code_card(context, session.id)
                return
