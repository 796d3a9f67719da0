"""SelfServiceDialog: "reset my password" from the person themselves, in their own chat with Watchword.

Off unless the tenant's admin turned it on (bot/agent.py says so plainly). The same questions as a helpdesk
verification, under a stricter policy (`self_service_policy` below: more proof, one wrong answer
ends it, no multiple choice), then the same once-only reset. Only in a 1:1 chat.

Options: {"actor": Actor.to_dict()} (the actor is also the target).
"""

from __future__ import annotations

from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from dialogs.ports import (
    Actor,
    CardRenderer,
    Clock,
    Messenger,
    Protection,
    ResetLedger,
    Sealer,
    VerificationRecords,
)
from dialogs.question_dialog import QuestionDialog
from dialogs.reset_dialog import ResetPasswordDialog
from dialogs.session_keeper import SessionKeeper
from dialogs.wording import requirement_lines, risk_view
from graph.directory import Directory, DirectoryError
from verification import Outcome, Policy

USER_STEPS = {
    Outcome.VERIFIED: "You answered enough questions.",
    Outcome.NOT_ENOUGH_QUESTIONS: "There isn't enough recent activity on your account to check it this way.",
    Outcome.BLOCKED_BY_RISK: "Recent sign-ins to your account look unusual, so it can't be reset here.",
    Outcome.LOCKED_OUT: "There have been too many attempts today.",
    Outcome.PRIVILEGED: "Administrator accounts can't be reset here.",
    Outcome.TIMED_OUT: "That took longer than allowed.",
    Outcome.CANCELLED: "Cancelled: nothing was changed.",
    Outcome.NOT_VERIFIED: "Those answers weren't enough to confirm it's you.",
}


def self_service_policy(policy: Policy) -> Policy:
    """Stricter than the helpdesk's: nobody listens to the answers, so more proof, one wrong answer ends it,
    and no multiple choice (its options would hand over real names)."""
    from dataclasses import replace

    return replace(policy, required_bits=policy.required_bits + 8, max_wrong=1, allow_multiple_choice=False,
                   max_attempts_per_day=min(policy.max_attempts_per_day, 2))


class SelfServiceDialog(ComponentDialog):
    def __init__(self, directory: Directory, records: VerificationRecords, messenger: Messenger,
                 ledger: ResetLedger, sealer: Sealer, cards: CardRenderer, clock: Clock) -> None:
        super().__init__(SelfServiceDialog.__name__)
        self._directory = directory
        self._records = records
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self.add_dialog(WaterfallDialog(f"{SelfServiceDialog.__name__}.steps", [
            self.start_step, self.decision_step]))
        self._sessions = SessionKeeper(records, sealer, clock)
        self.add_dialog(QuestionDialog(records, messenger, self._sessions, cards, clock))
        self.add_dialog(ResetPasswordDialog(directory, records, messenger, ledger, cards, clock))
        self.initial_dialog_id = f"{SelfServiceDialog.__name__}.steps"

    async def start_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        if not actor.personal_chat:
            return await self._end(step.context, step, "Open a 1:1 chat with Watchword",
                                   "You can reset your password only in your own chat with Watchword.")
        protection, why = await self._records.protection(actor.tenant_id, actor.user_id)
        if protection is not Protection.PROTECTED:
            return await self._end(step.context, step, "I can't reset your password here",
                                   f"Your account is {why}. Call the IT helpdesk.")
        if await self._records.active_lockout_until(actor.tenant_id, actor.user_id) is not None:
            return await self._end(step.context, step, "Too many attempts", "Call the IT helpdesk.")
        try:
            loaded = await self._directory.load_context(actor.tenant_id, actor.user_id)
        except DirectoryError:
            return await self._end(step.context, step, "I can't check your account right now",
                                   "Try again in a few minutes, or call the IT helpdesk.")
        if loaded.context.is_federated:
            return await self._end(step.context, step, "I can't reset your password here",
                                   "Your password is managed on-premises. Call the IT helpdesk.")
        policy = self_service_policy(await self._records.policy_for(actor.tenant_id))
        started = await self._sessions.begin(step.context, loaded, policy, actor=actor, target_id=actor.user_id,
                                             self_service=True)
        first, sealed = started.first, started.sealed
        step.values["session_id"] = started.session.id
        if first.decision is not None:
            return await step.next({"session": sealed})
        card = self._cards.render("person", person={"name": "Checking it's you", "details": actor.name},
                                  risk=risk_view(started.risk),
                                  requirements=requirement_lines(policy, first, frozenset())[:1])
        await step.context.send_activity(self._cards.activity(card, "A few questions first"))
        return await step.begin_dialog(QuestionDialog.__name__, {"session": sealed, "actor": actor.to_dict(),
                                                                 "audience": "self", "out_of_band": False})

    async def decision_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        if step.result.get("session") is None:  # lost (see QuestionDialog._lost)
            return await step.end_dialog()
        session, snapshot = await self._sessions.open(step.context, step.result["session"])
        decision = session.decision
        assert decision is not None
        policy = Policy.from_dict(snapshot["policy"])
        await self._records.close_session(session.id, decision, actor=actor, target_id=actor.user_id, policy=policy)
        if decision.outcome is not Outcome.VERIFIED:
            return await self._end(step.context, step, "Not reset", USER_STEPS[decision.outcome],
                                   "To reset your password, call the IT helpdesk.")
        await self._ledger.allow(session.id, tenant_id=actor.tenant_id, target_id=actor.user_id)
        return await step.begin_dialog(ResetPasswordDialog.__name__, {
            "session_id": session.id, "actor": actor.to_dict(), "target": {"id": actor.user_id, "name": actor.name}})

    async def _end(self, context: TurnContext, step: WaterfallStepContext, title: str, *lines: str
                   ) -> DialogTurnResult:
        card = self._cards.render("notice", title=title, lines=list(lines), tone=None)
        await context.send_activity(self._cards.activity(card, title))
        return await step.end_dialog()
