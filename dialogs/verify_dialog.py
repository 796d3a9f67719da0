"""VerifyDialog: `verify <name or UPN>` from a helpdesk agent, up to the decision (and the reset offer).

search -> (choose among several) -> refuse or start (person card) -> ProofDialog (the code shown in the person's
own Teams, their manager's confirmation, questions) -> decision card -> ResetPasswordDialog when verified and the
agent chooses to reset.

Options: {"query": str, "actor": Actor.to_dict()}. The verification session is kept by `SessionKeeper`: its
progress sealed in the dialogs' state, its question plan sealed once with the session's row; store/ gets the
session row, transcript and audit through `VerificationRecords`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from microsoft_agents.hosting.core import TurnContext
from microsoft_agents.hosting.dialogs import ComponentDialog, DialogTurnResult, WaterfallDialog, WaterfallStepContext

from dialogs.card_prompt import REPLACEMENT_CARD, CardPrompt, prompt_options
from dialogs.ports import (
    Actor,
    CardRenderer,
    Messenger,
    Protection,
    ResetLedger,
    StartChecks,
    VerificationRecords,
)
from dialogs.proof_dialog import ProofDialog
from dialogs.reset_dialog import ResetPasswordDialog
from dialogs.session_keeper import SessionKeeper, StartBusy, Started
from dialogs.wording import decision_view, person_view, recovered_view, requirement_lines, risk_view
from graph.directory import Directory, DirectoryError, GraphUnavailable, Unavailability, UserNotFound
from verification import Flag, Outcome, Person, Policy, RiskAssessment
from verification.clock import Clock
from verification.factors import Factor

log = logging.getLogger(__name__)

MAX_CHOICES = 8

REFUSALS = {
    Protection.NOT_PROTECTED: ("isn't protected by Watchword",
                               "Your organisation's admin left this person out of Watchword's scope. Verify them "
                               "the way your organisation did before Watchword, or ask the admin to include them."),
    Protection.PRIVILEGED: ("is a privileged administrator",
                            "Privileged administrator accounts are never reset through the helpdesk. Escalate to "
                            "the identity team."),
    Protection.GUEST: ("is a guest from another organisation",
                       "Guests sign in with their own organisation's account: their own helpdesk must verify them "
                       "and reset their password."),
    Protection.DISABLED: ("has a disabled account",
                          "Nobody should be signing in with it. If it should be enabled again, an administrator "
                          "decides that in Microsoft Entra; Watchword does not verify or reset disabled accounts."),
    Protection.FEDERATED: ("has a password managed on-premises",
                           "Their account is synced or federated from Active Directory, so Watchword cannot reset "
                           "it. Follow your on-premises process, with a call-back on the number in the directory."),
}


def new_ref() -> str:
    return uuid.uuid4().hex[:12]


class VerifyDialog(ComponentDialog):
    def __init__(self, directory: Directory, records: VerificationRecords, messenger: Messenger,
                 ledger: ResetLedger, sessions: SessionKeeper, cards: CardRenderer, clock: Clock) -> None:
        super().__init__(VerifyDialog.__name__)
        self._directory = directory
        self._records = records
        self._messenger = messenger
        self._ledger = ledger
        self._cards = cards
        self._clock = clock
        self.add_dialog(WaterfallDialog(f"{VerifyDialog.__name__}.steps", [
            self.search_step, self.start_step, self.decision_step, self.reset_step]))
        self.add_dialog(CardPrompt())
        self._sessions = sessions
        self.add_dialog(ProofDialog(records, messenger, self._sessions, cards, clock))
        self.add_dialog(ResetPasswordDialog(directory, records, messenger, ledger, cards, clock))
        self.initial_dialog_id = f"{VerifyDialog.__name__}.steps"

    # --- steps ---------------------------------------------------------------------------------------------
    async def search_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        query = " ".join(str(step.options.get("query") or "").split())
        if not query:
            await self._notice(step.context, "Who is on the phone?",
                               "Type verify and their name or email, for example: verify Alan Turing.")
            return await step.end_dialog()
        try:  # the search is a start's first Graph call: it takes a turn too (see SessionKeeper.starting)
            async with self._sessions.starting():
                people = await self._directory.find_people(actor.tenant_id, query, limit=MAX_CHOICES)
        except StartBusy as busy:
            await self._busy(step.context, actor, None, waited_s=busy.waited_s, why="starts_at_once")
            return await step.end_dialog()
        except GraphUnavailable as err:
            if err.cause is Unavailability.BUSY:  # Watchword's own connections, not Graph, ran out
                await self._busy(step.context, actor, None, waited_s=None, why="graph_connections")
            else:
                await self._notice(step.context, "I can't search the directory right now", str(err),
                                   "Try again in a minute.")
            return await step.end_dialog()
        except DirectoryError as err:
            await self._notice(step.context, "I can't search the directory right now",
                               str(err), "Try again in a minute.")
            return await step.end_dialog()
        await self._records.audit("verification.search", "found" if people else "none", actor=actor, subject=None,
                                  details={"matches": len(people)})
        if not people:
            await self._notice(step.context, "No one found",
                               f"No one in your directory matches “{query}”. Try their full name or email address.")
            return await step.end_dialog()
        views = [person_view(p) for p in people]
        if len(views) == 1:
            step.values["target"] = views[0]
            return await step.next(None)
        step.values["people"] = views
        ref = new_ref()
        card = self._cards.render("people_choice", query=query, people=views, ref=ref)
        return await step.prompt(CardPrompt.__name__, prompt_options(
            self._cards.activity(card, "Who is on the phone?"), "Choose one of the people on the card, or None "
            "of these.", verbs=["choose", "cancel"], ref=ref, words={"cancel": "cancel"}))

    async def start_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        if step.result is not None:
            chosen = self._chosen(step)
            if chosen is None:
                self._replace(step.context, "Cancelled: no one was chosen.")
                await self._notice(step.context, "Cancelled", "Nothing was changed.")
                return await step.end_dialog()
            step.values["target"] = chosen
            self._replace(step.context, f"Chosen: {chosen['name']}")
        target: dict[str, str] = step.values["target"]
        checks = await self._records.start_checks(actor.tenant_id, target["id"])
        policy = checks.policy
        refused, locked_until = await self._refusal(step.context, actor, target, checks)
        if refused:
            return await step.end_dialog()
        try:  # a turn to start first (ahead of new searches: this one's search is done): past the limit the agent
            # hears "busy" and nothing is read or counted
            async with self._sessions.starting(ahead=True):
                began = await self._read_and_begin(step.context, actor, target, policy, locked_until)
        except StartBusy as busy:
            await self._busy(step.context, actor, target, waited_s=busy.waited_s, why="starts_at_once")
            return await step.end_dialog()
        if began is None:  # refused, or Graph could not be read: the agent was told
            return await step.end_dialog()
        started, manager, available = began
        first, sealed = started.first, started.sealed
        requirements = requirement_lines(policy, first, available)
        if locked_until is not None:
            requirements.insert(0, "Too many failed verifications of this person recently: questions alone can't "
                                   "verify them now. Only the code in their own Teams or their manager's "
                                   "confirmation, with a question or two, can.")
        card = self._cards.render("person", person=target, risk=risk_view(started.risk), requirements=requirements)
        await step.context.send_activity(self._cards.activity(card, f"Verifying {target['name']}"))
        if first.decision is not None:
            return await step.next({"session": sealed})
        return await step.begin_dialog(ProofDialog.__name__, {
            "session": sealed, "actor": actor.to_dict(), "audience": "agent", "target": target,
            "manager": {"id": manager.id, "name": manager.display_name} if manager else None,
            "security_contact_id": policy.security_contact_id})

    async def decision_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        target: dict[str, str] = step.values["target"]
        if step.result.get("recovered") and actor.personal_chat:  # decided by a turn that was killed before saving
            return await self._offer_reset(step, str(step.result["recovered"]), recovered_view(target["name"]))
        if step.result.get("session") is None:  # lost (see QuestionDialog._lost)
            return await step.end_dialog()
        session, snapshot = await self._sessions.open(step.context, step.result["session"])
        decision = session.decision
        assert decision is not None
        policy = Policy.from_dict(snapshot["policy"])
        await self._records.close_session(session.id, decision, actor=actor, target_id=target["id"], policy=policy)
        # Nobody was asked in their own Teams (no code shown, no manager asked): no code card to close and no "not me"
        # to look for, and no store read for either (as take_factor_answers).
        asked = session.factors_asked
        if asked:
            await self._messenger.close_code_card(step.context, session.id)  # ended: the code is of no use any more
        if Flag.CODE_MISMATCH.value in decision.flags:  # the person's and the manager's denials alert as they come
            await self._messenger.alert_security(
                step.context, tenant_id=actor.tenant_id, security_contact_id=policy.security_contact_id,
                title="Watchword: a helpdesk caller read out a wrong code", subject=target["id"],
                session_id=session.id, lines=[
                    f"A caller claiming to be {target['name']} (user {target['id']}) read out a code that is not the "
                    f"one shown in their own Teams, to {actor.name or 'a helpdesk agent'}.",
                    "The verification was stopped; nothing was reset."])
        denied = (Flag.USER_DENIED.value in decision.flags
                  or asked and await self._messenger.out_of_band_answer(session.id) is False)
        can_reset = decision.outcome is Outcome.VERIFIED and actor.personal_chat and not denied
        view = decision_view(decision, target["name"], can_reset=can_reset, personal_chat=actor.personal_chat,
                             denied=denied, risk=RiskAssessment.from_dict(snapshot["risk"]))
        if can_reset:
            return await self._offer_reset(step, session.id, view)
        card = self._cards.render("decision", **view, data={})
        await step.context.send_activity(self._cards.activity(card, f"{view['title']}: {target['name']}"))
        return await step.end_dialog()

    async def _offer_reset(self, step: WaterfallStepContext, session_id: str, view: dict[str, Any]
                           ) -> DialogTurnResult:
        target: dict[str, str] = step.values["target"]
        ref = new_ref()
        step.values["session_id"] = session_id
        step.values["decision_view"] = view
        card = self._cards.render("decision", **view, data={"ref": ref})
        return await step.prompt(CardPrompt.__name__, prompt_options(
            self._cards.activity(card, f"Verified: {target['name']}"), "Choose Reset password or Done on the card.",
            verbs=["reset", "done"], ref=ref, words={"cancel": "done", "done": "done", "reset": "reset"}))

    async def reset_step(self, step: WaterfallStepContext) -> DialogTurnResult:
        actor = Actor.from_dict(step.options["actor"])
        target: dict[str, str] = step.values["target"]
        view = dict(step.values["decision_view"])
        step.context.turn_state[REPLACEMENT_CARD] = self._cards.render("decision", **{**view, "can_reset": False},
                                                                       data={})
        if step.result["verb"] != "reset":
            await self._records.audit("verification.closed", "no_reset", actor=actor, subject=target["id"],
                                      details={"session_id": step.values["session_id"]})
            await self._notice(step.context, "Done", f"No password was reset for {target['name']}.")
            return await step.end_dialog()
        return await step.begin_dialog(ResetPasswordDialog.__name__, {
            "session_id": step.values["session_id"], "actor": actor.to_dict(), "target": target})

    # --- helpers -------------------------------------------------------------------------------------------
    async def _read_and_begin(self, context: TurnContext, actor: Actor, target: dict[str, str], policy: Policy,
                              locked_until: datetime | None) -> tuple[Started, Person | None, frozenset[Factor]] | None:
        """Read the person's Microsoft 365 data and begin verifying them; None when that ended with a notice
        (not found, Graph unavailable, refused on what Graph says now). With the session: the person's manager and
        the strong factors that can be asked."""
        try:
            loaded = await self._directory.load_context(actor.tenant_id, target["id"])
        except UserNotFound:
            await self._notice(context, "Not found", f"{target['name']} is no longer in the directory.")
            return None
        except GraphUnavailable as err:
            if err.cause is Unavailability.BUSY:  # Watchword's own connections, not Graph, ran out
                await self._busy(context, actor, target, waited_s=None, why="graph_connections")
            else:
                await self._notice(context, "I can't read their Microsoft 365 data right now", str(err),
                                   "Try again in a minute, or verify them another way.")
            return None
        except DirectoryError as err:
            await self._notice(context, "I can't read their Microsoft 365 data right now", str(err),
                               "Try again in a minute, or verify them another way.")
            return None
        if loaded.context.unavailable:  # the console's home counts these: a source often missing needs fixing
            await self._records.audit("graph.sources_unavailable", "partial", actor=actor, subject=target["id"],
                                      details={"sources": sorted(loaded.context.unavailable)})
        if loaded.context.is_federated:
            await self._refuse(context, actor, target, Protection.FEDERATED)
            return None
        if loaded.context.is_guest or not loaded.context.account_enabled:  # as Graph says now, whatever sync said
            await self._refuse(context, actor, target,
                               Protection.GUEST if loaded.context.is_guest else Protection.DISABLED)
            return None
        manager = loaded.context.manager
        available = await self._available(actor, target["id"], manager)
        if locked_until is not None and not available:  # after the limit only the code or the manager could do
            await self._locked_out(context, actor, target, locked_until, strong_possible=True)
            return None
        started = await self._sessions.begin(context, loaded, policy, actor=actor, target_id=target["id"],
                                             self_service=False, available=available,
                                             after_limit=locked_until is not None)
        return started, manager, available

    async def _busy(self, context: TurnContext, actor: Actor, target: dict[str, str] | None, *,
                    waited_s: float | None, why: str) -> None:
        """Too many verifications starting at once: say so, count nothing against the person (`target`; None while
        searching for them), audit it."""
        log.warning("verification start refused by load (%s, %s)", why,
                    "at its search" if target is None else "the person found")
        details: dict[str, Any] = {"why": why}
        if waited_s is not None:
            details["waited_ms"] = round(waited_s * 1000)
        await self._records.audit("verification.refused", "busy", actor=actor,
                                  subject=target["id"] if target else None, details=details)
        card = self._cards.render("busy", person_name=target["name"] if target else None, agent=True)
        await context.send_activity(self._cards.activity(card, "Watchword is busy: try again in a few seconds"))

    @staticmethod
    def _chosen(step: WaterfallStepContext) -> dict[str, str] | None:
        result: dict[str, Any] = step.result
        people: list[dict[str, str]] = step.values.get("people") or []
        if result["verb"] != "choose":
            return None
        try:
            index = int(result["data"].get("person"))
        except (TypeError, ValueError):
            return None
        return people[index] if 0 <= index < len(people) else None

    async def _available(self, actor: Actor, target_id: str, manager: Person | None) -> frozenset[Factor]:
        """The strong factors Watchword can ask: the code when the person has a chat with Watchword; their manager
        when they have one Watchword can reach (and it is not the agent, who cannot vouch for their own caller)."""
        out = set()
        if await self._messenger.can_reach(actor.tenant_id, target_id):
            out.add(Factor.POSSESSION)
        if manager is not None and manager.id.lower() not in (actor.user_id.lower(), target_id.lower()) \
                and await self._messenger.can_ask_manager(actor.tenant_id, manager.id):
            out.add(Factor.MANAGER)
        return frozenset(out)

    async def _refusal(self, context: TurnContext, actor: Actor, target: dict[str, str],
                       checks: StartChecks) -> tuple[bool, datetime | None]:
        """Refuse before reading anything about the person: yourself, out of scope, privileged, locked out (unless
        the policy lets the code or the manager still verify them: then (False, when the lockout ends))."""
        if target["id"].lower() == actor.user_id.lower():
            await self._notice(context, "You can't verify yourself",
                               "Ask another member of the helpdesk to verify you.")
            await self._records.audit("verification.refused", "self", actor=actor, subject=target["id"])
            return True, None
        if checks.protection is not Protection.PROTECTED:
            await self._refuse(context, actor, target, checks.protection)
            return True, None
        until = checks.locked_until
        if until is not None and not checks.policy.strong_factor_after_limit:
            await self._locked_out(context, actor, target, until, strong_possible=False)
            return True, None
        return False, until

    async def _locked_out(self, context: TurnContext, actor: Actor, target: dict[str, str], until: datetime, *,
                          strong_possible: bool) -> None:
        await self._records.audit("verification.refused", "locked_out", actor=actor, subject=target["id"],
                                  details={"locked_until": until.isoformat()})
        """`strong_possible`: the policy would still verify them with the code or their manager, but neither can be
        asked (no chat with Watchword, no manager it can reach)."""
        left = max(timedelta(0), until - self._clock())
        lines = [f"Too many verification attempts: locked for another {_duration(left)}."]
        if strong_possible:
            lines.append("Only the code in their own Teams or their manager's confirmation could verify them now, "
                         "and neither can be asked: they have no chat with Watchword and no manager it can reach.")
        await self._notice(context, f"{target['name']} is locked out", *lines,
                           "Do not reset the password. Escalate to the security team.")

    async def _refuse(self, context: TurnContext, actor: Actor, target: dict[str, str],
                      protection: Protection) -> None:
        what, next_step = REFUSALS[protection]
        await self._records.audit("verification.refused", protection.value, actor=actor, subject=target["id"])
        await self._notice(context, f"Can't verify {target['name']}", f"{target['name']} {what}.", next_step)

    async def _notice(self, context: TurnContext, title: str, *lines: str) -> None:
        card = self._cards.render("notice", title=title, lines=list(lines), tone=None)
        await context.send_activity(self._cards.activity(card, title))

    def _replace(self, context: TurnContext, text: str) -> None:
        context.turn_state[REPLACEMENT_CARD] = self._cards.render("notice", title=text, lines=[], tone=None)


def _duration(left: timedelta) -> str:
    minutes = int(left.total_seconds() // 60)
    if minutes >= 120:
        return f"{minutes // 60} hours"
    return f"{max(1, minutes)} minutes"
