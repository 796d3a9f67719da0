"""SelfServiceDialog: "reset my password" from the person themselves, in their own chat with Watchword.

Off unless the tenant's admin turned it on (bot/agent.py says so plainly). The same questions as a helpdesk
verification, under a stricter policy (`self_service_policy` below), then the same once-only reset. Only in a 1:1
chat.

What proves anything when the requester IS the Teams user: the threat here is not a voice on the phone but a
stolen or unlocked signed-in Teams (a phone left on a desk, a laptop taken). A code shown in Teams and typed back
into Teams proves nothing against that (the thief sees it on every device signed in as the person), so self-
service never uses the code. The same thief can read the person's chats and calendar, so questions alone need
more proof than at the helpdesk. What a stolen session cannot fake is the person's manager, who is asked in their
own Teams "is <name> resetting their own password now? Call them if unsure" and calls the person on a number
they already know: when the questions alone cannot reach the bar (thin data, a few "don't know"s), the manager's
confirmation plus a little knowledge does (as much as the helpdesk asks with the code: see `self_service_policy`).
A manager who never opened Watchword is asked by installing it for them, when the tenant allows that.

Options: {"actor": Actor.to_dict()} (the actor is also the target).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from dialogs.ports import (
    Actor,
    CardRenderer,
    Messenger,
    Protection,
    ResetLedger,
    VerificationRecords,
)
from dialogs.proof_dialog import ProofDialog
from dialogs.reset_dialog import ResetPasswordDialog
from dialogs.session_keeper import SessionKeeper, StartBusy, Started
from dialogs.wording import requirement_lines, risk_view
from graph.directory import Directory, DirectoryError, GraphUnavailable, Unavailability
from verification import Outcome, Person, Policy
from verification.clock import Clock
from verification.factors import Factor

log = logging.getLogger(__name__)

HELPDESK = "Call the IT helpdesk: they can check it's you by phone and reset it for you."
USER_STEPS = {  # what happened, without blaming the person, and what to do next
    Outcome.VERIFIED: "You answered enough questions.",
    Outcome.NOT_ENOUGH_QUESTIONS: "I can't check it's you in this chat this time. That's not something you did.",
    Outcome.BLOCKED_BY_RISK: "For your protection, recent sign-ins to your account need a person to look at them "
                             "first.",
    Outcome.LOCKED_OUT: "Self-service is paused for your account for today, to protect it.",
    Outcome.PRIVILEGED: "Administrator accounts are reset by the identity team only.",
    Outcome.TIMED_OUT: "That took longer than allowed, so I stopped to keep your account safe.",
    Outcome.CANCELLED: "Cancelled: nothing was changed.",
    Outcome.NOT_VERIFIED: "I couldn't confirm it's you this time. Nothing was changed on your account.",
}


def self_service_policy(policy: Policy) -> Policy:
    """Stricter than the helpdesk's where a stolen Teams session could help (see the module doc): more bits for
    questions alone, never the code, fewer attempts. Multiple choice stays: with every free-recall question asked
    first, its options hand over nothing a later question needs, and without it most people cannot reach the bar.

    With the manager, the bits of the helpdesk's code rule (when lower than its manager rule). Only someone signed in
    to the person's Teams can ask here, and such a thief already has the helpdesk's code rule (they read the code off
    the stolen Teams and answer that many bits); here they need the same bits AND the manager's confirmation, who is
    asked in Teams and calls the person: strictly more. At the helpdesk's manager bits (12), the people with the
    thinnest data (a handful of contacts, groups or multiple-choice questions: 3-12 bits; about one in five in
    bench.accuracy's organisations) could never use self-service at all."""
    manager_bits = policy.manager_required_bits
    if policy.possession_code:
        manager_bits = min(manager_bits, policy.code_required_bits)
    return replace(policy, required_bits=policy.required_bits + SELF_SERVICE_EXTRA_BITS, possession_code=False,
                   manager_required_bits=manager_bits, max_attempts_per_day=min(policy.max_attempts_per_day, 2))


SELF_SERVICE_EXTRA_BITS = 8.0


def self_service_factors(manager: Person | None, requester_id: str, manager_askable: bool) -> frozenset[Factor]:
    """The strong factors self-service can ask (never the code): the manager, when the person has one who is not
    themselves and whom Watchword can ask in Teams (`Messenger.can_ask_manager`)."""
    if manager is None or manager.id.lower() == requester_id.lower() or not manager_askable:
        return frozenset()
    return frozenset({Factor.MANAGER})


async def can_self_serve(records: VerificationRecords, tenant_id: str, user_id: str) -> bool:
    """Whether to offer self-service to this person at all: on for the tenant, and they are someone Watchword may
    reset (in scope, not an administrator, not on-premises) and not locked out."""
    checks = await records.start_checks(tenant_id, user_id)
    return checks.self_service and checks.protection is Protection.PROTECTED and checks.locked_until is None


class SelfServiceDialog(ComponentDialog):
    def __init__(self, directory: Directory, records: VerificationRecords, messenger: Messenger,
                 ledger: ResetLedger, sessions: SessionKeeper, cards: CardRenderer, clock: Clock) -> None:
        super().__init__(SelfServiceDialog.__name__)
        self._directory = directory
        self._records = records
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self.add_dialog(WaterfallDialog(f"{SelfServiceDialog.__name__}.steps", [
            self.start_step, self.decision_step]))
        self._messenger = messenger
        self._sessions = sessions
        self.add_dialog(ProofDialog(records, messenger, self._sessions, cards, clock))
        self.add_dialog(ResetPasswordDialog(directory, records, messenger, ledger, cards, clock))
        self.initial_dialog_id = f"{SelfServiceDialog.__name__}.steps"

    async def start_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        if not actor.personal_chat:
            return await self._end(step.context, step, "Open a 1:1 chat with Watchword",
                                   "You can reset your password only in your own chat with Watchword.")
        checks = await self._records.start_checks(actor.tenant_id, actor.user_id)
        if checks.protection is not Protection.PROTECTED:
            return await self._end(step.context, step, "I can't reset your password here",
                                   f"Your account is {checks.reason}.", HELPDESK)
        if checks.locked_until is not None:
            return await self._end(step.context, step, "I can't reset your password here today",
                                   USER_STEPS[Outcome.LOCKED_OUT], HELPDESK)
        try:  # a turn to start first: past the limit the person hears "busy" and nothing is read or counted
            async with self._sessions.starting():
                began = await self._read_and_begin(step, actor, checks.policy)
        except StartBusy as busy:
            await self._busy(step.context, actor, waited_s=busy.waited_s, why="starts_at_once")
            return await step.end_dialog()
        if began is None:  # the person was told why not
            return await step.end_dialog()
        started, policy, manager, available = began
        first, sealed = started.first, started.sealed
        step.values["session_id"] = started.session.id
        if manager is not None and manager.id.lower() != actor.user_id.lower() and Factor.MANAGER not in available:
            step.values["manager_to_open_watchword"] = manager.display_name  # what to do next, if refused for it
        if first.decision is not None:
            return await step.next({"session": sealed})
        lines = [requirement_lines(policy, first, frozenset())[0]]
        if available:
            lines.append(f"If the questions aren't enough, I'll ask {manager.display_name}, your manager, to confirm "
                         "it's you: they may call you.")
        card = self._cards.render("person", person={"name": "Checking it's you", "details": actor.name},
                                  risk=risk_view(started.risk), requirements=lines)
        await step.context.send_activity(self._cards.activity(card, "A few questions first"))
        return await step.begin_dialog(ProofDialog.__name__, {
            "session": sealed, "actor": actor.to_dict(), "audience": "self",
            "target": {"id": actor.user_id, "name": actor.name},
            "manager": {"id": manager.id, "name": manager.display_name} if manager else None,
            "security_contact_id": policy.security_contact_id})

    async def decision_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        target = {"id": actor.user_id, "name": actor.name}
        if step.result.get("recovered"):  # decided by a turn that was killed before saving: the reset stays allowed
            return await step.begin_dialog(ResetPasswordDialog.__name__, {
                "session_id": str(step.result["recovered"]), "actor": actor.to_dict(), "target": target})
        if step.result.get("session") is None:  # lost (see QuestionDialog._lost)
            return await step.end_dialog()
        session, snapshot = await self._sessions.open(step.context, step.result["session"])
        decision = session.decision
        assert decision is not None
        policy = Policy.from_dict(snapshot["policy"])
        await self._records.close_session(session.id, decision, actor=actor, target_id=actor.user_id, policy=policy)
        if decision.outcome is not Outcome.VERIFIED:
            lines = [USER_STEPS[decision.outcome]]
            manager_name = step.values.get("manager_to_open_watchword")
            if decision.outcome is Outcome.NOT_ENOUGH_QUESTIONS and manager_name:
                lines.append(f"{manager_name}, your manager, could confirm it's you here once they have opened "
                             "Watchword in Teams: ask them to, then try again.")
            return await self._end(step.context, step, "Not reset", *lines, HELPDESK)
        return await step.begin_dialog(ResetPasswordDialog.__name__, {
            "session_id": session.id, "actor": actor.to_dict(), "target": target})

    async def _read_and_begin(self, step: WaterfallStepContext, actor: Actor, tenant_policy: Policy
                              ) -> tuple[Started, Policy, Person | None, frozenset[Factor]] | None:
        """Read the person's Microsoft 365 data and begin verifying them under the tenant's policy as self-service
        tightens it (returned, with their manager and the factors that can be asked); None when that ended with a
        notice."""
        try:
            loaded = await self._directory.load_context(actor.tenant_id, actor.user_id)
        except GraphUnavailable as err:
            if err.cause is Unavailability.BUSY:  # Watchword's own connections, not Graph, ran out
                await self._busy(step.context, actor, waited_s=None, why="graph_connections")
            else:
                await self._say(step.context, "I can't check your account right now", "Try again in a few minutes.",
                                HELPDESK)
            return None
        except DirectoryError:
            await self._say(step.context, "I can't check your account right now",
                            "Try again in a few minutes.", HELPDESK)
            return None
        if loaded.context.is_federated:
            await self._say(step.context, "I can't reset your password here",
                            "Your password is managed on-premises.", HELPDESK)
            return None
        policy = self_service_policy(tenant_policy)
        manager = loaded.context.manager
        askable = manager is not None and await self._messenger.can_ask_manager(actor.tenant_id, manager.id)
        available = self_service_factors(manager, actor.user_id, askable)
        started = await self._sessions.begin(step.context, loaded, policy, actor=actor, target_id=actor.user_id,
                                             self_service=True, available=available)
        return started, policy, manager, available

    async def _busy(self, context: TurnContext, actor: Actor, *, waited_s: float | None, why: str) -> None:
        """Too many verifications starting at once: say so, count nothing against the person, audit it."""
        log.warning("self-service start refused by load (%s)", why)
        details: dict[str, Any] = {"why": why}
        if waited_s is not None:
            details["waited_ms"] = round(waited_s * 1000)
        await self._records.audit("verification.refused", "busy", actor=actor, subject=actor.user_id,
                                  details=details)
        card = self._cards.render("busy", person_name=actor.name, agent=False)
        await context.send_activity(self._cards.activity(card, "Watchword is busy: try again in a few seconds"))

    async def _end(self, context: TurnContext, step: WaterfallStepContext, title: str, *lines: str
                   ) -> DialogTurnResult:
        await self._say(context, title, *lines)
        return await step.end_dialog()

    async def _say(self, context: TurnContext, title: str, *lines: str) -> None:
        card = self._cards.render("notice", title=title, lines=list(lines), tone=None)
        await context.send_activity(self._cards.activity(card, title))
